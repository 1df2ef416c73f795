//! Close codes (RFC 6455 section 7.4) and the close frame payload.

use std::fmt;

/// A WebSocket close status code.
///
/// ```
/// use duplex_proto::CloseCode;
/// assert!(CloseCode::NORMAL.is_valid_on_wire());
/// assert!(!CloseCode::from(1005).is_valid_on_wire()); // reserved for "no status"
/// assert!(CloseCode::from(4000).is_valid_on_wire()); // private use
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status code was present. Never sent on the wire.
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection dropped without a close frame. Never sent on the wire.
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: message data inconsistent with its type (invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: policy violation.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: message too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: unexpected condition on the server.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: service restart (IANA registry).
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: bad gateway (IANA registry).
    pub const BAD_GATEWAY: Self = Self(1014);

    /// The numeric value.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether this code may appear in a close frame: the defined codes 1000-1003,
    /// 1007-1014, and the registered/private ranges 3000-4999. Codes 1004-1006 and 1015
    /// are reserved and must never be sent, everything below 1000 or above 4999 is invalid.
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The close frame a peer sent ([`Connection::peer_close`](crate::Connection::peer_close)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerClose<'a> {
    /// A close frame with a status code and a reason (maybe empty).
    Frame(&'a CloseFrame),
    /// A close frame without a body: the application sees 1005 (no status).
    WithoutCode,
}

impl<'a> PeerClose<'a> {
    /// The frame's code and reason, if it had them.
    pub fn frame(self) -> Option<&'a CloseFrame> {
        match self {
            PeerClose::Frame(frame) => Some(frame),
            PeerClose::WithoutCode => None,
        }
    }
}

/// The payload of a close frame that carries a status code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// A human-readable reason, at most 123 bytes of UTF-8.
    pub reason: String,
}

impl CloseFrame {
    /// Longest reason that fits in a control frame (125 bytes minus the code).
    pub const MAX_REASON_LEN: usize = 123;

    /// A close frame with a code and a reason.
    pub fn new(code: impl Into<CloseCode>, reason: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            reason: reason.into(),
        }
    }
}
