//! The connection type: a `Stream` of messages in and a `Sink` of messages out.

use crate::config::Config;
use crate::error::Error;
use crate::write_queue::{WriteQueue, ZERO_COPY_MIN};
use bytes::BytesMut;
use duplex_proto::frame::SharedFrame;
use duplex_proto::{
    CloseCode, CloseFrame, Connection, ConnectionState, Message, OpCode, PeerClose, Role, Timeouts,
};
use futures_core::Stream;
use futures_sink::Sink;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{sleep_until, Instant, Sleep};

/// Smallest read: enough for most small messages and their headers in one call.
const MIN_READ: usize = 4096;
/// Largest read reservation, so a huge announced frame does not reserve its size up
/// front: the buffer grows as the bytes actually arrive.
const MAX_READ: usize = 256 << 10;
/// A read at least this large means the peer streams: the read buffer is kept while the
/// socket is momentarily empty, and the next read is as large as this one was.
const STREAMING_READ: usize = 16 << 10;

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
/// as a [`Sink`] it takes outgoing ones. Pings are answered automatically. The stream
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

    fn start_send_message(&mut self, message: &Message) -> Result<(), Error> {
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

    /// Once the close handshake began, makes sure the protocol bounds it. A connection
    /// without keepalive gets its timers only now, so an open one carries none.
    fn start_close_timer(&mut self) {
        if self.proto.state() != ConnectionState::Open && self.proto.timeouts().is_none() {
            self.proto
                .set_timeouts(timeouts(&self.config), Instant::now().into_std());
        }
    }

    /// After a write made progress: a closing connection's deadline counts again from
    /// now (a slow reader still gets everything queued before our close frame; one that
    /// stops reading makes no progress and meets the deadline), and a pong held back
    /// goes out once there is room. Free for an open connection with a reading peer.
    fn wrote_some(&mut self) {
        if self.proto.state() != ConnectionState::Open {
            self.proto.handle_write(Instant::now().into_std());
        }
        if self.rare.is_some() {
            self.release_held_pong();
        }
    }

    fn has_failed(&self) -> bool {
        self.rare.as_ref().is_some_and(|e| e.failure.is_some())
    }

    /// Records why the connection fails; the first cause is the one reported (an idle
    /// timeout stays the error when the close handshake that follows times out too).
    fn fail(&mut self, error: Error) {
        self.rare
            .get_or_insert_with(Box::default)
            .failure
            .get_or_insert(error);
    }

    fn take_failure(&mut self) -> Option<Error> {
        self.rare.as_mut().and_then(|e| e.failure.take())
    }

    /// Sleeps until the protocol's next timer and runs the ones due (a ping or a close
    /// frame goes to the write queue, a timeout becomes the failure); returns once the
    /// next one is still to come, registered for its wake-up.
    fn poll_timers(&mut self, cx: &mut Context<'_>) {
        while let Some(at) = self.proto.poll_timeout() {
            let at = Instant::from_std(at);
            let mut now = Instant::now();
            // The clock first: a task that never waits (a peer that streams while we
            // close) never lets tokio's timer driver mark a sleep as elapsed.
            if at > now {
                let rare = self.rare.get_or_insert_with(Box::default);
                let timer = rare.timer.get_or_insert_with(|| Box::pin(sleep_until(at)));
                // A timer set for an earlier instant is left to wake early, find nothing
                // due and sleep again: cheaper than resetting it on every read of a
                // keepalive connection, whose next ping moves with each read.
                if timer.deadline() > at || timer.is_elapsed() {
                    timer.as_mut().reset(at);
                }
                if timer.as_mut().poll(cx).is_pending() {
                    return;
                }
                if timer.deadline() < at {
                    continue; // woke early: sleep again
                }
                // Fired for `at`: it has come, whatever the clock read a moment ago.
                now = now.max(at);
            }
            if let Err(e) = self
                .proto
                .handle_timeout(now.into_std(), self.write_buf.tail())
            {
                tracing::debug!(error = %e, "closing");
                self.fail(e.into());
            }
        }
    }

    /// Ready once the write buffer is below its limit.
    fn poll_write_capacity(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while self.write_buf.len() >= self.config.write_buffer_limit {
            ready!(self.poll_write_some(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes some of the write queue.
    fn poll_write_some(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let n = ready!(self.write_buf.poll_write(&mut self.io, cx))?;
        if n == 0 {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
        }
        self.wrote_some();
        Poll::Ready(Ok(()))
    }

    fn poll_flush_all(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while !self.write_buf.is_empty() {
            ready!(self.poll_write_some(cx))?;
        }
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }

    /// Shuts the transport down once. Past the close deadline (`give_up`) one attempt is
    /// all it gets: a TLS shutdown waits to write its alert, which a peer that does not
    /// read never lets happen; dropping the stream closes the socket anyway.
    fn poll_shutdown_once(&mut self, cx: &mut Context<'_>, give_up: bool) -> Poll<()> {
        if !self.shut_down {
            // The peer may already be gone; the close is complete either way.
            match Pin::new(&mut self.io).poll_shutdown(cx) {
                Poll::Pending if !give_up => return Poll::Pending,
                _ => self.shut_down = true,
            }
        }
        Poll::Ready(())
    }

    /// Decodes the next message from the read buffer. While the write queue is full (the
    /// peer does not read), the pong a ping requires replaces the one held back before
    /// instead of joining the queue; it is queued once there is room again.
    fn receive(&mut self) -> Result<Option<Message>, duplex_proto::Error> {
        if self.write_buf.len() < self.config.write_buffer_limit {
            self.release_held_pong();
            return self
                .proto
                .receive(&mut self.read_buf, self.write_buf.tail());
        }
        let mut replies = BytesMut::new();
        let received = self.proto.receive(&mut self.read_buf, &mut replies);
        if replies.is_empty() {
            return received;
        }
        if let Ok(Some(Message::Ping(_))) = received {
            self.rare.get_or_insert_with(Box::default).held_pong = Some(replies);
        } else {
            // A close echo or a failure's close frame: after the pong it follows.
            if let Some(pong) = self.rare.as_mut().and_then(|r| r.held_pong.take()) {
                self.write_buf.tail().extend_from_slice(&pong);
            }
            self.write_buf.tail().extend_from_slice(&replies);
        }
        received
    }

    /// Queues the pong held back once the write queue has room; `true` if it did.
    fn release_held_pong(&mut self) -> bool {
        if self.write_buf.len() >= self.config.write_buffer_limit {
            return false;
        }
        let Some(rare) = self.rare.as_mut() else {
            return false;
        };
        let Some(pong) = rare.held_pong.take() else {
            return false;
        };
        if rare.failure.is_none() && rare.timer.is_none() {
            // Back to an open connection's state: nothing boxed.
            self.rare = None;
        }
        // After our close frame nothing more is sent: the pong is dropped.
        if self.proto.state() != ConnectionState::Open {
            return false;
        }
        self.write_buf.tail().extend_from_slice(&pong);
        true
    }

    /// Reads more bytes into the read buffer; `Ok(false)` at end of stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, Error>> {
        let want = match self.proto.payload_remaining(&self.read_buf) {
            // The rest of the frame and room for the next header: a read that stops short
            // of filling the buffer tells tokio the socket is drained, where an exactly
            // full one costs another read that finds nothing.
            Some(rest) => rest.saturating_add(MIN_READ),
            None => self.last_read as usize,
        }
        .clamp(MIN_READ, MAX_READ);
        self.read_buf.reserve(want);
        let n = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.io),
            cx,
            &mut self.read_buf
        ))?;
        self.last_read = u32::try_from(n).unwrap_or(u32::MAX);
        if n == 0 {
            self.eof = true;
            return Poll::Ready(Ok(false));
        }
        if self.proto.timeouts().is_some() {
            self.proto.handle_read(Instant::now().into_std());
        }
        Poll::Ready(Ok(true))
    }

    /// After the close handshake or a failure: flush, close the transport in the order
    /// RFC 6455 asks (the server first), and wait for the peer's end, bounded in time.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        self.start_close_timer();
        self.poll_timers(cx);
        let timed_out = self.proto.close_timed_out();
        if !timed_out {
            if let Poll::Ready(Err(e)) = self.poll_flush_all(cx) {
                self.terminated = true;
                return Poll::Ready(Some(Err(self.take_failure().unwrap_or(e))));
            }
            if !self.write_buf.is_empty() {
                return Poll::Pending;
            }
        }
        if self.role() == Role::Server || timed_out {
            ready!(self.poll_shutdown_once(cx, timed_out));
        }
        if std::mem::take(&mut self.close_pending) {
            let frame = self.proto.peer_close().and_then(PeerClose::frame).cloned();
            return Poll::Ready(Some(Ok(Message::Close(frame))));
        }
        // Drain until the peer closes its side, so unread bytes never turn our close into
        // a reset that could destroy the close frame in flight.
        while !self.eof && !timed_out {
            self.read_buf.clear();
            match self.poll_fill(cx) {
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(_)) => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        ready!(self.poll_shutdown_once(cx, timed_out));
        self.terminated = true;
        Poll::Ready(self.take_failure().map(Err))
    }
}

impl<S> Stream for WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.terminated {
            return Poll::Ready(None);
        }
        loop {
            if this.proto.state() == ConnectionState::CloseSent {
                // Before decoding: a peer that keeps sending while we wait for its close
                // frame (messages are discarded) must not hold the deadline off.
                this.poll_timers(cx);
            }
            if this.proto.state() == ConnectionState::Closed || this.has_failed() {
                return this.poll_finish(cx);
            }
            match this.receive() {
                Ok(Some(Message::Close(_))) => {
                    this.close_pending = true;
                    continue;
                }
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "failing the connection");
                    this.fail(e.into());
                    continue;
                }
            }
            if this.eof {
                this.terminated = true;
                return Poll::Ready(Some(Err(Error::AbnormalClosure)));
            }
            // Before waiting for the transport, send what is queued: pongs and close
            // replies, and messages fed without a flush. A burst of messages decoded from
            // one read is returned first, so replies fed meanwhile leave in one write.
            if !this.write_buf.is_empty() {
                if let Poll::Ready(Err(e)) = this.poll_flush_all(cx) {
                    this.terminated = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            // The flush made room: a pong held back goes out now, not with the next read.
            if this.release_held_pong() {
                continue;
            }
            match this.poll_fill(cx) {
                Poll::Ready(Ok(_)) => continue,
                Poll::Ready(Err(e)) => {
                    this.terminated = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Pending => {
                    // Nothing to read: an idle connection keeps no buffers. A streaming
                    // one keeps its read buffer for the next large read, unless a huge
                    // frame grew it.
                    let streaming = this.last_read as usize >= STREAMING_READ
                        && this.read_buf.capacity() <= MAX_READ + MIN_READ;
                    if this.read_buf.is_empty() && !streaming {
                        this.read_buf = BytesMut::new();
                    }
                    this.write_buf.release_if_empty();
                    this.poll_timers(cx);
                    if !this.write_buf.is_empty() || this.has_failed() {
                        // A timer queued a ping or a close: go round again.
                        if this.has_failed() {
                            continue;
                        }
                        let _ = this.poll_flush_all(cx);
                    }
                    return Poll::Pending;
                }
            }
        }
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

/// The timers the protocol runs for `config`.
fn timeouts(config: &Config) -> Timeouts {
    Timeouts::default()
        .ping_interval(config.ping_interval)
        .idle_timeout(config.idle_timeout)
        .close_timeout(Some(config.close_timeout))
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
