//! Sending: messages queued (large payloads by reference), the write queue bounded for
//! backpressure, and the transport shut down once.

use super::{normal_closure, WebSocket};
use crate::error::Error;
use crate::write_queue::ZERO_COPY_MIN;
use duplex_proto::{ConnectionState, Message};
use futures_sink::Sink;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    pub(super) fn start_send_message(&mut self, message: &Message) -> Result<(), Error> {
        if self.terminated {
            return Err(Error::ConnectionClosed);
        }
        if let Message::Close(None) = message {
            // The one rule for closing: no frame given means 1000 (see `close`).
            return self.start_send_message(&Message::Close(Some(normal_closure())));
        }
        if let (Message::Close(_), Some(rare)) = (message, self.rare.as_mut()) {
            // A ping we received is answered before our close (RFC 6455 section 5.5.2),
            // even over the queue limit: one pong of at most 131 bytes.
            if let Some(pong) = rare.held_pong.take() {
                if self.proto.state() == ConnectionState::Open {
                    self.write_buf.tail().extend_from_slice(&pong);
                }
            }
        }
        let payload = self.proto.send_zero_copy(message, self.write_buf.tail())?;
        match payload {
            // Large payloads are queued by reference: one vectored write sends header
            // and payload without copying the payload.
            Some(p) if p.len() >= ZERO_COPY_MIN => self.write_buf.push(p),
            Some(p) => self.write_buf.tail().extend_from_slice(&p),
            None => {}
        }
        if let Message::Close(_) = message {
            self.start_close_timer();
        }
        Ok(())
    }

    /// After a write made progress: a closing connection's deadline counts again from
    /// now (a slow reader still gets everything queued before our close frame; one that
    /// stops reading makes no progress and meets the deadline), and a pong held back
    /// goes out once there is room. Free for an open connection with a reading peer.
    pub(super) fn wrote_some(&mut self) {
        if self.proto.state() != ConnectionState::Open {
            self.proto.handle_write(Instant::now().into_std());
        }
        if self.rare.is_some() {
            self.release_held_pong();
        }
    }

    /// Ready once the write buffer is below its limit.
    pub(super) fn poll_write_capacity(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while self.write_buf.len() >= self.config.write_buffer_limit {
            ready!(self.poll_write_some(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes some of the write queue.
    pub(super) fn poll_write_some(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let n = ready!(self.write_buf.poll_write(&mut self.io, cx))?;
        if n == 0 {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
        }
        self.wrote_some();
        Poll::Ready(Ok(()))
    }

    pub(super) fn poll_flush_all(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while !self.write_buf.is_empty() {
            ready!(self.poll_write_some(cx))?;
        }
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }

    /// Shuts the transport down once. Past the close deadline (`give_up`) one attempt is
    /// all it gets: a TLS shutdown waits to write its alert, which a peer that does not
    /// read never lets happen; dropping the stream closes the socket anyway.
    pub(super) fn poll_shutdown_once(&mut self, cx: &mut Context<'_>, give_up: bool) -> Poll<()> {
        if !self.shut_down {
            // The peer may already be gone; the close is complete either way.
            match Pin::new(&mut self.io).poll_shutdown(cx) {
                Poll::Pending if !give_up => return Poll::Pending,
                _ => self.shut_down = true,
            }
        }
        Poll::Ready(())
    }
}

impl<S> Sink<Message> for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_write_capacity(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.start_send_message(&item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_flush_all(cx)
    }

    /// Sends a close frame (1000) if none was sent and flushes. The peer's answer is
    /// read by the stream side.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.proto.state() == ConnectionState::Open {
            self.start_send_message(&Message::Close(None))?;
        }
        self.poll_flush_all(cx)
    }
}
