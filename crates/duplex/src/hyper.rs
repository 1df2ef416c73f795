//! WebSocket upgrades inside a [hyper](https://hyper.rs) 1.x server (feature `hyper`).
//!
//! A hyper service hands the request to [`upgrade`] or [`upgrade_with`]: the request is
//! validated under the same rules as [`accept_with`](crate::accept_with) (a broken upgrade
//! gets the same status and reason), the subprotocol and permessage-deflate are negotiated
//! under the same [`Config`], and the service returns the 101 response. Once hyper has sent
//! it, the [`PendingUpgrade`] future resolves to a [`WebSocket`] over the upgraded
//! connection, with the config's limits, timeouts and deflate in force.
//!
//! The connection must be served with upgrades enabled, for example
//! `hyper::server::conn::http1::Builder::new().serve_connection(io, service).with_upgrades()`.
//!
//! ```no_run
//! use bytes::Bytes;
//! use futures_util::StreamExt;
//! use http_body_util::Full;
//! use hyper::{body::Incoming, Request, Response};
//!
//! async fn handle(mut request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
//!     if !duplex::hyper::is_upgrade_request(&request) {
//!         return Ok(Response::new(Full::from("plain HTTP\n")));
//!     }
//!     match duplex::hyper::upgrade(&mut request, duplex::Config::default()) {
//!         Ok((response, pending)) => {
//!             tokio::spawn(async move {
//!                 let mut ws = pending.await?;
//!                 while let Some(message) = ws.next().await {
//!                     let message = message?;
//!                     if message.is_data() {
//!                         ws.send(message).await?;
//!                     }
//!                 }
//!                 Ok::<_, duplex::Error>(())
//!             });
//!             Ok(response)
//!         }
//!         Err(rejection) => Ok(rejection.into_response()),
//!     }
//! }
//! ```

use crate::config::Config;
use crate::error::{Error, Phase};
use crate::server::{Accept, Reject};
use crate::websocket::WebSocket;
use bytes::{Bytes, BytesMut};
use duplex_proto::handshake::server::{is_upgrade_attempt, rejection, UpgradeRequest};
use duplex_proto::{Connection, HandshakeFailure, Role};
use http::{HeaderMap, Request, Response, StatusCode};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The transport of a WebSocket upgraded through hyper: hyper's upgraded connection (with
/// any bytes the client sent early) as a tokio `AsyncRead + AsyncWrite`.
pub type Upgraded = hyper_util::rt::TokioIo<::hyper::upgrade::Upgraded>;

/// Whether the request attempts a WebSocket upgrade at all (an `Upgrade: websocket` or a
/// `Sec-WebSocket-*` header). Other requests are plain HTTP for the service to answer;
/// these go to [`upgrade`], which validates them.
pub fn is_upgrade_request<B>(request: &Request<B>) -> bool {
    is_upgrade_attempt(request.headers())
}

/// Upgrades with `config`, choosing no subprotocol: the 101 response for hyper to send
/// and the future of the WebSocket, or the rejection to send instead.
pub fn upgrade<B, R>(
    request: &mut Request<B>,
    config: impl Into<Arc<Config>>,
) -> Result<(Response<R>, PendingUpgrade), Rejection>
where
    R: From<Bytes>,
{
    upgrade_with(request, config, |_| Ok(Accept::default()))
}

/// Like [`upgrade`], with a callback that sees the validated request (path, query,
/// headers, origin, offered subprotocols) and accepts it (with a subprotocol and extra
/// response headers) or rejects it with any status, as for
/// [`accept_with`](crate::accept_with).
///
/// A broken upgrade is rejected with the status and reason [`accept_with`](crate::accept_with)
/// answers (400, 405 or 426 with `Sec-WebSocket-Version: 13`); a request whose connection
/// hyper cannot upgrade (not served `with_upgrades()`) with 426; an invalid `config` with
/// 500.
pub fn upgrade_with<B, R, F>(
    request: &mut Request<B>,
    config: impl Into<Arc<Config>>,
    decide: F,
) -> Result<(Response<R>, PendingUpgrade), Rejection>
where
    R: From<Bytes>,
    F: FnOnce(&UpgradeRequest) -> Result<Accept, Reject>,
{
    let config = config.into();
    config.validate().map_err(Rejection::config)?;
    let upgrade = UpgradeRequest::from_request(request).map_err(Rejection::handshake)?;
    let accept = decide(&upgrade).map_err(|reject| {
        tracing::info!(
            status = reject.status.as_u16(),
            path = upgrade.path(),
            "handshake rejected by the application"
        );
        Rejection::new(
            reject.status,
            HeaderMap::new(),
            format!("{}\n", reject.body),
        )
    })?;
    let on_upgrade = request
        .extensions_mut()
        .remove::<::hyper::upgrade::OnUpgrade>()
        .ok_or_else(Rejection::not_upgradable)?;
    let (headers, pending) = prepare(&upgrade, on_upgrade, config, accept);
    Ok((switching_protocols(headers), pending))
}

/// The 101 headers for a validated request, and the future that builds the WebSocket
/// once hyper has upgraded the connection. `config` must be valid.
pub(crate) fn prepare(
    upgrade: &UpgradeRequest,
    on_upgrade: ::hyper::upgrade::OnUpgrade,
    config: Arc<Config>,
    accept: Accept,
) -> (HeaderMap, PendingUpgrade) {
    let (headers, deflate) = upgrade.accept_headers(
        accept.protocol.as_deref(),
        config.deflate.as_ref(),
        &accept.headers,
    );
    tracing::debug!(path = upgrade.path(), ?deflate, "server handshake answered");
    let proto = Connection::after_handshake(
        Role::Server,
        config.limits.clone(),
        deflate,
        config.deflate.as_ref(),
    );
    let pending = PendingUpgrade {
        on_upgrade,
        deadline: Deadline::At(crate::websocket::deadline_after(config.handshake_timeout)),
        setup: Some((proto, config)),
    };
    (headers, pending)
}

/// A 101 Switching Protocols response with `headers` and an empty body.
pub(crate) fn switching_protocols<R: From<Bytes>>(headers: HeaderMap) -> Response<R> {
    let mut response = Response::new(R::from(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *response.headers_mut() = headers;
    response
}

/// Resolves to the [`WebSocket`] once hyper has sent the 101 response and handed over
/// the connection; fails with [`Error::Upgrade`] when the connection was not upgraded (the
/// client left, or the response was not the one [`upgrade`] returned), and with
/// [`Error::Timeout`] when that has not happened within [`Config::handshake_timeout`] of
/// the upgrade call (a service slow to return the response, a connection hyper never
/// hands over). Reading the request head before that is hyper's part: bound it with
/// hyper's `http1::Builder::header_read_timeout`.
#[must_use = "the WebSocket is only available by awaiting this future"]
pub struct PendingUpgrade {
    on_upgrade: ::hyper::upgrade::OnUpgrade,
    deadline: Deadline,
    setup: Option<(Connection, Arc<Config>)>,
}

/// The handshake deadline: an instant until first polled (the upgrade call may run
/// outside a runtime's timer context), then the timer.
enum Deadline {
    At(tokio::time::Instant),
    Timer(Pin<Box<tokio::time::Sleep>>),
}

impl Deadline {
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> bool {
        if let Deadline::At(at) = *self {
            *self = Deadline::Timer(Box::pin(tokio::time::sleep_until(at)));
        }
        match self {
            Deadline::Timer(timer) => timer.as_mut().poll(cx).is_ready(),
            Deadline::At(_) => unreachable!("replaced above"),
        }
    }
}

impl std::fmt::Debug for PendingUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingUpgrade").finish_non_exhaustive()
    }
}

impl Future for PendingUpgrade {
    type Output = Result<WebSocket<Upgraded>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let upgraded = match Pin::new(&mut self.on_upgrade).poll(cx) {
            Poll::Ready(upgraded) => upgraded,
            Poll::Pending if self.deadline.poll_elapsed(cx) => {
                self.setup = None;
                return Poll::Ready(Err(Error::Timeout(Phase::WebSocketHandshake)));
            }
            Poll::Pending => return Poll::Pending,
        };
        let Some((proto, config)) = self.setup.take() else {
            return Poll::Ready(Err(Error::ConnectionClosed));
        };
        Poll::Ready(match upgraded {
            Ok(io) => Ok(WebSocket::from_connection(
                hyper_util::rt::TokioIo::new(io),
                proto,
                config,
                BytesMut::new(),
            )),
            Err(e) => Err(Error::Upgrade(Box::new(e))),
        })
    }
}

/// Why an upgrade request was not accepted: the HTTP answer to send instead of 101, with
/// a plain-text body naming the reason.
#[derive(Clone, Debug)]
pub struct Rejection(Box<RejectionParts>);

#[derive(Clone, Debug)]
struct RejectionParts {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Rejection {
    fn new(status: StatusCode, headers: HeaderMap, body: String) -> Self {
        Self(Box::new(RejectionParts {
            status,
            headers,
            body,
        }))
    }

    pub(crate) fn handshake(failure: HandshakeFailure) -> Self {
        tracing::info!(reason = %failure, status = failure.status().as_u16(), "rejecting handshake");
        let (status, headers, body) = rejection(&failure);
        Self::new(status, headers, body)
    }

    pub(crate) fn config(problem: String) -> Self {
        tracing::error!(%problem, "invalid WebSocket configuration");
        let body = format!("{}\n", Error::InvalidConfig(problem));
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, HeaderMap::new(), body)
    }

    pub(crate) fn not_upgradable() -> Self {
        tracing::warn!("a WebSocket upgrade request on a connection hyper cannot upgrade");
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::UPGRADE,
            http::HeaderValue::from_static("websocket"),
        );
        let body = "this connection cannot be upgraded to a WebSocket (HTTP/1.1 with upgrades is required)\n";
        Self::new(StatusCode::UPGRADE_REQUIRED, headers, body.into())
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The plain-text body naming the reason.
    pub fn reason(&self) -> &str {
        &self.0.body
    }

    /// The response: status, headers (`Sec-WebSocket-Version: 13` after a version
    /// mismatch) and the reason as a `text/plain` body.
    pub fn into_response<R: From<Bytes>>(self) -> Response<R> {
        let RejectionParts {
            status,
            headers,
            body,
        } = *self.0;
        let mut response = Response::new(R::from(Bytes::from(body)));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HTTP {}: {}",
            self.0.status.as_u16(),
            self.0.body.trim_end()
        )
    }
}

impl std::error::Error for Rejection {}
