//! The crate's error type.

use duplex_proto::{HandshakeFailure, Violation};
use std::io;

/// Everything that can go wrong on a connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The peer broke the protocol; the connection was closed with the code the
    /// violation maps to.
    #[error("peer violated the protocol: {0} (closed with {code})", code = .0.close_code())]
    Protocol(Violation),
    /// The opening handshake failed.
    #[error("WebSocket handshake failed: {0}")]
    Handshake(HandshakeFailure),
    /// The server rejected the handshake with an HTTP status (client side).
    #[error("server rejected the WebSocket handshake with HTTP {status}")]
    Rejected {
        /// The HTTP status.
        status: u16,
    },
    /// The transport ended without a close frame (close code 1006).
    #[error("connection dropped without a close frame (1006)")]
    AbnormalClosure,
    /// Sending after the close handshake started, or after the connection ended.
    #[error("the connection is closed; nothing more can be sent")]
    ConnectionClosed,
    /// The message or frame to send is not valid (control payload over 125 bytes, a
    /// close code that may not be sent, ...).
    #[error("invalid message to send: {0}")]
    InvalidSend(&'static str),
    /// A step did not finish in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The configuration is not usable; the message names the setting and the fix.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The URL cannot be used for a WebSocket connection.
    #[error("invalid WebSocket URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<duplex_proto::Error> for Error {
    fn from(e: duplex_proto::Error) -> Self {
        match e {
            duplex_proto::Error::Protocol(v) => Error::Protocol(v),
            duplex_proto::Error::Handshake(HandshakeFailure::Status(status)) => {
                Error::Rejected { status }
            }
            duplex_proto::Error::Handshake(f) => Error::Handshake(f),
            duplex_proto::Error::SendAfterClose => Error::ConnectionClosed,
            duplex_proto::Error::InvalidSend(what) => Error::InvalidSend(what),
        }
    }
}

impl From<HandshakeFailure> for Error {
    fn from(f: HandshakeFailure) -> Self {
        duplex_proto::Error::Handshake(f).into()
    }
}
