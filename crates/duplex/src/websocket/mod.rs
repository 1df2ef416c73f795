//! The connection type: a `Stream` of messages in and a `Sink` of messages out. Its
//! public calls are here; receiving is in `read.rs`, sending in `write.rs`, timers and
//! the end of the connection in `closing.rs`.

mod closing;
mod read;
mod write;

use crate::config::Config;
use crate::error::Error;
use crate::write_queue::WriteQueue;
use bytes::BytesMut;
use closing::timeouts;
use duplex_proto::frame::SharedFrame;
use duplex_proto::{CloseCode, CloseFrame, Connection, ConnectionState, Message, OpCode, Role};
use futures_core::Stream;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

/// A WebSocket connection over any `AsyncRead + AsyncWrite` transport.
///
/// ```
/// use bytes::BytesMut;
/// use duplex::{Config, Message, Role, WebSocket};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), duplex::Error> {
/// // Two ends over an in-memory pipe, as if a handshake had just completed.
/// let (a, b) = tokio::io::duplex(64 << 10);
/// let mut client = WebSocket::from_parts(a, Role::Client, Config::default(), BytesMut::new());
/// let mut server = WebSocket::from_parts(b, Role::Server, Config::default(), BytesMut::new());
///
/// client.send(Message::text("ping?")).await?;
/// let question = server.recv().await.expect("a message")?;
/// assert_eq!(question, Message::text("ping?"));
/// server.send(Message::text("pong!")).await?;
/// assert_eq!(client.recv().await.expect("a message")?, Message::text("pong!"));
///
/// // The close handshake: the server sees the client's close (1000), then the end.
/// let (closed, _) = tokio::join!(client.close(None), async {
///     while let Some(message) = server.recv().await {
///         println!("server got {:?}", message?);
///     }
///     Ok::<_, duplex::Error>(())
/// });
/// closed
/// # }
/// ```
///
/// As a [`Stream`] it yields incoming messages (data, pings, pongs and the peer's close);
/// as a [`Sink`](futures_sink::Sink) it takes outgoing ones. Pings are answered automatically. The stream
/// ends (`None`) once the close handshake is over; a transport that drops without a
/// close frame ends it with [`Error::AbnormalClosure`].
///
/// Sending waits (backpressure) while more than [`Config::write_buffer_limit`] bytes
/// are queued. Receiving flushes what is queued before it waits for the transport, so a
/// loop that [`feed`](Self::feed)s replies and then receives needs no explicit flush,
/// and the replies to a burst of messages read at once go out in one write.
///
/// # Closing
///
/// One rule for every way of closing: a close frame you give is sent as it is, and no
/// frame ([`close(None)`](Self::close), `send(Message::Close(None))`, `SinkExt::close`,
/// [`WebSocketWriter::close`](crate::WebSocketWriter::close)) sends 1000 (Normal
/// Closure) without a reason. This layer never sends a close frame without a status
/// code; `duplex_proto::Connection::close(None)` does, for those who need the wire
/// exactly.
///
/// # Cancel safety
///
/// Which methods can be a branch of `tokio::select!` (or be dropped unfinished) without
/// losing data; the tests in `tests/cancel_safety.rs` hold the promises:
///
/// | method | cancelled before it finishes |
/// | --- | --- |
/// | [`recv`](Self::recv), `next` ([`Stream`]) | **safe**: a message is returned whole or stays buffered, partly read frames included, for the next call |
/// | [`flush`](Self::flush) | **safe**: what is queued stays queued; the next `flush`, `send` or `recv` writes it |
/// | [`close`](Self::close) | **safe to call again**: the close frame is queued once; a new call goes on waiting for the peer's |
/// | [`send`](Self::send), [`feed`](Self::feed), [`send_shared`](Self::send_shared), [`feed_shared`](Self::feed_shared), [`send_frame`](Self::send_frame), [`send_uncompressed`](Self::send_uncompressed) | **not safe for the message**: cancelled while waiting for room in the write buffer, the message is dropped unsent; once queued it is sent, even if the flush after it is cancelled. In a `select!` loop, take messages from a channel and `send` them in the branch's body, not in its future |
pub struct WebSocket<S> {
    io: S,
    proto: Connection,
    /// Shared by every connection made with the same settings. This struct stays small,
    /// with rarely used state boxed, because an idle server connection is mostly this.
    config: Arc<Config>,
    read_buf: BytesMut,
    write_buf: WriteQueue,
    /// The transport's read side ended.
    eof: bool,
    /// Our write side was shut down.
    shut_down: bool,
    /// Bytes the last read returned (sizes the next one; small: the buffer is released
    /// when the socket has nothing more).
    last_read: u32,
    /// The stream returned `None` or its final error.
    terminated: bool,
    /// The peer's close (kept by `proto`) is still to be handed to the caller, once our
    /// reply is flushed.
    close_pending: bool,
    /// Set once the connection starts to end, a pong is held back or a keepalive timer
    /// runs: boxed, as an open connection with a peer that reads has none.
    rare: Option<Box<Rare>>,
}

/// State a connection needs only while it ends, while its peer does not read, or while
/// a keepalive timer runs.
#[derive(Default)]
struct Rare {
    /// A protocol failure, returned once our close frame is out and the peer had its
    /// chance to close.
    failure: Option<Error>,
    /// Sleeps until the protocol's next timer ([`Connection::poll_timeout`]): a keepalive
    /// ping, the idle timeout or the close deadline.
    timer: Option<Pin<Box<Sleep>>>,
    /// The pong for the latest ping received while the write queue was full. Only the
    /// most recent ping needs an answer (RFC 6455 section 5.5.3), so a peer that floods
    /// pings and never reads costs one pong, not a queue of them.
    held_pong: Option<BytesMut>,
}

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Wraps a transport whose handshake is complete. `read_buf` holds any bytes read
    /// past the handshake (the first frames may arrive with it). `config` is a [`Config`]
    /// or an `Arc<Config>` shared with other connections.
    pub fn from_parts(
        io: S,
        role: Role,
        config: impl Into<Arc<Config>>,
        read_buf: BytesMut,
    ) -> Self {
        let config = config.into();
        let proto = Connection::new(role, config.limits.clone());
        Self::from_connection(io, proto, config, read_buf)
    }

    /// Wraps a transport and a protocol state machine set up by a handshake (for example
    /// with permessage-deflate enabled).
    pub fn from_connection(
        io: S,
        proto: Connection,
        config: impl Into<Arc<Config>>,
        read_buf: BytesMut,
    ) -> Self {
        let config = config.into();
        let mut proto = proto;
        if config.ping_interval.is_some() || config.idle_timeout.is_some() {
            proto.set_timeouts(timeouts(&config), Instant::now().into_std());
        }
        Self {
            io,
            proto,
            config,
            read_buf,
            write_buf: WriteQueue::default(),
            eof: false,
            shut_down: false,
            last_read: 0,
            terminated: false,
            close_pending: false,
            rare: None,
        }
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.proto.role()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Receives the next message; `None` once the connection is closed.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Sends a message and flushes it to the transport. `Message::Close(None)` sends 1000
    /// (see [Closing](Self#closing)).
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Sends a message without compressing it, even when permessage-deflate is on.
    pub async fn send_uncompressed(&mut self, message: Message) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_capacity(cx)).await?;
        if self.terminated {
            return Err(Error::ConnectionClosed);
        }
        if let Message::Close(_) = message {
            // Nothing to compress; the close path answers a held ping and starts the
            // close deadline.
            self.start_send_message(&message)?;
        } else {
            self.proto
                .send_uncompressed(&message, self.write_buf.tail())?;
        }
        self.flush().await
    }

    /// Whether permessage-deflate was negotiated.
    pub fn is_compressing(&self) -> bool {
        self.proto.is_compressing()
    }

    /// The protocol state machine (for inspection: state, deflate state).
    pub fn protocol(&self) -> &Connection {
        &self.proto
    }

    /// Queues a message without flushing, waiting only while the write buffer is full.
    /// Use [`flush`](Self::flush) after a batch.
    pub async fn feed(&mut self, message: Message) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_capacity(cx)).await?;
        self.start_send_message(&message)
    }

    /// Sends a frame encoded once for many connections (see [`SharedFrame`]): the same
    /// bytes are queued without re-encoding or copying; with permessage-deflate, the
    /// frame compressed once per compressor setting. Server connections only.
    ///
    /// ```no_run
    /// # async fn demo(mut clients: Vec<duplex::WebSocket<tokio::net::TcpStream>>) -> Result<(), duplex::Error> {
    /// use duplex::{Message, SharedFrame};
    /// let tick = SharedFrame::new(&Message::text(r#"{"price":42}"#))?;
    /// for ws in &mut clients {
    ///     ws.send_shared(&tick).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn send_shared(&mut self, frame: &SharedFrame) -> Result<(), Error> {
        self.feed_shared(frame).await?;
        self.flush().await
    }

    /// Queues a [`SharedFrame`] without flushing, waiting only while the write buffer is
    /// full, as [`feed`](Self::feed) does for a message.
    pub async fn feed_shared(&mut self, frame: &SharedFrame) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_capacity(cx)).await?;
        if self.terminated {
            return Err(Error::ConnectionClosed);
        }
        let bytes = self.proto.send_shared(frame)?;
        self.write_buf.push(bytes);
        Ok(())
    }

    /// Sends one frame of a fragmented message: `Text` or `Binary` with `fin = false`
    /// first, then `Continuation` frames, the last with `fin = true`.
    pub async fn send_frame(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_capacity(cx)).await?;
        self.proto
            .send_frame(opcode, payload, fin, self.write_buf.tail())?;
        self.flush().await
    }

    /// Writes everything queued to the transport.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_flush_all(cx)).await
    }

    /// Closes the connection: sends a close frame (`None`: 1000, see
    /// [Closing](Self#closing)), then waits for the
    /// peer's close and the end of the transport, at most [`Config::close_timeout`] in
    /// all, writing what is queued included: a peer that stops reading cannot hold the
    /// connection open ([`Error::Timeout`] then). Messages that arrive meanwhile are
    /// discarded.
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), Error> {
        if self.proto.state() == ConnectionState::Open {
            self.start_send_message(&Message::Close(frame))?;
        }
        // No separate flush: receiving writes the queue under the close deadline.
        while let Some(next) = self.recv().await {
            next?;
        }
        Ok(())
    }

    /// Splits into a reader and a writer that can be used from different tasks.
    pub fn split(self) -> (crate::WebSocketReader<S>, crate::WebSocketWriter<S>) {
        crate::split::split(self)
    }
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.proto.role())
            .field("state", &self.proto.state())
            .finish_non_exhaustive()
    }
}

/// The close frame sent when none is given: 1000, no reason.
fn normal_closure() -> CloseFrame {
    CloseFrame::new(CloseCode::NORMAL, "")
}

/// The instant `timeout` from now; a timeout too large to add (`Duration::MAX` for
/// "never") is 30 years, as tokio's own far future.
pub(crate) fn deadline_after(timeout: std::time::Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + std::time::Duration::from_secs(86_400 * 365 * 30))
}

#[cfg(test)]
mod tests;
