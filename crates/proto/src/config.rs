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
///
/// `#[non_exhaustive]`: start from `Limits::default()` and chain the setters.
///
/// ```
/// let limits = duplex_proto::Limits::default().max_message_size(1 << 20);
/// assert_eq!(limits.max_frame_size, 16 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

impl Limits {
    /// Sets `max_frame_size`: the largest payload of a single frame.
    #[must_use]
    pub fn max_frame_size(mut self, max_frame_size: usize) -> Self {
        self.max_frame_size = max_frame_size;
        self
    }

    /// Sets `max_message_size`: the largest message, all fragments together.
    #[must_use]
    pub fn max_message_size(mut self, max_message_size: usize) -> Self {
        self.max_message_size = max_message_size;
        self
    }

    /// Sets `max_fragments`: the most frames one fragmented message may have.
    #[must_use]
    pub fn max_fragments(mut self, max_fragments: usize) -> Self {
        self.max_fragments = max_fragments;
        self
    }

    /// Sets `max_header_bytes`: the largest handshake header block.
    #[must_use]
    pub fn max_header_bytes(mut self, max_header_bytes: usize) -> Self {
        self.max_header_bytes = max_header_bytes;
        self
    }

    /// Sets `max_headers`: the most header lines in a handshake.
    #[must_use]
    pub fn max_headers(mut self, max_headers: usize) -> Self {
        self.max_headers = max_headers;
        self
    }
}
