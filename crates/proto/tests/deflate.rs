//! permessage-deflate (RFC 7692): the `Sec-WebSocket-Extensions` negotiation in both
//! roles, directly and through the handshake types, and compressed messages through
//! `Connection`: the RSV1 rules, context takeover, window sizes, invalid data, the message
//! limit against decompression bombs, lazy zlib state, and a property test over random
//! traffic. Compressed frames are built and checked with flate2 directly and with a small
//! inflater written here, so the tests check the wire format rather than the crate
//! against itself.

mod common;

use bytes::BytesMut;
use common::*;
use duplex_proto::deflate::negotiate::{client_accept, client_offer, server_accept};
use duplex_proto::deflate::{DeflateConfig, DeflateParams, DeflateState};
use duplex_proto::handshake::accept_key;
use duplex_proto::handshake::client::{ClientHandshake, ClientRequest};
use duplex_proto::handshake::server::UpgradeRequest;
use duplex_proto::{
    Connection, ConnectionState, Error, HandshakeFailure, Limits, Message, OpCode, Role, Violation,
};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http::HeaderMap;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

// ================================================================ allocation tracking

/// Counts what the current thread allocates, so a test can show that inflating a bomb
/// never asks for more memory than the message limit allows.
struct Tracking;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn grew(by: usize, block: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + by;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(block)));
    let _ = TOTAL.try_with(|total| total.set(total.get() + by));
}

fn shrank(by: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(by)));
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size(), layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size(), layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            grew(new_size - layout.size(), new_size);
        } else {
            shrank(layout.size() - new_size);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Runs `f` and returns its result, the most memory this thread held at once during it
/// beyond what it held before, and the largest single block it asked for.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    LARGEST.with(|largest| largest.set(0));
    let result = f();
    (
        result,
        PEAK.with(Cell::get) - start,
        LARGEST.with(Cell::get),
    )
}

/// Runs `f` and returns its result and the bytes this thread allocated during it in all.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = TOTAL.with(Cell::get);
    let result = f();
    (result, TOTAL.with(Cell::get) - start)
}

// ================================================================ shared helpers

const PMD: &str = "permessage-deflate";
const RSV1: u8 = 0b100;
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];
const MIB: usize = 1 << 20;
const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// RFC 7692 section 7.2.3.1: "Hello" compressed, tail stripped.
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
/// RFC 7692 section 7.2.3.2: "Hello" again, as a back-reference into the first one.
const HELLO_AGAIN: [u8; 5] = [0xf2, 0x00, 0x11, 0x00, 0x00];

fn p(snct: bool, cnct: bool, server_bits: u8, client_bits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: snct,
        client_no_context_takeover: cnct,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    }
}

fn cfg(snct: bool, cnct: bool, server_bits: u8, client_bits: u8) -> DeflateConfig {
    DeflateConfig {
        server_no_context_takeover: snct,
        client_no_context_takeover: cnct,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
        ..DeflateConfig::default()
    }
}

fn with_threshold(threshold: usize) -> DeflateConfig {
    DeflateConfig {
        threshold,
        ..DeflateConfig::default()
    }
}

/// A connection of `role` with permessage-deflate on.
fn deflating(role: Role, params: DeflateParams) -> Connection {
    Connection::new(role, Limits::default()).with_deflate(params, &DeflateConfig::default())
}

/// A client and a server that agreed on `params`, both with `config` and `limits`.
fn pair(params: DeflateParams, config: &DeflateConfig, limits: Limits) -> (Connection, Connection) {
    (
        Connection::new(Role::Client, limits.clone()).with_deflate(params, config),
        Connection::new(Role::Server, limits).with_deflate(params, config),
    )
}

/// (sender, receiver) out of a (client, server) pair for a sender of `role`.
fn ends<'a>(
    role: Role,
    client: &'a mut Connection,
    server: &'a mut Connection,
) -> (&'a mut Connection, &'a mut Connection) {
    match role {
        Role::Client => (client, server),
        Role::Server => (server, client),
    }
}

/// A frame with RSV1 as the peer of `receiver` sends it (masked towards a server).
fn compressed_to(receiver: Role, fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(receiver == Role::Server, fin, RSV1, opcode, payload)
}

/// Parses the frames `role` wrote, checking the masking but allowing RSV1.
fn frames_from(role: Role, out: &[u8]) -> Vec<WireFrame> {
    let frames = parse_frames(out);
    for f in &frames {
        assert_eq!(f.mask.is_some(), role == Role::Client, "{role:?} masking");
        assert_eq!(f.rsv & 0b011, 0, "RSV2/RSV3 are never written");
    }
    frames
}

/// Sends each message with `send` and decodes it on the other end, returning the frames
/// on the wire and the messages received.
fn transfer(
    from: &mut Connection,
    to: &mut Connection,
    msgs: &[Message],
) -> (Vec<WireFrame>, Vec<Message>) {
    let mut wire = BytesMut::new();
    for m in msgs {
        from.send(m, &mut wire).unwrap();
    }
    let frames = frames_from(from.role(), &wire);
    let mut out = BytesMut::new();
    let got = receive_all(to, &mut wire, &mut out).unwrap();
    assert!(wire.is_empty(), "every frame consumed");
    assert!(out.is_empty(), "nothing to answer");
    (frames, got)
}

/// Feeds `input` to `conn` and checks that it fails exactly as `expected` with `code`
/// (see [`check_failure`]); returns what was decoded before.
fn assert_rejected_by(
    mut conn: Connection,
    input: &[u8],
    expected: Violation,
    code: u16,
) -> Vec<Message> {
    let role = conn.role();
    let mut out = BytesMut::new();
    let mut buf = BytesMut::from(input);
    let mut before = Vec::new();
    let err = loop {
        match conn.receive(&mut buf, &mut out) {
            Ok(Some(m)) => before.push(m),
            Ok(None) => panic!("{role:?}: {input:x?} was not rejected (expected {expected:?})"),
            Err(e) => break e,
        }
    };
    check_failure(role, &mut conn, &mut out, err, expected, code);
    before
}

/// Text with words repeating at all sorts of distances, from a fixed seed.
fn words(len: usize, seed: u64) -> Vec<u8> {
    const VOCABULARY: [&str; 16] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliett", "kilo", "lima", "mike", "november", "oscar", "papa",
    ];
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.extend_from_slice(VOCABULARY[(state >> 60) as usize].as_bytes());
        out.push(if state & 0x100 == 0 { b' ' } else { b'\n' });
    }
    out.truncate(len);
    out
}

/// Bytes that do not compress, from a fixed seed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------- a reference peer

/// A raw-deflate compressor used the way a peer uses it: each message ends with a sync
/// flush whose `00 00 ff ff` tail is stripped (RFC 7692 section 7.2.1).
struct Deflater(Compress);

impl Deflater {
    fn new(level: u32, bits: u8) -> Self {
        Self(Compress::new_with_window_bits(
            Compression::new(level),
            false,
            bits,
        ))
    }

    /// Everything zlib produces for `data` with `flush`.
    fn feed(&mut self, data: &[u8], flush: FlushCompress) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let start = self.0.total_in();
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(1024));
            }
            let done = (self.0.total_in() - start) as usize;
            self.0.compress_vec(&data[done..], &mut out, flush).unwrap();
            let done = (self.0.total_in() - start) as usize;
            if done == data.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }

    /// One message: sync flush, tail stripped.
    fn message(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = self.feed(data, FlushCompress::Sync);
        assert!(out.ends_with(&TAIL), "a sync flush ends with 00 00 ff ff");
        out.truncate(out.len() - TAIL.len());
        out
    }
}

/// One message compressed by a fresh compressor with a 15-bit window.
fn compress(data: &[u8]) -> Vec<u8> {
    Deflater::new(6, 15).message(data)
}

/// A raw-deflate decompressor that appends the tail to each message, as RFC 7692 section
/// 7.2.2 says, and keeps its window between messages.
struct Inflater(Decompress);

impl Inflater {
    fn new() -> Self {
        Self(Decompress::new(false))
    }

    fn message(&mut self, payload: &[u8]) -> Result<Vec<u8>, String> {
        let mut input = payload.to_vec();
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(payload.len() * 4 + 64);
        let start = self.0.total_in();
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            let (done, produced) = ((self.0.total_in() - start) as usize, out.len());
            let status = self
                .0
                .decompress_vec(&input[done..], &mut out, FlushDecompress::Sync)
                .map_err(|e| e.to_string())?;
            let now = (self.0.total_in() - start) as usize;
            if status == Status::StreamEnd || (now == input.len() && out.len() < out.capacity()) {
                return Ok(out);
            }
            if now == done && out.len() == produced && out.len() < out.capacity() {
                return Err("no progress".into());
            }
        }
    }
}

/// One message decompressed by a fresh decompressor.
fn inflate(payload: &[u8]) -> Vec<u8> {
    Inflater::new().message(payload).unwrap()
}

// ---------------------------------------------------------------- an independent inflater

/// A small DEFLATE decoder (after Mark Adler's puff) that keeps all history and records
/// the farthest back-reference, to check what goes on the wire independently of zlib.
#[derive(Default)]
struct Puff {
    history: Vec<u8>,
    max_distance: usize,
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Result<u32, String> {
        let byte = *self.data.get(self.pos / 8).ok_or("ran out of input")?;
        let bit = (byte >> (self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit as u32)
    }

    fn bits(&mut self, n: u32) -> Result<u32, String> {
        let mut value = 0;
        for i in 0..n {
            value |= self.bit()? << i;
        }
        Ok(value)
    }

    fn align(&mut self) {
        self.pos = self.pos.div_ceil(8) * 8;
    }
}

struct Huffman {
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Self {
        let mut counts = [0u16; 16];
        for &l in lengths {
            counts[l as usize] += 1;
        }
        counts[0] = 0;
        let mut offsets = [0u16; 16];
        for len in 1..15 {
            offsets[len + 1] = offsets[len] + counts[len];
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (symbol, &l) in lengths.iter().enumerate() {
            if l != 0 {
                symbols[offsets[l as usize] as usize] = symbol as u16;
                offsets[l as usize] += 1;
            }
        }
        Self { counts, symbols }
    }

    fn decode(&self, bits: &mut Bits<'_>) -> Result<usize, String> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.bit()? as i32;
            let count = self.counts[len] as i32;
            if code - first < count {
                return Ok(self.symbols[(index + code - first) as usize] as usize);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err("invalid Huffman code".into())
    }
}

const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u32; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DISTANCE_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DISTANCE_EXTRA: [u32; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

impl Puff {
    /// Decodes one message payload (the tail appended), continuing the history.
    fn message(&mut self, payload: &[u8]) -> Result<Vec<u8>, String> {
        let mut data = payload.to_vec();
        data.extend_from_slice(&TAIL);
        let start = self.history.len();
        let mut bits = Bits {
            data: &data,
            pos: 0,
        };
        while bits.pos < data.len() * 8 {
            let last = bits.bit()? == 1;
            match bits.bits(2)? {
                0 => {
                    bits.align();
                    let len = bits.bits(16)?;
                    if len != !bits.bits(16)? & 0xFFFF {
                        return Err("stored block lengths do not match".into());
                    }
                    for _ in 0..len {
                        self.history.push(bits.bits(8)? as u8);
                    }
                }
                1 => {
                    let mut lengths = [8u8; 288];
                    lengths[144..256].fill(9);
                    lengths[256..280].fill(7);
                    self.codes(&mut bits, &Huffman::new(&lengths), &Huffman::new(&[5; 30]))?;
                }
                2 => {
                    let (lit, dist) = dynamic_tables(&mut bits)?;
                    self.codes(&mut bits, &lit, &dist)?;
                }
                _ => return Err("reserved block type".into()),
            }
            if last {
                bits.align();
            }
        }
        Ok(self.history[start..].to_vec())
    }

    fn codes(&mut self, bits: &mut Bits<'_>, lit: &Huffman, dist: &Huffman) -> Result<(), String> {
        loop {
            match lit.decode(bits)? {
                symbol @ 0..=255 => self.history.push(symbol as u8),
                256 => return Ok(()),
                symbol @ 257..=285 => {
                    let i = symbol - 257;
                    let len = LENGTH_BASE[i] as usize + bits.bits(LENGTH_EXTRA[i])? as usize;
                    let d = dist.decode(bits)?;
                    if d >= 30 {
                        return Err("invalid distance code".into());
                    }
                    let distance =
                        DISTANCE_BASE[d] as usize + bits.bits(DISTANCE_EXTRA[d])? as usize;
                    if distance > self.history.len() {
                        return Err("distance too far back".into());
                    }
                    self.max_distance = self.max_distance.max(distance);
                    for _ in 0..len {
                        let b = self.history[self.history.len() - distance];
                        self.history.push(b);
                    }
                }
                _ => return Err("invalid literal/length code".into()),
            }
        }
    }
}

fn dynamic_tables(bits: &mut Bits<'_>) -> Result<(Huffman, Huffman), String> {
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let nlen = bits.bits(5)? as usize + 257;
    let ndist = bits.bits(5)? as usize + 1;
    let ncode = bits.bits(4)? as usize + 4;
    let mut code_lengths = [0u8; 19];
    for &i in &ORDER[..ncode] {
        code_lengths[i] = bits.bits(3)? as u8;
    }
    let lencode = Huffman::new(&code_lengths);
    let mut lengths: Vec<u8> = Vec::with_capacity(nlen + ndist);
    while lengths.len() < nlen + ndist {
        let (value, repeat) = match lencode.decode(bits)? {
            symbol @ 0..=15 => (symbol as u8, 1),
            16 => (
                *lengths.last().ok_or("repeat without a length")?,
                3 + bits.bits(2)?,
            ),
            17 => (0, 3 + bits.bits(3)?),
            _ => (0, 11 + bits.bits(7)?),
        };
        lengths.resize(lengths.len() + repeat as usize, value);
    }
    if lengths.len() != nlen + ndist {
        return Err("too many lengths".into());
    }
    Ok((
        Huffman::new(&lengths[..nlen]),
        Huffman::new(&lengths[nlen..]),
    ))
}

#[test]
fn the_reference_inflaters_agree_with_the_rfc_examples() {
    let mut puff = Puff::default();
    assert_eq!(puff.message(&HELLO).unwrap(), b"Hello");
    assert_eq!(puff.message(&HELLO_AGAIN).unwrap(), b"Hello");
    assert_eq!(puff.max_distance, 5);
    let mut inflater = Inflater::new();
    assert_eq!(inflater.message(&HELLO).unwrap(), b"Hello");
    assert_eq!(inflater.message(&HELLO_AGAIN).unwrap(), b"Hello");
    assert_eq!(compress(b"Hello"), HELLO);
    let text = words(50_000, 1);
    assert_eq!(Puff::default().message(&compress(&text)).unwrap(), text);
}

// ================================================================ server negotiation

fn server(config: &DeflateConfig, offers: &[&str]) -> Option<(DeflateParams, String)> {
    server_accept(config, offers.iter().copied())
}

fn accepted(params: DeflateParams, response: &str) -> Option<(DeflateParams, String)> {
    Some((params, response.to_owned()))
}

#[test]
fn server_accepts_a_plain_offer_with_the_defaults() {
    let d = DeflateConfig::default();
    for offer in [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "Permessage-Deflate",
        " permessage-deflate ",
        "permessage-deflate;client_max_window_bits",
        "permessage-deflate ;\tClient_Max_Window_Bits ",
    ] {
        assert_eq!(
            server(&d, &[offer]),
            accepted(DeflateParams::default(), PMD),
            "{offer}"
        );
    }
}

#[test]
fn server_confirms_server_no_context_takeover() {
    let d = DeflateConfig::default();
    for offer in [
        "permessage-deflate; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; SERVER_NO_CONTEXT_TAKEOVER",
    ] {
        assert_eq!(
            server(&d, &[offer]),
            accepted(
                p(true, false, 15, 15),
                "permessage-deflate; server_no_context_takeover"
            ),
            "{offer}"
        );
    }
}

#[test]
fn client_no_context_takeover_volunteered_in_an_offer_is_confirmed() {
    for config in [DeflateConfig::default(), cfg(false, true, 15, 15)] {
        assert_eq!(
            server(&config, &["permessage-deflate; client_no_context_takeover"]),
            accepted(
                p(false, true, 15, 15),
                "permessage-deflate; client_no_context_takeover"
            )
        );
    }
}

#[test]
fn server_confirms_every_requested_server_max_window_bits() {
    let d = DeflateConfig::default();
    for bits in 8..=15 {
        assert_eq!(
            server(
                &d,
                &[&format!(
                    "permessage-deflate; server_max_window_bits={bits}"
                )]
            ),
            accepted(
                p(false, false, bits, 15),
                &format!("permessage-deflate; server_max_window_bits={bits}")
            ),
            "{bits}"
        );
    }
}

#[test]
fn server_max_window_bits_is_the_smaller_of_request_and_config() {
    for ours in 8..=15 {
        for theirs in 8..=15 {
            let expected = ours.min(theirs);
            assert_eq!(
                server(
                    &cfg(false, false, ours, 15),
                    &[&format!(
                        "permessage-deflate; server_max_window_bits={theirs}"
                    )]
                ),
                accepted(
                    p(false, false, expected, 15),
                    &format!("permessage-deflate; server_max_window_bits={expected}")
                ),
                "ours {ours}, theirs {theirs}"
            );
        }
    }
}

#[test]
fn server_announces_its_smaller_window_when_none_was_requested() {
    for ours in 8..=15 {
        let response = if ours < 15 {
            format!("permessage-deflate; server_max_window_bits={ours}")
        } else {
            PMD.to_owned()
        };
        assert_eq!(
            server(&cfg(false, false, ours, 15), &[PMD]),
            accepted(p(false, false, ours, 15), &response),
            "{ours}"
        );
    }
}

#[test]
fn client_max_window_bits_is_the_smaller_of_offer_and_config() {
    for ours in 8..=15u8 {
        for offered in [None, Some(8u8), Some(9), Some(11), Some(14), Some(15)] {
            let offer = match offered {
                None => "permessage-deflate; client_max_window_bits".to_owned(),
                Some(v) => format!("permessage-deflate; client_max_window_bits={v}"),
            };
            let bits = offered.unwrap_or(15).min(ours);
            let response = if bits < 15 {
                format!("permessage-deflate; client_max_window_bits={bits}")
            } else {
                PMD.to_owned()
            };
            assert_eq!(
                server(&cfg(false, false, 15, ours), &[&offer]),
                accepted(p(false, false, 15, bits), &response),
                "ours {ours}, offer {offer}"
            );
        }
    }
}

#[test]
fn an_offer_without_client_max_window_bits_is_declined_when_the_server_needs_a_smaller_window() {
    for ours in 8..=14 {
        let config = cfg(false, false, 15, ours);
        let response = format!("permessage-deflate; client_max_window_bits={ours}");
        assert_eq!(server(&config, &[PMD]), None, "{ours}");
        assert_eq!(
            server(&config, &["permessage-deflate; server_max_window_bits=12"]),
            None
        );
        // A later offer that lets the client limit its window is taken.
        let expected = accepted(p(false, false, 15, ours), &response);
        assert_eq!(
            server(
                &config,
                &["permessage-deflate, permessage-deflate; client_max_window_bits"]
            ),
            expected
        );
        assert_eq!(
            server(
                &config,
                &[PMD, "permessage-deflate; client_max_window_bits=15"]
            ),
            expected
        );
    }
    assert_eq!(
        server(&cfg(false, false, 15, 15), &[PMD]),
        accepted(DeflateParams::default(), PMD)
    );
}

#[test]
fn server_config_requirements_appear_in_the_response() {
    let offer = "permessage-deflate; client_max_window_bits";
    let cases = [
        (
            cfg(true, false, 15, 15),
            offer,
            p(true, false, 15, 15),
            "permessage-deflate; server_no_context_takeover",
        ),
        (
            cfg(false, true, 15, 15),
            offer,
            p(false, true, 15, 15),
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            cfg(true, true, 15, 15),
            offer,
            p(true, true, 15, 15),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (
            cfg(true, false, 15, 15),
            "permessage-deflate; server_no_context_takeover",
            p(true, false, 15, 15),
            "permessage-deflate; server_no_context_takeover",
        ),
        (
            cfg(false, true, 15, 15),
            "permessage-deflate; client_no_context_takeover",
            p(false, true, 15, 15),
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            cfg(true, true, 10, 9),
            offer,
            p(true, true, 10, 9),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=9",
        ),
        (
            DeflateConfig::default(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12; client_max_window_bits=11",
            p(true, true, 12, 11),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12; client_max_window_bits=11",
        ),
        (
            DeflateConfig {
                level: 1,
                threshold: 0,
                ..DeflateConfig::default()
            },
            offer,
            DeflateParams::default(),
            PMD,
        ),
    ];
    for (config, offer, params, response) in cases {
        assert_eq!(
            server(&config, &[offer]),
            accepted(params, response),
            "{config:?} / {offer}"
        );
    }
}

/// Offers that parse but that the server must decline: unknown or duplicate parameters
/// and invalid values.
const BAD_OFFERS: &[&str] = &[
    // unknown parameters
    "permessage-deflate; foo",
    "permessage-deflate; foo=1",
    "permessage-deflate; max_window_bits=10",
    "permessage-deflate; client_max_window_bit=10",
    "permessage-deflate; server_no_context_takeover; x",
    // duplicates
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
    "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
    "permessage-deflate; server_max_window_bits=10; server_max_window_bits=11",
    "permessage-deflate; client_max_window_bits; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=10; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=10; CLIENT_MAX_WINDOW_BITS=10",
    // a value on a flag
    "permessage-deflate; server_no_context_takeover=1",
    "permessage-deflate; server_no_context_takeover=true",
    "permessage-deflate; client_no_context_takeover=\"x\"",
    // a flag where a value is required
    "permessage-deflate; server_max_window_bits",
];

/// Window values that are tokens but not 8 to 15 without a leading zero.
const BAD_BITS: &[&str] = &[
    "0",
    "7",
    "16",
    "08",
    "010",
    "abc",
    "-1",
    "+9",
    "9.0",
    "1e1",
    "255",
    "256",
    "99999999999999999999",
    "\"7\"",
    "\"08\"",
];

fn bad_offers() -> Vec<String> {
    let mut all: Vec<String> = BAD_OFFERS.iter().map(|s| s.to_string()).collect();
    for v in BAD_BITS {
        all.push(format!("permessage-deflate; server_max_window_bits={v}"));
        all.push(format!("permessage-deflate; client_max_window_bits={v}"));
    }
    all
}

#[test]
fn server_declines_offers_with_bad_parameters_and_tries_the_next() {
    let d = DeflateConfig::default();
    let good = "permessage-deflate; server_max_window_bits=9";
    let good_answer = accepted(
        p(false, false, 9, 15),
        "permessage-deflate; server_max_window_bits=9",
    );
    for bad in bad_offers() {
        assert_eq!(server(&d, &[&bad]), None, "{bad}");
        assert_eq!(
            server(&d, &[&format!("{bad}, {good}")]),
            good_answer,
            "{bad}"
        );
        assert_eq!(server(&d, &[&bad, good]), good_answer, "{bad}");
        assert_eq!(server(&d, &[good, &bad]), good_answer, "{bad}");
        // The same offer is declined under any config.
        assert_eq!(server(&cfg(true, true, 8, 8), &[&bad]), None, "{bad}");
    }
}

/// Header values whose syntax is broken: the server declines everything in the request.
const MALFORMED: &[&str] = &[
    "permessage-deflate; server_max_window_bits=",
    "permessage-deflate; server_max_window_bits=\"\"",
    "permessage-deflate; server_max_window_bits=\"10",
    "permessage-deflate; server_max_window_bits=\"1 0\"",
    "permessage-deflate; server_max_window_bits=1 0",
    "permessage-deflate; server_max_window_bits=10=10",
    "permessage-deflate; client_max_window_bits=\"10\"x",
    "permessage-deflate; x=\"a\\",
    "permessage deflate",
    "permessage-deflate;",
    "permessage-deflate; ; server_no_context_takeover",
    "permessage-deflate; =10",
    "permessage-deflate; client max_window_bits",
    "\"permessage-deflate\"",
    "; permessage-deflate",
];

#[test]
fn server_declines_everything_when_the_header_syntax_is_broken() {
    let d = DeflateConfig::default();
    for bad in MALFORMED {
        assert_eq!(server(&d, &[bad]), None, "{bad}");
        assert_eq!(server(&d, &[&format!("{PMD}, {bad}")]), None, "{bad}");
        assert_eq!(server(&d, &[&format!("{bad}, {PMD}")]), None, "{bad}");
        assert_eq!(server(&d, &[PMD, bad]), None, "{bad}");
        assert_eq!(server(&d, &[bad, PMD]), None, "{bad}");
    }
}

#[test]
fn server_accepts_quoted_values_that_are_tokens() {
    let d = DeflateConfig::default();
    for (offer, params, response) in [
        (
            "permessage-deflate; server_max_window_bits=\"10\"",
            p(false, false, 10, 15),
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            "permessage-deflate; client_max_window_bits=\"9\"",
            p(false, false, 15, 9),
            "permessage-deflate; client_max_window_bits=9",
        ),
        (
            "permessage-deflate; server_max_window_bits=\"1\\0\"",
            p(false, false, 10, 15),
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            "permessage-deflate; server_max_window_bits = \"12\" ; client_max_window_bits",
            p(false, false, 12, 15),
            "permessage-deflate; server_max_window_bits=12",
        ),
    ] {
        assert_eq!(server(&d, &[offer]), accepted(params, response), "{offer}");
    }
}

#[test]
fn server_takes_the_first_acceptable_offer_across_items_and_header_lines() {
    let d = DeflateConfig::default();
    let bits = |b: u8| {
        accepted(
            p(false, false, b, 15),
            &format!("permessage-deflate; server_max_window_bits={b}"),
        )
    };
    assert_eq!(
        server(
            &d,
            &["permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=12"]
        ),
        bits(10)
    );
    assert_eq!(
        server(
            &d,
            &["permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=12, permessage-deflate"]
        ),
        bits(12)
    );
    assert_eq!(
        server(
            &d,
            &[
                "permessage-deflate; server_max_window_bits=11",
                "permessage-deflate; server_max_window_bits=12"
            ]
        ),
        bits(11)
    );
    assert_eq!(
        server(
            &d,
            &[
                "permessage-deflate; foo",
                "permessage-deflate; server_no_context_takeover"
            ]
        ),
        accepted(
            p(true, false, 15, 15),
            "permessage-deflate; server_no_context_takeover"
        )
    );
    assert_eq!(
        server(
            &d,
            &[
                "x-foo",
                "permessage-deflate; server_max_window_bits=16, permessage-deflate; client_max_window_bits=8"
            ]
        ),
        accepted(
            p(false, false, 15, 8),
            "permessage-deflate; client_max_window_bits=8"
        )
    );
    assert_eq!(
        server(&d, &["permessage-deflate; foo, , permessage-deflate"]),
        accepted(DeflateParams::default(), PMD)
    );
    assert_eq!(
        server(
            &d,
            &[
                "permessage-deflate; foo",
                "permessage-deflate; server_max_window_bits=16"
            ]
        ),
        None
    );
}

#[test]
fn server_ignores_other_extensions() {
    let d = DeflateConfig::default();
    for offers in [
        &[][..],
        &[""][..],
        &["x-webkit-deflate-frame"][..],
        &["foo; bar=1, baz"][..],
        &["permessage-deflate-x"][..],
        &["deflate-frame; max_window_bits=10", "x-foo"][..],
    ] {
        assert_eq!(server(&d, offers), None, "{offers:?}");
    }
    assert_eq!(
        server(
            &d,
            &["x-webkit-deflate-frame; max_window_bits=10, permessage-deflate; client_no_context_takeover"]
        ),
        accepted(
            p(false, true, 15, 15),
            "permessage-deflate; client_no_context_takeover"
        )
    );
    assert_eq!(
        server(
            &d,
            &[
                "deflate-frame",
                "permessage-deflate; server_max_window_bits=11"
            ]
        ),
        accepted(
            p(false, false, 11, 15),
            "permessage-deflate; server_max_window_bits=11"
        )
    );
    // Parameters another extension would find invalid are its business.
    assert_eq!(
        server(
            &d,
            &["foo; server_max_window_bits=99; foo; foo, permessage-deflate"]
        ),
        accepted(DeflateParams::default(), PMD)
    );
}

// ---------------------------------------------------------------- through UpgradeRequest

fn upgrade_request(extension_lines: &[&str]) -> UpgradeRequest {
    let mut text = format!(
        "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n"
    );
    for line in extension_lines {
        text += &format!("Sec-WebSocket-Extensions: {line}\r\n");
    }
    text += "\r\n";
    let mut input = BytesMut::from(text.as_bytes());
    let request = UpgradeRequest::parse(&mut input, &Limits::default())
        .unwrap()
        .unwrap();
    assert!(input.is_empty());
    request
}

/// The `Sec-WebSocket-Extensions` values of a 101 response, checked to be complete.
fn response_extensions(out: &[u8]) -> Vec<String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(out).unwrap() {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => panic!("incomplete response"),
    };
    assert_eq!(len, out.len());
    assert_eq!(response.code, Some(101));
    let accept = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
        .unwrap();
    assert_eq!(accept.value, accept_key(RFC_KEY.as_bytes()).as_bytes());
    response
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|h| String::from_utf8(h.value.to_vec()).unwrap())
        .collect()
}

#[test]
fn upgrade_request_negotiates_and_writes_the_extension_header() {
    /// (server config, offer header lines, agreed parameters and response header)
    type Case<'a> = (
        DeflateConfig,
        Vec<&'a str>,
        Option<(DeflateParams, &'a str)>,
    );
    let cases: Vec<Case> = vec![
        (
            DeflateConfig::default(),
            vec!["permessage-deflate; client_max_window_bits"],
            Some((DeflateParams::default(), PMD)),
        ),
        (
            DeflateConfig::default(),
            vec!["permessage-deflate; server_max_window_bits=10; client_max_window_bits"],
            Some((
                p(false, false, 10, 15),
                "permessage-deflate; server_max_window_bits=10",
            )),
        ),
        (
            cfg(true, true, 12, 11),
            vec!["permessage-deflate; client_max_window_bits"],
            Some((
                p(true, true, 12, 11),
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=12; client_max_window_bits=11",
            )),
        ),
        (
            DeflateConfig::default(),
            vec![
                "permessage-deflate; foo",
                "x-foo, permessage-deflate; server_no_context_takeover",
            ],
            Some((
                p(true, false, 15, 15),
                "permessage-deflate; server_no_context_takeover",
            )),
        ),
        (cfg(false, false, 15, 10), vec![PMD], None),
        (
            DeflateConfig::default(),
            vec!["x-webkit-deflate-frame"],
            None,
        ),
        (DeflateConfig::default(), vec![], None),
        (
            DeflateConfig::default(),
            vec!["permessage-deflate; server_max_window_bits=\"10"],
            None,
        ),
        (
            DeflateConfig::default(),
            vec!["permessage-deflate; server_max_window_bits=16"],
            None,
        ),
    ];
    for (config, lines, expected) in cases {
        let request = upgrade_request(&lines);
        let expected = expected.map(|(params, response)| (params, response.to_owned()));
        assert_eq!(request.negotiate_deflate(&config), expected, "{lines:?}");

        let mut out = BytesMut::new();
        let agreed = request.accept_with_deflate(None, Some(&config), &HeaderMap::new(), &mut out);
        assert_eq!(agreed, expected.as_ref().map(|(p, _)| *p), "{lines:?}");
        let header: Vec<String> = expected.iter().map(|(_, r)| r.clone()).collect();
        assert_eq!(response_extensions(&out), header, "{lines:?}");

        // Without a config, or through plain accept, the offer is declined.
        let mut out = BytesMut::new();
        assert_eq!(
            request.accept_with_deflate(None, None, &HeaderMap::new(), &mut out),
            None
        );
        assert_eq!(response_extensions(&out), Vec::<String>::new());
        let mut out = BytesMut::new();
        request.accept(None, &HeaderMap::new(), &mut out);
        assert_eq!(response_extensions(&out), Vec::<String>::new());
    }
}

// ================================================================ client side

#[test]
fn client_offer_for_each_config() {
    let cases = [
        (
            DeflateConfig::default(),
            "permessage-deflate; client_max_window_bits",
        ),
        (
            cfg(false, false, 15, 10),
            "permessage-deflate; client_max_window_bits=10",
        ),
        (
            cfg(false, false, 15, 8),
            "permessage-deflate; client_max_window_bits=8",
        ),
        (
            cfg(false, false, 9, 15),
            "permessage-deflate; client_max_window_bits; server_max_window_bits=9",
        ),
        (
            cfg(false, true, 15, 15),
            "permessage-deflate; client_max_window_bits; client_no_context_takeover",
        ),
        (
            cfg(true, false, 15, 15),
            "permessage-deflate; client_max_window_bits; server_no_context_takeover",
        ),
        (
            cfg(true, true, 12, 8),
            "permessage-deflate; client_max_window_bits=8; server_max_window_bits=12; \
             client_no_context_takeover; server_no_context_takeover",
        ),
        (
            DeflateConfig {
                level: 1,
                threshold: 0,
                ..DeflateConfig::default()
            },
            "permessage-deflate; client_max_window_bits",
        ),
    ];
    for (config, offer) in cases {
        assert_eq!(client_offer(&config), offer, "{config:?}");
        // The request carries exactly that offer.
        assert_eq!(request_extensions(Some(config)), vec![offer.to_owned()]);
    }
    assert_eq!(request_extensions(None), Vec::<String>::new());
}

fn client_request(deflate: Option<DeflateConfig>) -> ClientRequest {
    ClientRequest {
        host: "example.com".into(),
        path: "/".into(),
        deflate,
        ..Default::default()
    }
}

/// The `Sec-WebSocket-Extensions` values of the request a client writes.
fn request_extensions(deflate: Option<DeflateConfig>) -> Vec<String> {
    let mut out = BytesMut::new();
    ClientHandshake::start(&client_request(deflate), &mut out).unwrap();
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    assert_eq!(
        request.parse(&out).unwrap(),
        httparse::Status::Complete(out.len())
    );
    request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|h| String::from_utf8(h.value.to_vec()).unwrap())
        .collect()
}

/// Runs a client handshake offering `deflate` against a 101 response carrying the given
/// raw `Sec-WebSocket-Extensions` header values.
fn client_handshake_raw(
    deflate: Option<DeflateConfig>,
    extension_lines: &[&[u8]],
) -> Result<Option<DeflateParams>, HandshakeFailure> {
    let mut out = BytesMut::new();
    let handshake = ClientHandshake::start(&client_request(deflate), &mut out).unwrap();
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        accept_key(handshake.key().as_bytes())
    )
    .into_bytes();
    for line in extension_lines {
        response.extend_from_slice(b"Sec-WebSocket-Extensions: ");
        response.extend_from_slice(line);
        response.extend_from_slice(b"\r\n");
    }
    response.extend_from_slice(b"\r\n");
    let mut input = BytesMut::from(&response[..]);
    let answer = handshake.receive(&mut input, &Limits::default())?;
    assert!(input.is_empty());
    Ok(answer.expect("the response is complete").deflate)
}

fn client_handshake(
    deflate: Option<DeflateConfig>,
    extension_lines: &[&str],
) -> Result<Option<DeflateParams>, HandshakeFailure> {
    let raw: Vec<&[u8]> = extension_lines.iter().map(|l| l.as_bytes()).collect();
    client_handshake_raw(deflate, &raw)
}

#[test]
fn client_accepts_valid_answers_with_the_resulting_params() {
    let d = DeflateConfig::default();
    let mut cases: Vec<(DeflateConfig, Vec<String>, Option<DeflateParams>)> = vec![
        (d.clone(), vec![], None),
        (d.clone(), vec!["".into()], None),
        (d.clone(), vec![PMD.into()], Some(DeflateParams::default())),
        (
            d.clone(),
            vec!["PerMessage-Deflate".into()],
            Some(DeflateParams::default()),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; server_no_context_takeover".into()],
            Some(p(true, false, 15, 15)),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; client_no_context_takeover".into()],
            Some(p(false, true, 15, 15)),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; server_max_window_bits=\"10\"".into()],
            Some(p(false, false, 10, 15)),
        ),
        (
            cfg(false, false, 15, 10),
            vec![PMD.into()],
            Some(p(false, false, 15, 10)),
        ),
        (
            cfg(false, false, 15, 10),
            vec!["permessage-deflate; client_max_window_bits=10".into()],
            Some(p(false, false, 15, 10)),
        ),
        (
            cfg(false, false, 15, 10),
            vec!["permessage-deflate; client_max_window_bits=8".into()],
            Some(p(false, false, 15, 8)),
        ),
        (
            cfg(false, false, 10, 15),
            vec!["permessage-deflate; server_max_window_bits=10".into()],
            Some(p(false, false, 10, 15)),
        ),
        (
            cfg(false, false, 10, 15),
            vec!["permessage-deflate; server_max_window_bits=9".into()],
            Some(p(false, false, 9, 15)),
        ),
        // The client's own promise binds it even if the answer does not repeat it.
        (
            cfg(false, true, 15, 15),
            vec![PMD.into()],
            Some(p(false, true, 15, 15)),
        ),
        (
            cfg(true, false, 15, 15),
            vec!["permessage-deflate; server_no_context_takeover".into()],
            Some(p(true, false, 15, 15)),
        ),
        (
            d.clone(),
            vec![
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=9; client_max_window_bits=12"
                    .into(),
            ],
            Some(p(true, true, 9, 12)),
        ),
    ];
    for bits in 8..=15 {
        cases.push((
            d.clone(),
            vec![format!("permessage-deflate; server_max_window_bits={bits}")],
            Some(p(false, false, bits, 15)),
        ));
        cases.push((
            d.clone(),
            vec![format!("permessage-deflate; client_max_window_bits={bits}")],
            Some(p(false, false, 15, bits)),
        ));
    }
    for (config, lines, expected) in cases {
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(
            client_accept(&config, lines.iter().copied()),
            Ok(expected),
            "{lines:?}"
        );
        assert_eq!(
            client_handshake(Some(config), &lines),
            Ok(expected),
            "{lines:?}"
        );
    }
}

#[test]
fn client_rejects_invalid_answers_as_invalid_extension() {
    let d = DeflateConfig::default();
    let invalid = |v: &str, key: &str| format!("invalid value Some({v:?}) for {key}");
    let mut cases: Vec<(DeflateConfig, Vec<&str>, String)> = vec![
        (
            d.clone(),
            vec!["x-foo"],
            "extension \"x-foo\" was not offered".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate, permessage-deflate"],
            "more than one extension in the answer; one was offered".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate, x-foo"],
            "more than one extension in the answer; one was offered".into(),
        ),
        (
            d.clone(),
            vec![PMD, PMD],
            "more than one extension in the answer; one was offered".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
            "duplicate parameter server_no_context_takeover".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; client_no_context_takeover; Client_No_Context_Takeover"],
            "duplicate parameter client_no_context_takeover".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"],
            "duplicate parameter server_max_window_bits".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; client_max_window_bits=10; client_max_window_bits=11"],
            "duplicate parameter client_max_window_bits".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; foo"],
            "unknown parameter foo".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; max_window_bits=10"],
            "unknown parameter max_window_bits".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; server_no_context_takeover=1"],
            invalid("1", "server_no_context_takeover"),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; client_no_context_takeover=yes"],
            invalid("yes", "client_no_context_takeover"),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; server_max_window_bits"],
            "invalid value None for server_max_window_bits".into(),
        ),
        (
            d.clone(),
            vec!["permessage-deflate; client_max_window_bits"],
            "client_max_window_bits needs a value in a response".into(),
        ),
        (
            cfg(false, false, 10, 15),
            vec!["permessage-deflate; server_max_window_bits=11"],
            "server_max_window_bits=11 exceeds the 10 offered".into(),
        ),
        (
            cfg(false, false, 10, 15),
            vec![PMD],
            "server_max_window_bits=15 exceeds the 10 offered".into(),
        ),
        (
            cfg(false, false, 15, 9),
            vec!["permessage-deflate; client_max_window_bits=10"],
            "client_max_window_bits=10 exceeds the 9 offered".into(),
        ),
        (
            cfg(true, false, 15, 15),
            vec![PMD],
            "server_no_context_takeover was requested but not confirmed".into(),
        ),
        (
            cfg(true, false, 15, 15),
            vec!["permessage-deflate; client_no_context_takeover"],
            "server_no_context_takeover was requested but not confirmed".into(),
        ),
    ];
    for bad in MALFORMED {
        cases.push((
            d.clone(),
            vec![bad],
            "malformed Sec-WebSocket-Extensions header".into(),
        ));
    }
    let check = |config: &DeflateConfig, lines: &[&str], message: String| {
        assert_eq!(
            client_accept(config, lines.iter().copied()),
            Err(message.clone()),
            "{lines:?}"
        );
        assert_eq!(
            client_handshake(Some(config.clone()), lines),
            Err(HandshakeFailure::InvalidExtension(message)),
            "{lines:?}"
        );
    };
    for (config, lines, message) in cases {
        check(&config, &lines, message);
    }
    for v in BAD_BITS {
        // The error names the value after unquoting.
        let unquoted = v.trim_matches('"');
        for key in ["server_max_window_bits", "client_max_window_bits"] {
            let line = format!("permessage-deflate; {key}={v}");
            check(&d, &[&line], invalid(unquoted, key));
        }
    }
}

#[test]
fn client_rejects_an_extension_header_that_is_not_utf8() {
    assert_eq!(
        client_handshake_raw(
            Some(DeflateConfig::default()),
            &[b"permessage-deflate; x=\xe9"]
        ),
        Err(HandshakeFailure::InvalidExtension(
            "malformed Sec-WebSocket-Extensions header".into()
        ))
    );
}

#[test]
fn client_that_offered_nothing_rejects_any_extension_as_unoffered() {
    for (lines, reported) in [
        (vec![PMD], PMD),
        (
            vec!["permessage-deflate; server_max_window_bits=10"],
            "permessage-deflate; server_max_window_bits=10",
        ),
        (vec!["x-foo, permessage-deflate"], "x-foo"),
        (vec!["", "permessage-deflate"], PMD),
    ] {
        assert_eq!(
            client_handshake(None, &lines),
            Err(HandshakeFailure::UnofferedExtension(reported.into())),
            "{lines:?}"
        );
    }
    assert_eq!(client_handshake(None, &[]), Ok(None));
    assert_eq!(client_handshake(None, &[""]), Ok(None));
}

#[test]
fn every_client_offer_is_accepted_by_every_server_config_and_both_ends_agree() {
    let mut configs = Vec::new();
    for snct in [false, true] {
        for cnct in [false, true] {
            for server_bits in [8, 10, 15] {
                for client_bits in [8, 12, 15] {
                    configs.push(cfg(snct, cnct, server_bits, client_bits));
                }
            }
        }
    }
    for c in &configs {
        for s in &configs {
            // The model: every request and every volunteered reset is granted, and each
            // window is the smaller wish. Both ends agree on every parameter.
            let server_side = DeflateParams {
                server_no_context_takeover: c.server_no_context_takeover
                    || s.server_no_context_takeover,
                client_no_context_takeover: c.client_no_context_takeover
                    || s.client_no_context_takeover,
                server_max_window_bits: c.server_max_window_bits.min(s.server_max_window_bits),
                client_max_window_bits: c.client_max_window_bits.min(s.client_max_window_bits),
            };
            let client_side = server_side;

            let (params, response) = server_accept(s, [client_offer(c).as_str()])
                .unwrap_or_else(|| panic!("{c:?} declined by {s:?}"));
            assert_eq!(params, server_side, "{c:?} / {s:?}");
            assert_eq!(client_accept(c, [response.as_str()]), Ok(Some(client_side)));

            // The same through the handshake types, over the bytes they write.
            let mut wire = BytesMut::new();
            let handshake =
                ClientHandshake::start(&client_request(Some(c.clone())), &mut wire).unwrap();
            let request = UpgradeRequest::parse(&mut wire, &Limits::default())
                .unwrap()
                .unwrap();
            assert!(wire.is_empty());
            let agreed = request.accept_with_deflate(None, Some(s), &HeaderMap::new(), &mut wire);
            assert_eq!(agreed, Some(server_side));
            let answer = handshake
                .receive(&mut wire, &Limits::default())
                .unwrap()
                .unwrap();
            assert_eq!(answer.deflate, Some(client_side), "{c:?} / {s:?}");
        }
    }
}

// ================================================================ compressed frames

#[test]
fn rfc_7692_examples_decode_in_both_roles() {
    assert_eq!(
        frame(false, true, RSV1, OP_TEXT, &HELLO),
        [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        "the frame helper writes the RFC's bytes"
    );
    let hello = || Message::text("Hello");
    // (section, frames as (fin, rsv, opcode, payload), messages)
    type Frames = Vec<(bool, u8, u8, Vec<u8>)>;
    let cases: Vec<(&str, Frames, Vec<Message>)> = vec![
        (
            "7.2.3.1 one frame",
            vec![(true, RSV1, OP_TEXT, HELLO.to_vec())],
            vec![hello()],
        ),
        (
            "7.2.3.1 two fragments",
            vec![
                (false, RSV1, OP_TEXT, vec![0xf2, 0x48, 0xcd]),
                (true, 0, OP_CONT, vec![0xc9, 0xc9, 0x07, 0x00]),
            ],
            vec![hello()],
        ),
        (
            "7.2.3.2 sharing the window",
            vec![
                (true, RSV1, OP_TEXT, HELLO.to_vec()),
                (true, RSV1, OP_TEXT, HELLO_AGAIN.to_vec()),
            ],
            vec![hello(), hello()],
        ),
        (
            "7.2.3.3 a stored block",
            vec![(
                true,
                RSV1,
                OP_TEXT,
                vec![
                    0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
                ],
            )],
            vec![hello()],
        ),
        (
            "7.2.3.4 a block with BFINAL set",
            vec![(
                true,
                RSV1,
                OP_TEXT,
                vec![0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
            )],
            vec![hello()],
        ),
        (
            "7.2.3.5 two blocks in one message",
            vec![(
                true,
                RSV1,
                OP_TEXT,
                vec![
                    0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
                ],
            )],
            vec![hello()],
        ),
        (
            "7.2.3.6 an empty last fragment",
            vec![
                (
                    false,
                    RSV1,
                    OP_TEXT,
                    vec![
                        0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x00, 0xff, 0xff,
                    ],
                ),
                (true, 0, OP_CONT, vec![0x00]),
            ],
            vec![hello()],
        ),
        (
            "an empty message",
            vec![(true, RSV1, OP_BINARY, vec![0x00])],
            vec![Message::binary(&b""[..])],
        ),
        (
            "7.2.3.4 split after the final block, then 7.2.3.1",
            vec![
                (
                    false,
                    RSV1,
                    OP_TEXT,
                    vec![0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
                ),
                (true, 0, OP_CONT, vec![0x00]),
                (true, RSV1, OP_TEXT, HELLO.to_vec()),
            ],
            vec![hello(), hello()],
        ),
    ];
    for (section, frames, expected) in cases {
        for role in ROLES {
            let mut wire = Vec::new();
            for (fin, rsv, opcode, payload) in &frames {
                wire.extend(frame(role == Role::Server, *fin, *rsv, *opcode, payload));
            }
            for sizes in [&[usize::MAX][..], &[1]] {
                let mut conn = deflating(role, DeflateParams::default());
                let mut out = BytesMut::new();
                let got = receive_chunked(&mut conn, &wire, sizes, &mut out);
                assert_eq!(got, Ok(expected.clone()), "{section}, {role:?}");
                assert!(out.is_empty());
                assert_eq!(conn.state(), ConnectionState::Open);
            }
        }
    }
}

/// RFC 7692 section 7.2.1: "The next DEFLATE block follows the padded data if any", so
/// a final block ends a deflate stream but not the message; what follows is a new stream.
#[test]
fn blocks_after_a_final_block_belong_to_the_same_message() {
    let final_hello = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    for role in ROLES {
        let mut payload = final_hello.to_vec();
        payload.extend(compress(b", World"));
        let mut wire = compressed_to(role, true, OP_TEXT, &payload);
        // The stream after the final block stays in use for the next message.
        let mut d = Deflater::new(6, 15);
        let mut second = final_hello.to_vec();
        second.extend(d.message(b", World"));
        wire.extend(compressed_to(role, true, OP_TEXT, &second));
        wire.extend(compressed_to(role, true, OP_TEXT, &d.message(b", World")));
        let mut conn = deflating(role, DeflateParams::default());
        assert_eq!(
            receive_all(
                &mut conn,
                &mut BytesMut::from(&wire[..]),
                &mut BytesMut::new()
            ),
            Ok(vec![
                Message::text("Hello, World"),
                Message::text("Hello, World"),
                Message::text(", World"),
            ])
        );
    }
}

#[test]
fn compressed_frames_from_a_reference_peer_decode_in_both_roles() {
    let contents = [
        Vec::new(),
        b"x".to_vec(),
        words(100, 1),
        words(70_000, 2),
        noise(200_000, 3),
        vec![0u8; 300_000],
    ];
    for role in ROLES {
        for content in &contents {
            let mut messages = vec![(OP_BINARY, Message::binary(content.clone()))];
            if let Ok(text) = String::from_utf8(content.clone()) {
                messages.push((OP_TEXT, Message::text(text)));
            }
            for (opcode, expected) in messages {
                for level in [0, 1, 6, 9] {
                    let payload = Deflater::new(level, 15).message(content);
                    let wire = compressed_to(role, true, opcode, &payload);
                    let mut input = BytesMut::from(&wire[..]);
                    let mut out = BytesMut::new();
                    let mut conn = deflating(role, DeflateParams::default());
                    assert_eq!(
                        conn.receive(&mut input, &mut out),
                        Ok(Some(expected.clone()))
                    );
                    assert!(input.is_empty() && out.is_empty());
                }
            }
        }
    }
}

#[test]
fn send_compresses_from_the_threshold_on_and_marks_only_that_frame_with_rsv1() {
    for role in ROLES {
        let (mut client, mut server) = pair(
            DeflateParams::default(),
            &with_threshold(32),
            Limits::default(),
        );
        let (sender, receiver) = ends(role, &mut client, &mut server);
        let msgs = [
            Message::text("a".repeat(31)),
            Message::text("a".repeat(32)),
            Message::binary(vec![7u8; 31]),
            Message::binary(vec![7u8; 32]),
            Message::text(String::from_utf8(words(5000, 4)).unwrap()),
        ];
        let (frames, got) = transfer(sender, receiver, &msgs);
        assert_eq!(got, msgs);
        let rsv: Vec<u8> = frames.iter().map(|f| f.rsv).collect();
        assert_eq!(rsv, [0, RSV1, 0, RSV1, RSV1]);
        let mut inflater = Inflater::new();
        for (f, m) in frames.iter().zip(&msgs) {
            assert!(f.fin);
            let expected_opcode = if matches!(m, Message::Text(_)) {
                OP_TEXT
            } else {
                OP_BINARY
            };
            assert_eq!(f.opcode, expected_opcode);
            let payload = match m {
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Binary(b) => b.to_vec(),
                _ => unreachable!(),
            };
            if f.rsv == RSV1 {
                assert_eq!(inflater.message(&f.payload).unwrap(), payload);
            } else {
                assert_eq!(f.payload, payload);
            }
        }
    }
}

#[test]
fn a_zero_threshold_compresses_even_an_empty_message_to_a_single_zero_byte() {
    for params in [DeflateParams::default(), p(true, true, 15, 15)] {
        for role in ROLES {
            let (mut client, mut server) = pair(params, &with_threshold(0), Limits::default());
            let (sender, receiver) = ends(role, &mut client, &mut server);
            let msgs = [
                Message::text(""),
                Message::binary(&b""[..]),
                Message::text("Hello"),
                Message::text(""),
                Message::text("Hello"),
            ];
            let (frames, got) = transfer(sender, receiver, &msgs);
            assert_eq!(got, msgs);
            let mut puff = Puff::default();
            for (f, m) in frames.iter().zip(&msgs) {
                if params.server_no_context_takeover && f.payload.len() >= m.len() {
                    // Without context takeover a message that does not shrink goes
                    // plain: the empty ones here.
                    assert_eq!((f.rsv, &f.payload[..]), (0, m_bytes(m)), "{params:?}");
                    continue;
                }
                assert_eq!(f.rsv, RSV1);
                if m.is_empty() {
                    // RFC 7692 section 7.2.3.6: an empty block's header, tail stripped.
                    assert_eq!(f.payload, [0x00], "{params:?}");
                }
                if params.server_no_context_takeover {
                    puff = Puff::default();
                }
                assert_eq!(puff.message(&f.payload).unwrap().len(), m.len());
            }
        }
    }
}

#[test]
fn send_uncompressed_and_control_frames_never_set_rsv1() {
    for role in ROLES {
        let (mut client, mut server) = pair(
            DeflateParams::default(),
            &with_threshold(0),
            Limits::default(),
        );
        let (sender, receiver) = ends(role, &mut client, &mut server);
        let big = words(10_000, 5);
        let mut wire = BytesMut::new();
        sender
            .send_uncompressed(
                &Message::text(String::from_utf8(big.clone()).unwrap()),
                &mut wire,
            )
            .unwrap();
        sender
            .send_uncompressed(&Message::binary(big.clone()), &mut wire)
            .unwrap();
        sender.send(&Message::Ping("p".into()), &mut wire).unwrap();
        sender.send(&Message::Pong("q".into()), &mut wire).unwrap();
        sender
            .send_frame(OpCode::Binary, &big[..100], false, &mut wire)
            .unwrap();
        sender
            .send_frame(OpCode::Continuation, &big[100..], true, &mut wire)
            .unwrap();
        let frames = frames_from(role, &wire);
        assert!(frames.iter().all(|f| f.rsv == 0), "{frames:?}");
        assert_eq!(frames[0].payload, big);
        assert_eq!(frames[1].payload, big);
        assert_eq!(
            sender.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );

        let mut out = BytesMut::new();
        let got = receive_all(receiver, &mut wire, &mut out).unwrap();
        assert_eq!(
            got,
            [
                Message::text(String::from_utf8(big.clone()).unwrap()),
                Message::binary(big.clone()),
                Message::Ping("p".into()),
                Message::Pong("q".into()),
                Message::binary(big.clone()),
            ]
        );
        assert_eq!(
            receiver.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );
        // The close goes out uncompressed too.
        let mut wire = BytesMut::new();
        sender.send(&Message::Close(None), &mut wire).unwrap();
        assert_eq!(frames_from(role, &wire)[0].rsv, 0);
    }
}

#[test]
fn a_compressed_message_may_be_fragmented_with_rsv1_on_the_first_frame_only() {
    let text = "fragmented and compressed: ünïcödé ✓, fragmented and compressed: ünïcödé ✓";
    let payload = compress(text.as_bytes());
    for role in ROLES {
        let masked = role == Role::Server;
        for i in 0..=payload.len() {
            for j in i..=payload.len() {
                let mut wire = frame(masked, false, RSV1, OP_TEXT, &payload[..i]);
                wire.extend(frame(masked, false, 0, OP_CONT, &payload[i..j]));
                wire.extend(frame(masked, true, 0, OP_PING, b"p"));
                wire.extend(frame(masked, true, 0, OP_CONT, &payload[j..]));
                let mut conn = deflating(role, DeflateParams::default());
                let mut out = BytesMut::new();
                let got = receive_all(&mut conn, &mut BytesMut::from(&wire[..]), &mut out);
                assert_eq!(
                    got,
                    Ok(vec![Message::Ping("p".into()), Message::text(text)]),
                    "{role:?} split at {i}, {j}"
                );
            }
        }
        // A large binary message in many fragments, fed a byte at a time and in chunks.
        let content = noise(50_000, 6);
        let payload = compress(&content);
        let mut wire = Vec::new();
        let pieces: Vec<&[u8]> = payload.chunks(5000).collect();
        for (k, piece) in pieces.iter().enumerate() {
            let (rsv, opcode) = if k == 0 {
                (RSV1, OP_BINARY)
            } else {
                (0, OP_CONT)
            };
            wire.extend(frame(masked, k + 1 == pieces.len(), rsv, opcode, piece));
        }
        for sizes in [&[1][..], &[777, 3, 4096]] {
            let mut conn = deflating(role, DeflateParams::default());
            let mut out = BytesMut::new();
            assert_eq!(
                receive_chunked(&mut conn, &wire, sizes, &mut out),
                Ok(vec![Message::binary(content.clone())])
            );
        }
    }
}

#[test]
fn rsv1_on_a_continuation_frame_is_1002() {
    for role in ROLES {
        let masked = role == Role::Server;
        let payload = compress(b"Hello, fragments");
        for (first_rsv, opcode) in [
            (RSV1, OP_TEXT),
            (RSV1, OP_BINARY),
            (0, OP_TEXT),
            (0, OP_BINARY),
        ] {
            let first: &[u8] = if first_rsv == RSV1 {
                &payload[..4]
            } else {
                b"plain"
            };
            let mut wire = frame(masked, false, first_rsv, opcode, first);
            wire.extend(frame(masked, true, RSV1, OP_CONT, &payload[4..]));
            let before = assert_rejected_by(
                deflating(role, DeflateParams::default()),
                &wire,
                Violation::ReservedBits,
                1002,
            );
            assert!(before.is_empty());
        }
    }
}

#[test]
fn rsv1_on_a_control_frame_is_1002_even_with_deflate() {
    for role in ROLES {
        let masked = role == Role::Server;
        for (opcode, payload) in [
            (OP_PING, &b"p"[..]),
            (OP_PONG, &b""[..]),
            (OP_CLOSE, &close_payload(1000, b"bye")[..]),
            (OP_PING, &HELLO[..]),
        ] {
            let wire = frame(masked, true, RSV1, opcode, payload);
            assert_rejected_by(
                deflating(role, DeflateParams::default()),
                &wire,
                Violation::ReservedBits,
                1002,
            );
            // Also in the middle of a compressed fragmented message.
            let mut wire = frame(masked, false, RSV1, OP_TEXT, &HELLO[..3]);
            wire.extend(frame(masked, true, RSV1, opcode, payload));
            assert_rejected_by(
                deflating(role, DeflateParams::default()),
                &wire,
                Violation::ReservedBits,
                1002,
            );
        }
    }
}

#[test]
fn rsv1_without_negotiated_deflate_is_1002() {
    for role in ROLES {
        for opcode in [OP_TEXT, OP_BINARY] {
            let wire = compressed_to(role, true, opcode, &HELLO);
            let before = assert_rejected(
                role,
                Limits::default(),
                &wire,
                Violation::ReservedBits,
                1002,
            );
            assert!(before.is_empty());
            let conn = Connection::new(role, Limits::default());
            assert!(!conn.is_compressing());
            assert_eq!(
                conn.deflate_state(),
                DeflateState {
                    compressor: false,
                    decompressor: false
                }
            );
        }
    }
}

#[test]
fn rsv2_and_rsv3_are_1002_even_with_deflate() {
    for role in ROLES {
        let masked = role == Role::Server;
        for rsv in [0b010, 0b001, 0b011, 0b110, 0b101, 0b111] {
            for (opcode, payload) in [
                (OP_TEXT, &HELLO[..]),
                (OP_BINARY, &HELLO[..]),
                (OP_PING, &b""[..]),
            ] {
                let wire = frame(masked, true, rsv, opcode, payload);
                assert_rejected_by(
                    deflating(role, DeflateParams::default()),
                    &wire,
                    Violation::ReservedBits,
                    1002,
                );
            }
            let mut wire = frame(masked, false, RSV1, OP_TEXT, &HELLO[..3]);
            wire.extend(frame(masked, true, rsv & 0b011, OP_CONT, &HELLO[3..]));
            assert_rejected_by(
                deflating(role, DeflateParams::default()),
                &wire,
                Violation::ReservedBits,
                1002,
            );
        }
    }
}

#[test]
fn context_takeover_makes_a_repeated_message_small_and_the_receiver_follows() {
    let msg = r#"{"type":"chat","room":"lobby","user":"alice","text":"hello everyone, how are you today?"}"#;
    for role in ROLES {
        let (mut client, mut server) = pair(
            DeflateParams::default(),
            &DeflateConfig::default(),
            Limits::default(),
        );
        let (sender, receiver) = ends(role, &mut client, &mut server);
        let msgs = [
            Message::text(msg),
            Message::text(msg),
            Message::binary(msg.as_bytes().to_vec()),
        ];
        let (frames, got) = transfer(sender, receiver, &msgs[..2]);
        assert_eq!(got, msgs[..2]);
        let (first, second) = (frames[0].payload.len(), frames[1].payload.len());
        assert!(second * 5 < first, "second {second} vs first {first}");
        // Alone, the second payload does not inflate to the message: it refers back.
        assert_ne!(
            Inflater::new().message(&frames[1].payload),
            Ok(msg.as_bytes().to_vec())
        );
        assert_eq!(
            Puff::default().message(&frames[1].payload),
            Err("distance too far back".into())
        );
        // An uncompressed message in between leaves both windows alone.
        let mut wire = BytesMut::new();
        sender
            .send_uncompressed(&Message::text("x".repeat(500)), &mut wire)
            .unwrap();
        let mut out = BytesMut::new();
        assert_eq!(
            receive_all(receiver, &mut wire, &mut out),
            Ok(vec![Message::text("x".repeat(500))])
        );
        let (more, got) = transfer(sender, receiver, &msgs[2..]);
        assert_eq!(got, msgs[2..]);
        assert_eq!(more[0].payload.len(), second);

        let mut puff = Puff::default();
        let mut inflater = Inflater::new();
        for f in frames.iter().chain(&more) {
            assert_eq!(puff.message(&f.payload).unwrap(), msg.as_bytes());
            assert_eq!(inflater.message(&f.payload).unwrap(), msg.as_bytes());
        }
        assert_eq!(
            sender.deflate_state(),
            DeflateState {
                compressor: true,
                decompressor: false
            }
        );
        assert_eq!(
            receiver.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: true
            }
        );
    }
}

#[test]
fn without_context_takeover_each_message_stands_alone() {
    // Repetitive enough to shrink on its own: without context takeover a message that
    // does not shrink is sent plain.
    let msg = r#"{"type":"chat","room":"lobby","user":"alice","text":"hello hello hello hello hello hello hello everyone"}"#;
    let no_takeover = p(true, true, 15, 15);
    for role in ROLES {
        let (mut client, mut server) =
            pair(no_takeover, &DeflateConfig::default(), Limits::default());
        let (sender, receiver) = ends(role, &mut client, &mut server);
        let mut payloads = Vec::new();
        for _ in 0..3 {
            let (frames, got) = transfer(sender, receiver, &[Message::text(msg)]);
            assert_eq!(got, [Message::text(msg)]);
            assert_eq!(frames[0].rsv, RSV1);
            // Each inflates with a fresh window.
            assert_eq!(inflate(&frames[0].payload), msg.as_bytes());
            assert_eq!(
                Puff::default().message(&frames[0].payload).unwrap(),
                msg.as_bytes()
            );
            payloads.push(frames[0].payload.clone());
            assert_eq!(
                sender.deflate_state(),
                DeflateState {
                    compressor: false,
                    decompressor: false
                }
            );
            assert_eq!(
                receiver.deflate_state(),
                DeflateState {
                    compressor: false,
                    decompressor: false
                }
            );
        }
        assert_eq!(payloads[0], payloads[1]);
        assert_eq!(payloads[1], payloads[2]);
        let level = DeflateConfig::default().level;
        assert_eq!(
            payloads[0],
            Deflater::new(level, 15).message(msg.as_bytes())
        );
    }
}

#[test]
fn each_direction_follows_its_own_context_takeover_flag() {
    let msg = words(400, 7);
    for snct in [false, true] {
        for cnct in [false, true] {
            let params = p(snct, cnct, 15, 15);
            let (mut client, mut server) =
                pair(params, &DeflateConfig::default(), Limits::default());
            // Client to server, twice.
            let (frames, got) = transfer(
                &mut client,
                &mut server,
                &[Message::binary(msg.clone()), Message::binary(msg.clone())],
            );
            assert_eq!(got.len(), 2);
            assert_eq!(frames[0].payload == frames[1].payload, cnct, "{params:?}");
            assert_eq!(
                client.deflate_state(),
                DeflateState {
                    compressor: !cnct,
                    decompressor: false
                },
                "{params:?}"
            );
            assert_eq!(
                server.deflate_state(),
                DeflateState {
                    compressor: false,
                    decompressor: !cnct
                },
                "{params:?}"
            );
            // Server to client, twice.
            let (frames, got) = transfer(
                &mut server,
                &mut client,
                &[Message::binary(msg.clone()), Message::binary(msg.clone())],
            );
            assert_eq!(got.len(), 2);
            assert_eq!(frames[0].payload == frames[1].payload, snct, "{params:?}");
            assert_eq!(
                client.deflate_state(),
                DeflateState {
                    compressor: !cnct,
                    decompressor: !snct
                },
                "{params:?}"
            );
            assert_eq!(
                server.deflate_state(),
                DeflateState {
                    compressor: !snct,
                    decompressor: !cnct
                },
                "{params:?}"
            );
        }
    }
}

#[test]
fn a_receiver_that_resets_decodes_fresh_streams_and_rejects_back_references() {
    for role in ROLES {
        // The peer of `role` promised not to take over context.
        let params = match role {
            Role::Client => p(true, false, 15, 15),
            Role::Server => p(false, true, 15, 15),
        };
        let mut conn = deflating(role, params);
        let mut out = BytesMut::new();
        for k in 0..3 {
            let content = words(300 + k, 8);
            let wire = compressed_to(role, true, OP_BINARY, &compress(&content));
            assert_eq!(
                conn.receive(&mut BytesMut::from(&wire[..]), &mut out),
                Ok(Some(Message::binary(content)))
            );
            assert_eq!(
                conn.deflate_state(),
                DeflateState {
                    compressor: false,
                    decompressor: false
                }
            );
        }
        // While a compressed message is in progress the decompressor exists.
        let payload = compress(&words(3000, 9));
        let first = compressed_to(role, false, OP_BINARY, &payload[..100]);
        assert_eq!(
            conn.receive(&mut BytesMut::from(&first[..]), &mut out),
            Ok(None)
        );
        assert_eq!(
            conn.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: true
            }
        );
        let last = frame(role == Role::Server, true, 0, OP_CONT, &payload[100..]);
        assert_eq!(
            conn.receive(&mut BytesMut::from(&last[..]), &mut out),
            Ok(Some(Message::binary(words(3000, 9))))
        );
        assert_eq!(
            conn.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );

        // The RFC's second "Hello" refers into the first: a reset window cannot follow.
        let mut wire = compressed_to(role, true, OP_TEXT, &HELLO);
        wire.extend(compressed_to(role, true, OP_TEXT, &HELLO_AGAIN));
        let before = assert_rejected_by(
            deflating(role, params),
            &wire,
            Violation::InvalidCompressedData,
            1007,
        );
        assert_eq!(before, [Message::text("Hello")]);
    }
}

#[test]
fn lazy_state_appears_on_first_use_only() {
    for role in ROLES {
        let (mut client, mut server) = pair(
            DeflateParams::default(),
            &with_threshold(32),
            Limits::default(),
        );
        assert!(client.is_compressing() && server.is_compressing());
        let (sender, receiver) = ends(role, &mut client, &mut server);
        assert_eq!(
            sender.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );
        assert_eq!(
            receiver.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );
        // Small, uncompressed and control traffic allocates nothing.
        transfer(
            sender,
            receiver,
            &[Message::text("short"), Message::binary(vec![1; 31])],
        );
        let mut wire = BytesMut::new();
        sender.send(&Message::Ping("p".into()), &mut wire).unwrap();
        sender
            .send_uncompressed(&Message::binary(vec![0; 1000]), &mut wire)
            .unwrap();
        receive_all(receiver, &mut wire, &mut BytesMut::new()).unwrap();
        assert_eq!(
            sender.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );
        assert_eq!(
            receiver.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );
        // The first compressed message creates the sender's compressor and the
        // receiver's decompressor.
        transfer(sender, receiver, &[Message::binary(vec![0; 1000])]);
        assert_eq!(
            sender.deflate_state(),
            DeflateState {
                compressor: true,
                decompressor: false
            }
        );
        assert_eq!(
            receiver.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: true
            }
        );
        transfer(receiver, sender, &[Message::binary(vec![0; 1000])]);
        assert_eq!(
            sender.deflate_state(),
            DeflateState {
                compressor: true,
                decompressor: true
            }
        );
        assert_eq!(
            receiver.deflate_state(),
            DeflateState {
                compressor: true,
                decompressor: true
            }
        );
    }
}

#[test]
fn invalid_compressed_data_is_1007() {
    let bad: [&[u8]; 5] = [
        // BTYPE 11 is reserved
        &[0xff, 0xff, 0xff, 0xff],
        &[0x07],
        // stored block whose NLEN is not the complement of LEN
        &[0x00, 0x05, 0x00, 0x00, 0x00, b'H', b'e', b'l', b'l', b'o'],
        // a back-reference with nothing behind it
        &HELLO_AGAIN,
        // garbage after a final block
        &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xff],
    ];
    for role in ROLES {
        let masked = role == Role::Server;
        for payload in bad {
            for opcode in [OP_TEXT, OP_BINARY] {
                let wire = compressed_to(role, true, opcode, payload);
                let before = assert_rejected_by(
                    deflating(role, DeflateParams::default()),
                    &wire,
                    Violation::InvalidCompressedData,
                    1007,
                );
                assert!(before.is_empty());
                // The same in a continuation after a good start.
                let mut wire = frame(masked, false, RSV1, opcode, &[0x00, 0x00, 0x00, 0xff, 0xff]);
                wire.extend(frame(masked, true, 0, OP_CONT, payload));
                assert_rejected_by(
                    deflating(role, DeflateParams::default()),
                    &wire,
                    Violation::InvalidCompressedData,
                    1007,
                );
            }
        }
    }
}

#[test]
fn invalid_utf8_inside_compressed_text_is_1007() {
    for role in ROLES {
        let masked = role == Role::Server;
        for content in [
            &[0xff][..],
            b"Hello \xc3",
            b"\xed\xa0\x80",
            b"valid for a while, then \xc0\xaf",
        ] {
            let wire = compressed_to(role, true, OP_TEXT, &compress(content));
            assert_rejected_by(
                deflating(role, DeflateParams::default()),
                &wire,
                Violation::InvalidUtf8,
                1007,
            );
            // As binary the same bytes are fine.
            let wire = compressed_to(role, true, OP_BINARY, &compress(content));
            let mut conn = deflating(role, DeflateParams::default());
            assert_eq!(
                conn.receive(&mut BytesMut::from(&wire[..]), &mut BytesMut::new()),
                Ok(Some(Message::binary(content.to_vec())))
            );
        }
        // Invalid UTF-8 in the second fragment.
        let mut d = Deflater::new(6, 15);
        let mut wire = frame(
            masked,
            false,
            RSV1,
            OP_TEXT,
            &d.feed(b"fine so far", FlushCompress::Sync),
        );
        wire.extend(frame(masked, true, 0, OP_CONT, &d.message(b"\xff")));
        let before = assert_rejected_by(
            deflating(role, DeflateParams::default()),
            &wire,
            Violation::InvalidUtf8,
            1007,
        );
        assert!(before.is_empty());
        // A character split between the output of two fragments is fine.
        let mut d = Deflater::new(6, 15);
        let mut wire = frame(
            masked,
            false,
            RSV1,
            OP_TEXT,
            &d.feed(b"caf\xc3", FlushCompress::Sync),
        );
        wire.extend(frame(masked, true, 0, OP_CONT, &d.message(b"\xa9")));
        let mut conn = deflating(role, DeflateParams::default());
        assert_eq!(
            conn.receive(&mut BytesMut::from(&wire[..]), &mut BytesMut::new()),
            Ok(Some(Message::text("café")))
        );
    }
}

/// 10 MiB of zeros in one raw deflate message.
fn bomb() -> Vec<u8> {
    let mut d = Deflater::new(9, 15);
    let zeros = vec![0u8; 64 << 10];
    let mut out = Vec::new();
    for _ in 0..160 {
        out.extend(d.feed(&zeros, FlushCompress::None));
    }
    out.extend(d.message(&[]));
    out
}

#[test]
fn a_decompression_bomb_is_1009_without_allocating_the_message() {
    let payload = bomb();
    assert!(payload.len() < 16 << 10, "bomb of {} bytes", payload.len());
    let limits = Limits {
        max_message_size: MIB,
        ..Limits::default()
    };
    let too_large = Violation::MessageTooLarge {
        len: MIB as u64 + 1,
        limit: MIB,
    };
    for role in ROLES {
        let masked = role == Role::Server;
        let one_frame = compressed_to(role, true, OP_BINARY, &payload);
        let text_frame = compressed_to(role, true, OP_TEXT, &payload);
        let mut fragments = Vec::new();
        for (k, piece) in payload.chunks(payload.len() / 8 + 1).enumerate() {
            let (rsv, opcode) = if k == 0 {
                (RSV1, OP_BINARY)
            } else {
                (0, OP_CONT)
            };
            fragments.extend(frame(masked, false, rsv, opcode, piece));
        }
        fragments.extend(frame(masked, true, 0, OP_CONT, b""));
        for wire in [&one_frame, &text_frame, &fragments] {
            let mut conn = Connection::new(role, limits.clone())
                .with_deflate(DeflateParams::default(), &DeflateConfig::default());
            let mut input = BytesMut::from(&wire[..]);
            let mut out = BytesMut::new();
            let (result, peak, largest) = measure(|| {
                let mut got = Vec::new();
                loop {
                    match conn.receive(&mut input, &mut out) {
                        Ok(Some(m)) => got.push(m),
                        Ok(None) => break Ok(got),
                        Err(e) => break Err(e),
                    }
                }
            });
            let err = result.unwrap_err();
            assert!(largest <= MIB + 1, "{role:?}: a block of {largest} bytes");
            assert!(peak < MIB + (256 << 10), "{role:?}: {peak} bytes at once");
            check_failure(role, &mut conn, &mut out, err, too_large.clone(), 1009);
        }
    }
}

#[test]
fn a_compressed_message_exactly_at_the_limit_passes_and_one_byte_more_is_1009() {
    let limit = 256 << 10;
    let limits = Limits {
        max_message_size: limit,
        ..Limits::default()
    };
    for role in ROLES {
        for content in [words(limit, 10), noise(limit, 11)] {
            let (mut client, mut server) = pair(
                DeflateParams::default(),
                &DeflateConfig::default(),
                limits.clone(),
            );
            let (sender, receiver) = ends(role, &mut client, &mut server);
            let (frames, got) = transfer(sender, receiver, &[Message::binary(content.clone())]);
            assert_eq!(frames[0].rsv, RSV1);
            assert_eq!(got, [Message::binary(content.clone())]);
        }
        // One byte more: compressible, so the frame is small and inflating stops it.
        let mut content = words(limit + 1, 12);
        let (mut client, mut server) = pair(
            DeflateParams::default(),
            &DeflateConfig::default(),
            limits.clone(),
        );
        let (sender, receiver) = ends(role, &mut client, &mut server);
        let mut wire = BytesMut::new();
        sender
            .send(&Message::binary(content.clone()), &mut wire)
            .unwrap();
        assert!(wire.len() < limit / 2);
        let receiver_role = receiver.role();
        let mut out = BytesMut::new();
        let err = receiver.receive(&mut wire, &mut out).unwrap_err();
        check_failure(
            receiver_role,
            receiver,
            &mut out,
            err,
            Violation::MessageTooLarge {
                len: limit as u64 + 1,
                limit,
            },
            1009,
        );
        // And the reference peer's frame of exactly the limit passes.
        content.truncate(limit);
        let mut conn = Connection::new(peer_of(role), limits.clone())
            .with_deflate(DeflateParams::default(), &DeflateConfig::default());
        let wire = compressed_to(peer_of(role), true, OP_BINARY, &compress(&content));
        assert_eq!(
            conn.receive(&mut BytesMut::from(&wire[..]), &mut BytesMut::new()),
            Ok(Some(Message::binary(content)))
        );
    }
}

/// Compressed bytes can outnumber what they inflate to, so the header check before
/// buffering allows deflate's worst case over the room left (a ninth, plus 64 bytes for
/// flushes); inflating holds the message to the limit exactly.
#[test]
fn compressed_frames_are_checked_before_buffering_with_room_for_deflate_overhead() {
    let limit = 1024;
    let limits = Limits {
        max_message_size: limit,
        ..Limits::default()
    };
    let conn = |role| {
        Connection::new(role, limits.clone())
            .with_deflate(DeflateParams::default(), &DeflateConfig::default())
    };
    for role in ROLES {
        let masked = role == Role::Server;
        // (rsv, announced length, rejected)
        for (rsv, len, rejected) in [
            (RSV1, 1024 + 128 + 64, false),
            (RSV1, 1024 + 128 + 64 + 1, true),
            (0, 1024, false),
            (0, 1025, true),
        ] {
            let mut c = conn(role);
            let mut input = BytesMut::from(&header(masked, true, rsv, OP_BINARY, len)[..]);
            let mut out = BytesMut::new();
            let result = c.receive(&mut input, &mut out);
            if rejected {
                let too_large = Violation::MessageTooLarge { len, limit };
                check_failure(role, &mut c, &mut out, result.unwrap_err(), too_large, 1009);
            } else {
                assert_eq!(result, Ok(None), "{rsv} {len}");
                assert_eq!(c.state(), ConnectionState::Open);
            }
        }
        // A continuation gets the room the inflated fragments left: 24 bytes here.
        let first = Deflater::new(6, 15).feed(&words(1000, 15), FlushCompress::Sync);
        for (len, rejected) in [(24 + 3 + 64, false), (24 + 3 + 64 + 1, true)] {
            let mut c = conn(role);
            let mut input = BytesMut::from(&frame(masked, false, RSV1, OP_TEXT, &first)[..]);
            input.extend_from_slice(&header(masked, true, 0, OP_CONT, len));
            let mut out = BytesMut::new();
            let result = c.receive(&mut input, &mut out);
            if rejected {
                let too_large = Violation::MessageTooLarge {
                    len: 1000 + len,
                    limit,
                };
                check_failure(role, &mut c, &mut out, result.unwrap_err(), too_large, 1009);
            } else {
                assert_eq!(result, Ok(None));
            }
        }
        // Incompressible data at the limit, from peers at level 0 (stored blocks) and 1
        // (fixed Huffman codes, over a sixteenth larger), whole and in fragments.
        let content = noise(limit, 16);
        for level in [0, 1] {
            let payload = Deflater::new(level, 15).message(&content);
            assert!(payload.len() > limit, "level {level}: {}", payload.len());
            let mut wire = compressed_to(role, true, OP_BINARY, &payload);
            let pieces: Vec<&[u8]> = payload.chunks(300).collect();
            for (k, piece) in pieces.iter().enumerate() {
                let (rsv, opcode) = if k == 0 {
                    (RSV1, OP_BINARY)
                } else {
                    (0, OP_CONT)
                };
                wire.extend(frame(masked, k + 1 == pieces.len(), rsv, opcode, piece));
            }
            let mut c = conn(role);
            assert_eq!(
                receive_all(&mut c, &mut BytesMut::from(&wire[..]), &mut BytesMut::new()),
                Ok(vec![
                    Message::binary(content.clone()),
                    Message::binary(content.clone())
                ])
            );
        }
    }
}

#[test]
fn an_unbounded_message_limit_still_inflates() {
    let limits = Limits {
        max_message_size: usize::MAX,
        ..Limits::default()
    };
    for role in ROLES {
        let mut conn = Connection::new(role, limits.clone())
            .with_deflate(DeflateParams::default(), &DeflateConfig::default());
        let content = words(20_000, 13);
        let mut wire = BytesMut::from(&compressed_to(role, true, OP_TEXT, &HELLO)[..]);
        wire.extend_from_slice(&compressed_to(role, true, OP_BINARY, &compress(&content)));
        assert_eq!(
            receive_all(&mut conn, &mut wire, &mut BytesMut::new()),
            Ok(vec![Message::text("Hello"), Message::binary(content)])
        );
    }
}

#[test]
fn compressed_send_is_refused_during_a_fragmented_send_and_after_close() {
    for role in ROLES {
        let mut conn = Connection::new(role, Limits::default())
            .with_deflate(DeflateParams::default(), &with_threshold(0));
        let mut wire = BytesMut::new();
        conn.send_frame(OpCode::Text, b"part", false, &mut wire)
            .unwrap();
        let written = wire.len();
        assert_eq!(
            conn.send(&Message::text("x".repeat(100)), &mut wire),
            Err(Error::InvalidSend(
                duplex_proto::InvalidSend::FragmentInProgress
            ))
        );
        assert_eq!(wire.len(), written);
        assert_eq!(
            conn.deflate_state(),
            DeflateState {
                compressor: false,
                decompressor: false
            }
        );
        conn.send(&Message::Ping("p".into()), &mut wire).unwrap();
        conn.send_frame(OpCode::Continuation, b" end", true, &mut wire)
            .unwrap();
        conn.send(&Message::text("x".repeat(100)), &mut wire)
            .unwrap();
        let rsv: Vec<u8> = frames_from(role, &wire).iter().map(|f| f.rsv).collect();
        assert_eq!(rsv, [0, 0, 0, RSV1]);

        conn.close(None, &mut wire).unwrap();
        let written = wire.len();
        assert_eq!(
            conn.send(&Message::text("x".repeat(100)), &mut wire),
            Err(Error::SendAfterClose)
        );
        assert_eq!(wire.len(), written);
    }
}

#[test]
fn every_window_size_stays_within_its_window_on_the_wire() {
    let base = words(20_000, 14);
    let mut reversed = base.clone();
    reversed.reverse();
    let msgs = [
        Message::binary(base.clone()),
        Message::binary(reversed),
        Message::binary(base.clone()),
    ];
    for bits in 8..=15u8 {
        let params = p(false, false, bits, bits);
        for role in ROLES {
            let (mut client, mut server) =
                pair(params, &DeflateConfig::default(), Limits::default());
            let (sender, receiver) = ends(role, &mut client, &mut server);
            let (frames, got) = transfer(sender, receiver, &msgs);
            assert_eq!(got, msgs);
            let mut puff = Puff::default();
            for (f, m) in frames.iter().zip(&msgs) {
                let Message::Binary(b) = m else {
                    unreachable!()
                };
                assert_eq!(puff.message(&f.payload).unwrap(), b.to_vec());
            }
            assert!(
                puff.max_distance <= 1 << bits,
                "{bits} bits: a reference {} back",
                puff.max_distance
            );
            if bits == 15 {
                assert!(puff.max_distance > 1 << 12, "a large window is used");
            }
        }
    }
}

// ================================================================ random traffic

const WORDS: &[&str] = &[
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "{\"id\":",
    "\"name\":",
    "ünïcödé",
    "✓",
    "🦀",
    "\n",
];

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        proptest::collection::vec(proptest::sample::select(WORDS), 0..600)
            .prop_map(|w| Message::text(w.join(" "))),
        proptest::collection::vec(any::<char>(), 0..1000)
            .prop_map(|c| Message::text(c.into_iter().collect::<String>())),
        proptest::collection::vec(any::<u8>(), 0..4096).prop_map(Message::binary),
        (any::<u8>(), 1usize..64, 0usize..4096).prop_map(|(seed, period, len)| {
            Message::binary(
                (0..len)
                    .map(|i| seed.wrapping_add((i % period) as u8))
                    .collect::<Vec<u8>>(),
            )
        }),
    ]
}

/// A message to send: from the client or the server, and whether through
/// `send_uncompressed`.
fn traffic() -> impl Strategy<Value = Vec<(bool, Message, bool)>> {
    proptest::collection::vec(
        (any::<bool>(), message(), proptest::bool::weighted(0.25)),
        0..16,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_traffic_round_trips_in_any_chunking(
        snct in any::<bool>(),
        cnct in any::<bool>(),
        server_bits in 8u8..=15,
        client_bits in 8u8..=15,
        level in 0u32..=9,
        threshold in 0usize..100,
        traffic in traffic(),
        to_server_chunks in proptest::collection::vec(1usize..700, 1..12),
        to_client_chunks in proptest::collection::vec(1usize..700, 1..12),
    ) {
        let params = p(snct, cnct, server_bits, client_bits);
        let config = DeflateConfig { level, threshold, ..DeflateConfig::default() };
        let (mut client, mut server) = pair(params, &config, Limits::default());
        let (mut to_server, mut to_client) = (BytesMut::new(), BytesMut::new());
        let (mut for_server, mut for_client) = (Vec::new(), Vec::new());
        let (mut rsv_to_server, mut rsv_to_client) = (Vec::new(), Vec::new());
        for (from_client, msg, plain) in &traffic {
            let (sender, wire, expected, rsv) = if *from_client {
                (&mut client, &mut to_server, &mut for_server, &mut rsv_to_server)
            } else {
                (&mut server, &mut to_client, &mut for_client, &mut rsv_to_client)
            };
            if *plain {
                sender.send_uncompressed(msg, wire).unwrap();
            } else {
                sender.send(msg, wire).unwrap();
            }
            expected.push(msg.clone());
            // A sender without context takeover sends plain bytes when compressing did
            // not pay, so either flag is right for its compressible-size messages.
            let sender_resets = if *from_client { cnct } else { snct };
            rsv.push(if *plain || msg.len() < threshold {
                Some(0)
            } else if sender_resets {
                None
            } else {
                Some(RSV1)
            });
        }
        let agrees = |got: &[u8], want: &[Option<u8>]| {
            got.len() == want.len() && got.iter().zip(want).all(|(g, w)| w.is_none_or(|w| w == *g))
        };
        let frames: Vec<u8> = frames_from(Role::Client, &to_server).iter().map(|f| f.rsv).collect();
        prop_assert!(agrees(&frames, &rsv_to_server), "{:?} vs {:?}", frames, rsv_to_server);
        let frames: Vec<u8> = frames_from(Role::Server, &to_client).iter().map(|f| f.rsv).collect();
        prop_assert!(agrees(&frames, &rsv_to_client), "{:?} vs {:?}", frames, rsv_to_client);

        let mut out = BytesMut::new();
        let got = receive_chunked(&mut server, &to_server, &to_server_chunks, &mut out);
        prop_assert_eq!(got, Ok(for_server));
        let got = receive_chunked(&mut client, &to_client, &to_client_chunks, &mut out);
        prop_assert_eq!(got, Ok(for_client));
        prop_assert!(out.is_empty());

        // zlib state is held exactly where context is taken over and was used.
        let client_compressed = rsv_to_server.contains(&Some(RSV1));
        let server_compressed = rsv_to_client.contains(&Some(RSV1));
        prop_assert_eq!(
            client.deflate_state(),
            DeflateState {
                compressor: client_compressed && !cnct,
                decompressor: server_compressed && !snct,
            }
        );
        prop_assert_eq!(
            server.deflate_state(),
            DeflateState {
                compressor: server_compressed && !snct,
                decompressor: client_compressed && !cnct,
            }
        );
    }
}

/// The payload bytes of a data message.
fn m_bytes(m: &Message) -> &[u8] {
    match m {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
        _ => &[],
    }
}

#[test]
fn without_context_takeover_a_message_that_does_not_shrink_goes_plain() {
    for role in ROLES {
        let (mut client, mut server) =
            pair(p(true, true, 15, 15), &with_threshold(0), Limits::default());
        let (sender, receiver) = ends(role, &mut client, &mut server);
        let msgs = [
            Message::text("ab"),
            Message::text("hello hello hello hello hello hello hello"),
        ];
        let (frames, got) = transfer(sender, receiver, &msgs);
        assert_eq!(got, msgs);
        assert_eq!((frames[0].rsv, &frames[0].payload[..]), (0, &b"ab"[..]));
        assert_eq!(frames[1].rsv, RSV1);
        assert!(frames[1].payload.len() < msgs[1].len());
    }
}

// ================================================================ shared frames

/// Sends `msgs` from `server`, each either normally or, where `shared` has a frame, as that
/// shared frame; returns what `client` decodes.
fn send_mixed(
    server: &mut Connection,
    client: &mut Connection,
    steps: &[(Message, Option<&duplex_proto::frame::SharedFrame>)],
) -> (Vec<WireFrame>, Vec<Message>) {
    let mut wire = BytesMut::new();
    for (m, shared) in steps {
        match shared {
            Some(f) => wire.extend_from_slice(&server.send_shared(f).unwrap()),
            None => server.send(m, &mut wire).unwrap(),
        }
    }
    let frames = frames_from(Role::Server, &wire);
    let mut out = BytesMut::new();
    let got = receive_all(client, &mut wire, &mut out).unwrap();
    assert!(wire.is_empty(), "every frame consumed");
    (frames, got)
}

#[test]
fn a_shared_frame_is_compressed_once_per_setting_and_decodes_amid_context_takeover() {
    use duplex_proto::frame::SharedFrame;
    let text = String::from_utf8(words(4000, 7)).unwrap();
    let shared = SharedFrame::new(&Message::text(text.clone())).unwrap();
    // Three connections: two with the default setting (context takeover, 15 bits), one
    // with a 10-bit window and no context takeover.
    let mut a = pair(
        p(false, false, 15, 15),
        &DeflateConfig::default(),
        Limits::default(),
    );
    let mut b = pair(
        p(false, false, 15, 15),
        &DeflateConfig::default(),
        Limits::default(),
    );
    let mut c = pair(
        p(true, true, 10, 15),
        &cfg(true, true, 10, 15),
        Limits::default(),
    );
    let before = Message::text(format!("{text} before"));
    let after = Message::text(format!("{text} after"));
    let mut encodings = Vec::new();
    for (client, server) in [
        (&mut a.0, &mut a.1),
        (&mut b.0, &mut b.1),
        (&mut c.0, &mut c.1),
    ] {
        // A message before builds up the compressor's history; the one after must not
        // refer back into history the peer's window no longer lines up with.
        let steps = [
            (before.clone(), None),
            (Message::text(text.clone()), Some(&shared)),
            (after.clone(), None),
            (after.clone(), None),
        ];
        let (frames, got) = send_mixed(server, client, &steps);
        assert_eq!(
            got,
            steps.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
            "the client decodes every message, shared or not"
        );
        assert!(
            frames.iter().all(|f| f.rsv == RSV1),
            "all four are compressed"
        );
        assert!(
            frames[1].payload.len() < text.len() / 2,
            "the shared frame is compressed ({} bytes)",
            frames[1].payload.len()
        );
        encodings.push(server.send_shared(&shared).unwrap());
    }
    assert_eq!(
        encodings[0].as_ptr(),
        encodings[1].as_ptr(),
        "connections with one setting queue the same bytes"
    );
    assert_ne!(
        encodings[0], encodings[2],
        "another window, another encoding"
    );
    assert_eq!(
        inflate(&frames_from(Role::Server, &encodings[2])[0].payload),
        text.as_bytes()
    );
}

#[test]
fn a_shared_frame_goes_plain_below_the_threshold_without_deflate_and_when_it_does_not_shrink() {
    use duplex_proto::frame::SharedFrame;
    let (mut client, mut server) = pair(
        p(false, false, 15, 15),
        &with_threshold(64),
        Limits::default(),
    );
    let small = SharedFrame::new(&Message::text("tick")).unwrap();
    assert_eq!(server.send_shared(&small).unwrap(), small.bytes());
    let random = SharedFrame::new(&Message::binary(noise(4096, 3))).unwrap();
    assert_eq!(
        server.send_shared(&random).unwrap(),
        random.bytes(),
        "noise does not shrink"
    );
    let ping = SharedFrame::new(&Message::Ping(vec![7u8; 100].into())).unwrap();
    assert_eq!(
        server.send_shared(&ping).unwrap(),
        ping.bytes(),
        "control frames stay plain"
    );
    let mut wire = BytesMut::new();
    for f in [&small, &random, &ping] {
        wire.extend_from_slice(f.bytes());
    }
    let mut out = BytesMut::new();
    let got = receive_all(&mut client, &mut wire, &mut out).unwrap();
    assert_eq!(got.len(), 3);
    let mut plain = Connection::new(Role::Server, Limits::default());
    let big = SharedFrame::new(&Message::text("x".repeat(1000))).unwrap();
    assert_eq!(
        plain.send_shared(&big).unwrap(),
        big.bytes(),
        "no deflate, no compression"
    );
    assert!(matches!(
        Connection::new(Role::Client, Limits::default()).send_shared(&big),
        Err(Error::InvalidSend(
            duplex_proto::InvalidSend::SharedFromClient
        ))
    ));
}

/// Found by the inflate_limits fuzz target: with a window below 15 bits, flate2's zlib-rs
/// backend resets an inflater by allocating a new one (about 47 KiB), and a final block
/// inside a message resets it, so a peer could make us allocate and initialise zlib
/// state for every 2 bytes it sent ("03 00", an empty final block).
#[test]
fn final_blocks_inside_a_message_allocate_no_zlib_state() {
    for role in ROLES {
        // The peer's window is 9 bits, and it keeps its context.
        let mut conn = deflating(role, p(false, false, 9, 9));
        let mut out = BytesMut::new();
        let mut first = BytesMut::from(&compressed_to(role, true, OP_TEXT, &HELLO)[..]);
        assert_eq!(
            conn.receive(&mut first, &mut out),
            Ok(Some(Message::text("Hello")))
        );
        let blocks = [0x03, 0x00].repeat(2000);
        let mut wire = BytesMut::from(&compressed_to(role, true, OP_TEXT, &blocks)[..]);
        let (got, allocated) = allocated_by(|| conn.receive(&mut wire, &mut out));
        assert_eq!(got, Ok(Some(Message::text(""))), "{role:?}");
        assert!(
            allocated < 64 << 10,
            "{role:?}: 2000 empty final blocks allocated {allocated} bytes"
        );
    }
}
