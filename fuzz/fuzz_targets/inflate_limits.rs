//! The inflate path under tiny message limits: one compressed message, in 1 to 4
//! fragments, received by a connection whose `max_message_size` is at most 4096.
//!
//! Input: a config byte (role, the sender's window bits and context takeover, text or
//! binary), the limit (u16 % 4097), the fragment count, then the compressed payload.
//!
//! Invariants:
//! - a delivered message is at most the limit (and text is UTF-8);
//! - the outcome matches a reference inflate of the fragments written here with
//!   flate2 directly: the same bytes, or `MessageTooLarge` when they exceed the limit, or
//!   `InvalidCompressedData` / `InvalidUtf8` when they are not valid;
//! - while receiving, the heap grows by at most `limit + OVERHEAD` bytes at its peak,
//!   zlib's own state apart (at most one inflate state), measured by the counting
//!   allocator below: a small payload cannot make the connection allocate more than the
//!   limit allows.
#![no_main]

use bytes::BytesMut;
use duplex_fuzz::{frame, Input};
use duplex_proto::deflate::{DeflateConfig, DeflateParams};
use duplex_proto::{Connection, Error, Limits, Message, Role, Violation};
use flate2::{Decompress, FlushDecompress, Status};
use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Heap bytes a receive may hold beyond the message itself: the boxed partial message,
/// the `Bytes` header and the like.
const OVERHEAD: usize = 1024;

/// zlib state (zlib-rs allocates it 64-byte aligned, which nothing else here asks for)
/// is counted apart: one inflate state is about 47 KiB whatever the window, and a call
/// may create one, when the per-thread pool has none; resets must not allocate.
const ZLIB_ALIGN: usize = 64;
const MAX_ZLIB_STATES: usize = 1;
const ZLIB_STATE: usize = 48 * 1024;

/// Counts live heap bytes and their peak, zlib state apart, so the target can check
/// what one call allocated. A reallocation counts only its growth: the moment both
/// blocks exist is the system allocator's business, not a size the code asked for.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ZLIB_ALLOCS: AtomicUsize = AtomicUsize::new(0);

fn grew(layout: Layout, by: usize) {
    if layout.align() >= ZLIB_ALIGN {
        ZLIB_ALLOCS.fetch_add(by, Relaxed);
        return;
    }
    let now = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

fn shrank(layout: Layout, by: usize) {
    if layout.align() < ZLIB_ALIGN {
        LIVE.fetch_sub(by, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; the counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout, layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout, layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout, layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(layout, new_size - layout.size());
            } else {
                shrank(layout, layout.size() - new_size);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The sync-flush tail a receiver appends (RFC 7692 section 7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

#[derive(Debug, PartialEq)]
enum Reference {
    Message(Vec<u8>),
    TooLarge,
    Invalid,
}

/// Inflates the fragments as one message, as RFC 7692 describes it, written apart from
/// the crate's codec (one output buffer of `limit + 1` bytes, no pool, no growth
/// steps): the tail goes after the last fragment; a final block ends a deflate stream
/// and the next one starts a fresh stream; output past `limit` is too large. One
/// leniency is the crate's own, modelled here on purpose: a final block followed by
/// exactly the 4 tail bytes at the end of a fragment ends the stream there (a sender
/// that did not strip the tail), instead of starting a stored block with them.
fn reference(pieces: &[&[u8]], limit: usize) -> Reference {
    let mut d = Decompress::new_with_window_bits(false, 15);
    let mut out = Vec::with_capacity(limit + 1);
    for (i, piece) in pieces.iter().enumerate() {
        let ended = match inflate_piece(&mut d, piece, &mut out, limit) {
            Ok(ended) => ended,
            Err(r) => return r,
        };
        if i == pieces.len() - 1 && !ended {
            if let Err(r) = inflate_piece(&mut d, &TAIL, &mut out, limit) {
                return r;
            }
        }
    }
    Reference::Message(out)
}

/// Inflates one piece; `Ok(true)` when a stream ended with the piece.
fn inflate_piece(
    d: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, Reference> {
    loop {
        let (in_before, out_before) = (d.total_in(), out.len());
        let status = d
            .decompress_vec(input, out, FlushDecompress::None)
            .map_err(|_| Reference::Invalid)?;
        input = &input[(d.total_in() - in_before) as usize..];
        if out.len() > limit {
            return Err(Reference::TooLarge);
        }
        if status == Status::StreamEnd {
            d.reset(false);
            if input.is_empty() || input == TAIL {
                return Ok(true);
            }
            continue;
        }
        if input.is_empty() {
            return Ok(false);
        }
        if d.total_in() == in_before && out.len() == out_before {
            // No progress with input left and room in the output.
            return Err(Reference::Invalid);
        }
    }
}

fn connection(role: Role, params: DeflateParams, limit: usize) -> Connection {
    let limits = Limits::default().max_message_size(limit);
    Connection::new(role, limits).with_deflate(params, &DeflateConfig::default())
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = input.byte();
    let role = if flags & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    // The sender's window, as negotiated.
    let bits = 8 + ((flags >> 1) & 7);
    let peer_resets = flags & 0x10 != 0;
    let text = flags & 0x20 != 0;
    let limit = usize::from(input.u16() % 4097);
    let fragments = usize::from(input.byte() % 4) + 1;
    let payload = input.rest();

    let params = DeflateParams {
        server_no_context_takeover: peer_resets,
        client_no_context_takeover: peer_resets,
        server_max_window_bits: bits,
        client_max_window_bits: bits,
    };
    let masked = role == Role::Server;
    let mut wire = Vec::with_capacity(payload.len() + 14 * fragments);
    let step = payload.len().div_ceil(fragments).max(1);
    let mut pieces: Vec<&[u8]> = payload.chunks(step).collect();
    pieces.resize(fragments.max(pieces.len()), &[]);
    let last = pieces.len() - 1;
    for (i, piece) in pieces.iter().enumerate() {
        let (opcode, rsv) = match i {
            0 if text => (1, 0b100),
            0 => (2, 0b100),
            _ => (0, 0),
        };
        frame(masked, i == last, rsv, opcode, piece, &mut wire);
    }

    let mut conn = connection(role, params, limit);
    let mut buf = BytesMut::from(&wire[..]);
    let mut out = BytesMut::with_capacity(64);
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    ZLIB_ALLOCS.store(0, Relaxed);
    let got = conn.receive(&mut buf, &mut out);
    let peak = PEAK.load(Relaxed) - base;
    let zlib = ZLIB_ALLOCS.load(Relaxed);
    assert!(
        peak <= limit + OVERHEAD,
        "receiving a {}-byte message under a {limit}-byte limit grew the heap by {peak} bytes",
        wire.len()
    );
    assert!(
        zlib <= MAX_ZLIB_STATES * ZLIB_STATE,
        "{zlib} bytes of zlib state"
    );

    // The crate inflates with a 15-bit window whatever the peer's (more lenient, never
    // wrong), so the reference does too.
    let expected = reference(&pieces, limit);
    match (&got, &expected) {
        (Ok(Some(Message::Binary(m))), Reference::Message(r)) if !text => {
            assert_eq!(&m[..], &r[..])
        }
        (Ok(Some(Message::Text(m))), Reference::Message(r)) if text => {
            assert_eq!(m.as_bytes(), &r[..])
        }
        (Err(Error::Protocol(Violation::InvalidUtf8)), Reference::Message(r)) if text => {
            assert!(std::str::from_utf8(r).is_err())
        }
        // Invalid text can fail before the rest of the message shows it is invalid
        // deflate data or too large.
        (Err(Error::Protocol(Violation::InvalidUtf8)), _) if text => {}
        (Err(Error::Protocol(Violation::MessageTooLarge { .. })), Reference::TooLarge) => {}
        // A compressed fragment may be refused before inflating when it is longer than
        // the room left (plus an eighth and 64 bytes, for codes longer than a byte):
        // only possible for one over 64 bytes.
        (Err(Error::Protocol(Violation::MessageTooLarge { .. })), _)
            if pieces.iter().any(|p| p.len() > 64) => {}
        (Err(Error::Protocol(Violation::InvalidCompressedData)), Reference::Invalid) => {}
        // Data that is both too large and invalid: which shows first depends on how
        // much zlib inflates per call.
        (
            Err(Error::Protocol(
                Violation::InvalidCompressedData | Violation::MessageTooLarge { .. },
            )),
            Reference::Invalid | Reference::TooLarge,
        ) => {}
        _ => panic!("connection: {got:?}, reference inflate: {expected:?}"),
    }
    if let Ok(Some(m)) = &got {
        assert!(m.len() <= limit);
    }
});
