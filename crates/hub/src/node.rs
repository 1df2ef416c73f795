//! The state one hub process shares between its connections and its HTTP API.

use crate::auth::Verifier;
use crate::config::{ChannelOptions, Channels, Config, EngineKind};
use crate::engine::{Delivery, Engine, MemoryEngine, SqliteEngine};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, Payload};
use crate::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// One node as the API's `info` lists it (Centrifugo's field names).
#[derive(Debug, serde::Serialize)]
pub struct NodeInfo {
    /// The node's id.
    pub uid: String,
    /// Always `duplex-hub`.
    pub name: &'static str,
    /// The hub's version.
    pub version: &'static str,
    /// Connected clients.
    pub num_clients: usize,
    /// Distinct users among them.
    pub num_users: usize,
    /// Channels with subscribers here.
    pub num_channels: usize,
    /// Subscriptions here.
    pub num_subs: i64,
    /// Seconds since the node started.
    pub uptime: u64,
}

/// The hub's shared state.
pub struct Node {
    /// The configuration in force.
    pub config: Config,
    /// Channel options by namespace.
    pub channels: Channels,
    /// Storage, delivery and presence.
    pub engine: Arc<dyn Engine>,
    /// Backend proxies, when any endpoint is configured.
    pub backend: Option<crate::backend::Backend>,
    /// Keys from `token_jwks_url`, when set.
    pub jwks: Option<Arc<crate::auth::jwks::Jwks>>,
    /// Connection token verifier (absent: tokens are refused).
    pub verifier: Option<Verifier>,
    /// Subscriptions on this node.
    pub registry: Arc<Registry>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the hub shuts down.
    pub shutdown: CancellationToken,
    /// WebSocket settings for client connections.
    pub websocket: Arc<duplex::Config>,
    /// `max_connections_per_second_per_ip`, when set: a token bucket per client address.
    pub handshake_rate: Option<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    /// When the node started (for `info`'s uptime).
    pub started: std::time::Instant,
    /// The last minutes of metrics, a sample a second, for the admin dashboard.
    pub stats: std::sync::Mutex<crate::stats::History>,
    next_client: AtomicU64,
    node_tag: u64,
    /// The last storage check and when it ran: `/healthz` is unauthenticated, so it
    /// costs at most one write a second.
    health: std::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
}

impl Node {
    /// Refuses data over the namespace's `max_publication_size` (106, counted in the
    /// metrics), wherever the publication comes from: a client or the HTTP API.
    pub fn check_publication_size(
        &self,
        options: &ChannelOptions,
        data: &Payload,
    ) -> Result<(), ErrorCode> {
        if options.max_publication_size > 0 && data.len() > options.max_publication_size {
            self.metrics.limits.inc("max_publication_size");
            return Err(ErrorCode::LimitExceeded);
        }
        Ok(())
    }

    /// Opens the engine the configuration names and builds the node.
    pub async fn new(config: Config) -> Result<Arc<Node>, Error> {
        config.validate()?;
        // Checked here, not at load: development mode adds the namespace after loading.
        if config.demo_ticker && !config.namespaces.contains_key("ticker") {
            return Err(crate::ConfigError::Key {
                key: "demo_ticker".into(),
                message: "publishes to ticker:SYMBOL, so it needs a [namespaces.ticker] (development mode adds one)".into(),
            }
            .into());
        }
        let channels = Channels::new(&config);
        let metrics = Arc::new(Metrics::default());
        let registry = Arc::new(Registry::new(metrics.clone()));
        let delivery: Delivery = {
            let registry = registry.clone();
            Arc::new(move |channel, publication, epoch| {
                registry.deliver(channel, publication, epoch)
            })
        };
        let engine: Arc<dyn Engine> = match config.engine {
            EngineKind::Memory => Arc::new(MemoryEngine::new(channels.clone(), delivery)),
            EngineKind::Sqlite => Arc::new(SqliteEngine::open(
                &config.data_dir,
                config.durability,
                channels.clone(),
                delivery,
            )?),
            EngineKind::Redis => Arc::new(
                crate::engine::RedisEngine::connect(
                    &crate::engine::RedisOptions {
                        urls: config.redis.clone(),
                        cluster: config.redis_cluster,
                        sentinel_master: config.redis_sentinel_master.clone(),
                        prefix: config.redis_prefix.clone(),
                        // Refreshed at every ping; a node that died leaves entries this long.
                        presence_ttl: (config.ping_interval * 3)
                            .max(std::time::Duration::from_secs(30)),
                        wait: (config.redis_wait_replicas > 0)
                            .then_some((config.redis_wait_replicas, config.redis_wait_timeout)),
                    },
                    channels.clone(),
                    delivery,
                    {
                        let registry = registry.clone();
                        Arc::new(move |control| crate::control::apply(&registry, &control))
                    },
                )
                .await?,
            ),
        };
        let mut websocket = duplex::Config::default();
        websocket.limits.max_message_size = config.max_message_size;
        websocket.limits.max_frame_size = config.max_message_size;
        // The hub's own ping (the protocol's, in JSON) checks liveness.
        websocket.ping_interval = None;
        let checks = crate::auth::TokenChecks {
            audience: config.token_audience.clone(),
            issuer: config.token_issuer.clone(),
            leeway: config.token_leeway.as_secs(),
        };
        let keys = config.token_keys()?;
        // The JWKS fetch is bounded like a backend call.
        let jwks = config
            .token_jwks_url
            .as_deref()
            .and_then(|u| u.parse().ok())
            .map(|url| {
                Arc::new(crate::auth::jwks::Jwks::new(
                    url,
                    config.proxy.timeout.max(std::time::Duration::from_secs(5)),
                ))
            });
        let verifier = match &jwks {
            Some(jwks) => Some(Verifier::with_keys(keys, checks).with_jwks(jwks.clone())),
            None => (!keys.is_empty()).then(|| Verifier::with_keys(keys, checks)),
        };
        let started = std::time::Instant::now();
        Ok(Arc::new(Node {
            jwks,
            backend: crate::backend::Backend::new(&config.proxy, metrics.clone()),
            channels,
            engine,
            verifier,
            registry,
            metrics,
            shutdown: CancellationToken::new(),
            websocket: Arc::new(websocket),
            handshake_rate: std::num::NonZeroU32::new(config.max_connections_per_second_per_ip)
                .map(|n| governor::RateLimiter::hashmap(governor::Quota::per_second(n))),
            started,
            stats: std::sync::Mutex::new(crate::stats::History::new(started)),
            next_client: AtomicU64::new(1),
            health: std::sync::Mutex::new(None),
            node_tag: {
                use rand::Rng;
                rand::rng().random()
            },
            config,
        }))
    }

    /// Registers `client` in `channel` on this node, then has the engine feed the
    /// channel here; resolves once every publication stored from now on reaches the
    /// client's queue (so a history read after it misses nothing).
    pub async fn subscribe(
        &self,
        channel: &str,
        client: &Arc<crate::registry::ClientHandle>,
        join_leave: bool,
    ) -> Result<Arc<str>, Error> {
        let key = self.registry.subscribe(channel, client, join_leave);
        if let Err(e) = self.engine.subscribe(channel).await {
            self.registry.unsubscribe(channel, &client.id);
            return Err(e);
        }
        Ok(key)
    }

    /// Ends what [`subscribe`](Self::subscribe) started.
    pub fn unsubscribe(&self, channel: &str, client_id: &str) {
        self.registry.unsubscribe(channel, client_id);
        self.engine.unsubscribe(channel);
    }

    /// This node as the API's `info` shows it.
    pub fn info(&self) -> NodeInfo {
        NodeInfo {
            uid: self.uid(),
            name: "duplex-hub",
            version: crate::session::VERSION,
            num_clients: self.registry.client_count(),
            num_users: self.registry.user_count(),
            num_channels: self.registry.channel_count(),
            num_subs: self.metrics.subscriptions.get(),
            uptime: self.started.elapsed().as_secs(),
        }
    }

    /// Tells a shared engine this node's [`info`](Self::info), for the other nodes'
    /// `info` answers; the entry expires unless reported again within `ttl`.
    pub async fn report(&self, ttl: std::time::Duration) {
        let info = self.info();
        let text = serde_json::to_string(&info).expect("node info serializes");
        if let Err(e) = self.engine.report_node(&info.uid, text, ttl).await {
            tracing::warn!(error = %e, "node info not reported to the other nodes");
        }
    }

    /// Carries out `control` on the clients it names wherever they are connected: here,
    /// or through a shared engine on every node.
    pub async fn control(&self, control: crate::control::Control) -> Result<(), Error> {
        match self.engine.control(&control) {
            Some(sent) => sent.await,
            None => {
                crate::control::apply(&self.registry, &control);
                Ok(())
            }
        }
    }

    /// Whether storage takes writes now (checked at most once a second).
    pub async fn storage_health(&self) -> Result<(), String> {
        let fresh = |at: &std::time::Instant| at.elapsed() < std::time::Duration::from_secs(1);
        if let Some((at, result)) = &*self.health.lock().unwrap_or_else(|e| e.into_inner()) {
            if fresh(at) {
                return result.clone();
            }
        }
        let result = self
            .engine
            .check_writable()
            .await
            .map_err(|e| e.to_string());
        *self.health.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((std::time::Instant::now(), result.clone()));
        result
    }

    /// This node's id (random per start).
    pub fn uid(&self) -> String {
        format!("{:016x}", self.node_tag)
    }

    /// A client id unique on this node and across restarts.
    pub fn new_client_id(&self) -> String {
        let n = self.next_client.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{n}", self.node_tag)
    }
}
