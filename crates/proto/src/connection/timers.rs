//! Keepalive pings, the idle timeout and the close deadline, on the caller's clock.
//!
//! Nothing here reads a clock: every instant is an argument, as in quinn-proto, so the
//! timers behave the same under tokio, under another runtime, and in a test that makes
//! time up. The driver sleeps until [`Connection::poll_timeout`] and then calls
//! [`Connection::handle_timeout`]; it reports reads and writes with
//! [`Connection::handle_read`] and [`Connection::handle_write`].
//!
//! [`Connection::poll_timeout`]: crate::Connection::poll_timeout
//! [`Connection::handle_timeout`]: crate::Connection::handle_timeout
//! [`Connection::handle_read`]: crate::Connection::handle_read
//! [`Connection::handle_write`]: crate::Connection::handle_write

use crate::close::{CloseCode, CloseFrame};
use crate::error::Error;
use crate::message::Message;
use bytes::{Bytes, BytesMut};
use std::time::{Duration, Instant};

/// The timers a [`Connection`](crate::Connection) runs once given them with
/// [`set_timeouts`](crate::Connection::set_timeouts). Every one is off by default: a
/// connection keeps no time unless asked.
///
/// | timeout | default | when it passes |
/// | --- | --- | --- |
/// | `ping_interval` | off | a ping is queued, once, after this long without a read |
/// | `idle_timeout` | off | a close frame 1001 is queued after this long without a read, and [`Error::IdleTimeout`](crate::Error::IdleTimeout) returned |
/// | `close_timeout` | off | from the start of the close handshake: waiting for the peer is over ([`Error::CloseTimeout`](crate::Error::CloseTimeout) if its close frame never came) |
///
/// The close deadline counts again from every write that makes progress
/// ([`handle_write`](crate::Connection::handle_write)): a slow reader still gets all that
/// was queued before the close frame, while a peer that stops reading meets the deadline.
///
/// `#[non_exhaustive]`: start from `Timeouts::default()` and chain the setters.
///
/// ```
/// use std::time::Duration;
/// let timeouts = duplex_proto::Timeouts::default()
///     .ping_interval(Some(Duration::from_secs(20)))
///     .close_timeout(Some(Duration::from_secs(5)));
/// assert_eq!(timeouts.idle_timeout, None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// A ping after this long without a read.
    pub ping_interval: Option<Duration>,
    /// Close (1001) after this long without a read.
    pub idle_timeout: Option<Duration>,
    /// The bound on the close handshake and the transport's end.
    pub close_timeout: Option<Duration>,
}

impl Timeouts {
    /// Sets `ping_interval`: a ping after this long without a read.
    #[must_use]
    pub fn ping_interval(mut self, ping_interval: Option<Duration>) -> Self {
        self.ping_interval = ping_interval;
        self
    }

    /// Sets `idle_timeout`: close (1001) after this long without a read.
    #[must_use]
    pub fn idle_timeout(mut self, idle_timeout: Option<Duration>) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Sets `close_timeout`: the bound on the close handshake.
    #[must_use]
    pub fn close_timeout(mut self, close_timeout: Option<Duration>) -> Self {
        self.close_timeout = close_timeout;
        self
    }
}

/// Where the close deadline is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CloseClock {
    /// The connection is open, or there is no close timeout.
    NotStarted,
    /// Closing began inside a call that is given no time (`receive`, `send`, `close`): the
    /// deadline counts from the next instant the driver gives, which
    /// [`Timers::next`] asks for at once.
    Starting,
    /// Waiting for the peer until this instant.
    Until(Instant),
    /// A close timeout too long to be an `Instant`: waiting for ever.
    Unbounded,
    /// The deadline passed.
    Expired,
}

/// What came due at the instant [`Timers::due`] was given.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    Nothing,
    Ping,
    Idle,
    CloseDeadline,
}

/// The clocks of one connection. Boxed in the connection, and only once asked for.
#[derive(Debug)]
pub(crate) struct Timers {
    timeouts: Timeouts,
    /// The latest instant the driver gave.
    now: Instant,
    /// When bytes last arrived (or the timers started).
    last_read: Instant,
    /// A keepalive ping went out since the last read.
    pinged: bool,
    close: CloseClock,
}

impl Timers {
    /// Timers that start at `now`; `closing` when the close handshake already began.
    pub(crate) fn new(timeouts: Timeouts, now: Instant, closing: bool) -> Self {
        let mut timers = Self {
            timeouts,
            now,
            last_read: now,
            pinged: false,
            close: CloseClock::NotStarted,
        };
        if closing {
            timers.closing_began();
            timers.advance(now);
        }
        timers
    }

    pub(crate) fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// The close handshake began (the state left Open).
    pub(crate) fn closing_began(&mut self) {
        if self.close == CloseClock::NotStarted && self.timeouts.close_timeout.is_some() {
            self.close = CloseClock::Starting;
        }
    }

    /// The earliest instant something comes due; keepalive only while `open`.
    pub(crate) fn next(&self, open: bool) -> Option<Instant> {
        let close = match self.close {
            // Due at once, so the driver gives an instant to count from.
            CloseClock::Starting => Some(self.now),
            CloseClock::Until(deadline) => Some(deadline),
            CloseClock::NotStarted | CloseClock::Unbounded | CloseClock::Expired => None,
        };
        let idle = self
            .timeouts
            .idle_timeout
            .filter(|_| open)
            .and_then(|t| self.last_read.checked_add(t));
        let ping = self
            .timeouts
            .ping_interval
            .filter(|_| open && !self.pinged)
            .and_then(|t| self.last_read.checked_add(t));
        [close, idle, ping].into_iter().flatten().min()
    }

    /// Bytes arrived at `now`: the idle clock starts again.
    pub(crate) fn read(&mut self, now: Instant) {
        self.advance(now);
        self.last_read = now;
        self.pinged = false;
    }

    /// The transport took some output at `now`: a running close deadline counts again.
    pub(crate) fn wrote(&mut self, now: Instant) {
        self.advance(now);
        if let CloseClock::Until(_) = self.close {
            self.close = self.deadline_from(now);
        }
    }

    /// Moves the clock to `now`, starting a close deadline that waited for an instant.
    pub(crate) fn advance(&mut self, now: Instant) {
        self.now = now;
        if self.close == CloseClock::Starting {
            self.close = self.deadline_from(now);
        }
    }

    /// What is due at `now`, the close deadline first; a ping is reported once per read.
    pub(crate) fn due(&mut self, now: Instant, open: bool) -> Due {
        self.advance(now);
        if let CloseClock::Until(deadline) = self.close {
            if now >= deadline {
                self.close = CloseClock::Expired;
                return Due::CloseDeadline;
            }
        }
        if !open {
            return Due::Nothing;
        }
        let passed = |t: Option<Duration>| {
            t.and_then(|t| self.last_read.checked_add(t))
                .is_some_and(|at| now >= at)
        };
        if passed(self.timeouts.idle_timeout) {
            return Due::Idle;
        }
        if !self.pinged && passed(self.timeouts.ping_interval) {
            self.pinged = true;
            return Due::Ping;
        }
        Due::Nothing
    }

    pub(crate) fn close_expired(&self) -> bool {
        self.close == CloseClock::Expired
    }

    fn deadline_from(&self, now: Instant) -> CloseClock {
        match self.timeouts.close_timeout.map(|t| now.checked_add(t)) {
            Some(Some(deadline)) => CloseClock::Until(deadline),
            Some(None) => CloseClock::Unbounded,
            None => CloseClock::NotStarted,
        }
    }
}

/// The driver's side of the timers: time goes in, frames and errors come out.
impl crate::Connection {
    /// Starts the timers in `timeouts` at `now` (the connection's clock starts there:
    /// nothing has been read yet). Called again, it replaces them and starts afresh. Set
    /// once the close handshake began, the close deadline counts from `now`.
    ///
    /// Then drive them: sleep until [`poll_timeout`](Self::poll_timeout) and call
    /// [`handle_timeout`](Self::handle_timeout), and report the transport's progress
    /// with [`handle_read`](Self::handle_read) and [`handle_write`](Self::handle_write).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use duplex_proto::{Connection, Limits, Message, Role, Timeouts};
    /// use std::time::{Duration, Instant};
    ///
    /// let start = Instant::now();
    /// let mut server = Connection::new(Role::Server, Limits::default());
    /// server.set_timeouts(Timeouts::default().ping_interval(Some(Duration::from_secs(20))), start);
    /// assert_eq!(server.poll_timeout(), Some(start + Duration::from_secs(20)));
    ///
    /// let mut out = BytesMut::new();
    /// server.handle_timeout(start + Duration::from_secs(20), &mut out).unwrap();
    /// assert_eq!(&out[..], &[0x89, 0x00]); // a ping, and no other until the next read
    /// assert_eq!(server.poll_timeout(), None);
    /// ```
    pub fn set_timeouts(&mut self, timeouts: Timeouts, now: Instant) {
        let closing = self.state() != crate::ConnectionState::Open;
        self.timers = Some(Box::new(Timers::new(timeouts, now, closing)));
    }

    /// The timeouts in force, once [`set_timeouts`](Self::set_timeouts) gave them.
    pub fn timeouts(&self) -> Option<&Timeouts> {
        self.timers.as_deref().map(Timers::timeouts)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due; `None` while no timer
    /// runs. An instant in the past means at once: once closing began in a call that
    /// takes no time (`receive`, `send`, `close`), this asks for the instant its
    /// deadline counts from.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let open = self.state() == crate::ConnectionState::Open;
        self.timers.as_deref().and_then(|t| t.next(open))
    }

    /// Runs the timers due at `now`, appending to `output` what they send:
    /// - a keepalive ping, once after each `ping_interval` without a read;
    /// - past `idle_timeout` without a read, a close frame 1001 "idle timeout", then
    ///   [`Error::IdleTimeout`];
    /// - past the close deadline, nothing more: [`close_timed_out`](Self::close_timed_out)
    ///   turns true and, if the peer's close frame never came, the state becomes
    ///   [`Closed`](crate::ConnectionState::Closed) and [`Error::CloseTimeout`] is returned.
    ///
    /// After `Ok`, [`poll_timeout`](Self::poll_timeout) is `None` or later than `now`.
    /// After [`Error::IdleTimeout`] the close deadline runs from `now`, so with a close
    /// timeout of zero it is due at once: a driver calls again while `poll_timeout` is
    /// not later than the present.
    pub fn handle_timeout(&mut self, now: Instant, output: &mut BytesMut) -> Result<(), Error> {
        let open = self.state() == crate::ConnectionState::Open;
        let Some(timers) = self.timers.as_deref_mut() else {
            return Ok(());
        };
        match timers.due(now, open) {
            Due::Nothing => Ok(()),
            Due::Ping => self.send(&Message::Ping(Bytes::new()), output),
            Due::Idle => {
                let frame = CloseFrame::new(CloseCode::GOING_AWAY, "idle timeout");
                self.close(Some(&frame), output)?;
                if let Some(timers) = self.timers.as_deref_mut() {
                    timers.advance(now);
                }
                Err(Error::IdleTimeout)
            }
            Due::CloseDeadline if self.state() == crate::ConnectionState::CloseSent => {
                self.leave_open(crate::ConnectionState::Closed);
                Err(Error::CloseTimeout)
            }
            Due::CloseDeadline => Ok(()),
        }
    }

    /// Bytes arrived from the peer at `now`: the idle clock and the keepalive ping count
    /// again from here. Call it for every read that returns data (the bytes need not
    /// make a whole frame), before giving them to [`receive`](Self::receive).
    pub fn handle_read(&mut self, now: Instant) {
        if let Some(timers) = self.timers.as_deref_mut() {
            timers.read(now);
        }
    }

    /// The transport took some of the output at `now`: while closing, the close deadline
    /// counts again from here. An open connection needs no such call.
    pub fn handle_write(&mut self, now: Instant) {
        if let Some(timers) = self.timers.as_deref_mut() {
            timers.wrote(now);
        }
    }

    /// Whether the close deadline passed: stop waiting for the peer's close frame and
    /// for the end of its stream, and close the transport.
    pub fn close_timed_out(&self) -> bool {
        self.timers.as_deref().is_some_and(Timers::close_expired)
    }
}
