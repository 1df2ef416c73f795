//! Hostile peers against a running `duplex echo`: each test sends what a careless or
//! malicious client would, by hand over raw TCP (the library client refuses to send most
//! of it), and asserts the defined outcome (an HTTP status, a close code, the end of the
//! connection) and that the server's memory stays bounded, from `/proc/PID/status`.
//!
//! Memory is the growth of the server's peak resident size (VmHWM at the end minus VmRSS
//! at the start), so a spike that was freed again still counts. Each bound says why.

mod common;
#[path = "common/wire.rs"]
mod wire;

use common::Echo;
use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wire::*;

/// `duplex echo` upgrades on any path.
const UPGRADE_PATH: &str = "/";

// ---------------------------------------------------------------------------------------
// The opening handshake
// ---------------------------------------------------------------------------------------

/// Clients that send their request one byte per second are answered 408 and
/// disconnected at the handshake timeout (2 s here), not before; 50 of them at once hold
/// a few kilobytes each.
#[test]
fn slowloris_handshakes_get_408_at_the_handshake_timeout() {
    const TIMEOUT: Duration = Duration::from_secs(2);
    let echo = Echo::start_with(&["--handshake-timeout", "2"], "ws");
    let memory = Memory::start(&echo);
    let loris: Vec<_> = (0..50)
        .map(|_| {
            // From before the connection, so the server's clock cannot start earlier.
            let start = Instant::now();
            let mut s = tcp(&echo);
            std::thread::spawn(move || {
                let request = request(&[]);
                let mut answer = Vec::new();
                for &byte in request.as_bytes() {
                    // The server's answer is awaited between bytes: the read timeout is
                    // the one-second pacing.
                    let _ = s.write_all(&[byte]);
                    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                    let mut buf = [0u8; 1024];
                    match s.read(&mut buf) {
                        Ok(0) => return (start.elapsed(), answer),
                        Ok(n) => {
                            answer.extend_from_slice(&buf[..n]);
                            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                            answer.extend(read_to_end(&mut s).bytes());
                            return (start.elapsed(), answer);
                        }
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(e) => panic!("slowloris connection failed: {e}"),
                    }
                }
                panic!("the whole request was sent: the server never timed out");
            })
        })
        .collect();
    for handle in loris {
        let (elapsed, answer) = handle.join().unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert_status(&answer, "408 Request Timeout", "slowloris");
        assert!(
            elapsed >= TIMEOUT - Duration::from_millis(50),
            "answered after {elapsed:?}, before the timeout"
        );
        assert!(
            elapsed < TIMEOUT + Duration::from_secs(3),
            "answered only after {elapsed:?}"
        );
    }
    // 50 pending handshakes: each a buffer of 1 KiB and a task.
    memory.assert_peak_growth_below(4 * MIB, "50 slowloris handshakes");
    assert_echoes(&mut open(&echo), "still serving");
}

/// A header block over 8 KiB or over 64 header lines is answered 431; exactly at the
/// limits the connection opens. A client that streams header lines without end gets its
/// 431 after 8 KiB, whatever it sends next.
#[test]
fn header_floods_are_answered_431() {
    let echo = Echo::start();
    let memory = Memory::start(&echo);

    // Header lines: 5 in a valid request, so 59 more make 64.
    let filler: Vec<String> = (0..60).map(|i| format!("X-Filler-{i}: {i}")).collect();
    let filler: Vec<&str> = filler.iter().map(String::as_str).collect();
    let mut s = tcp(&echo);
    open_with(&mut s, &filler[..59]);
    assert_echoes(&mut s, "64 header lines");
    let answer = answer_to(&echo, request(&filler).as_bytes());
    assert_status(&answer, "431 Request Header Fields Too Large", "65 lines");

    // Bytes: a request head of exactly 8,192 bytes opens, one more byte is refused.
    let base = request(&["X-Pad: "]).len();
    let pad = "a".repeat(8192 - base);
    let mut s = tcp(&echo);
    open_with(&mut s, &[&format!("X-Pad: {pad}")]);
    assert_echoes(&mut s, "8 KiB head");
    let answer = answer_to(&echo, request(&[&format!("X-Pad: {pad}a")]).as_bytes());
    assert_status(&answer, "431 Request Header Fields Too Large", "8 KiB + 1");

    // Without end: 1 MiB of header lines, written while the answer is read.
    let mut s = tcp(&echo);
    let mut writer = s.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        let line = format!("X-Flood: {}\r\n", "f".repeat(100));
        let _ = writer.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for _ in 0..(1 << 20) / line.len() {
            if writer.write_all(line.as_bytes()).is_err() {
                break; // the server answered and closed
            }
        }
        let _ = writer.shutdown(std::net::Shutdown::Write);
    });
    let answer = read_to_end(&mut s);
    assert_status(
        &answer,
        "431 Request Header Fields Too Large",
        "endless headers",
    );
    flood.join().unwrap();

    // The request buffer stops at the limit: 8 KiB and a read.
    memory.assert_peak_growth_below(4 * MIB, "header floods");
}

/// A request without `Host` or `Sec-WebSocket-Key`, or an upgrade in HTTP/1.0, is answered
/// 400 and the connection closed.
#[test]
fn incomplete_upgrade_requests_are_answered_400() {
    let echo = Echo::start();
    let memory = Memory::start(&echo);
    let key = key_header();
    let cases = [
        (
            "no Host",
            request_with(&[UPGRADE, CONNECTION, &key, VERSION]),
        ),
        (
            "no Sec-WebSocket-Key",
            request_with(&[HOST, UPGRADE, CONNECTION, VERSION]),
        ),
        ("HTTP/1.0", request(&[]).replacen("HTTP/1.1", "HTTP/1.0", 1)),
    ];
    for (what, request) in cases {
        let answer = answer_to(&echo, request.as_bytes());
        assert_status(&answer, "400 Bad Request", what);
    }
    memory.assert_peak_growth_below(4 * MIB, "incomplete upgrade requests");
}

/// Two `Host` headers: which one names the server is ambiguous (RFC 9112 section 3.2:
/// "a server MUST respond with a 400 to any HTTP/1.1 request that contains more than
/// one Host header"). Needs the duplicate-header check in duplex-proto.
#[test]
fn two_host_headers_are_answered_400() {
    let echo = Echo::start();
    let key = key_header();
    let request = request_with(&[
        HOST,
        "Host: other.example",
        UPGRADE,
        CONNECTION,
        &key,
        VERSION,
    ]);
    let answer = answer_to(&echo, request.as_bytes());
    assert_status(&answer, "400 Bad Request", "two Host headers");
}

/// Two `Sec-WebSocket-Key` headers: which one to answer is ambiguous (RFC 6455 section
/// 11.3.1: the header must not appear more than once in a request). Needs the
/// duplicate-header check in duplex-proto.
#[test]
fn two_keys_are_answered_400() {
    let echo = Echo::start();
    let key = key_header();
    let request = request_with(&[
        HOST,
        UPGRADE,
        CONNECTION,
        &key,
        "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==",
        VERSION,
    ]);
    let answer = answer_to(&echo, request.as_bytes());
    assert_status(&answer, "400 Bad Request", "two keys");
}

// ---------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------

/// Frames RFC 6455 forbids fail the connection with 1002 (1007 for invalid UTF-8), then
/// the server ends the TCP connection.
#[test]
fn frames_that_break_the_protocol_are_closed_with_1002() {
    let echo = Echo::start();
    let memory = Memory::start(&echo);
    let cases = protocol_violations();
    for (what, bytes, code) in cases {
        let mut s = open(&echo);
        s.write_all(&bytes).unwrap();
        expect_close(&mut s, code, what);
    }
    memory.assert_peak_growth_below(4 * MIB, "protocol violations");
    assert_echoes(&mut open(&echo), "still serving");
}

/// A message of exactly 262,144 one-byte fragments (`max_fragments`) is echoed; a client
/// that goes on to a million is closed with 1009 at fragment 262,145, holding no more
/// than the message so far (256 KiB) and its read buffer.
#[test]
fn a_million_one_byte_fragments_are_closed_with_1009() {
    const LIMIT: usize = 262_144;
    let echo = Echo::start();
    let memory = Memory::start(&echo);
    // One-byte continuation frames, 10,000 per write.
    let batch: Arc<Vec<u8>> = Arc::new((0..10_000).flat_map(|_| frame(0x00, b"c")).collect());
    // Sends a binary message of `frames` one-byte frames, unless stopped; returns the
    // frames sent.
    fn send(s: &mut TcpStream, frames: usize, stop: &AtomicBool, batch: &[u8]) -> usize {
        let mut sent = 0;
        let _ = s.write_all(&frame(0x02, b"c"));
        sent += 1;
        while sent + 10_000 < frames {
            if stop.load(Ordering::Relaxed) || s.write_all(batch).is_err() {
                return sent;
            }
            sent += 10_000;
        }
        let rest = frames - sent - 1;
        let _ = s.write_all(&batch[..rest * 7]);
        let _ = s.write_all(&frame(0x80, b"c"));
        frames
    }

    let mut s = open(&echo);
    let mut writer = s.try_clone().unwrap();
    let frames = batch.clone();
    let at_limit =
        std::thread::spawn(move || send(&mut writer, LIMIT, &AtomicBool::new(false), &frames));
    let (b0, payload) = read_frame(&mut s).unwrap();
    assert_eq!(
        (b0, payload.len()),
        (0x82, LIMIT),
        "the echo of 262,144 fragments"
    );
    assert!(payload.iter().all(|&b| b == b'c'));
    at_limit.join().unwrap();

    let mut s = open(&echo);
    let mut writer = s.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_writing = stop.clone();
    let million = std::thread::spawn(move || send(&mut writer, 1_000_000, &stop_writing, &batch));
    expect_close(&mut s, 1009, "a million fragments");
    stop.store(true, Ordering::Relaxed);
    let sent = million.join().unwrap();
    assert!(
        sent > LIMIT,
        "closed after {sent} fragments, within the limit"
    );
    memory.assert_peak_growth_below(8 * MIB, "a million one-byte fragments");
    assert_echoes(&mut open(&echo), "still serving");
}

/// `duplex echo` waits for room in its 1 MiB write queue before it reads the next
/// message, pongs included: a client that floods pings and never reads stalls on its
/// own writes once the queue and the socket buffers are full, and the server holds the
/// queue's megabyte. When the client reads again, the pongs and echoes flow.
#[test]
fn a_ping_flood_from_a_client_that_never_reads_stalls_on_backpressure() {
    let echo = Echo::start();
    let memory = Memory::start(&echo);
    let mut s = tcp_small_receive_buffer(&echo);
    open_with(&mut s, &[]);
    let cap = 256 * MIB as usize;
    let (sent, rest) = flood_pings(&mut s, cap, Duration::from_secs(2));
    assert!(
        sent < cap,
        "the server read {sent} bytes of pings without a reader"
    );
    eprintln!("ping flood against echo stalled after {} MiB", sent >> 20);
    // The write queue (1 MiB) and a read buffer (up to 256 KiB).
    memory.assert_peak_growth_below(8 * MIB, "ping flood, echo");
    // Reading again: the rest of the interrupted ping, a last ping, and its pong comes.
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut reader = s.try_clone().unwrap();
    let pongs = std::thread::spawn(move || read_pongs_until(&mut reader, b"last"));
    s.write_all(&rest).unwrap();
    s.write_all(&frame(0x89, b"last")).unwrap();
    let pongs = pongs.join().unwrap();
    eprintln!("{pongs} pongs read after the flood");
    assert_echoes(&mut s, "after the flood");
}

/// `duplex echo --broadcast` reads its clients whatever their write queue holds, so
/// relaying goes on; a ping flood from a client that never reads must then cost one
/// pong held back, not a queue of them (RFC 6455 section 5.5.3 lets a pong answer only the
/// latest ping). The client's writes never stall, and once it reads, the last ping's
/// pong comes.
#[test]
fn a_ping_flood_on_the_relay_from_a_client_that_never_reads_holds_one_pong() {
    let relay = Echo::start_with(&["--broadcast"], "ws");
    let memory = Memory::start(&relay);
    let mut s = tcp_small_receive_buffer(&relay);
    open_with(&mut s, &[]);
    let cap = 32 * MIB as usize;
    let (sent, rest) = flood_pings(&mut s, cap, Duration::from_secs(10));
    assert!(
        sent >= cap,
        "the relay stopped reading its client after {sent} B"
    );
    // Pongs beyond the 1 MiB write queue are not kept: the queue and a read buffer.
    memory.assert_peak_growth_below(8 * MIB, "ping flood, relay");
    assert_pongs_coalesced(&mut s, &rest, cap);
}

/// A 64 MiB message (the default `max_message_size`, in four 16 MiB frames) whose echo
/// the client never reads: the server holds the message and nothing more, and serves
/// other clients meanwhile.
#[test]
fn a_64_mib_message_whose_echo_is_never_read_holds_its_size_only() {
    const FRAME: usize = 16 << 20;
    let echo = Echo::start();
    let memory = Memory::start(&echo);
    let mut s = tcp_small_receive_buffer(&echo);
    open_with(&mut s, &[]);
    let chunk = vec![0x5Au8; FRAME];
    for i in 0..4u8 {
        let b0 = if i == 0 { 0x02 } else { 0x00 } | if i == 3 { 0x80 } else { 0 };
        // A zero masking key is a valid key, and spares masking 64 MiB here.
        s.write_all(&frame_header(b0, FRAME as u64, [0; 4]))
            .unwrap();
        s.write_all(&chunk).unwrap();
    }
    // The echo has started: its header is in our receive buffer (peeked, not read).
    let mut head = [0u8; 10];
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.peek(&mut head).unwrap() < head.len() {
        assert!(Instant::now() < deadline, "no echo within 30 s");
    }
    assert_eq!(head[..2], [0x82, 127]);
    assert_eq!(u64::from_be_bytes(head[2..].try_into().unwrap()), 64 * MIB);
    // Another client is served while the echo is stuck.
    let mut other = open(&echo);
    assert_echoes(&mut other, "served meanwhile");
    // The message (64 MiB), the read buffer holding a 16 MiB frame, and that buffer's
    // copy while it grows (16 MiB), with 16 MiB to spare.
    memory.assert_peak_growth_below(112 * MIB, "64 MiB message never read");
    drop(s);
    assert_echoes(&mut other, "served after");
}

/// A small compressed frame that inflates past `max_message_size` is closed with 1009
/// when the limit is reached: the server inflates no more than the limit.
fn deflate_bomb(extra: &[&str], inflated: usize, bound: u64, what: &str) {
    let echo = Echo::start_with(extra, "ws");
    let memory = Memory::start(&echo);
    let bomb = deflate_zeros(inflated);
    eprintln!(
        "{what}: {} KiB inflating to {} MiB",
        bomb.len() >> 10,
        inflated >> 20
    );
    let mut s = tcp(&echo);
    let head = open_with(&mut s, &["Sec-WebSocket-Extensions: permessage-deflate"]);
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-extensions: permessage-deflate"),
        "{head}"
    );
    // FIN, RSV1 (compressed), binary.
    s.write_all(&frame(0xC2, &bomb)).unwrap();
    expect_close(&mut s, 1009, what);
    memory.assert_peak_growth_below(bound, what);
    assert_echoes(&mut open(&echo), "still serving");
}

#[test]
fn a_deflate_bomb_is_closed_with_1009_at_a_1_mib_limit() {
    // The limit (1 MiB) and the zlib state.
    deflate_bomb(
        &["--max-message", "1048576"],
        16 << 20,
        8 * MIB,
        "deflate bomb, 1 MiB limit",
    );
}

#[test]
fn a_deflate_bomb_is_closed_with_1009_at_the_default_64_mib_limit() {
    // The limit (64 MiB) and the zlib state: not the 80 MiB the bomb holds.
    deflate_bomb(&[], 80 << 20, 80 * MIB, "deflate bomb, 64 MiB limit");
}

// ---------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------

/// Waits for a log line containing `needle`; returns it.
fn wait_for_log(echo: &Echo, needle: &str, within: Duration, seen: &mut Vec<String>) -> String {
    let log = echo.log.as_ref().unwrap();
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            Err(_) => panic!("no log line with {needle:?} within {within:?}: {seen:#?}"),
        }
    }
}

/// A connection flood past the server's open-files limit: accepting fails with EMFILE,
/// which the server logs once and retries every 100 ms without spinning, while the
/// connections it has keep echoing; when some close, the waiting ones are accepted.
#[test]
fn a_connection_flood_past_the_file_limit_keeps_the_server_serving() {
    const MAX_FILES: u32 = 128;
    const WAITING: usize = 8;
    let echo = Echo::start_logged(&[], "warn", Some(MAX_FILES));
    let pid = echo.pid();
    let memory = Memory::start(&echo);
    let mut log = Vec::new();
    // Every descriptor the server has left becomes an open WebSocket.
    let free = MAX_FILES as usize - open_files(&pid, MAX_FILES);
    let mut open: Vec<TcpStream> = (0..free).map(|_| self::open(&echo)).collect();
    assert_eq!(open_files(&pid, MAX_FILES), MAX_FILES as usize);
    // More: the kernel completes their TCP handshakes, the server cannot accept them.
    let mut waiting: Vec<TcpStream> = (0..WAITING)
        .map(|_| {
            let mut s = tcp(&echo);
            s.write_all(request(&[]).as_bytes()).unwrap();
            s
        })
        .collect();
    let line = wait_for_log(&echo, "accept failed", Duration::from_secs(10), &mut log);
    assert!(line.contains("Too many open files"), "{line}");
    assert_idles_out_of_descriptors(&pid);
    // The open connections are served meanwhile; the waiting ones get no answer yet.
    for (i, s) in open.iter_mut().enumerate() {
        assert_echoes(s, &format!("open {i}"));
    }
    assert_unanswered(&mut waiting, &pid, MAX_FILES);
    // Closing some frees descriptors: the waiting connections are accepted and opened.
    open.truncate(open.len() - WAITING);
    for s in &mut waiting {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = read_head(s);
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        assert_echoes(s, "accepted late");
    }
    wait_for_log(
        &echo,
        "accepting connections again",
        Duration::from_secs(10),
        &mut log,
    );
    let failures = log.iter().filter(|l| l.contains("accept failed")).count();
    assert_eq!(failures, 1, "one log line per episode (10 s): {log:#?}");
    for (i, s) in open.iter_mut().enumerate() {
        assert_echoes(s, &format!("still open {i}"));
    }
    // About a kilobyte per connection.
    memory.assert_peak_growth_below(8 * MIB, "connection flood to the file limit");
}

/// The time of day of a log line (`2026-01-02T03:04:05.678901Z  INFO ...`), in seconds.
fn log_time(line: &str) -> f64 {
    let time = line.split(['T', 'Z']).nth(1).unwrap();
    let [h, m, s] = [0, 1, 2].map(|i| time.split(':').nth(i).unwrap().parse::<f64>().unwrap());
    (h * 60.0 + m) * 60.0 + s
}

/// The state of the server's side of a TCP connection (local port `server`, remote port
/// `client`) in `/proc/net/tcp`, as its hex code (01 established, 04 FIN-WAIT-1, ...),
/// or `None` once it is gone.
fn server_socket_state(server: u16, client: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let port = |a: &str| u16::from_str_radix(a.rsplit_once(':').unwrap().1, 16).unwrap();
        (port(f[1]) == server && port(f[2]) == client).then(|| f[3].to_owned())
    })
}

/// `duplex echo --broadcast`: a subscriber that never reads is closed with 1008 once it
/// falls 4,096 messages behind, and its connection ends within the close timeout (5 s)
/// even though it never reads the close frame; the others receive every message, in
/// order, meanwhile.
#[test]
fn a_relay_subscriber_that_never_reads_is_closed_with_1008_and_the_others_get_everything() {
    const MESSAGES: u32 = 10_000;
    const ROUND: u32 = 500;
    let relay = Echo::start_logged(&["--broadcast"], "warn,duplex::echo::relay=info", None);
    let memory = Memory::start(&relay);
    let mut log = Vec::new();
    let mut stalled = tcp_small_receive_buffer(&relay);
    open_with(&mut stalled, &[]);
    let server_port: u16 = addr(&relay).rsplit_once(':').unwrap().1.parse().unwrap();
    let stalled_port = stalled.local_addr().unwrap().port();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use duplex::Message;
        let connect = || relay.plain_client();
        let mut publisher = connect().await;
        let mut readers = [connect().await, connect().await];
        // Rounds the readers read before the next, so only the stalled one falls behind.
        let publish = async {
            for round in 0..MESSAGES / ROUND {
                for seq in round * ROUND..(round + 1) * ROUND {
                    let mut payload = vec![0u8; 4096];
                    payload[..4].copy_from_slice(&seq.to_be_bytes());
                    publisher.feed(Message::binary(payload)).await.unwrap();
                }
                publisher.flush().await.unwrap();
                for reader in &mut readers {
                    for seq in round * ROUND..(round + 1) * ROUND {
                        match reader.recv().await {
                            Some(Ok(Message::Binary(b))) => {
                                assert_eq!(b[..4], seq.to_be_bytes(), "in order, none lost")
                            }
                            other => panic!("message {seq}: {other:?}"),
                        }
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), publish)
            .await
            .expect("the readers got everything within a minute");
    });
    let cut = wait_for_log(&relay, "fell behind", Duration::from_secs(10), &mut log);
    assert!(cut.contains("over 4096 messages behind"), "{cut}");
    // The close frame waits behind what the client never read: the close timeout (5 s)
    // ends the connection.
    let ended = wait_for_log(
        &relay,
        &format!("127.0.0.1:{stalled_port}"),
        Duration::from_secs(10),
        &mut log,
    );
    assert!(ended.contains("timed out"), "{ended}");
    let waited = log_time(&ended) - log_time(&cut);
    assert!(
        (4.9..7.0).contains(&waited),
        "ended {waited} s after the cut"
    );
    let state = server_socket_state(server_port, stalled_port);
    assert_ne!(
        state.as_deref(),
        Some("01"),
        "the server's socket is still established"
    );
    // What reached the client is the room's messages in order, then the end.
    let mut reader = BufReader::new(&mut stalled);
    let mut got = 0u32;
    while let Ok((b0, payload)) = read_frame(&mut reader) {
        match b0 {
            0x82 => {
                assert_eq!(payload[..4], got.to_be_bytes());
                got += 1;
            }
            0x88 => assert_eq!(payload[..2], 1008u16.to_be_bytes()),
            other => panic!("unexpected frame {other:#x}"),
        }
    }
    assert!(
        got < MESSAGES - 4096,
        "{got} messages reached the stalled client"
    );
    eprintln!("the stalled subscriber got {got} messages before it was cut off");
    // The stalled client's 1 MiB queue and 4,096 waiting frames of 4 KiB (shared).
    memory.assert_peak_growth_below(48 * MIB, "relay with a subscriber that never reads");
}
