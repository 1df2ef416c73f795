//! The end of a connection: the protocol's timers (keepalive, idle timeout, close
//! deadline) on tokio's clock, the failure kept for the caller, and the orderly close of
//! the transport.

use super::WebSocket;
use crate::config::Config;
use crate::error::Error;
use duplex_proto::{ConnectionState, Message, PeerClose, Role, Timeouts};
use std::future::Future;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{sleep_until, Instant};

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Once the close handshake began, makes sure the protocol bounds it. A connection
    /// without keepalive gets its timers only now, so an open one carries none.
    pub(super) fn start_close_timer(&mut self) {
        if self.proto.state() != ConnectionState::Open && self.proto.timeouts().is_none() {
            self.proto
                .set_timeouts(timeouts(&self.config), Instant::now().into_std());
        }
    }

    pub(super) fn has_failed(&self) -> bool {
        self.rare.as_ref().is_some_and(|e| e.failure.is_some())
    }

    /// Records why the connection fails; the first cause is the one reported (an idle
    /// timeout stays the error when the close handshake that follows times out too).
    pub(super) fn fail(&mut self, error: Error) {
        self.rare
            .get_or_insert_with(Box::default)
            .failure
            .get_or_insert(error);
    }

    pub(super) fn take_failure(&mut self) -> Option<Error> {
        self.rare.as_mut().and_then(|e| e.failure.take())
    }

    /// Sleeps until the protocol's next timer and runs the ones due (a ping or a close
    /// frame goes to the write queue, a timeout becomes the failure); returns once the
    /// next one is still to come, registered for its wake-up.
    pub(super) fn poll_timers(&mut self, cx: &mut Context<'_>) {
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

    /// After the close handshake or a failure: flush, close the transport in the order
    /// RFC 6455 asks (the server first), and wait for the peer's end, bounded in time.
    pub(super) fn poll_finish(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, Error>>> {
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

/// The timers the protocol runs for `config`.
pub(super) fn timeouts(config: &Config) -> Timeouts {
    Timeouts::default()
        .ping_interval(config.ping_interval)
        .idle_timeout(config.idle_timeout)
        .close_timeout(Some(config.close_timeout))
}
