//! Accepting server connections.

use crate::config::Config;
use crate::error::Error;
use crate::websocket::WebSocket;
use bytes::BytesMut;
use duplex_proto::handshake::server::{reject, write_response, UpgradeRequest};
use duplex_proto::{Connection, Role};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How to accept a request: the subprotocol to choose and headers to add.
#[derive(Clone, Debug, Default)]
pub struct Accept {
    protocol: Option<String>,
    headers: HeaderMap,
}

impl Accept {
    /// Chooses a subprotocol (it must be one the client offered).
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// Adds a response header. Invalid names or values are ignored with a log line.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.headers.append(n, v);
            }
            _ => tracing::warn!(name, value, "ignoring invalid response header"),
        }
        self
    }
}

/// How to reject a request: an HTTP status and a body.
#[derive(Clone, Debug)]
pub struct Reject {
    status: StatusCode,
    body: String,
}

impl Reject {
    /// Rejects with `status` and a plain-text `body` saying why.
    pub fn new(status: StatusCode, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
        }
    }
}

/// Accepts a WebSocket connection on `stream` with the default configuration.
///
/// ```no_run
/// # async fn demo() -> Result<(), duplex::Error> {
/// use futures_util::StreamExt;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// let (tcp, _) = listener.accept().await?;
/// let mut ws = duplex::accept(tcp).await?;
/// while let Some(message) = ws.next().await {
///     let message = message?;
///     if message.is_data() {
///         ws.send(message).await?;
///     }
/// }
/// # Ok(()) }
/// ```
pub async fn accept<S>(stream: S) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(stream, Config::default(), |_| Ok(Accept::default())).await
}

/// Accepts with a configuration and a callback that sees the request (path, query,
/// headers, origin, offered subprotocols) and accepts or rejects it.
///
/// Invalid handshakes are answered with the matching HTTP status (400, 405, 426, 431)
/// and a body naming the reason, then the transport is closed and the error returned.
pub async fn accept_with<S, F>(
    mut stream: S,
    config: Config,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&UpgradeRequest) -> Result<Accept, Reject>,
{
    config.validate().map_err(Error::InvalidConfig)?;
    let read_request = async {
        let mut input = BytesMut::with_capacity(1024);
        loop {
            match UpgradeRequest::parse(&mut input, &config.limits) {
                Ok(Some(request)) => return Ok((request, input)),
                Ok(None) => {}
                Err(failure) => return Err(Some(failure)),
            }
            match stream.read_buf(&mut input).await {
                Ok(0) | Err(_) => return Err(None),
                Ok(_) => {}
            }
        }
    };
    let outcome = tokio::time::timeout(config.handshake_timeout, read_request).await;
    let mut out = BytesMut::new();
    let (request, leftover) = match outcome {
        Err(_) => return Err(Error::Timeout("WebSocket handshake")),
        Ok(Err(None)) => {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "client closed the connection during the handshake",
            )))
        }
        Ok(Err(Some(failure))) => {
            tracing::info!(reason = %failure, status = failure.status().as_u16(), "rejecting handshake");
            reject(&failure, &mut out);
            send_and_close(&mut stream, &out).await;
            return Err(failure.into());
        }
        Ok(Ok(ok)) => ok,
    };
    match decide(&request) {
        Ok(accept) => {
            let deflate = request.accept_with_deflate(
                accept.protocol.as_deref(),
                config.deflate.as_ref(),
                &accept.headers,
                &mut out,
            );
            stream.write_all(&out).await?;
            stream.flush().await?;
            tracing::debug!(path = request.path(), ?deflate, "server handshake complete");
            let mut proto = Connection::new(Role::Server, config.limits.clone());
            if let (Some(params), Some(deflate)) = (deflate, &config.deflate) {
                proto = proto.with_deflate(params, deflate);
            }
            Ok(WebSocket::from_connection(stream, proto, config, leftover))
        }
        Err(rejection) => {
            tracing::info!(
                status = rejection.status.as_u16(),
                path = request.path(),
                "handshake rejected by the application"
            );
            let body = format!("{}\n", rejection.body);
            write_response(
                rejection.status,
                &HeaderMap::new(),
                body.as_bytes(),
                &mut out,
            );
            send_and_close(&mut stream, &out).await;
            Err(Error::Rejected {
                status: rejection.status.as_u16(),
            })
        }
    }
}

/// Best-effort answer to a rejected request: the peer may already be gone.
async fn send_and_close<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
}
