//! The listener: hyper serves every connection (HTTP/1.1 with upgrades), routes plain
//! requests, and hands `/connection/websocket` upgrades to a session.

use super::{admin, api, page};
use crate::node::Node;
use crate::protocol::Format;
use crate::session;
use bytes::Bytes;
use futures_util::future::{Either, FutureExt};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

/// The largest API request body, in bytes.
const MAX_API_BODY: usize = 1 << 20;

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    respond(status, "application/json", body)
}

/// Accepts connections until the node's shutdown token is cancelled; connection tasks
/// are tracked by `tasks`.
pub async fn serve(node: Arc<Node>, listener: TcpListener, tasks: TaskTracker) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            () = node.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(5);
                pair
            }
            Err(e) => {
                // Out of descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "accept failed; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let node = node.clone();
        let shutdown = node.shutdown.clone();
        let inner_tasks = tasks.clone();
        tasks.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let node = node.clone();
                let tasks = inner_tasks.clone();
                async move { Ok::<_, std::convert::Infallible>(route(node, tasks, peer, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades();
            // On shutdown, an idle keep-alive connection closes at once instead of
            // holding the shutdown until its header read timeout.
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
        });
    }
}

async fn route(
    node: Arc<Node>,
    tasks: TaskTracker,
    peer: std::net::SocketAddr,
    mut request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    match (request.method(), path.as_str()) {
        (_, "/connection/websocket") => {
            if node.shutdown.is_cancelled() {
                return respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "shutting down\n",
                );
            }
            if let Some(rate) = &node.handshake_rate {
                if rate.check_key(&peer.ip()).is_err() {
                    node.metrics.limits.inc("max_connections_per_second_per_ip");
                    tracing::info!(ip = %peer.ip(), "too many new connections from this address (429)");
                    let mut response = respond(
                        StatusCode::TOO_MANY_REQUESTS,
                        "text/plain",
                        "too many new connections from this address; retry in a second\n",
                    );
                    let headers = response.headers_mut();
                    headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                    headers.insert(
                        header::CONNECTION,
                        header::HeaderValue::from_static("close"),
                    );
                    return response;
                }
            }
            let host = request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned);
            let allowed = &node.config.allowed_origins;
            let mut format = Format::Json;
            let decide = |upgrade: &duplex::UpgradeRequest| {
                super::origin::check(upgrade.origin(), host.as_deref(), allowed).map_err(
                    |reason| {
                        node.metrics.handshake_failures.inc("origin");
                        tracing::info!(%reason, "WebSocket handshake refused (403)");
                        duplex::Reject::new(StatusCode::FORBIDDEN, reason)
                    },
                )?;
                // JSON unless the client offers the Protobuf subprotocol.
                let (chosen, subprotocol) = Format::negotiate(upgrade.protocols());
                format = chosen;
                Ok(match subprotocol {
                    Some(p) => duplex::Accept::default().protocol(p),
                    None => duplex::Accept::default(),
                })
            };
            // The headers backend proxies get (`proxy.http_headers`), kept from the handshake.
            let forwarded = node
                .backend
                .as_ref()
                .map(|b| b.forwarded(request.headers()))
                .unwrap_or_default();
            match duplex::hyper::upgrade_with(&mut request, node.websocket.clone(), decide) {
                Ok((response, pending)) => {
                    // Combinators, not an async block: the block would keep its
                    // captures and the upgrade's result beside the session for the
                    // connection's life (about 0.5 KiB each).
                    tasks.spawn(pending.then(move |upgraded| match upgraded {
                        Ok(ws) => Either::Left(session::run(node, ws, format, forwarded)),
                        Err(e) => {
                            tracing::debug!(error = %e, "upgrade did not complete");
                            Either::Right(std::future::ready(()))
                        }
                    }));
                    response
                }
                Err(rejection) => {
                    // Origin refusals are counted (as "origin") where they are decided.
                    if rejection.status() != StatusCode::FORBIDDEN {
                        node.metrics
                            .handshake_failures
                            .inc(&rejection.status().as_u16().to_string());
                    }
                    tracing::info!(
                        status = rejection.status().as_u16(),
                        reason = rejection.reason(),
                        "WebSocket handshake refused"
                    );
                    // The client wanted a WebSocket: it gets the refusal, then the
                    // connection ends instead of idling as HTTP keep-alive.
                    let mut response = rejection.into_response();
                    response.headers_mut().insert(
                        header::CONNECTION,
                        header::HeaderValue::from_static("close"),
                    );
                    response
                }
            }
        }
        (&Method::GET, "/") => {
            respond(StatusCode::OK, "text/html; charset=utf-8", page::INDEX_HTML)
        }
        (&Method::GET, "/duplex-client.js") => respond(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            page::CLIENT_JS,
        ),
        (&Method::GET, "/healthz") => match node.storage_health().await {
            Ok(()) => respond(StatusCode::OK, "text/plain", "ok\n"),
            Err(e) => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("storage is not writable: {e}\n"),
            ),
        },
        (&Method::GET, "/metrics") => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            node.metrics.render(),
        ),
        (&Method::GET, "/admin") => {
            respond(StatusCode::OK, "text/html; charset=utf-8", page::ADMIN_HTML)
        }
        (&Method::GET, "/admin/stats") => match admin::check(&node, request.headers()) {
            Ok(()) => json(StatusCode::OK, admin::stats(&node)),
            Err(refusal) => admin_refused(&refusal),
        },
        (&Method::POST, p) if p.starts_with("/admin/api/") => {
            if let Err(refusal) = admin::check(&node, request.headers()) {
                return admin_refused(&refusal);
            }
            let method = p["/admin/api/".len()..].to_owned();
            api_request(&node, &method, request).await
        }
        (&Method::POST, p) if p.starts_with("/api/") => {
            let method = p["/api/".len()..].to_owned();
            let Some(key) = node.config.api_key.clone() else {
                return json(
                    StatusCode::FORBIDDEN,
                    "{\"error\":{\"code\":103,\"message\":\"the HTTP API is off: set api_key\"}}"
                        .into(),
                );
            };
            if !api::authorized(request.headers(), &key) {
                node.metrics.auth_failures.inc("api key");
                return json(
                    StatusCode::UNAUTHORIZED,
                    "{\"error\":{\"code\":101,\"message\":\"unauthorized\"}}".into(),
                );
            }
            api_request(&node, &method, request).await
        }
        (_, "/" | "/healthz" | "/metrics" | "/admin" | "/admin/stats") => respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n",
        ),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// Reads an API request's body (at most [`MAX_API_BODY`]) and runs the method.
async fn api_request(
    node: &Arc<Node>,
    method: &str,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let body = match Limited::new(request.into_body(), MAX_API_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("{{\"error\":{{\"code\":107,\"message\":\"request body unreadable or over {MAX_API_BODY} bytes: {}\"}}}}", e.to_string().replace('"', "'")),
            )
        }
    };
    let (status, body) = api::call(node, method, &body).await;
    json(status, body)
}

fn admin_refused(refusal: &admin::Refusal) -> Response<Full<Bytes>> {
    let (status, body) = refusal.answer();
    let mut response = json(status, body);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"duplex admin\""),
        );
    }
    response
}
