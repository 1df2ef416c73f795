//! Messages as the application sees them.

use crate::close::CloseFrame;
use bytes::Bytes;
use std::{fmt, ops::Deref};

/// Bytes that are known to be valid UTF-8: the payload of a text message, shared
/// without a copy. The text is checked once, when the value is made; `as_str` and
/// `Deref` are O(1) after that.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Wraps bytes after checking they are UTF-8.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, Bytes> {
        if simdutf8::basic::from_utf8(&bytes).is_ok() {
            Ok(Self(bytes))
        } else {
            Err(bytes)
        }
    }

    /// Wraps bytes the crate validated in a buffer it owns. Only the crate may skip the
    /// check, and only for bytes no one else could have changed since.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// The text, in O(1).
    #[allow(unsafe_code)]
    pub fn as_str(&self) -> &str {
        // SAFETY: every way to make a `Utf8Bytes` establishes that `self.0` is UTF-8:
        // `try_from_bytes` validates, `From<String>` and `From<&str>` take a `str`'s
        // bytes, `Default` is empty, and `from_validated` (crate-private) is used only for
        // text the connection inflated into its own buffer and validated there (checked
        // again in debug builds); text that arrived plain goes through `try_from_bytes`,
        // since the caller owns the buffer it was first checked in. The fuzz targets
        // assert that every text message is UTF-8, under AddressSanitizer. `Bytes` is
        // immutable, so the bytes cannot change afterwards. Checking here instead cost a
        // full validation per call (the figures are in BENCHMARKS.md, "Utf8Bytes::as_str").
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Gives up the UTF-8 guarantee.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A complete WebSocket message, or a control frame.
///
/// ```
/// use duplex_proto::{CloseCode, Message};
///
/// let hello = Message::text("hello");
/// let bytes = Message::binary(vec![1, 2, 3]);
/// for message in [hello, bytes] {
///     match message {
///         Message::Text(text) => assert_eq!(&*text, "hello"), // Deref to str, O(1)
///         Message::Binary(data) => assert_eq!(&data[..], [1, 2, 3]),
///         Message::Ping(_) | Message::Pong(_) => {}
///         Message::Close(frame) => {
///             let code = frame.map_or(CloseCode::NO_STATUS, |f| f.code);
///             println!("closed with {}", code.as_u16());
///         }
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping with its payload (at most 125 bytes). Received pings are answered by the
    /// connection itself.
    Ping(Bytes),
    /// A pong with its payload (at most 125 bytes).
    Pong(Bytes),
    /// A close frame; `None` when it carried no status code.
    Close(Option<CloseFrame>),
}

impl Message {
    /// A text message.
    pub fn text(s: impl Into<Utf8Bytes>) -> Self {
        Message::Text(s.into())
    }

    /// A binary message.
    pub fn binary(b: impl Into<Bytes>) -> Self {
        Message::Binary(b.into())
    }

    /// Whether this is a text or binary message.
    pub fn is_data(&self) -> bool {
        matches!(self, Message::Text(_) | Message::Binary(_))
    }

    /// The payload length in bytes (for a close, code plus reason).
    pub fn len(&self) -> usize {
        match self {
            Message::Text(t) => t.len(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
            Message::Close(None) => 0,
            Message::Close(Some(f)) => 2 + f.reason.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
