//! The crate's error type.

use crate::close::CloseCode;
use http::StatusCode;

/// Everything that can go wrong in the protocol core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol after the handshake. The connection has queued a close
    /// frame with [`Violation::close_code`] and is failed.
    #[error("peer violated the protocol: {0} (close code {code})", code = .0.close_code())]
    Protocol(Violation),
    /// The opening handshake failed. On the server side this maps to an HTTP status.
    #[error("handshake failed: {0}")]
    Handshake(HandshakeFailure),
    /// The caller tried to send after the close handshake started, or after a failure.
    #[error("the connection is closing or closed; nothing more can be sent")]
    SendAfterClose,
    /// The caller tried to send a frame that is not valid (for example a control frame
    /// payload over 125 bytes, or a close code that may not be sent); nothing was queued.
    #[error("invalid frame to send: {0}")]
    InvalidSend(InvalidSend),
    /// Nothing arrived for [`Timeouts::idle_timeout`](crate::Timeouts::idle_timeout): a
    /// close frame 1001 (Going Away) is queued and the close handshake has begun.
    #[error("idle timeout: nothing received from the peer in time; closing with 1001")]
    IdleTimeout,
    /// The peer did not answer our close frame within
    /// [`Timeouts::close_timeout`](crate::Timeouts::close_timeout): the connection is
    /// closed without its close frame.
    #[error("close timeout: the peer did not answer the close frame in time")]
    CloseTimeout,
}

/// Why a frame the caller asked to send was refused. Nothing was queued and the
/// connection is unchanged: these are the caller's mistakes, not the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidSend {
    /// A ping, pong or close payload over 125 bytes (RFC 6455 section 5.5).
    #[error("control frame payload over 125 bytes")]
    ControlPayloadTooLong,
    /// A control frame without FIN: control frames are never fragmented.
    #[error("control frames cannot be fragmented")]
    FragmentedControl,
    /// A close frame through the frame-level send: the close handshake has its own call
    /// ([`Connection::close`](crate::Connection::close)), which tracks its state.
    #[error("use close() to send a close frame")]
    CloseThroughSendFrame,
    /// A close frame as a [`SharedFrame`](crate::frame::SharedFrame): each connection
    /// closes on its own.
    #[error("close frames cannot be shared")]
    SharedClose,
    /// A [`SharedFrame`](crate::frame::SharedFrame) on a client connection, whose frames
    /// are masked with a key of their own.
    #[error("client frames are masked and cannot be shared")]
    SharedFromClient,
    /// A continuation frame with no fragmented message started.
    #[error("continuation without a message")]
    ContinuationWithoutMessage,
    /// A new message (or a shared frame) while a fragmented message is being sent.
    #[error("a fragmented message is in progress")]
    FragmentInProgress,
    /// A close code that may not appear on the wire (1005, 1006, 1015, or outside the
    /// ranges RFC 6455 section 7.4 allows).
    #[error("close code may not be sent on the wire")]
    CloseCodeNotSendable,
    /// A close reason over 123 bytes (125 minus the code).
    #[error("close reason over 123 bytes")]
    CloseReasonTooLong,
}

impl From<InvalidSend> for Error {
    fn from(e: InvalidSend) -> Self {
        Error::InvalidSend(e)
    }
}

/// A protocol violation by the peer, each with the close code RFC 6455 requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// RSV1-3 set without a negotiated extension that defines them.
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    /// An opcode RFC 6455 reserves (3-7, 11-15).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A control frame with a payload over 125 bytes.
    #[error("control frame payload over 125 bytes")]
    ControlFrameTooLong,
    /// A control frame without FIN.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A client frame without a mask.
    #[error("client frame is not masked")]
    UnmaskedClientFrame,
    /// A server frame with a mask.
    #[error("server frame is masked")]
    MaskedServerFrame,
    /// A continuation frame with no message in progress.
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A new data frame while a fragmented message is in progress.
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
    /// A 64-bit payload length with the most significant bit set.
    #[error("64-bit payload length with the top bit set")]
    LengthTopBit,
    /// Invalid UTF-8 in a text message.
    #[error("invalid UTF-8 in a text message")]
    InvalidUtf8,
    /// A compressed message whose data does not inflate (permessage-deflate).
    #[error("invalid compressed data")]
    InvalidCompressedData,
    /// A close frame with a 1-byte payload.
    #[error("close frame payload of 1 byte")]
    CloseFrameOneByte,
    /// A close code that may not appear on the wire.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// Invalid UTF-8 in a close reason.
    #[error("invalid UTF-8 in the close reason")]
    InvalidCloseReason,
    /// A frame over [`Limits::max_frame_size`](crate::Limits::max_frame_size).
    #[error("frame of {len} bytes exceeds the limit of {limit}")]
    FrameTooLarge {
        /// Announced payload length.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// A message over [`Limits::max_message_size`](crate::Limits::max_message_size).
    #[error("message of at least {len} bytes exceeds the limit of {limit}")]
    MessageTooLarge {
        /// Size the message would reach.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// A message with more than [`Limits::max_fragments`](crate::Limits::max_fragments) frames.
    #[error("message has more than {0} fragments")]
    TooManyFragments(usize),
}

impl Violation {
    /// The close code to fail the connection with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Violation::InvalidUtf8
            | Violation::InvalidCloseReason
            | Violation::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            Violation::FrameTooLarge { .. }
            | Violation::MessageTooLarge { .. }
            | Violation::TooManyFragments(_) => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// Why an opening handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeFailure {
    /// The HTTP message could not be parsed.
    #[error("malformed HTTP: {0}")]
    MalformedHttp(String),
    /// The header block is larger than the limit.
    #[error("header block exceeds {0} bytes")]
    HeadersTooLarge(usize),
    /// More header lines than the limit.
    #[error("more than {0} header lines")]
    TooManyHeaders(usize),
    /// The request method is not GET.
    #[error("method {0} is not GET")]
    MethodNotGet(String),
    /// The HTTP version is older than 1.1.
    #[error("HTTP version older than 1.1")]
    HttpVersion,
    /// A required header is missing.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header has a value that is not acceptable.
    #[error("invalid {0} header")]
    InvalidHeader(&'static str),
    /// A header that may appear only once appears more than once (RFC 6455 section
    /// 11.3, RFC 9112 section 3.2 for `Host`).
    #[error("header {0} appears more than once")]
    DuplicateHeader(&'static str),
    /// `Sec-WebSocket-Version` is not 13.
    #[error("unsupported Sec-WebSocket-Version (only 13 is supported)")]
    UnsupportedVersion,
    /// The server answered with a status other than 101.
    #[error("server answered {0} instead of 101 Switching Protocols")]
    Status(u16),
    /// `Sec-WebSocket-Accept` does not match the key sent.
    #[error("Sec-WebSocket-Accept does not match the key")]
    AcceptMismatch,
    /// The server chose a subprotocol the client did not offer.
    #[error("server chose subprotocol {0:?}, which was not offered")]
    UnofferedProtocol(String),
    /// The server's permessage-deflate answer breaks RFC 7692 or the offer.
    #[error("invalid permessage-deflate response: {0}")]
    InvalidExtension(String),
    /// The server answered with an extension the client did not offer.
    #[error("server answered with extension {0:?}, which was not offered")]
    UnofferedExtension(String),
}

impl HandshakeFailure {
    /// The HTTP status a server answers a failed request with.
    pub fn status(&self) -> StatusCode {
        match self {
            HandshakeFailure::HeadersTooLarge(_) | HandshakeFailure::TooManyHeaders(_) => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            HandshakeFailure::MethodNotGet(_) => StatusCode::METHOD_NOT_ALLOWED,
            HandshakeFailure::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<Violation> for Error {
    fn from(v: Violation) -> Self {
        Error::Protocol(v)
    }
}

impl From<HandshakeFailure> for Error {
    fn from(f: HandshakeFailure) -> Self {
        Error::Handshake(f)
    }
}
