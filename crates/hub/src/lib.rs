//! duplex-hub: the real-time server behind `duplex serve`.
//!
//! It speaks the Centrifugo client protocol (v2, JSON or Protobuf) at
//! `/connection/websocket`, so the official Centrifugo SDKs connect unchanged;
//! acknowledges a publish only once it is stored; and lets a client that reconnects
//! recover every publication it missed.
//!
//! The parts, each in its own module: [`protocol`] (the codec, no IO), [`session`] (one
//! connection), [`registry`] (subscriptions and fan-out), [`engine`] (storage, delivery
//! and presence: memory, SQLite and Redis), [`auth`], [`backend`] (proxies to the application),
//! [`config`], [`http`] (the API, health,
//! metrics, the start page, the admin dashboard), [`metrics`] and [`stats`] (their recent
//! history for the dashboard).

pub mod auth;
pub mod backend;
pub mod config;
pub mod control;
pub mod demo;
pub mod devmode;
pub mod engine;
mod error;
pub mod http;
pub mod metrics;
pub mod node;
pub mod protocol;
pub mod queue;
pub mod registry;
pub mod session;
pub mod stats;

pub use config::{Config, ConfigError, Overrides};
pub use error::Error;
pub use node::Node;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

/// How often, in seconds, a node reports its info to a shared engine.
const NODE_REPORT_EVERY: u64 = 5;

/// A hub bound to its address, ready to run.
pub struct Hub {
    node: Arc<Node>,
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl Hub {
    /// Opens storage and binds `config.host:config.port`.
    pub async fn bind(config: Config) -> Result<Hub, Error> {
        let addr = format!("{}:{}", config.host, config.port);
        let node = Node::new(config).await?;
        if let Some(jwks) = &node.jwks {
            // Tokens verify from the first connection; a provider that is down now is
            // tried again on every unknown key id and every refresh.
            if let Err(e) = jwks.fetch().await {
                tracing::warn!(error = %e, "JWKS not fetched at start; retrying on demand and every token_jwks_refresh");
            }
        }
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| Error::Bind {
                addr: addr.clone(),
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(Hub {
            node,
            listener,
            local_addr,
        })
    }

    /// The address it listens on (with the real port when the config asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared state (for tests and embedding).
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Serves until `shutdown` resolves, then stops accepting, disconnects every client
    /// with the shutdown code (they reconnect elsewhere or later) and finishes pending
    /// commits.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let Hub {
            node,
            listener,
            local_addr,
        } = self;
        tracing::info!(address = %local_addr, "duplex hub listening on http://{local_addr}/ (WebSocket at /connection/websocket)");
        let tasks = TaskTracker::new();
        let expiry = tokio::spawn({
            let node = node.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tokio::select! {
                        () = node.shutdown.cancelled() => return,
                        _ = tick.tick() => {
                            // Forget the addresses whose buckets are full again.
                            if let Some(rate) = &node.handshake_rate {
                                rate.retain_recent();
                                rate.shrink_to_fit();
                            }
                            if let Err(e) = node.engine.expire().await {
                                tracing::warn!(error = %e, "expiring old history failed");
                            }
                        }
                    }
                }
            }
        });
        let jwks_refresh = node.jwks.clone().map(|jwks| {
            let node = node.clone();
            tokio::spawn(async move {
                let period = node.config.token_jwks_refresh;
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                loop {
                    tokio::select! {
                        () = node.shutdown.cancelled() => return,
                        _ = tick.tick() => {
                            if let Err(e) = jwks.fetch().await {
                                tracing::warn!(error = %e, "JWKS refresh failed; the cached keys stay");
                            }
                        }
                    }
                }
            })
        });
        let sampler = tokio::spawn({
            let node = node.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut seconds = 0u64;
                loop {
                    tokio::select! {
                        () = node.shutdown.cancelled() => return,
                        _ = tick.tick() => {
                            let snapshot = node.metrics.snapshot();
                            node.stats
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .record(std::time::Instant::now(), snapshot);
                            // Other nodes list this one in `info` (shared engines only).
                            if seconds.is_multiple_of(NODE_REPORT_EVERY) {
                                node.report(Duration::from_secs(3 * NODE_REPORT_EVERY)).await;
                            }
                            seconds += 1;
                        }
                    }
                }
            }
        });
        let ticker = node
            .config
            .demo_ticker
            .then(|| tokio::spawn(demo::run_ticker(node.clone())));
        let server = tokio::spawn(http::server::serve(node.clone(), listener, tasks.clone()));
        shutdown.await;
        tracing::info!("shutting down: disconnecting clients (3001) and finishing commits");
        node.shutdown.cancel();
        let _ = server.await;
        let _ = expiry.await;
        for task in [jwks_refresh, ticker, Some(sampler)].into_iter().flatten() {
            let _ = task.await;
        }
        tasks.close();
        if tokio::time::timeout(node.config.shutdown_timeout, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?node.config.shutdown_timeout,
                "some connections did not finish within shutdown_timeout"
            );
        }
        node.engine.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    }
}
