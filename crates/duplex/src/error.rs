//! The crate's error type.
//!
//! Every cause a program may want to act on is a variant (or a small kind enum inside
//! one), so nothing needs to parse a message; the `is_*` methods group them as hyper's
//! do. The enum is `#[non_exhaustive]`: new causes can be told apart later without a
//! breaking release, so a `match` needs a `_` arm.

use duplex_proto::{HandshakeFailure, InvalidSend, Role, Violation};
use std::fmt;
use std::io;

/// Everything that can go wrong on a connection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Nothing listens on port 1: the TCP connection is refused.
/// let error = duplex::connect("ws://127.0.0.1:1/").await.unwrap_err();
/// assert!(error.is_connect());
/// match &error {
///     duplex::Error::Tcp { addr, source } => println!("{addr}: {source}"),
///     duplex::Error::Timeout(phase) => println!("too slow: {phase}"),
///     other => println!("{other}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// The peer closed the connection before the opening handshake completed.
    #[error("the {} closed the connection during the WebSocket handshake", role_name(*.peer))]
    HandshakeInterrupted {
        /// The peer's role: `Role::Server` on the client side, `Role::Client` on the
        /// server side.
        peer: Role,
    },
    /// hyper did not hand over the upgraded connection (`duplex::hyper`, `duplex::axum`):
    /// the HTTP connection ended or failed before the upgrade.
    #[error("the HTTP connection was not upgraded: {0}")]
    Upgrade(#[source] Box<dyn std::error::Error + Send + Sync>),
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
    /// close code that may not be sent, ...); nothing was sent.
    #[error("invalid message to send: {0}")]
    InvalidSend(InvalidSend),
    /// A step did not finish within its timeout.
    #[error("timed out: {0}")]
    Timeout(Phase),
    /// The configuration is not usable; the message names the setting and the fix.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A request header given to the builder is not valid HTTP.
    #[error("invalid request header {name:?}: {part} {reason}")]
    InvalidHeader {
        /// The header name as given (the value is not repeated: it may be a secret).
        name: String,
        /// Which part is invalid.
        part: HeaderPart,
        /// What is wrong with it, in words.
        reason: String,
    },
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
    /// The transport failed during the TLS handshake (the peer hung up, a reset, ...).
    #[error("TLS handshake with {host}: {source}{hint}", hint = if source.kind() == io::ErrorKind::UnexpectedEof { " (the server hung up: does it speak TLS on this port? for a plain server use ws://)" } else { "" })]
    TlsIo {
        /// The peer's host (from the URL).
        host: String,
        /// The transport's error.
        source: io::Error,
    },
    /// The TLS handshake failed for another reason than the server's certificate: an
    /// alert from the peer (such as a required client certificate), no common protocol
    /// version or cipher suite, a malformed message.
    #[error("TLS with {host} failed: {}", crate::tls::describe(.error))]
    Tls {
        /// The peer's host (from the URL); `client` on the server side
        /// ([`tls::accept`](crate::tls::accept)).
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

/// The part of a request header that is not valid ([`Error::InvalidHeader`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderPart {
    /// The name: empty, or not an HTTP token (a space, a colon, ...).
    Name,
    /// The value: control characters or line breaks.
    Value,
}

impl fmt::Display for HeaderPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderPart::Name => "the name:",
            HeaderPart::Value => "the value:",
        })
    }
}

/// How an error message names a peer.
fn role_name(role: Role) -> &'static str {
    match role {
        Role::Client => "client",
        Role::Server => "server",
    }
}

/// The step a [`Error::Timeout`] cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Resolving the host and opening the TCP connection to it (bounded by
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout)). Through a proxy
    /// the same bound ends in [`Error::ProxyConnect`] (the proxy cannot be reached in
    /// time) or [`Error::ProxyFailed`] (no tunnel in time), which name the proxy.
    Connect,
    /// The TLS handshake (the same timeout as the WebSocket handshake).
    TlsHandshake,
    /// The HTTP upgrade ([`Config::handshake_timeout`](crate::Config::handshake_timeout)).
    WebSocketHandshake,
    /// Nothing arrived from the peer within
    /// [`Config::idle_timeout`](crate::Config::idle_timeout); the connection was closed
    /// with 1001.
    Idle,
    /// The peer did not complete the close handshake within
    /// [`Config::close_timeout`](crate::Config::close_timeout).
    CloseHandshake,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connecting (name resolution and TCP)",
            Phase::TlsHandshake => "TLS handshake",
            Phase::WebSocketHandshake => "WebSocket handshake",
            Phase::Idle => "no traffic from the peer within the idle timeout",
            Phase::CloseHandshake => "the peer did not answer our close frame",
        })
    }
}

impl Error {
    /// A step ran out of time: [`Error::Timeout`], or reaching a proxy or TLS to it
    /// ([`Error::ProxyConnect`], [`Error::ProxyTls`]) timed out.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout(_) => true,
            Error::ProxyConnect { source, .. } => source.kind() == io::ErrorKind::TimedOut,
            Error::ProxyTls { source, .. } => source.is_timeout(),
            _ => false,
        }
    }

    /// The connection is over: sending after the close handshake started
    /// ([`Error::ConnectionClosed`]) or the transport ended without a close frame
    /// ([`Error::AbnormalClosure`]).
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::ConnectionClosed | Error::AbnormalClosure)
    }

    /// The peer broke the WebSocket protocol, in a frame ([`Error::Protocol`]) or in the
    /// opening handshake ([`Error::Handshake`]).
    pub fn is_protocol(&self) -> bool {
        matches!(self, Error::Protocol(_) | Error::Handshake(_))
    }

    /// The opening handshake did not complete: refused, broken, interrupted or not
    /// upgraded.
    pub fn is_handshake(&self) -> bool {
        matches!(
            self,
            Error::Handshake(_)
                | Error::Rejected { .. }
                | Error::HandshakeInterrupted { .. }
                | Error::Upgrade(_)
        ) || matches!(self, Error::Timeout(Phase::WebSocketHandshake))
    }

    /// No connection could be opened to the server: name resolution or TCP.
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Dns { .. } | Error::Tcp { .. })
            || matches!(self, Error::Timeout(Phase::Connect))
    }

    /// TLS failed: the certificate, the handshake or a TLS file.
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            Error::Certificate { .. }
                | Error::Tls { .. }
                | Error::TlsIo { .. }
                | Error::TlsFile { .. }
        ) || matches!(self, Error::Timeout(Phase::TlsHandshake))
    }

    /// The proxy failed: its URL, reaching it, TLS to it, or its answer.
    pub fn is_proxy(&self) -> bool {
        matches!(
            self,
            Error::ProxyUrl { .. }
                | Error::ProxyConnect { .. }
                | Error::ProxyTls { .. }
                | Error::ProxyRefused { .. }
                | Error::ProxyFailed { .. }
        )
    }

    /// The caller's input cannot be used: the URL, a header, the configuration, a
    /// message to send, a proxy URL, a TLS file (also [`is_tls`](Self::is_tls)).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Url { .. }
                | Error::InvalidHeader { .. }
                | Error::InvalidConfig(_)
                | Error::InvalidSend(_)
                | Error::ProxyUrl { .. }
                | Error::TlsFile { .. }
        )
    }
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
            duplex_proto::Error::InvalidSend(why) => Error::InvalidSend(why),
            duplex_proto::Error::IdleTimeout => Error::Timeout(Phase::Idle),
            duplex_proto::Error::CloseTimeout => Error::Timeout(Phase::CloseHandshake),
            // The two crates are released together: a new kind in duplex-proto gets its
            // own variant here in the same release. Until then it is not lost.
            other => Error::Io(io::Error::other(other)),
        }
    }
}

impl From<HandshakeFailure> for Error {
    fn from(f: HandshakeFailure) -> Self {
        duplex_proto::Error::Handshake(f).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_belongs_to_its_groups() {
        let io = || io::Error::from(io::ErrorKind::UnexpectedEof);
        let cases: Vec<(Error, &str)> = vec![
            (Error::Timeout(Phase::Idle), "timeout"),
            (Error::Timeout(Phase::Connect), "timeout connect"),
            (Error::Timeout(Phase::TlsHandshake), "timeout tls"),
            (
                Error::Timeout(Phase::WebSocketHandshake),
                "timeout handshake",
            ),
            (Error::ConnectionClosed, "closed"),
            (Error::AbnormalClosure, "closed"),
            (Error::Protocol(Violation::ReservedBits), "protocol"),
            (
                Error::Handshake(HandshakeFailure::MissingHeader("upgrade")),
                "protocol handshake",
            ),
            (Error::Rejected { status: 403 }, "handshake"),
            (
                Error::HandshakeInterrupted { peer: Role::Server },
                "handshake",
            ),
            (
                Error::TlsFile {
                    path: "k.pem".into(),
                    reason: "r".into(),
                },
                "tls usage",
            ),
            (
                Error::ProxyConnect {
                    proxy: "p".into(),
                    source: io::ErrorKind::TimedOut.into(),
                },
                "timeout proxy",
            ),
            (Error::Upgrade("gone".into()), "handshake"),
            (
                Error::Dns {
                    host: "h".into(),
                    source: io(),
                },
                "connect",
            ),
            (
                Error::TlsIo {
                    host: "h".into(),
                    source: io(),
                },
                "tls",
            ),
            (Error::InvalidSend(InvalidSend::CloseReasonTooLong), "usage"),
            (
                Error::InvalidHeader {
                    name: "n".into(),
                    part: HeaderPart::Name,
                    reason: "r".into(),
                },
                "usage",
            ),
            (
                Error::ProxyUrl {
                    url: "u".into(),
                    reason: "r".into(),
                },
                "usage proxy",
            ),
            (
                Error::ProxyFailed {
                    proxy: "p".into(),
                    reason: "r".into(),
                },
                "proxy",
            ),
            (Error::Io(io()), ""),
        ];
        for (e, groups) in cases {
            let has = |g: &str| groups.split(' ').any(|x| x == g);
            assert_eq!(e.is_timeout(), has("timeout"), "{e:?}");
            assert_eq!(e.is_closed(), has("closed"), "{e:?}");
            assert_eq!(e.is_protocol(), has("protocol"), "{e:?}");
            assert_eq!(e.is_handshake(), has("handshake"), "{e:?}");
            assert_eq!(e.is_connect(), has("connect"), "{e:?}");
            assert_eq!(e.is_tls(), has("tls"), "{e:?}");
            assert_eq!(e.is_proxy(), has("proxy"), "{e:?}");
            assert_eq!(e.is_usage(), has("usage"), "{e:?}");
        }
    }

    #[test]
    fn timeouts_name_their_phase() {
        assert_eq!(
            Error::Timeout(Phase::CloseHandshake).to_string(),
            "timed out: the peer did not answer our close frame"
        );
        assert_eq!(
            Error::Timeout(Phase::TlsHandshake).to_string(),
            "timed out: TLS handshake"
        );
    }
}
