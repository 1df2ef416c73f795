//! Reader and writer halves of a connection, for use from two tasks.

use crate::error::Error;
use crate::websocket::WebSocket;
use duplex_proto::Message;
use futures_core::Stream;
use futures_sink::Sink;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};

/// The receiving half of a [`WebSocket`]. It keeps answering pings and completes the
/// close handshake, sharing the connection with the [`WebSocketWriter`] through a lock
/// held only while either half is polled.
pub struct WebSocketReader<S> {
    inner: SplitStream<WebSocket<S>>,
}

/// The sending half of a [`WebSocket`].
pub struct WebSocketWriter<S> {
    inner: SplitSink<WebSocket<S>, Message>,
}

pub(crate) fn split<S>(ws: WebSocket<S>) -> (WebSocketReader<S>, WebSocketWriter<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (sink, stream) = StreamExt::split(ws);
    (
        WebSocketReader { inner: stream },
        WebSocketWriter { inner: sink },
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketReader<S> {
    /// Receives the next message; `None` once the connection is closed.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        self.inner.next().await
    }

    /// Joins the halves again; fails if they come from different connections.
    pub fn reunite(
        self,
        writer: WebSocketWriter<S>,
    ) -> Result<WebSocket<S>, (Self, WebSocketWriter<S>)> {
        self.inner.reunite(writer.inner).map_err(|e| {
            (
                WebSocketReader { inner: e.1 },
                WebSocketWriter { inner: e.0 },
            )
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketWriter<S> {
    /// Sends a message and flushes it.
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.inner.send(message).await
    }

    /// Queues a message, waiting only while the write buffer is full.
    pub async fn feed(&mut self, message: Message) -> Result<(), Error> {
        self.inner.feed(message).await
    }

    /// Flushes queued messages.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.inner.flush().await
    }

    /// Sends a close frame (1000) and flushes; the reader sees the peer's answer.
    pub async fn close(&mut self) -> Result<(), Error> {
        self.inner.close().await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocketReader<S> {
    type Item = Result<Message, Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocketWriter<S> {
    type Error = Error;
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        Pin::new(&mut self.inner).start_send(item)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
