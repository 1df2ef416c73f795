//! Raw-socket helpers for the hostile-input tests (`hostile.rs` against `duplex echo`,
//! `hostile_serve.rs` against `duplex serve`): hand-made requests and frames, and the
//! server's memory from `/proc`. The including crate names the upgrade path as
//! `UPGRADE_PATH`.
#![allow(dead_code)]

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const MIB: u64 = 1 << 20;

/// A server under test: where it listens and its process id.
pub trait Peer {
    /// `host:port`.
    fn addr(&self) -> String;
    /// The server's PID, for its memory figures.
    fn pid(&self) -> String;
}

impl Peer for crate::common::Echo {
    fn addr(&self) -> String {
        self.url.trim_start_matches("ws://").to_owned()
    }

    fn pid(&self) -> String {
        crate::common::Echo::pid(self)
    }
}

pub fn addr(peer: &impl Peer) -> String {
    peer.addr()
}

/// The server's resident memory at the start of a test, to bound its growth.
pub struct Memory {
    pid: String,
    start_kib: u64,
}

impl Memory {
    pub fn start(echo: &impl Peer) -> Self {
        let pid = echo.pid();
        let (start_kib, _) = rss_and_peak_kib(&pid);
        Self { pid, start_kib }
    }

    /// Asserts that the peak resident size grew by less than `bound` bytes; prints the
    /// figure (RELIABILITY.md quotes these lines).
    pub fn assert_peak_growth_below(&self, bound: u64, what: &str) {
        let (rss, peak) = rss_and_peak_kib(&self.pid);
        let growth = peak.saturating_sub(self.start_kib) * 1024;
        eprintln!(
            "memory, {what}: peak growth {:.1} MiB (RSS now {:.1} MiB, bound {} MiB)",
            growth as f64 / MIB as f64,
            rss as f64 / 1024.0,
            bound / MIB
        );
        assert!(
            growth < bound,
            "{what}: the server's peak RSS grew by {growth} B, over {bound} B"
        );
    }
}

/// VmRSS and VmHWM of a process, in KiB.
pub fn rss_and_peak_kib(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub fn tcp(echo: &impl Peer) -> TcpStream {
    let s = TcpStream::connect(addr(echo)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// A TCP connection with a small receive buffer, so a client that does not read stops
/// the server's writes after kilobytes instead of the megabytes loopback allows.
pub fn tcp_small_receive_buffer(echo: &impl Peer) -> TcpStream {
    let addr = addr(echo).parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let s = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        stream.into_std().unwrap()
    });
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// An upgrade request with these header lines (each without its CRLF).
pub fn request_with(headers: &[&str]) -> String {
    let mut r = format!("GET {} HTTP/1.1\r\n", crate::UPGRADE_PATH);
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r + "\r\n"
}

pub const HOST: &str = "Host: 127.0.0.1";
pub const UPGRADE: &str = "Upgrade: websocket";
pub const CONNECTION: &str = "Connection: Upgrade";
pub const VERSION: &str = "Sec-WebSocket-Version: 13";

pub fn key_header() -> String {
    format!("Sec-WebSocket-Key: {KEY}")
}

/// A valid upgrade request plus `extra` header lines.
pub fn request(extra: &[&str]) -> String {
    let key = key_header();
    let mut headers = vec![HOST, UPGRADE, CONNECTION, &key, VERSION];
    headers.extend_from_slice(extra);
    request_with(&headers)
}

/// Reads a response head (through the blank line).
pub fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16 << 10, "response head too long");
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!(
                "the response head ended early ({other:?}): {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    String::from_utf8(head).unwrap()
}

/// Opens a WebSocket by hand, with `extra` request headers; returns the 101's head too.
pub fn open_with(s: &mut TcpStream, extra: &[&str]) -> String {
    s.write_all(request(extra).as_bytes()).unwrap();
    let head = read_head(s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    head
}

pub fn open(echo: &impl Peer) -> TcpStream {
    let mut s = tcp(echo);
    open_with(&mut s, &[]);
    s
}

/// Marks an answer after which the server kept the connection open.
pub const STILL_OPEN: &str = "\n[the connection is still open]";

/// Sends `bytes` (ignoring a server that already closed) and reads the whole answer
/// to the end of the connection, or [`STILL_OPEN`] after it when the connection stays
/// open for 5 s.
pub fn answer_to(echo: &impl Peer, bytes: &[u8]) -> String {
    let mut s = tcp(echo);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return String::from_utf8_lossy(&answer).into_owned(),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return String::from_utf8_lossy(&answer).into_owned() + STILL_OPEN
            }
            Err(e) => panic!("the connection failed ({e}) after {answer:?}"),
        }
    }
}

/// Everything until the server ends the connection (a read timeout fails the test).
pub fn read_to_end(s: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "the connection did not end cleanly ({e}) after {:?}",
                String::from_utf8_lossy(&answer)
            ),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Asserts the status line of an answer and, when it is not a 101, that the server
/// closed the connection after it.
pub fn assert_status(answer: &str, status: &str, what: &str) {
    let line = answer.lines().next().unwrap_or("");
    assert_eq!(line, format!("HTTP/1.1 {status}"), "{what}: {answer:?}");
    assert!(!answer.ends_with(STILL_OPEN), "{what}: {answer:?}");
}

/// A frame header as a client sends it: `b0` (FIN, RSV, opcode), the mask bit, `len` in
/// the shortest encoding, the masking key.
pub fn frame_header(b0: u8, len: u64, mask: [u8; 4]) -> Vec<u8> {
    let mut f = vec![b0];
    match len {
        0..=125 => f.push(0x80 | len as u8),
        126..=0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            f.push(0x80 | 127);
            f.extend_from_slice(&len.to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f
}

/// A masked client frame.
pub fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xFA, 0x21, 0x3D];
    let mut f = frame_header(b0, payload.len() as u64, mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads one (unmasked) server frame: its first byte and payload.
pub fn read_frame(r: &mut impl Read) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    r.read_exact(&mut head)?;
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] & 0x7F {
        126 => {
            let mut l = [0u8; 2];
            r.read_exact(&mut l)?;
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            r.read_exact(&mut l)?;
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok((head[0], payload))
}

/// Reads frames up to the server's close frame, asserts its code, then asserts that the
/// server ends the TCP connection.
pub fn expect_close(s: &mut TcpStream, code: u16, what: &str) {
    let close = loop {
        match read_frame(s) {
            Ok((0x88, payload)) => break payload,
            Ok(_) => {}
            Err(e) => panic!("{what}: no close frame ({e})"),
        }
    };
    assert!(close.len() >= 2, "{what}: a close frame without a code");
    assert_eq!(
        u16::from_be_bytes([close[0], close[1]]),
        code,
        "{what}: close code (reason {:?})",
        String::from_utf8_lossy(&close[2..])
    );
    assert_eq!(read_to_end(s), "", "{what}: nothing after the close frame");
}

/// Asserts that a connection echoes a text message (skipping pongs).
pub fn assert_echoes(s: &mut TcpStream, text: &str) {
    s.write_all(&frame(0x81, text.as_bytes())).unwrap();
    loop {
        let (b0, payload) = read_frame(s).unwrap();
        if b0 == 0x8A {
            continue;
        }
        assert_eq!((b0, payload.as_slice()), (0x81, text.as_bytes()));
        return;
    }
}

/// Writes pings with 125-byte payloads until `cap` bytes are sent or a write has waited
/// for `stall` (the server stopped reading); returns the bytes sent and the unsent
/// rest of the last ping, which a partial write may have cut.
pub fn flood_pings(s: &mut TcpStream, cap: usize, stall: Duration) -> (usize, Vec<u8>) {
    let ping = frame(0x89, &[b'p'; 125]);
    let batch: Vec<u8> = ping.repeat(1000);
    s.set_write_timeout(Some(stall)).unwrap();
    let mut sent = 0;
    while sent < cap {
        match s.write(&batch[sent % batch.len()..]) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("ping flood failed: {e}"),
        }
    }
    let cut = sent % ping.len();
    let rest = if cut == 0 { &[][..] } else { &ping[cut..] };
    (sent, rest.to_vec())
}

/// Reads pongs until the one answering `last`; panics on any other frame.
pub fn read_pongs_until(s: &mut TcpStream, last: &[u8]) -> usize {
    let mut reader = BufReader::with_capacity(256 << 10, s);
    let mut pongs = 0;
    loop {
        let (b0, payload) = read_frame(&mut reader).unwrap();
        assert_eq!(b0, 0x8A, "only pongs were due");
        pongs += 1;
        if payload == last {
            return pongs;
        }
    }
}

/// A raw deflate stream (RFC 1951) that inflates to at least `inflated` zero bytes: one
/// block with the fixed Huffman codes, a literal 0, then copies of 258 bytes at distance
/// 1, 13 bits each. The block never ends: the server must stop at its limit first.
/// (Written by hand: compressing that much with flate2 takes half a minute in a debug
/// build.)
pub fn deflate_zeros(inflated: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    // Deflate packs fields from the least significant bit, Huffman codes from their most.
    let mut put = |value: u64, n: u32, huffman: bool| {
        let value = if huffman {
            value.reverse_bits() >> (64 - n)
        } else {
            value
        };
        acc |= value << bits;
        bits += n;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    };
    put(0, 1, false); // not the final block
    put(1, 2, false); // fixed Huffman codes
    put(0x30, 8, true); // literal 0
    for _ in 0..inflated / 258 + 1 {
        put(0xC5, 8, true); // length 258 (symbol 285)
        put(0, 5, true); // distance 1 (code 0)
    }
    put(0, 7, true); // end of block, so the last byte is whole
    out.push(acc as u8);
    out
}

/// The process's open files numbered below `limit`: those that take the places
/// `RLIMIT_NOFILE` allows. (Descriptors inherited from the test harness, such as cargo's
/// jobserver pipe, may be numbered above it.)
pub fn open_files(pid: &str, limit: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_str().unwrap().parse::<u32>().unwrap() < limit
        })
        .count()
}

/// User and system CPU time of a process, in clock ticks (1/100 s on Linux).
pub fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which ends with ')': state is field 3, utime 14.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Frames RFC 6455 forbids from a client, each with the close code it must get.
pub fn protocol_violations() -> Vec<(&'static str, Vec<u8>, u16)> {
    let mut top_bit = frame_header(0x82, 0, [1, 2, 3, 4]);
    top_bit.splice(1.., [0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4]);
    vec![
        ("an unmasked text frame", vec![0x81, 0x02, b'h', b'i'], 1002),
        ("reserved data opcode 0x3", frame(0x83, b"x"), 1002),
        ("reserved control opcode 0xB", frame(0x8B, b""), 1002),
        ("RSV1 without an extension", frame(0xC1, b"x"), 1002),
        ("RSV2", frame(0xA1, b"x"), 1002),
        ("RSV3", frame(0x91, b"x"), 1002),
        ("a 64-bit length with the top bit set", top_bit, 1002),
        ("a ping without FIN", frame(0x09, b""), 1002),
        ("a ping of 126 bytes", frame(0x89, &[0u8; 126]), 1002),
        ("a continuation without a message", frame(0x80, b"x"), 1002),
        (
            "invalid UTF-8 in a text frame",
            frame(0x81, &[0xC3, 0x28]),
            1007,
        ),
    ]
}

/// After a flood of `flooded` bytes of pings (`rest`: the unsent end of the last one),
/// reads again: the server answers the last ping, having kept far fewer pongs than
/// pings (one beyond its write queue, RFC 6455 section 5.5.3).
pub fn assert_pongs_coalesced(s: &mut TcpStream, rest: &[u8], flooded: usize) {
    let mut reader = s.try_clone().unwrap();
    let pongs = std::thread::spawn(move || read_pongs_until(&mut reader, b"last"));
    s.write_all(rest).unwrap();
    s.write_all(&frame(0x89, b"last")).unwrap();
    let pongs = pongs.join().unwrap();
    eprintln!(
        "{pongs} pongs read after a flood of {} pings",
        flooded / 131
    );
    assert!(
        pongs < flooded / 131 / 2,
        "the pongs were queued, not coalesced"
    );
}

/// Out of descriptors for a second, the server `pid` retries accepting at its pace, not
/// in a loop: under a fifth of a core.
pub fn assert_idles_out_of_descriptors(pid: &str) {
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(pid) - before;
    eprintln!("out of descriptors: {spent}/100 s of CPU in one second");
    assert!(
        spent < 20,
        "the server spent {spent}/100 s of CPU in one second"
    );
}

/// Connections past the server's open-files limit (`limit`) get no answer (within
/// 100 ms each): the server cannot accept them.
pub fn assert_unanswered(waiting: &mut [TcpStream], pid: &str, limit: u32) {
    for s in waiting {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!(
                "a connection past the limit was answered: {other:?} {:?}, {} files open",
                String::from_utf8_lossy(&buf),
                open_files(pid, limit)
            ),
        }
    }
}
