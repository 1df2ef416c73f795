//! The hostile peers of `hostile.rs`, against `duplex serve` (whose handshake goes through
//! hyper, and whose messages are hub commands), plus the hub's own: malformed commands.
//! Each test asserts the defined outcome and that the server's peak memory grew by less
//! than a stated bound (from `/proc/PID/status`), then that the hub still answers.

mod common;
#[path = "common/serve.rs"]
mod serve;
#[path = "common/wire.rs"]
mod wire;

// `serve.rs` starts `crate::BIN`.
use common::BIN;
use serve::Serve;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};
use wire::*;

/// Where the hub upgrades.
const UPGRADE_PATH: &str = "/connection/websocket";

/// The hub's `max_message_size` default.
const MAX_MESSAGE: usize = 65_536;

impl Peer for Serve {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

/// `duplex serve` in development mode (anonymous clients may connect) on the memory
/// engine, in a fresh directory.
fn hub(max_files: Option<u32>) -> (Serve, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start_limited(dir.path(), &["--engine", "memory"], max_files);
    (serve, dir)
}

/// Reads text frames until the reply with `"id":id`; skips the hub's pings and pongs.
fn reply(s: &mut TcpStream, id: u32) -> String {
    let want = format!("\"id\":{id},");
    loop {
        let (b0, payload) = read_frame(s).unwrap();
        let text = String::from_utf8(payload).unwrap();
        match b0 {
            0x81 if text.contains(&want) => return text,
            0x81 | 0x8A | 0x89 => continue,
            other => panic!("frame {other:#x} instead of reply {id}: {text}"),
        }
    }
}

/// A connected hub client over a raw socket.
fn connected(peer: &Serve) -> TcpStream {
    let mut s = open(peer);
    s.write_all(&frame(0x81, br#"{"id":1,"connect":{"name":"raw"}}"#))
        .unwrap();
    let answer = reply(&mut s, 1);
    assert!(answer.contains("\"connect\""), "{answer}");
    s
}

/// Asserts that a connected client's ping command is answered.
fn assert_answers(s: &mut TcpStream, id: u32) {
    s.write_all(&frame(
        0x81,
        format!(r#"{{"id":{id},"ping":{{}}}}"#).as_bytes(),
    ))
    .unwrap();
    let answer = reply(s, id);
    assert!(answer.contains("\"ping\""), "{answer}");
}

#[test]
fn slowloris_handshakes_are_ended_at_the_header_timeout() {
    let (hub, _dir) = hub(None);
    let memory = Memory::start(&hub);
    let loris: Vec<_> = (0..50)
        .map(|_| {
            let start = Instant::now();
            let mut s = tcp(&hub);
            let request = request(&[]);
            std::thread::spawn(move || {
                for byte in request.as_bytes() {
                    if s.write_all(&[*byte]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
                (start, s)
            })
        })
        .collect();
    for handle in loris {
        let (start, mut s) = handle.join().unwrap();
        let answer = read_to_end(&mut s);
        let after = start.elapsed();
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer:?}"
        );
        // hyper's header read timeout is 10 s; the writer stopped when it was cut off.
        assert!(
            after >= Duration::from_secs(9) && after < Duration::from_secs(20),
            "ended after {after:?}"
        );
    }
    memory.assert_peak_growth_below(4 * MIB, "50 slowloris handshakes, hub");
    assert_answers(&mut connected(&hub), 2);
}

#[test]
fn header_floods_and_incomplete_upgrades_are_refused() {
    let (hub, _dir) = hub(None);
    let memory = Memory::start(&hub);
    let many: Vec<String> = (0..200).map(|i| format!("X-Pad-{i}: x")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let answer = answer_to(&hub, request(&many).as_bytes());
    assert_status(
        &answer,
        "431 Request Header Fields Too Large",
        "200 header lines",
    );
    let endless = format!(
        "GET {UPGRADE_PATH} HTTP/1.1\r\n{}",
        "X-Pad: x\r\n".repeat(100_000)
    );
    let answer = answer_to(&hub, endless.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 431") || answer.is_empty(),
        "1 MiB of header lines: {answer:?}"
    );
    assert!(
        !answer.ends_with("[the connection is still open]"),
        "{answer:?}"
    );
    let key = format!("Sec-WebSocket-Key: {KEY}");
    let cases = [
        (
            "no Sec-WebSocket-Key",
            request_with(&[HOST, UPGRADE, CONNECTION, VERSION]),
        ),
        ("HTTP/1.0", request(&[]).replacen("HTTP/1.1", "HTTP/1.0", 1)),
        (
            "two keys",
            request_with(&[
                HOST,
                UPGRADE,
                CONNECTION,
                &key,
                "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==",
                VERSION,
            ]),
        ),
        (
            "no Host",
            request_with(&[UPGRADE, CONNECTION, &key, VERSION]),
        ),
        (
            "two Host headers",
            request_with(&[
                HOST,
                "Host: other.example",
                UPGRADE,
                CONNECTION,
                &key,
                VERSION,
            ]),
        ),
    ];
    for (what, request) in cases {
        let answer = answer_to(&hub, request.as_bytes());
        // hyper answers an HTTP/1.0 request in HTTP/1.0.
        let status = answer.lines().next().unwrap_or("");
        assert!(
            status.starts_with("HTTP/1.1 400") || status.starts_with("HTTP/1.0 400"),
            "{what}: {answer:?}"
        );
        assert!(
            !answer.ends_with("[the connection is still open]"),
            "{what}: {answer:?}"
        );
    }
    memory.assert_peak_growth_below(4 * MIB, "header floods and bad upgrades, hub");
    assert_answers(&mut connected(&hub), 2);
}

#[test]
fn frames_that_break_the_protocol_are_closed_with_1002() {
    let (hub, _dir) = hub(None);
    let memory = Memory::start(&hub);
    let mut cases = protocol_violations();
    cases.extend([
        // The hub's own: what is not a command ends the connection with 3501.
        (
            "a command that is not JSON",
            frame(0x81, b"{not json"),
            3501,
        ),
        ("a binary message", frame(0x82, b"\x01\x02"), 3501),
        (
            "a command before connect",
            frame(0x81, br#"{"id":1,"ping":{}}"#),
            3501,
        ),
    ]);
    for (what, bytes, code) in cases {
        let mut s = open(&hub);
        s.write_all(&bytes).unwrap();
        expect_close(&mut s, code, what);
    }
    memory.assert_peak_growth_below(4 * MIB, "protocol violations, hub");
    assert_answers(&mut connected(&hub), 2);
}

#[test]
fn oversized_messages_and_endless_fragments_are_closed_with_1009() {
    let (hub, _dir) = hub(None);
    let memory = Memory::start(&hub);
    // A 64 MiB message announced in one frame: refused at its header.
    let mut s = connected(&hub);
    s.write_all(&frame_header(0x81, 64 * MIB, [1, 2, 3, 4]))
        .unwrap();
    expect_close(&mut s, 1009, "a 64 MiB frame");
    // One-byte fragments past max_message_size: closed at the first byte over it.
    let mut s = connected(&hub);
    let mut writer = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let one: Vec<u8> = (0..10_000).flat_map(|_| frame(0x00, b"c")).collect();
        let _ = writer.write_all(&frame(0x01, b"c"));
        let mut sent = 1;
        while sent < 1_000_000 {
            if writer.write_all(&one).is_err() {
                break;
            }
            sent += 10_000;
        }
        sent
    });
    expect_close(&mut s, 1009, "a million one-byte fragments");
    let sent = sender.join().unwrap();
    assert!(sent > MAX_MESSAGE, "closed after {sent} fragments");
    memory.assert_peak_growth_below(8 * MIB, "oversized messages, hub");
    assert_answers(&mut connected(&hub), 2);
}

/// The hub's session reads whatever comes (it must, to see commands), so a client that
/// floods pings and never reads is read on; the library keeps only the latest ping's pong
/// beyond its write queue (RFC 6455 section 5.5.3), so memory stays bounded and, once
/// the client reads, the last ping is answered.
#[test]
fn a_ping_flood_from_a_client_that_never_reads_holds_one_pong() {
    let (hub, _dir) = hub(None);
    let memory = Memory::start(&hub);
    let mut s = tcp_small_receive_buffer(&hub);
    s.write_all(request(&[]).as_bytes()).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 101"));
    s.write_all(&frame(0x81, br#"{"id":1,"connect":{"name":"raw"}}"#))
        .unwrap();
    assert!(reply(&mut s, 1).contains("\"connect\""));
    let cap = 32 * MIB as usize;
    let (sent, rest) = flood_pings(&mut s, cap, Duration::from_secs(10));
    assert!(
        sent >= cap,
        "the hub stopped reading its client after {sent} B"
    );
    memory.assert_peak_growth_below(8 * MIB, "ping flood, hub");
    assert_answers(&mut connected(&hub), 2);
    assert_pongs_coalesced(&mut s, &rest, cap);
}

#[test]
fn a_deflate_bomb_is_closed_with_1009() {
    let (hub, _dir) = hub(None);
    let memory = Memory::start(&hub);
    let bomb = deflate_zeros(16 << 20);
    let mut s = tcp(&hub);
    s.write_all(request(&["Sec-WebSocket-Extensions: permessage-deflate"]).as_bytes())
        .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-extensions: permessage-deflate"),
        "{head}"
    );
    // FIN, RSV1 (compressed), text: 16 MiB of zeros against a 64 KiB limit.
    s.write_all(&frame(0xC1, &bomb)).unwrap();
    expect_close(&mut s, 1009, "a deflate bomb");
    memory.assert_peak_growth_below(4 * MIB, "deflate bomb, hub");
    assert_answers(&mut connected(&hub), 2);
}

#[test]
fn a_connection_flood_past_the_file_limit_keeps_the_hub_serving() {
    const MAX_FILES: u32 = 128;
    const WAITING: usize = 8;
    let (hub, _dir) = hub(Some(MAX_FILES));
    let pid = hub.pid();
    let memory = Memory::start(&hub);
    let free = MAX_FILES as usize - open_files(&pid, MAX_FILES);
    let mut open: Vec<TcpStream> = (0..free).map(|_| connected(&hub)).collect();
    assert_eq!(open_files(&pid, MAX_FILES), MAX_FILES as usize);
    let mut waiting: Vec<TcpStream> = (0..WAITING)
        .map(|_| {
            let mut s = tcp(&hub);
            s.write_all(request(&[]).as_bytes()).unwrap();
            s
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hub.log().contains("Too many open files") {
        assert!(
            Instant::now() < deadline,
            "no accept failure logged: {}",
            hub.log()
        );
        // The log is read by another thread; no event marks a new line.
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_idles_out_of_descriptors(&pid);
    for (i, s) in open.iter_mut().enumerate() {
        assert_answers(s, 2 + i as u32);
    }
    assert_unanswered(&mut waiting, &pid, MAX_FILES);
    open.truncate(open.len() - WAITING);
    for s in &mut waiting {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = read_head(s);
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    }
    let retries = hub.log().matches("accept failed").count();
    assert!(
        retries < 40,
        "{retries} accept failures logged: the retries back off"
    );
    memory.assert_peak_growth_below(16 * MIB, "connection flood, hub");
}
