//! An [axum](https://docs.rs/axum) 0.8 extractor for WebSocket upgrades (feature `axum`).
//!
//! ```no_run
//! use axum::{response::Response, routing::get, Router};
//! use duplex::axum::WebSocketUpgrade;
//!
//! async fn handler(ws: WebSocketUpgrade) -> Response {
//!     ws.protocols(["chat.v2", "chat"])
//!         .config(duplex::Config::default())
//!         .on_upgrade(|mut socket| async move {
//!             while let Some(Ok(message)) = socket.recv().await {
//!                 if message.is_data() && socket.send(message).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         })
//! }
//!
//! # async fn demo() -> std::io::Result<()> {
//! let app: Router = Router::new().route("/ws", get(handler));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! The extractor validates the request under the same rules as
//! [`accept_with`](crate::accept_with): a request that is not a valid upgrade is rejected
//! with the same status and reason (400 for a plain GET, 405 for another method, 426 with
//! `Sec-WebSocket-Version: 13` for another version), as a [`Rejection`] response. A request on a
//! connection that cannot be upgraded (HTTP/2) gets 426.

use crate::config::Config;
use crate::hyper::{prepare, switching_protocols, PendingUpgrade};
use crate::server::Accept;
use crate::websocket::WebSocket;
use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use duplex_proto::handshake::server::UpgradeRequest;
use http::request::Parts;
use std::future::Future;
use std::sync::Arc;

pub use crate::hyper::{Rejection, Upgraded};

/// Extracts a WebSocket upgrade request in an axum handler; finish with
/// [`on_upgrade`](Self::on_upgrade), whose response the handler returns.
#[derive(Debug)]
pub struct WebSocketUpgrade {
    request: UpgradeRequest,
    on_upgrade: ::hyper::upgrade::OnUpgrade,
    config: Arc<Config>,
    accept: Accept,
}

impl WebSocketUpgrade {
    /// The validated request: path, query, headers, origin, offered subprotocols.
    pub fn request(&self) -> &UpgradeRequest {
        &self.request
    }

    /// The server's subprotocols in its order of preference: the first one the client
    /// offered is chosen, none if the client offered none of them.
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.accept.protocol = protocols
            .into_iter()
            .map(Into::into)
            .find(|p| self.request.protocols().any(|offered| offered == p));
        self
    }

    /// The subprotocol chosen by [`protocols`](Self::protocols), if any.
    pub fn selected_protocol(&self) -> Option<&str> {
        self.accept.protocol.as_deref()
    }

    /// Sets the connection's configuration (limits, timeouts, permessage-deflate);
    /// [`Config::default`] otherwise. An `Arc<Config>` shared by the handlers saves a
    /// copy per connection.
    pub fn config(mut self, config: impl Into<Arc<Config>>) -> Self {
        self.config = config.into();
        self
    }

    /// Adds a header to the 101 response. Invalid names or values are ignored with a
    /// log line.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.accept = self.accept.header(name, value);
        self
    }

    /// The 101 response to return from the handler; once axum has sent it, `callback`
    /// runs on a new task with the [`WebSocket`]. A connection that fails to upgrade is
    /// logged and `callback` does not run. An invalid [`Config`] answers 500.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocket<Upgraded>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if let Err(problem) = self.config.validate() {
            return IntoResponse::into_response(Rejection::config(problem));
        }
        let (headers, pending): (_, PendingUpgrade) =
            prepare(&self.request, self.on_upgrade, self.config, self.accept);
        tokio::spawn(async move {
            match pending.await {
                Ok(ws) => callback(ws).await,
                Err(e) => tracing::info!(error = %e, "WebSocket upgrade failed"),
            }
        });
        switching_protocols::<Body>(headers)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let request =
            UpgradeRequest::from_http(&parts.method, parts.version, &parts.uri, &parts.headers)
                .map_err(Rejection::handshake)?;
        let on_upgrade = parts
            .extensions
            .remove::<::hyper::upgrade::OnUpgrade>()
            .ok_or_else(Rejection::not_upgradable)?;
        Ok(Self {
            request,
            on_upgrade,
            config: Arc::default(),
            accept: Accept::default(),
        })
    }
}

/// The rejection of a request that is not a valid WebSocket upgrade answers with its
/// status, headers and reason as a `text/plain` body.
impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        Rejection::into_response::<Body>(self)
    }
}
