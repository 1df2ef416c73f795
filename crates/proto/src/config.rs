//! Limits that bound what a peer can make us buffer or parse.

/// Resource limits for one connection. Every limit is checked before the bytes it
/// guards are buffered, so a peer cannot make us allocate by announcing a length.
///
/// | limit | default | exceeded |
/// | --- | --- | --- |
/// | `max_frame_size` | 16 MiB | close 1009 |
/// | `max_message_size` | 64 MiB | close 1009 |
/// | `max_fragments` | 262,144 | close 1009 |
/// | `max_header_bytes` | 8 KiB | HTTP 431 / handshake error |
/// | `max_headers` | 64 | HTTP 431 / handshake error |
///
/// The fragment limit is high enough for a 4 MiB message in 64-byte fragments
/// (Autobahn 9.3.1) and for a full-size message in 256-byte fragments: the real bound on
/// memory is `max_message_size`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload of a single frame, in bytes.
    pub max_frame_size: usize,
    /// Largest message (all fragments together), in bytes.
    pub max_message_size: usize,
    /// Most frames one fragmented message may have.
    pub max_fragments: usize,
    /// Largest HTTP header block of a handshake request or response, in bytes.
    pub max_header_bytes: usize,
    /// Most header lines in a handshake request or response.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_fragments: 262_144,
            max_header_bytes: 8 << 10,
            max_headers: 64,
        }
    }
}
