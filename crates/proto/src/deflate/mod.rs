//! permessage-deflate (RFC 7692): negotiation and the compression codec.
//!
//! - [`DeflateConfig`]: what this end offers or accepts, and how it compresses.
//! - [`DeflateParams`]: what the handshake agreed on.
//! - [`negotiate`]: the `Sec-WebSocket-Extensions` header in both roles.
//! - `codec`: the compressor and decompressor, created lazily and bounded.

mod codec;
pub mod negotiate;

pub(crate) use codec::{compress_fresh, Codec, CompressorSetting};

/// Which zlib streams of a connection hold memory right now
/// ([`Connection::deflate_state`](crate::Connection::deflate_state)). Without context
/// takeover a side releases its stream between messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DeflateState {
    /// The compressor of the messages this end sends.
    pub compressor: bool,
    /// The decompressor of the messages the peer sends.
    pub decompressor: bool,
}

/// How this end uses permessage-deflate. The defaults keep full compression with context
/// takeover in both directions (the best ratio for chat and feed traffic) and skip
/// messages too small to gain anything.
///
/// | field | default | meaning |
/// | --- | --- | --- |
/// | `server_no_context_takeover` | false | ask that the server resets its compressor after each message |
/// | `client_no_context_takeover` | false | ask that the client resets its compressor after each message |
/// | `server_max_window_bits` | 15 | largest LZ77 window (2^n bytes) the server may use, 8..=15 |
/// | `client_max_window_bits` | 15 | largest LZ77 window the client may use, 8..=15 |
/// | `level` | 1 | zlib compression level, 0..=9 (1 costs several times less CPU than 6 on small JSON messages for somewhat more bytes; figures in BENCHMARKS.md) |
/// | `threshold` | 32 | messages shorter than this many bytes are sent uncompressed |
///
/// The `no_context_takeover` flags trade ratio for memory: a side that resets between
/// messages releases its zlib state while the connection is idle.
///
/// `#[non_exhaustive]`: start from `DeflateConfig::default()` and chain the setters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Ask (client) or require (server) that the server does not keep context.
    pub server_no_context_takeover: bool,
    /// Ask (server) or promise (client) that the client does not keep context.
    pub client_no_context_takeover: bool,
    /// Upper bound on the server's window, in bits.
    pub server_max_window_bits: u8,
    /// Upper bound on the client's window, in bits.
    pub client_max_window_bits: u8,
    /// zlib compression level.
    pub level: u32,
    /// Minimum payload size to compress.
    pub threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 1,
            threshold: 32,
        }
    }
}

impl DeflateConfig {
    /// Sets `server_no_context_takeover`: ask (client) or require (server) that the server does not keep context.
    #[must_use]
    pub fn server_no_context_takeover(mut self, server_no_context_takeover: bool) -> Self {
        self.server_no_context_takeover = server_no_context_takeover;
        self
    }

    /// Sets `client_no_context_takeover`: ask (server) or promise (client) that the client does not keep context.
    #[must_use]
    pub fn client_no_context_takeover(mut self, client_no_context_takeover: bool) -> Self {
        self.client_no_context_takeover = client_no_context_takeover;
        self
    }

    /// Sets `server_max_window_bits`: the upper bound on the server's window, 8 to 15.
    #[must_use]
    pub fn server_max_window_bits(mut self, server_max_window_bits: u8) -> Self {
        self.server_max_window_bits = server_max_window_bits;
        self
    }

    /// Sets `client_max_window_bits`: the upper bound on the client's window, 8 to 15.
    #[must_use]
    pub fn client_max_window_bits(mut self, client_max_window_bits: u8) -> Self {
        self.client_max_window_bits = client_max_window_bits;
        self
    }

    /// Sets `level`: the zlib level, 0 to 9.
    #[must_use]
    pub fn level(mut self, level: u32) -> Self {
        self.level = level;
        self
    }

    /// Sets `threshold`: the smallest payload that is compressed.
    #[must_use]
    pub fn threshold(mut self, threshold: usize) -> Self {
        self.threshold = threshold;
        self
    }

    /// Checks the values are in range; the message names the field and the fix.
    pub fn validate(&self) -> Result<(), String> {
        for (name, bits) in [
            ("server_max_window_bits", self.server_max_window_bits),
            ("client_max_window_bits", self.client_max_window_bits),
        ] {
            if !(8..=15).contains(&bits) {
                return Err(format!("{name} = {bits} is out of range: use 8 to 15"));
            }
        }
        if self.level > 9 {
            return Err(format!(
                "level = {} is out of range: use 0 to 9",
                self.level
            ));
        }
        Ok(())
    }
}

/// The parameters a handshake agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The server's window, in bits.
    pub server_max_window_bits: u8,
    /// The client's window, in bits.
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}
