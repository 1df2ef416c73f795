//! Receiving: reads sized to what the protocol expects, messages decoded one at a time,
//! and a pong held back while the peer does not read.

use super::WebSocket;
use crate::error::Error;
use bytes::BytesMut;
use duplex_proto::{ConnectionState, Message};
use futures_core::Stream;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// Smallest read: enough for most small messages and their headers in one call.
const MIN_READ: usize = 4096;
/// Largest read reservation, so a huge announced frame does not reserve its size up
/// front: the buffer grows as the bytes actually arrive.
const MAX_READ: usize = 256 << 10;
/// A read at least this large means the peer streams: the read buffer is kept while the
/// socket is momentarily empty, and the next read is as large as this one was.
const STREAMING_READ: usize = 16 << 10;

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Decodes the next message from the read buffer. While the write queue is full (the
    /// peer does not read), the pong a ping requires replaces the one held back before
    /// instead of joining the queue; it is queued once there is room again.
    pub(super) fn receive(&mut self) -> Result<Option<Message>, duplex_proto::Error> {
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
    pub(super) fn release_held_pong(&mut self) -> bool {
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
    pub(super) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, Error>> {
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
