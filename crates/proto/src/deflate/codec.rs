//! The compressor and decompressor of one connection.
//!
//! Both are created on first use. A side without context takeover keeps no state between
//! messages, so it borrows a compressor or decompressor from a small per-thread pool for
//! each message and returns it reset: an idle connection holds no zlib state, and a busy
//! one does not allocate zlib state per message. Decompression never produces more than
//! the message limit allows.

use super::{DeflateConfig, DeflateParams};
use crate::connection::Role;
use crate::error::Violation;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::RefCell;

/// The tail a sync flush ends with, which senders strip and receivers put back
/// (RFC 7692 section 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// Smallest growth step of the decompression output.
const MIN_GROWTH: usize = 4096;

/// Spare states kept per thread and kind; more are dropped.
const MAX_SPARES: usize = 4;

/// The window every message is inflated with, whatever the peer's: a window at least as
/// large as the peer's is always correct, zlib-rs allocates the full 32 KiB window for
/// any size anyway, and flate2 resets only a 15-bit inflater in place: a smaller one is
/// replaced by a newly allocated one (about 47 KiB) on every reset, which a final block
/// inside a message causes, every 2 bytes if the peer likes.
const INFLATE_BITS: u8 = 15;

thread_local! {
    /// Reset compressors by (level, window bits), for sides without context takeover.
    static SPARE_COMPRESSORS: RefCell<Vec<(u32, u8, Compress)>> = const { RefCell::new(Vec::new()) };
    /// Reset decompressors by window bits.
    static SPARE_DECOMPRESSORS: RefCell<Vec<(u8, Decompress)>> = const { RefCell::new(Vec::new()) };
}

fn take_compressor(level: u32, bits: u8) -> Compress {
    SPARE_COMPRESSORS
        .with_borrow_mut(|spares| {
            let i = spares
                .iter()
                .position(|(l, b, _)| (*l, *b) == (level, bits))?;
            Some(spares.swap_remove(i).2)
        })
        .unwrap_or_else(|| Compress::new_with_window_bits(Compression::new(level), false, bits))
}

fn give_back_compressor(level: u32, bits: u8, mut c: Compress) {
    c.reset();
    SPARE_COMPRESSORS.with_borrow_mut(|spares| {
        if spares.len() < MAX_SPARES {
            spares.push((level, bits, c));
        }
    });
}

fn take_decompressor(bits: u8) -> Decompress {
    SPARE_DECOMPRESSORS
        .with_borrow_mut(|spares| {
            let i = spares.iter().position(|(b, _)| *b == bits)?;
            Some(spares.swap_remove(i).1)
        })
        .unwrap_or_else(|| Decompress::new_with_window_bits(false, bits))
}

fn give_back_decompressor(bits: u8, mut d: Decompress) {
    d.reset(false);
    SPARE_DECOMPRESSORS.with_borrow_mut(|spares| {
        if spares.len() < MAX_SPARES {
            spares.push((bits, d));
        }
    });
}

/// permessage-deflate state for one connection.
#[derive(Debug)]
pub(crate) struct Codec {
    level: u32,
    threshold: usize,
    /// Our compressor's window (9..=15) and whether it resets after each message.
    send_bits: u8,
    send_reset: bool,
    /// Whether the peer resets after each message.
    receive_reset: bool,
    compressor: Option<Compress>,
    decompressor: Option<Decompress>,
}

impl Codec {
    pub(crate) fn new(role: Role, params: DeflateParams, config: &DeflateConfig) -> Self {
        let (send, receive) = match role {
            Role::Server => (
                (
                    params.server_max_window_bits,
                    params.server_no_context_takeover,
                ),
                (
                    params.client_max_window_bits,
                    params.client_no_context_takeover,
                ),
            ),
            Role::Client => (
                (
                    params.client_max_window_bits,
                    params.client_no_context_takeover,
                ),
                (
                    params.server_max_window_bits,
                    params.server_no_context_takeover,
                ),
            ),
        };
        Self {
            level: config.level.min(9),
            threshold: config.threshold,
            // zlib cannot make a raw deflate stream with an 8-bit window; with 9 bits it
            // still never refers back further than 250 bytes, which an 8-bit peer decodes.
            // Inflating with a window at least as large as the peer's is always correct.
            send_bits: send.0.clamp(9, 15),
            send_reset: send.1,
            receive_reset: receive.1,
            compressor: None,
            decompressor: None,
        }
    }

    /// Whether a payload of this size is worth compressing.
    pub(crate) fn wants(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// Whether our compressor starts afresh for every message (no context takeover).
    pub(crate) fn resets_between_messages(&self) -> bool {
        self.send_reset
    }

    /// Which zlib state this connection holds right now.
    pub(crate) fn holds_state(&self) -> super::DeflateState {
        super::DeflateState {
            compressor: self.compressor.is_some(),
            decompressor: self.decompressor.is_some(),
        }
    }

    /// Compresses one whole message into `out`, without the sync-flush tail.
    pub(crate) fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut c = match self.compressor.take() {
            Some(c) => c,
            None => take_compressor(self.level, self.send_bits),
        };
        deflate_message(&mut c, input, out);
        if self.send_reset {
            give_back_compressor(self.level, self.send_bits, c);
        } else {
            self.compressor = Some(c);
        }
    }

    /// The compressor setting a message compressed once for many connections must match
    /// to be sent on this one.
    pub(crate) fn send_setting(&self) -> CompressorSetting {
        CompressorSetting {
            level: self.level,
            window_bits: self.send_bits,
        }
    }

    /// Drops our compressor's history after a message compressed elsewhere was sent: the
    /// peer's window now holds that message, ours does not, so ours must not refer back
    /// past it. A fresh compressor never refers back before its first message.
    pub(crate) fn forget_sent_history(&mut self) {
        if let Some(c) = self.compressor.take() {
            give_back_compressor(self.level, self.send_bits, c);
        }
    }
}

/// A compressor's level and window: messages compressed with equal settings and fresh
/// compressors decompress the same on any connection that sends with that setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CompressorSetting {
    /// zlib level, 0..=9.
    pub(crate) level: u32,
    /// LZ77 window bits, 8..=15.
    pub(crate) window_bits: u8,
}

/// Compresses a whole message with a fresh compressor of this setting: the payload of a
/// frame any connection with a window of at least `bits` can inflate, whatever its
/// context-takeover state.
pub(crate) fn compress_fresh(level: u32, bits: u8, input: &[u8], out: &mut Vec<u8>) {
    let mut c = take_compressor(level, bits);
    deflate_message(&mut c, input, out);
    give_back_compressor(level, bits, c);
}

/// Compresses one whole message into `out` with a sync flush, without the tail.
fn deflate_message(c: &mut Compress, mut input: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.reserve(input.len() + input.len() / 8 + 64);
    loop {
        let before = c.total_in();
        // Compressing into memory only fails on misuse of the stream, which this loop
        // does not do.
        let _ = c.compress_vec(input, out, FlushCompress::Sync);
        input = &input[(c.total_in() - before) as usize..];
        // The flush is complete once zlib stops with room left in the output.
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(MIN_GROWTH));
    }
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    if out.len() == start {
        // zlib flushes nothing for an empty message right after another flush; send the
        // empty block's header byte (RFC 7692 section 7.2.3.6), which the receiver's
        // tail completes.
        out.push(0x00);
    }
}

impl Codec {
    /// Decompresses the next piece of a compressed message into `out`, which may grow to
    /// at most `limit` bytes. With `fin`, the message ends: the tail is fed and, for a
    /// peer without context takeover, the state goes back to the pool.
    pub(crate) fn decompress(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), Violation> {
        let bits = INFLATE_BITS;
        let mut d = match self.decompressor.take() {
            Some(d) => d,
            None => take_decompressor(bits),
        };
        let mut result = inflate(&mut d, input, out, limit);
        if fin && result == Ok(false) {
            result = inflate(&mut d, &TAIL, out, limit);
        }
        match result {
            // A final block ended the deflate stream: the next message starts a new one.
            Ok(true) => give_back_decompressor(bits, d),
            Ok(false) if fin && self.receive_reset => give_back_decompressor(bits, d),
            Ok(false) => self.decompressor = Some(d),
            // The connection fails; the state is dropped with it.
            Err(_) => {}
        }
        result.map(|_| ())
    }
}

/// Inflates `input` into `out`, growing it to at most `limit + 1` bytes; `Ok(true)` when
/// the peer ended the deflate stream with a final block.
fn inflate(
    d: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, Violation> {
    let too_large = |len: usize| Violation::MessageTooLarge {
        len: len as u64,
        limit,
    };
    loop {
        if out.len() == out.capacity() {
            if out.len() > limit {
                return Err(too_large(out.len()));
            }
            // Grow geometrically, but never past one byte over the limit: a bomb in a
            // small frame can make us allocate no more than the limit allows.
            let room = out
                .len()
                .max(MIN_GROWTH)
                .min((limit - out.len()).saturating_add(1));
            out.reserve_exact(room);
        }
        let (in_before, out_before) = (d.total_in(), out.len());
        let status = d
            .decompress_vec(input, out, FlushDecompress::None)
            .map_err(|_| Violation::InvalidCompressedData)?;
        let used = (d.total_in() - in_before) as usize;
        input = &input[used..];
        if out.len() > limit {
            return Err(too_large(out.len()));
        }
        if status == Status::StreamEnd {
            if input.is_empty() || input == TAIL {
                return Ok(true);
            }
            // A final block ends the deflate stream, not the message: "the next DEFLATE
            // block follows the padded data" (RFC 7692 section 7.2.1; its example in
            // 7.2.3.4 ends with the 0x00 of one), and starts a fresh stream.
            d.reset(false);
            continue;
        }
        let room_left = out.len() < out.capacity();
        if input.is_empty() && room_left {
            return Ok(false);
        }
        if used == 0 && out.len() == out_before && room_left {
            return Err(Violation::InvalidCompressedData);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::DeflateState;

    fn state(compressor: bool, decompressor: bool) -> DeflateState {
        DeflateState {
            compressor,
            decompressor,
        }
    }

    fn pair(params: DeflateParams) -> (Codec, Codec) {
        let config = DeflateConfig::default().threshold(0);
        (
            Codec::new(Role::Client, params, &config),
            Codec::new(Role::Server, params, &config),
        )
    }

    fn roundtrip(tx: &mut Codec, rx: &mut Codec, message: &[u8]) -> usize {
        let mut wire = Vec::new();
        tx.compress(message, &mut wire);
        let mut got = Vec::new();
        rx.decompress(&wire, true, &mut got, usize::MAX - 1)
            .unwrap();
        assert_eq!(got, message);
        wire.len()
    }

    #[test]
    fn context_takeover_shrinks_repeated_messages() {
        let (mut client, mut server) = pair(DeflateParams::default());
        let msg = br#"{"type":"chat","room":"lobby","text":"hello everyone, how are you?"}"#;
        let first = roundtrip(&mut client, &mut server, msg);
        let second = roundtrip(&mut client, &mut server, msg);
        assert!(second < first / 2, "second {second} vs first {first}");
        assert_eq!(client.holds_state(), state(true, false));
        assert_eq!(server.holds_state(), state(false, true));
    }

    #[test]
    fn no_context_takeover_releases_state_between_messages() {
        let params = DeflateParams {
            client_no_context_takeover: true,
            server_no_context_takeover: true,
            ..DeflateParams::default()
        };
        let (mut client, mut server) = pair(params);
        let msg = b"the same message twice, the same message twice";
        let first = roundtrip(&mut client, &mut server, msg);
        let second = roundtrip(&mut client, &mut server, msg);
        assert_eq!(first, second, "no history is kept");
        assert_eq!(client.holds_state(), state(false, false));
        assert_eq!(server.holds_state(), state(false, false));
    }

    #[test]
    fn small_windows_interoperate() {
        for bits in 8..=15 {
            let params = DeflateParams {
                client_max_window_bits: bits,
                server_max_window_bits: bits,
                ..DeflateParams::default()
            };
            let (mut client, mut server) = pair(params);
            let text: Vec<u8> = (0..20_000u32)
                .map(|i| (i * 7 % 251) as u8 ^ (i / 300) as u8)
                .collect();
            roundtrip(&mut client, &mut server, &text);
            roundtrip(&mut server, &mut client, &text);
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let (_, mut server) = pair(DeflateParams::default());
        let best = DeflateConfig::default().level(9);
        let mut client = Codec::new(Role::Client, DeflateParams::default(), &best);
        let zeros = vec![0u8; 10 << 20];
        let mut wire = Vec::new();
        client.compress(&zeros, &mut wire);
        assert!(
            wire.len() < 20_000,
            "10 MB of zeros compress to {} bytes",
            wire.len()
        );
        let mut out = Vec::new();
        let err = server
            .decompress(&wire, true, &mut out, 1 << 20)
            .unwrap_err();
        assert!(matches!(err, Violation::MessageTooLarge { limit, .. } if limit == 1 << 20));
        assert!(
            out.capacity() <= (1 << 20) + 1,
            "allocated {}",
            out.capacity()
        );
    }

    #[test]
    fn garbage_is_invalid_compressed_data() {
        let (_, mut server) = pair(DeflateParams::default());
        let mut out = Vec::new();
        let err = server
            .decompress(&[0xFF, 0xFF, 0xFF, 0xFF], true, &mut out, 1000)
            .unwrap_err();
        assert_eq!(err, Violation::InvalidCompressedData);
    }
}
