//! Opening client connections.

use crate::config::Config;
use crate::error::Error;
use crate::transport::ClientStream;
use crate::websocket::WebSocket;
use bytes::BytesMut;
use duplex_proto::handshake::client::{ClientHandshake, ClientRequest, ServerResponse};
use duplex_proto::{Connection, Role};
use http::{HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

/// Connects to a `ws://` URL with the default configuration.
///
/// ```no_run
/// # async fn demo() -> Result<(), duplex::Error> {
/// let (ws, response) = duplex::connect("ws://127.0.0.1:9001/chat").await?;
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<(WebSocket<ClientStream>, ServerResponse), Error> {
    ClientBuilder::new(url).connect().await
}

/// Builds a client connection: headers, subprotocols, origin, limits and timeouts.
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
    invalid_header: Option<String>,
}

impl ClientBuilder {
    /// A builder for `url` (`ws://host[:port]/path?query`).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            request: ClientRequest::default(),
            config: Config::default(),
            invalid_header: None,
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
            _ => self.invalid_header = Some(format!("{name}: {value}")),
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

    /// Opens the TCP connection and performs the handshake.
    /// The connection is made in steps, each with its own error: TCP (directly or through
    /// a proxy), TLS for `wss://`, then the WebSocket handshake.
    pub async fn connect(self) -> Result<(WebSocket<ClientStream>, ServerResponse), Error> {
        let target = self.target()?;
        let addr = format!("{}:{}", target.host, target.port);
        let connecting = TcpStream::connect(&addr);
        let stream = tokio::time::timeout(self.config.handshake_timeout, connecting)
            .await
            .map_err(|_| Error::Timeout("TCP connect"))??;
        stream.set_nodelay(true)?;
        self.handshake(ClientStream::new(stream)).await
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
            loop {
                if let Some(response) = handshake.receive(&mut input, &limits)? {
                    return Ok::<_, Error>((stream, response, input));
                }
                if stream.read_buf(&mut input).await? == 0 {
                    return Err(Error::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "server closed the connection during the handshake",
                    )));
                }
            }
        };
        let (stream, response, leftover) = tokio::time::timeout(config.handshake_timeout, exchange)
            .await
            .map_err(|_| Error::Timeout("WebSocket handshake"))??;
        tracing::debug!(protocol = ?response.protocol, deflate = ?response.deflate, "client handshake complete");
        let mut proto = Connection::new(Role::Client, config.limits.clone());
        if let (Some(params), Some(deflate)) = (response.deflate, &config.deflate) {
            proto = proto.with_deflate(params, deflate);
        }
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
        if let Some(h) = &self.invalid_header {
            return Err(bad(&format!("invalid header {h:?}")));
        }
        let url = Url::parse(&self.url).map_err(|e| bad(&e.to_string()))?;
        let default_port = match url.scheme() {
            "ws" => 80,
            "wss" => {
                return Err(bad(
                    "wss:// needs TLS, which this build does not support yet",
                ))
            }
            other => return Err(bad(&format!("scheme {other:?} is not ws://"))),
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
            host_header,
            path,
        })
    }
}

struct Target {
    host: String,
    port: u16,
    host_header: String,
    path: String,
}
