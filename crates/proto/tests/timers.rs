//! The timers on a made-up clock: keepalive pings, the idle timeout and the close
//! deadline, each at the exact instant it is due and not a moment before. No test here
//! sleeps; every instant is `start` plus whole seconds.

mod common;

use bytes::BytesMut;
use common::{close_payload, frame_to, frames_written_by};
use duplex_proto::{Connection, ConnectionState, Error, Limits, Message, Role, Timeouts};
use proptest::prelude::*;
use std::time::{Duration, Instant};

const ROLES: [Role; 2] = [Role::Server, Role::Client];

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A connection of `role` whose timers started at the returned instant.
fn timed(role: Role, timeouts: Timeouts) -> (Connection, Instant) {
    let start = Instant::now();
    let mut c = Connection::new(role, Limits::default());
    c.set_timeouts(timeouts, start);
    (c, start)
}

/// The opcodes and payloads of the frames `role` wrote, checked for its masking.
fn written(role: Role, out: &mut BytesMut) -> Vec<(u8, Vec<u8>)> {
    let frames = frames_written_by(role, out)
        .into_iter()
        .map(|f| (f.opcode, f.payload))
        .collect();
    out.clear();
    frames
}

/// The peer's close frame reaching `c`, with `code`.
fn receive_close(c: &mut Connection, code: u16, out: &mut BytesMut) {
    let mut input = BytesMut::from(&frame_to(c.role(), true, 0x8, &close_payload(code, b""))[..]);
    let received = c.receive(&mut input, out).unwrap();
    assert!(matches!(received, Some(Message::Close(_))), "{received:?}");
}

#[test]
fn without_timeouts_nothing_is_ever_due() {
    for role in ROLES {
        let mut c = Connection::new(role, Limits::default());
        let mut out = BytesMut::new();
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.timeouts(), None);
        c.close(None, &mut out).unwrap();
        out.clear();
        assert_eq!(
            c.poll_timeout(),
            None,
            "{role:?}: no close deadline unless asked"
        );
        c.handle_timeout(Instant::now() + secs(3600), &mut out)
            .unwrap();
        assert!(out.is_empty());
        assert!(!c.close_timed_out());
        assert_eq!(c.state(), ConnectionState::CloseSent);
    }
}

#[test]
fn a_ping_goes_out_once_per_quiet_interval() {
    for role in ROLES {
        let (mut c, start) = timed(role, Timeouts::default().ping_interval(Some(secs(20))));
        let mut out = BytesMut::new();
        assert_eq!(c.poll_timeout(), Some(start + secs(20)));

        // Woken early (a timer shared with other work): nothing is sent.
        c.handle_timeout(start + secs(19), &mut out).unwrap();
        assert!(out.is_empty(), "{role:?}: a ping before its time");

        c.handle_timeout(start + secs(20), &mut out).unwrap();
        assert_eq!(written(role, &mut out), vec![(0x9, vec![])], "{role:?}");
        // One ping per silence: the next waits for a read.
        assert_eq!(c.poll_timeout(), None);
        c.handle_timeout(start + secs(100), &mut out).unwrap();
        assert!(out.is_empty(), "{role:?}: a second ping without a read");

        c.handle_read(start + secs(101));
        assert_eq!(c.poll_timeout(), Some(start + secs(121)));
        c.handle_timeout(start + secs(121), &mut out).unwrap();
        assert_eq!(written(role, &mut out), vec![(0x9, vec![])], "{role:?}");
    }
}

#[test]
fn reads_put_the_ping_off() {
    let (mut c, start) = timed(
        Role::Server,
        Timeouts::default().ping_interval(Some(secs(20))),
    );
    let mut out = BytesMut::new();
    for t in [10, 25, 40] {
        c.handle_read(start + secs(t));
        assert_eq!(c.poll_timeout(), Some(start + secs(t + 20)));
        c.handle_timeout(start + secs(t + 19), &mut out).unwrap();
        assert!(out.is_empty());
    }
}

#[test]
fn a_silent_peer_meets_the_idle_timeout_with_1001() {
    for role in ROLES {
        let timeouts = Timeouts::default()
            .ping_interval(Some(secs(20)))
            .idle_timeout(Some(secs(60)))
            .close_timeout(Some(secs(5)));
        let (mut c, start) = timed(role, timeouts);
        let mut out = BytesMut::new();
        c.handle_timeout(start + secs(20), &mut out).unwrap();
        assert_eq!(written(role, &mut out), vec![(0x9, vec![])]);
        assert_eq!(c.poll_timeout(), Some(start + secs(60)));

        c.handle_timeout(start + secs(59), &mut out).unwrap();
        assert!(out.is_empty(), "{role:?}: closed before the idle timeout");
        let err = c.handle_timeout(start + secs(60), &mut out).unwrap_err();
        assert_eq!(err, Error::IdleTimeout);
        assert_eq!(
            written(role, &mut out),
            vec![(0x8, close_payload(1001, b"idle timeout"))],
            "{role:?}"
        );
        assert_eq!(c.state(), ConnectionState::CloseSent);
        // The close handshake is bounded from here.
        assert_eq!(c.poll_timeout(), Some(start + secs(65)));
    }
}

#[test]
fn a_read_puts_the_idle_timeout_off() {
    let (mut c, start) = timed(
        Role::Server,
        Timeouts::default().idle_timeout(Some(secs(60))),
    );
    let mut out = BytesMut::new();
    c.handle_read(start + secs(59));
    assert_eq!(c.poll_timeout(), Some(start + secs(119)));
    c.handle_timeout(start + secs(60), &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(c.state(), ConnectionState::Open);
}

#[test]
fn our_close_is_bounded_and_a_silent_peer_times_out() {
    for role in ROLES {
        let (mut c, start) = timed(role, Timeouts::default().close_timeout(Some(secs(5))));
        let mut out = BytesMut::new();
        assert_eq!(c.poll_timeout(), None, "an open connection has no deadline");
        c.close(None, &mut out).unwrap();
        out.clear();
        // `close` is given no time: the deadline asks for an instant at once.
        assert_eq!(c.poll_timeout(), Some(start));
        let t = start + secs(30);
        c.handle_timeout(t, &mut out).unwrap();
        assert_eq!(c.poll_timeout(), Some(t + secs(5)));
        assert!(!c.close_timed_out());

        c.handle_timeout(t + secs(4), &mut out).unwrap();
        assert_eq!(c.state(), ConnectionState::CloseSent);
        let err = c.handle_timeout(t + secs(5), &mut out).unwrap_err();
        assert_eq!(err, Error::CloseTimeout);
        assert!(
            out.is_empty(),
            "{role:?}: nothing is sent when the peer gave up"
        );
        assert_eq!(c.state(), ConnectionState::Closed);
        assert!(c.close_timed_out());
        assert_eq!(c.poll_timeout(), None);
    }
}

#[test]
fn writes_that_make_progress_put_the_close_deadline_off() {
    let (mut c, start) = timed(
        Role::Server,
        Timeouts::default().close_timeout(Some(secs(5))),
    );
    let mut out = BytesMut::new();
    // Open: writes do not move anything.
    c.handle_write(start + secs(1));
    assert_eq!(c.poll_timeout(), None);

    c.close(None, &mut out).unwrap();
    c.handle_write(start + secs(2));
    assert_eq!(c.poll_timeout(), Some(start + secs(7)));
    c.handle_write(start + secs(6));
    assert_eq!(c.poll_timeout(), Some(start + secs(11)));
    // Reads do not: a peer that sends and never reads still meets the deadline.
    c.handle_read(start + secs(10));
    assert_eq!(c.poll_timeout(), Some(start + secs(11)));
    assert_eq!(
        c.handle_timeout(start + secs(11), &mut out),
        Err(Error::CloseTimeout)
    );
}

#[test]
fn after_a_clean_close_the_deadline_only_ends_the_wait_for_the_transport() {
    for role in ROLES {
        let (mut c, start) = timed(role, Timeouts::default().close_timeout(Some(secs(5))));
        let mut out = BytesMut::new();
        c.handle_read(start + secs(3));
        receive_close(&mut c, 1000, &mut out);
        assert_eq!(c.state(), ConnectionState::Closed);
        assert_eq!(
            written(role, &mut out),
            vec![(0x8, close_payload(1000, b""))]
        );
        assert_eq!(c.poll_timeout(), Some(start + secs(3)), "due at once");
        c.handle_timeout(start + secs(4), &mut out).unwrap();
        assert_eq!(c.poll_timeout(), Some(start + secs(9)));
        // The handshake completed: running out of time is no error.
        c.handle_timeout(start + secs(9), &mut out).unwrap();
        assert!(c.close_timed_out());
        assert!(out.is_empty());
        assert_eq!(c.poll_timeout(), None);
    }
}

#[test]
fn a_protocol_failure_starts_the_close_deadline() {
    let (mut c, start) = timed(
        Role::Server,
        Timeouts::default().close_timeout(Some(secs(5))),
    );
    let mut out = BytesMut::new();
    // An unmasked client frame.
    let mut input = BytesMut::from(&[0x81, 0x00][..]);
    assert!(c.receive(&mut input, &mut out).is_err());
    c.handle_timeout(start + secs(1), &mut out).unwrap();
    assert_eq!(c.poll_timeout(), Some(start + secs(6)));
    c.handle_timeout(start + secs(6), &mut out).unwrap();
    assert!(c.close_timed_out());
}

#[test]
fn timeouts_set_after_closing_began_count_from_then() {
    let mut c = Connection::new(Role::Client, Limits::default());
    let mut out = BytesMut::new();
    c.close(None, &mut out).unwrap();
    let start = Instant::now();
    c.set_timeouts(
        Timeouts::default()
            .close_timeout(Some(secs(5)))
            .ping_interval(Some(secs(1))),
        start,
    );
    // No keepalive once closing: only the deadline.
    assert_eq!(c.poll_timeout(), Some(start + secs(5)));
}

#[test]
fn the_peer_answering_in_time_is_no_timeout() {
    let (mut c, start) = timed(
        Role::Client,
        Timeouts::default().close_timeout(Some(secs(5))),
    );
    let mut out = BytesMut::new();
    c.close(None, &mut out).unwrap();
    c.handle_timeout(start, &mut out).unwrap();
    out.clear();
    receive_close(&mut c, 1000, &mut out);
    assert!(out.is_empty(), "no echo after our own close");
    // The deadline still bounds the wait for the server to close the TCP connection.
    assert_eq!(c.poll_timeout(), Some(start + secs(5)));
    c.handle_timeout(start + secs(5), &mut out).unwrap();
    assert!(c.close_timed_out());
}

#[test]
fn a_close_timeout_beyond_the_clock_never_fires() {
    let (mut c, start) = timed(
        Role::Server,
        Timeouts::default().close_timeout(Some(Duration::MAX)),
    );
    let mut out = BytesMut::new();
    c.close(None, &mut out).unwrap();
    c.handle_timeout(start, &mut out).unwrap();
    assert_eq!(c.poll_timeout(), None);
    assert!(!c.close_timed_out());
}

#[derive(Clone, Debug)]
enum Event {
    Read,
    Write,
    Timeout,
    Close,
    PeerClose,
}

fn event() -> impl Strategy<Value = (Event, u64)> {
    let kind = prop_oneof![
        Just(Event::Read),
        Just(Event::Write),
        Just(Event::Timeout),
        Just(Event::Close),
        Just(Event::PeerClose),
    ];
    (kind, 0u64..40)
}

fn some_secs(max: u64) -> impl Strategy<Value = Option<Duration>> {
    proptest::option::of((1..max).prop_map(secs))
}

proptest! {
    /// Whatever happens in whatever order: a driver that sleeps until `poll_timeout` and
    /// then calls `handle_timeout` is never asked to come back at once for nothing (no
    /// busy loop), no timer fires before it is due, and the connection keeps its state
    /// rules.
    #[test]
    fn the_driver_loop_always_moves_on(
        role in prop_oneof![Just(Role::Server), Just(Role::Client)],
        ping in some_secs(30),
        idle in some_secs(60),
        close in some_secs(10),
        events in proptest::collection::vec(event(), 1..40),
    ) {
        let timeouts = Timeouts::default().ping_interval(ping).idle_timeout(idle).close_timeout(close);
        let (mut c, start) = timed(role, timeouts);
        let mut now = start;
        let mut out = BytesMut::new();
        for (event, dt) in events {
            now += secs(dt);
            match event {
                Event::Read => c.handle_read(now),
                Event::Write => c.handle_write(now),
                Event::Close => { let _ = c.close(None, &mut out); }
                Event::PeerClose if c.state() != ConnectionState::Closed => {
                    let bytes = frame_to(c.role(), true, 0x8, &close_payload(1000, b""));
                    let mut input = BytesMut::from(&bytes[..]);
                    c.receive(&mut input, &mut out).unwrap();
                }
                Event::PeerClose => {}
                Event::Timeout => {
                    let before = c.poll_timeout();
                    let state = c.state();
                    let result = c.handle_timeout(now, &mut out);
                    if before.is_none_or(|at| at > now) {
                        prop_assert_eq!(&result, &Ok(()), "fired before it was due");
                        prop_assert_eq!(c.state(), state);
                    }
                    match result {
                        Ok(()) => prop_assert!(
                            c.poll_timeout().is_none_or(|at| at > now),
                            "due again at once: {:?} at {:?}", c.poll_timeout(), now
                        ),
                        Err(Error::IdleTimeout) => {
                            prop_assert_eq!(state, ConnectionState::Open);
                            prop_assert_eq!(c.state(), ConnectionState::CloseSent);
                        }
                        Err(Error::CloseTimeout) => {
                            prop_assert_eq!(state, ConnectionState::CloseSent);
                            prop_assert_eq!(c.state(), ConnectionState::Closed);
                            prop_assert!(c.close_timed_out());
                        }
                        Err(other) => prop_assert!(false, "unexpected {other:?}"),
                    }
                }
            }
            let frames = frames_written_by(role, &out);
            if c.state() == ConnectionState::Open {
                prop_assert!(frames.iter().all(|f| f.opcode == 0x9), "{:?}", frames);
            }
            out.clear();
        }
    }
}
