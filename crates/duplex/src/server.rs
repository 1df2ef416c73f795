//! Accepting server connections.

use crate::config::Config;
use crate::error::{Error, Phase};
use crate::head::{read_head, HeadError};
use crate::websocket::WebSocket;
use bytes::{Bytes, BytesMut};
use duplex_proto::handshake::server::{reject, write_response, IncomingRequest, UpgradeRequest};
use duplex_proto::{Connection, Role};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How to accept a request: the subprotocol to choose and headers to add.
#[derive(Clone, Debug, Default)]
pub struct Accept {
    pub(crate) protocol: Option<String>,
    pub(crate) headers: HeaderMap,
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
    pub(crate) status: StatusCode,
    pub(crate) body: String,
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
/// and a body naming the reason, then the transport is closed and the error returned; a
/// request not complete within [`Config::handshake_timeout`] is answered 408 (a
/// connection that sent nothing at all is closed without an answer) and returns
/// [`Error::Timeout`]. A refusal takes up to 2 s more (1 s to write the answer, 1 s to
/// read what the client still sends so a reset does not destroy the answer): accept on a
/// task of its own, not inline in an accept loop.
/// A plain HTTP request, one that does not attempt a WebSocket upgrade at all (no
/// `Upgrade: websocket` nor `Sec-WebSocket-*` header), is answered by [`not_found`] (404)
/// and returns [`Error::Rejected`] with status 404; [`accept_with_http`] answers such
/// requests with a handler instead.
///
/// `config` is a [`Config`] or an `Arc<Config>`: a server that shares one `Arc` among its
/// connections keeps a pointer per connection instead of a copy.
pub async fn accept_with<S, F>(
    stream: S,
    config: impl Into<Arc<Config>>,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&UpgradeRequest) -> Result<Accept, Reject>,
{
    // Boxed: the handshake's state (request buffer, parsed headers, timer) is large and
    // needed only briefly; a connection's task should not reserve room for it for life.
    match Box::pin(handshake(stream, config.into(), decide, not_found)).await? {
        Some(ws) => Ok(ws),
        None => Err(Error::Rejected {
            status: StatusCode::NOT_FOUND.as_u16(),
        }),
    }
}

/// Like [`accept_with`], and answers plain HTTP requests with `http`, so WebSocket and
/// HTTP share one port: returns `Ok(None)` once such a request was answered.
///
/// A plain HTTP request is one that does not attempt a WebSocket upgrade at all (no
/// `Upgrade: websocket` nor `Sec-WebSocket-*` header; any method, HTTP/1.0 or 1.1). `http`
/// gets its head (method, target, version, headers; the body is not read) and returns
/// the response to send: status, headers and body. The server adds `Content-Length` and
/// `Connection: close` (one request per connection), `Content-Type: text/plain` when the
/// body is not empty and no type is set, sends no body to `HEAD`, then closes. A broken
/// upgrade (say `Upgrade: websocket` without `Sec-WebSocket-Key`) is still answered
/// 400/405/426 as by [`accept_with`]. [`not_found`] is the default answer.
///
/// ```no_run
/// # async fn demo() -> Result<(), duplex::Error> {
/// use duplex::{Accept, Config};
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// let (tcp, _) = listener.accept().await?;
/// let accepted = duplex::accept_with_http(
///     tcp,
///     Config::default(),
///     |_| Ok(Accept::default()),
///     |request| match request.uri().path() {
///         "/health" => http::Response::new("ok\n"),
///         _ => duplex::not_found(request),
///     },
/// )
/// .await?;
/// if let Some(mut ws) = accepted {
///     ws.send(duplex::Message::text("hello")).await?;
/// }
/// # Ok(()) }
/// ```
pub async fn accept_with_http<S, F, H, B>(
    stream: S,
    config: impl Into<Arc<Config>>,
    decide: F,
    http: H,
) -> Result<Option<WebSocket<S>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&UpgradeRequest) -> Result<Accept, Reject>,
    H: FnOnce(&Request<()>) -> Response<B>,
    B: Into<Bytes>,
{
    let config = config.into();
    // Boxed for the same reason as in `accept_with`.
    Box::pin(handshake(stream, config, decide, |request: &Request<()>| {
        http(request).map(Into::into)
    }))
    .await
}

/// The answer to a plain HTTP request on a WebSocket-only server: 404 with a body saying
/// that this server serves WebSocket upgrades. [`accept_with`] sends it; an
/// [`accept_with_http`] handler may fall back to it.
pub fn not_found<T>(_request: &Request<T>) -> Response<&'static str> {
    let mut response = Response::new(
        "not found: this server only accepts WebSocket upgrades (Upgrade: websocket)\n",
    );
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// Reads the request; upgrades, rejects it, or answers plain HTTP with `http`.
async fn handshake<S, F, H, B>(
    mut stream: S,
    config: Arc<Config>,
    decide: F,
    http: H,
) -> Result<Option<WebSocket<S>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&UpgradeRequest) -> Result<Accept, Reject>,
    H: FnOnce(&Request<()>) -> Response<B>,
    B: Into<Bytes>,
{
    config.validate().map_err(Error::InvalidConfig)?;
    let mut input = BytesMut::with_capacity(1024);
    let read_request = read_head(&mut stream, &mut input, |input| {
        IncomingRequest::parse(input, &config.limits)
    });
    let outcome = tokio::time::timeout(config.handshake_timeout, read_request).await;
    let mut out = BytesMut::new();
    let (request, leftover) = match outcome {
        Err(_) if input.is_empty() => {
            // Nothing was sent (a browser's speculative preconnect, a port scan): no
            // request, so nothing to answer.
            tracing::debug!("no request within the handshake timeout; closing");
            let _ = tokio::time::timeout(LINGER, stream.shutdown()).await;
            return Err(Error::Timeout(Phase::WebSocketHandshake));
        }
        Err(_) => {
            // 408 (RFC 9110 section 15.5.9) tells a slow but honest client what happened;
            // a slowloris gets a few bytes and the end of the connection, as it would
            // have anyway.
            let timeout = config.handshake_timeout;
            tracing::info!(?timeout, "handshake timed out; answering 408");
            let body = format!("request timeout: no complete handshake within {timeout:?}\n");
            write_response(
                StatusCode::REQUEST_TIMEOUT,
                &HeaderMap::new(),
                body.as_bytes(),
                &mut out,
            );
            send_and_close(&mut stream, &out).await;
            return Err(Error::Timeout(Phase::WebSocketHandshake));
        }
        Ok(Err(HeadError::Closed(None))) => {
            return Err(Error::HandshakeInterrupted { peer: Role::Client })
        }
        Ok(Err(HeadError::Closed(Some(io)))) => return Err(Error::Io(io)),
        Ok(Err(HeadError::Parse(failure))) => {
            tracing::info!(reason = %failure, status = failure.status().as_u16(), "rejecting handshake");
            reject(&failure, &mut out);
            send_and_close(&mut stream, &out).await;
            return Err(failure.into());
        }
        Ok(Ok(IncomingRequest::Http(request))) => {
            let status = write_http_response(&request, http(&request).map(Into::into), &mut out);
            tracing::debug!(
                method = %request.method(),
                path = request.uri().path(),
                status = status.as_u16(),
                "answered a plain HTTP request"
            );
            send_and_close(&mut stream, &out).await;
            return Ok(None);
        }
        Ok(Ok(IncomingRequest::Upgrade(request))) => (request, std::mem::take(&mut input)),
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
            let proto = Connection::after_handshake(
                Role::Server,
                config.limits.clone(),
                deflate,
                config.deflate.as_ref(),
            );
            Ok(Some(WebSocket::from_connection(
                stream, proto, config, leftover,
            )))
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

/// Best-effort answer to a request that does not open a connection (the peer may
/// already be gone), then the end of the connection: bounded in time, since the peer
/// may not read.
async fn send_and_close<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    let answer = async {
        let _ = stream.write_all(bytes).await;
        let _ = stream.shutdown().await;
    };
    let _ = tokio::time::timeout(LINGER, answer).await;
    linger(stream).await;
}

/// How long an answered connection waits for the client to read the answer and close.
const LINGER: Duration = Duration::from_secs(1);

/// Writes a handler's answer to a plain HTTP request; returns the status sent.
fn write_http_response(
    request: &Request<()>,
    response: Response<Bytes>,
    out: &mut BytesMut,
) -> StatusCode {
    let (mut parts, mut body) = response.into_parts();
    if parts.status.is_informational() {
        tracing::error!(
            status = parts.status.as_u16(),
            "the HTTP handler answered with a 1xx status; sending 500 instead"
        );
        parts.status = StatusCode::INTERNAL_SERVER_ERROR;
        parts.headers.clear();
        body = Bytes::from_static(b"internal server error: invalid handler status\n");
    }
    // The server frames the body and closes: the handler's framing headers would lie.
    for name in [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
    ] {
        parts.headers.remove(name);
    }
    write_response(parts.status, &parts.headers, &body, out);
    let bodiless = request.method() == Method::HEAD
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    if bodiless {
        out.truncate(out.len() - body.len());
    }
    parts.status
}

/// After answering and shutting down our side, reads (and drops) what the client still
/// sends, for a short while: closing a socket with unread input resets the connection,
/// and a reset can destroy the response (a 400 to a header flood, a 408 to a slowloris)
/// before the client reads it.
async fn linger<S: AsyncRead + Unpin>(stream: &mut S) {
    const MAX_DRAIN: usize = 256 << 10;
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut drained = 0;
        while drained < MAX_DRAIN {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}
