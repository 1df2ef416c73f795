//! The crate's error type.

use duplex_proto::{HandshakeFailure, Violation};
use std::io;

/// Everything that can go wrong on a connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server's host name could not be resolved.
    #[error("cannot resolve host {host:?}: {source}")]
    Dns {
        /// The host name.
        host: String,
        /// Why.
        source: io::Error,
    },
    /// No TCP connection could be opened to the server (the last address tried).
    #[error("cannot open a TCP connection to {addr}: {source}")]
    Tcp {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: io::Error,
    },
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
    /// The proxy URL (given to the builder or read from the environment) is not usable.
    #[error("invalid proxy URL {url:?}: {reason}")]
    ProxyUrl {
        /// The URL as given, with its password replaced by `***`.
        url: String,
        /// What is wrong with it (and, for the environment, which variable held it).
        reason: String,
    },
    /// The proxy itself could not be reached: the TCP connection to it failed or timed
    /// out. (A target the proxy cannot reach is [`Error::ProxyRefused`].)
    #[error("cannot connect to proxy {proxy}: {source}")]
    ProxyConnect {
        /// The proxy, `scheme://host:port` without credentials.
        proxy: String,
        /// Why.
        source: std::io::Error,
    },
    /// TLS to an `https://` proxy failed (certificate, handshake or timeout).
    #[error("TLS to proxy {proxy} failed: {source}")]
    ProxyTls {
        /// The proxy, `scheme://host:port` without credentials.
        proxy: String,
        /// The TLS error ([`Error::Certificate`], [`Error::Tls`], [`Error::Timeout`], ...).
        source: Box<Error>,
    },
    /// The proxy answered but refused the request: a non-2xx answer to `CONNECT` (such as
    /// 407 for missing or wrong credentials, 403 for a forbidden port, 502 for a target it
    /// cannot reach), a SOCKS5 reply other than success (the target refused the
    /// connection, is unreachable, the ruleset forbids it, ...), or rejected credentials.
    #[error("proxy {proxy} refused {request}: {reply}")]
    ProxyRefused {
        /// The proxy, `scheme://host:port` without credentials.
        proxy: String,
        /// What was asked, e.g. `CONNECT example.com:443` or
        /// `username/password authentication`.
        request: String,
        /// The HTTP status, the SOCKS5 reply code, the RFC 1929 status, or 255 when no
        /// SOCKS5 authentication method was acceptable.
        code: u16,
        /// The answer in words, e.g. `407 Proxy Authentication Required`.
        reply: String,
    },
    /// The proxy broke its protocol, closed the connection or did not answer in time.
    #[error("proxy {proxy} failed: {reason}")]
    ProxyFailed {
        /// The proxy, `scheme://host:port` without credentials.
        proxy: String,
        /// What went wrong.
        reason: String,
    },
    /// The server's TLS certificate was rejected (`wss://`): issued by an unknown CA,
    /// expired, issued for another name, ... Never ignored unless
    /// `danger_accept_invalid_certs` is set.
    #[error("TLS certificate of {host} rejected: {}", crate::tls::describe_certificate(.reason))]
    Certificate {
        /// The host the certificate was checked for (from the URL).
        host: String,
        /// Why it was rejected, e.g. `UnknownIssuer`, `Expired`/`ExpiredContext`,
        /// `NotValidForName`/`NotValidForNameContext`.
        reason: rustls::CertificateError,
    },
    /// The TLS handshake failed for another reason than the server's certificate: an
    /// alert from the peer (such as a required client certificate), no common protocol
    /// version or cipher suite, a malformed message.
    #[error("TLS with {host} failed: {}", crate::tls::describe(.error))]
    Tls {
        /// The peer's host (from the URL).
        host: String,
        /// The rustls error.
        error: rustls::Error,
    },
    /// A TLS certificate, key or CA file cannot be used; the reason names the fix.
    #[error("TLS file {}: {reason}", .path.display())]
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it and how to fix it.
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
