//! Opening client connections.

use crate::config::Config;
use crate::error::{Error, HeaderPart, Phase};
use crate::head::{read_head, HeadError};
use crate::proxy::{self, ProxyChoice};
use crate::tls::{self, ClientTls};
use crate::transport::ClientStream;
use crate::websocket::WebSocket;
use bytes::BytesMut;
use duplex_proto::handshake::client::{ClientHandshake, ClientRequest, ServerResponse};
use duplex_proto::Role;
use http::{HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use url::Url;

/// Connects to a `ws://` or `wss://` URL with the default configuration.
///
/// ```no_run
/// # async fn demo() -> Result<(), duplex::Error> {
/// let (ws, response) = duplex::connect("ws://127.0.0.1:9001/chat").await?;
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<(WebSocket<ClientStream>, ServerResponse), Error> {
    ClientBuilder::new(url).connect().await
}

/// Builds a client connection: headers, subprotocols, origin, limits, timeouts and TLS.
///
/// ```no_run
/// # async fn demo() -> Result<(), duplex::Error> {
/// use std::time::Duration;
/// let (ws, response) = duplex::ClientBuilder::new("ws://127.0.0.1:9001/")
///     .header("authorization", "Bearer token")
///     .protocol("chat.v1")
///     .ping_interval(Duration::from_secs(20))
///     .connect()
///     .await?;
/// assert_eq!(response.protocol.as_deref(), Some("chat.v1"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    url: String,
    request: ClientRequest,
    config: Config,
    invalid_header: Option<(String, HeaderPart, String)>,
    tls: ClientTls,
    proxy: ProxyChoice,
}

impl ClientBuilder {
    /// A builder for `url` (`ws://` or `wss://host[:port]/path?query`).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            request: ClientRequest::default(),
            config: Config::default(),
            invalid_header: None,
            tls: ClientTls::default(),
            proxy: ProxyChoice::default(),
        }
    }

    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.request.headers.append(n, v);
            }
            (Err(e), _) => {
                self.invalid_header = Some((name.to_owned(), HeaderPart::Name, e.to_string()));
            }
            (_, Err(e)) => {
                let reason = format!("{e} (no control characters or line breaks)");
                self.invalid_header = Some((name.to_owned(), HeaderPart::Value, reason));
            }
        }
        self
    }

    /// Offers a subprotocol; call again to offer more, in order of preference.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.request.protocols.push(protocol.into());
        self
    }

    /// Sets the `Origin` header.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.request.origin = Some(origin.into());
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sets the protocol limits.
    pub fn limits(mut self, limits: duplex_proto::Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Turns permessage-deflate off (`None`) or sets how it is offered and used.
    pub fn deflate(mut self, deflate: Option<duplex_proto::deflate::DeflateConfig>) -> Self {
        self.config.deflate = deflate;
        self
    }

    /// Sends a keepalive ping after this long without incoming traffic.
    pub fn ping_interval(mut self, every: std::time::Duration) -> Self {
        self.config.ping_interval = Some(every);
        self
    }

    /// Connects through this proxy, whatever the environment says: `http://` or
    /// `https://` (HTTP `CONNECT`, TLS to the proxy with the [`tls`](Self::tls) settings),
    /// `socks5://` (target resolved here) or `socks5h://` (resolved by the proxy), with
    /// optional percent-encoded `user:password@`; `host:port` alone is an HTTP proxy. An
    /// invalid URL fails [`connect`](Self::connect) with [`Error::ProxyUrl`]; use
    /// [`Proxy::parse`](crate::Proxy::parse) to check it earlier. See [`Proxy`](crate::Proxy).
    ///
    /// Without this or [`no_proxy`](Self::no_proxy), the proxy comes from the environment
    /// as in most tools (curl alone ignores upper-case `HTTP_PROXY`): `http_proxy`/`HTTP_PROXY` for `ws://`, `https_proxy`/`HTTPS_PROXY` for
    /// `wss://`, then `all_proxy`/`ALL_PROXY`, unless `no_proxy`/`NO_PROXY` lists the host
    /// (see [`Proxy::from_env`](crate::Proxy::from_env)).
    pub fn proxy(mut self, url: &str) -> Self {
        self.proxy = ProxyChoice::from_url(url);
        self
    }

    /// Connects directly, ignoring any proxy set in the environment.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxyChoice::Off;
        self
    }

    /// Replaces the TLS settings of `wss://` connections (see [`ClientTls`] for the
    /// defaults: system roots, certificates verified).
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = tls;
        self
    }

    /// Trusts the CA certificates in this PEM file for `wss://`, **instead of** the system
    /// roots (add [`tls_system_roots(true)`](Self::tls_system_roots) to trust both); call
    /// again for more files. See [`ClientTls::ca_file`].
    pub fn tls_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.tls = self.tls.ca_file(path);
        self
    }

    /// Whether to trust the system's root certificates for `wss://`; by default only when
    /// no CA file is given. See [`ClientTls::system_roots`].
    pub fn tls_system_roots(mut self, trust: bool) -> Self {
        self.tls = self.tls.system_roots(trust);
        self
    }

    /// Presents a client certificate (PEM chain) and its PEM private key when a `wss://`
    /// server asks for one. See [`ClientTls::client_cert`].
    pub fn tls_client_cert(
        mut self,
        cert_chain: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.tls = self.tls.client_cert(cert_chain, key);
        self
    }

    /// **Dangerous**: accepts any `wss://` server certificate (unknown issuer, expired,
    /// another name), for tests against self-signed servers only. Off by default.
    /// See [`ClientTls::danger_accept_invalid_certs`].
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.tls = self.tls.danger_accept_invalid_certs(accept);
        self
    }

    /// Opens the TCP connection and performs the handshake.
    /// The connection is made in steps, each with its own error: TCP (directly or through
    /// a proxy), TLS for `wss://`, then the WebSocket handshake.
    pub async fn connect(self) -> Result<(WebSocket<ClientStream>, ServerResponse), Error> {
        let target = self.target()?;
        let via = self.proxy.resolve(target.tls, &target.host, target.port)?;
        let stream = proxy::open(
            &target.host,
            target.port,
            via.as_ref(),
            &self.tls,
            self.config.handshake_timeout,
        )
        .await?;
        if !target.tls {
            return self.handshake(stream).await;
        }
        let timeout = self.config.handshake_timeout;
        let stream = tls::connect(&self.tls, &target.host, stream, timeout).await?;
        self.handshake(stream)
            .await
            .map_err(|e| tls::after_handshake(e, &target.host))
    }

    /// Performs the handshake over an already open transport (TLS, a proxy tunnel, ...).
    pub async fn handshake<S>(
        mut self,
        mut stream: S,
    ) -> Result<(WebSocket<S>, ServerResponse), Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let target = self.target()?;
        self.config.validate().map_err(Error::InvalidConfig)?;
        self.request.deflate = self.config.deflate.clone();
        self.request.host = target.host_header;
        self.request.path = target.path;
        let config = self.config;
        let request = self.request;
        let limits = config.limits.clone();
        let exchange = async move {
            let mut out = BytesMut::new();
            let handshake = ClientHandshake::start(&request, &mut out)?;
            stream.write_all(&out).await?;
            stream.flush().await?;
            let mut input = BytesMut::with_capacity(1024);
            let response = read_head(&mut stream, &mut input, |input| {
                handshake.receive(input, &limits)
            })
            .await
            .map_err(|e| match e {
                HeadError::Parse(failure) => Error::from(failure),
                HeadError::Closed(Some(io)) => Error::Io(io),
                HeadError::Closed(None) => Error::HandshakeInterrupted { peer: Role::Server },
            })?;
            Ok::<_, Error>((stream, response, input))
        };
        let (stream, response, leftover) = tokio::time::timeout(config.handshake_timeout, exchange)
            .await
            .map_err(|_| Error::Timeout(Phase::WebSocketHandshake))??;
        tracing::debug!(protocol = ?response.protocol, deflate = ?response.deflate, "client handshake complete");
        let proto = response.connection(config.limits.clone(), config.deflate.as_ref());
        Ok((
            WebSocket::from_connection(stream, proto, config, leftover),
            response,
        ))
    }

    fn target(&self) -> Result<Target, Error> {
        let bad = |reason: &str| Error::Url {
            url: self.url.clone(),
            reason: reason.to_owned(),
        };
        if let Some((name, part, reason)) = &self.invalid_header {
            return Err(Error::InvalidHeader {
                name: name.clone(),
                part: *part,
                reason: reason.clone(),
            });
        }
        let url = Url::parse(&self.url).map_err(|e| bad(&e.to_string()))?;
        let (default_port, tls) = match url.scheme() {
            "ws" => (80, false),
            "wss" => (443, true),
            other => return Err(bad(&format!("scheme {other:?} is not ws:// or wss://"))),
        };
        let host = url.host_str().ok_or_else(|| bad("no host"))?.to_owned();
        let port = url.port().unwrap_or(default_port);
        let host_header = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let mut path = url.path().to_owned();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        // Brackets belong in the Host header but not in the socket address.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        Ok(Target {
            host,
            port,
            tls,
            host_header,
            path,
        })
    }
}

struct Target {
    host: String,
    port: u16,
    /// `wss://`: TLS over the TCP connection.
    tls: bool,
    host_header: String,
    path: String,
}
