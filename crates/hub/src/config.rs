//! The hub's configuration: one TOML file, `DUPLEX_*` environment variables and
//! command-line flags, each overriding the one before. Every key and default is listed
//! in `docs/configuration.md`; this module is the code behind that page.
//!
//! Loading merges the three sources into one TOML table and deserializes it strictly: an
//! unknown key or a bad value fails with the key's full name (`channels.history_size`)
//! and where it came from.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

mod load;
pub use load::{env_name, ConfigError, Overrides};

/// Where the hub keeps publications.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// SQLite in `data_dir`: publications survive restarts and `kill -9`.
    Sqlite,
    /// Process memory: lost on restart (every channel gets a new epoch).
    Memory,
    /// Redis (`redis`): shared by every node on the same Redis and `redis_prefix`.
    Redis,
}

/// When a publication counts as stored (the SQLite engine).
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Committed to the write-ahead log: survives the hub's crash, not the machine's
    /// power loss (SQLite `synchronous=NORMAL` in WAL mode).
    Commit,
    /// Also flushed to the disk: survives power loss (`synchronous=FULL`).
    Fsync,
}

/// The whole configuration, with its defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on (0: any free port).
    pub port: u16,
    /// Directory for the SQLite database and generated secrets.
    pub data_dir: PathBuf,
    /// Storage engine.
    pub engine: EngineKind,
    /// When a publication counts as stored.
    pub durability: Durability,
    /// The Redis the `redis` engine uses, as `redis://[:PASSWORD@]HOST:PORT[/DB]`.
    pub redis: Vec<String>,
    /// The `redis` URLs are seed nodes of one Redis Cluster, not shards.
    pub redis_cluster: bool,
    /// With a name, the `redis` URLs are Sentinels and this is the master they watch.
    pub redis_sentinel_master: Option<String>,
    /// Prefix of every Redis key and pub/sub channel, so several hubs can share a Redis.
    pub redis_prefix: String,
    /// Replicas that must confirm a publish (Redis `WAIT`) before it is acknowledged
    /// (0: none).
    pub redis_wait_replicas: u32,
    /// How long a publish waits for `redis_wait_replicas`.
    #[serde(deserialize_with = "duration")]
    pub redis_wait_timeout: Duration,
    /// HS256 secret for connection tokens; unset means development mode.
    pub token_hmac_secret: Option<String>,
    /// RS256 public key for tokens: PEM text, or the path of a PEM file.
    pub token_rsa_public_key: Option<String>,
    /// ES256 (P-256) public key for tokens: PEM text, or the path of a PEM file.
    pub token_ecdsa_public_key: Option<String>,
    /// URL of a JWKS document (an identity provider's keys): tokens with a `kid` are
    /// checked with that key (RS256 or ES256).
    pub token_jwks_url: Option<String>,
    /// How often the JWKS is fetched again (unknown key ids also fetch it, at most
    /// every 5 s).
    #[serde(deserialize_with = "duration")]
    pub token_jwks_refresh: Duration,
    /// Required `aud` of connection tokens (unset: not checked).
    pub token_audience: Option<String>,
    /// Required `iss` of connection tokens (unset: not checked).
    pub token_issuer: Option<String>,
    /// Clock skew allowed on tokens' `exp` and `nbf`.
    #[serde(deserialize_with = "duration")]
    pub token_leeway: Duration,
    /// Key for the server HTTP API; unset disables the API (outside development mode).
    pub api_key: Option<String>,
    /// Password for the admin dashboard at `/admin` (the API key opens it too); unset
    /// with no API key: the dashboard is off.
    pub admin_password: Option<String>,
    /// Whether clients may connect without a token.
    pub allow_anonymous: bool,
    /// Browser origins allowed to connect; empty: only the hub's own pages; `["*"]`: all.
    pub allowed_origins: Vec<String>,
    /// How often the hub pings each client.
    #[serde(deserialize_with = "duration")]
    pub ping_interval: Duration,
    /// How long after a ping the client's pong may take.
    #[serde(deserialize_with = "duration")]
    pub pong_timeout: Duration,
    /// How long a new connection has to send `connect`.
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// How long a connection whose token expired may stay open for its refresh.
    #[serde(deserialize_with = "duration")]
    pub expired_close_delay: Duration,
    /// How long one write to a client may wait for its socket before it is
    /// disconnected as slow.
    #[serde(deserialize_with = "duration")]
    pub write_timeout: Duration,
    /// Connected clients on this node at most (0: no limit).
    pub max_connections: usize,
    /// Connections of one user at most (0: no limit; anonymous clients are not counted).
    pub max_connections_per_user: usize,
    /// Channels one connection may be subscribed to at once (0: no limit).
    pub max_subscriptions_per_client: usize,
    /// The longest channel name accepted, in bytes.
    pub max_channel_length: usize,
    /// Commands one connection may send per second, in bursts of as many (0: no limit).
    pub max_commands_per_second: u32,
    /// Bytes of commands one connection may send per second, in bursts of as many (0: no
    /// limit).
    pub max_bytes_per_second: u32,
    /// WebSocket handshakes one client address may make per second, in bursts of as
    /// many (0: no limit).
    pub max_connections_per_second_per_ip: u32,
    /// Messages queued for one client before it is disconnected as slow.
    pub client_queue_size: usize,
    /// Largest WebSocket message a client may send, in bytes.
    pub max_message_size: usize,
    /// How long shutdown waits for clients to be disconnected and commits to finish.
    #[serde(deserialize_with = "duration")]
    pub shutdown_timeout: Duration,
    /// Publish the demo ticker (a random walk of a few symbols) to `ticker:SYMBOL`.
    pub demo_ticker: bool,
    /// Backend proxies: endpoints the application answers.
    pub proxy: ProxyOptions,
    /// Defaults for every channel.
    pub channels: ChannelOptions,
    /// Overrides for channels named `<namespace>:<rest>`.
    pub namespaces: BTreeMap<String, NamespaceOptions>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 8080,
            data_dir: PathBuf::from("./data"),
            engine: EngineKind::Sqlite,
            redis: vec!["redis://127.0.0.1:6379".into()],
            redis_cluster: false,
            redis_sentinel_master: None,
            redis_prefix: "duplex".into(),
            redis_wait_replicas: 0,
            redis_wait_timeout: Duration::from_secs(1),
            durability: Durability::Commit,
            token_hmac_secret: None,
            token_rsa_public_key: None,
            token_ecdsa_public_key: None,
            token_jwks_url: None,
            token_jwks_refresh: Duration::from_secs(3600),
            token_audience: None,
            token_issuer: None,
            token_leeway: Duration::ZERO,
            api_key: None,
            admin_password: None,
            allow_anonymous: false,
            allowed_origins: Vec::new(),
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(8),
            connect_timeout: Duration::from_secs(10),
            expired_close_delay: Duration::from_secs(25),
            write_timeout: Duration::from_secs(10),
            max_connections: 0,
            max_connections_per_user: 0,
            max_subscriptions_per_client: 1024,
            max_channel_length: MAX_CHANNEL_LEN,
            max_commands_per_second: 0,
            max_connections_per_second_per_ip: 0,
            max_bytes_per_second: 0,
            client_queue_size: 4096,
            max_message_size: 65536,
            shutdown_timeout: Duration::from_secs(10),
            demo_ticker: false,
            proxy: ProxyOptions::default(),
            channels: ChannelOptions::default(),
            namespaces: BTreeMap::new(),
        }
    }
}

/// Backend proxies (`[proxy]`): each endpoint set sends that event to the application.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyOptions {
    /// Called when a client connects without a token.
    pub connect_endpoint: Option<String>,
    /// Called when a proxied connection reaches its `expire_at`.
    pub refresh_endpoint: Option<String>,
    /// Called on subscribes to namespaces with `proxy_subscribe`.
    pub subscribe_endpoint: Option<String>,
    /// Called on client publishes to namespaces with `proxy_publish`.
    pub publish_endpoint: Option<String>,
    /// Called on `rpc` (without it, rpc answers 108).
    pub rpc_endpoint: Option<String>,
    /// Called on `send` (without it, sends are dropped).
    pub send_endpoint: Option<String>,
    /// How long one call may take, connecting included.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Handshake headers of the client passed on to the backend (e.g. `Cookie`).
    pub http_headers: Vec<String>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            connect_endpoint: None,
            refresh_endpoint: None,
            subscribe_endpoint: None,
            publish_endpoint: None,
            rpc_endpoint: None,
            send_endpoint: None,
            timeout: Duration::from_secs(1),
            http_headers: Vec::new(),
        }
    }
}

/// What a channel allows and keeps.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelOptions {
    /// Publications kept per channel (at least 1: every channel is recoverable).
    pub history_size: usize,
    /// How long publications are kept.
    #[serde(deserialize_with = "duration")]
    pub history_ttl: Duration,
    /// Whether presence and presence_stats are available.
    pub presence: bool,
    /// Whether join and leave pushes are sent (to subscribers that ask for them).
    pub join_leave: bool,
    /// Whether authenticated clients may subscribe without a channel token.
    pub allow_subscribe_for_client: bool,
    /// Whether subscribers may publish.
    pub allow_publish_for_subscriber: bool,
    /// Whether any connected client may publish, subscribed or not.
    pub allow_publish_for_client: bool,
    /// Whether subscribers may read history.
    pub allow_history_for_subscriber: bool,
    /// Whether subscribers may read presence.
    pub allow_presence_for_subscriber: bool,
    /// Whether anonymous clients (no token) may subscribe.
    pub allow_subscribe_for_anonymous: bool,
    /// Whether anonymous clients may publish (where publishing is allowed at all).
    pub allow_publish_for_anonymous: bool,
    /// Private channels: subscribing needs a subscription token for the channel.
    pub require_subscription_token: bool,
    /// The largest publication data, in bytes of JSON (0: only the message limits).
    pub max_publication_size: usize,
    /// Subscribes without a subscription token are decided by `proxy.subscribe_endpoint`.
    pub proxy_subscribe: bool,
    /// Client publishes are decided (and may be rewritten) by `proxy.publish_endpoint`.
    pub proxy_publish: bool,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            history_size: 1000,
            history_ttl: Duration::from_secs(24 * 3600),
            presence: true,
            join_leave: false,
            allow_subscribe_for_client: true,
            allow_publish_for_subscriber: false,
            allow_publish_for_client: false,
            allow_history_for_subscriber: true,
            allow_presence_for_subscriber: true,
            allow_subscribe_for_anonymous: false,
            allow_publish_for_anonymous: false,
            require_subscription_token: false,
            max_publication_size: 0,
            proxy_subscribe: false,
            proxy_publish: false,
        }
    }
}

/// A namespace's overrides of [`ChannelOptions`]; unset keys inherit `[channels]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct NamespaceOptions {
    pub history_size: Option<usize>,
    #[serde(default, deserialize_with = "optional_duration")]
    pub history_ttl: Option<Duration>,
    pub presence: Option<bool>,
    pub join_leave: Option<bool>,
    pub allow_subscribe_for_client: Option<bool>,
    pub allow_publish_for_subscriber: Option<bool>,
    pub allow_publish_for_client: Option<bool>,
    pub allow_history_for_subscriber: Option<bool>,
    pub allow_presence_for_subscriber: Option<bool>,
    pub allow_subscribe_for_anonymous: Option<bool>,
    pub allow_publish_for_anonymous: Option<bool>,
    pub require_subscription_token: Option<bool>,
    pub max_publication_size: Option<usize>,
    pub proxy_subscribe: Option<bool>,
    pub proxy_publish: Option<bool>,
}

impl NamespaceOptions {
    fn apply(&self, base: &ChannelOptions) -> ChannelOptions {
        ChannelOptions {
            history_size: self.history_size.unwrap_or(base.history_size),
            history_ttl: self.history_ttl.unwrap_or(base.history_ttl),
            presence: self.presence.unwrap_or(base.presence),
            join_leave: self.join_leave.unwrap_or(base.join_leave),
            allow_subscribe_for_client: self
                .allow_subscribe_for_client
                .unwrap_or(base.allow_subscribe_for_client),
            allow_publish_for_subscriber: self
                .allow_publish_for_subscriber
                .unwrap_or(base.allow_publish_for_subscriber),
            allow_publish_for_client: self
                .allow_publish_for_client
                .unwrap_or(base.allow_publish_for_client),
            allow_history_for_subscriber: self
                .allow_history_for_subscriber
                .unwrap_or(base.allow_history_for_subscriber),
            allow_presence_for_subscriber: self
                .allow_presence_for_subscriber
                .unwrap_or(base.allow_presence_for_subscriber),
            allow_subscribe_for_anonymous: self
                .allow_subscribe_for_anonymous
                .unwrap_or(base.allow_subscribe_for_anonymous),
            allow_publish_for_anonymous: self
                .allow_publish_for_anonymous
                .unwrap_or(base.allow_publish_for_anonymous),
            require_subscription_token: self
                .require_subscription_token
                .unwrap_or(base.require_subscription_token),
            max_publication_size: self
                .max_publication_size
                .unwrap_or(base.max_publication_size),
            proxy_subscribe: self.proxy_subscribe.unwrap_or(base.proxy_subscribe),
            proxy_publish: self.proxy_publish.unwrap_or(base.proxy_publish),
        }
    }
}

/// The default longest channel name, in bytes (`max_channel_length`).
pub const MAX_CHANNEL_LEN: usize = 255;

/// Channel options resolved per namespace, ready for lookups.
#[derive(Clone, Debug)]
pub struct Channels {
    max_length: usize,
    default: ChannelOptions,
    namespaces: BTreeMap<String, ChannelOptions>,
}

impl Channels {
    /// Resolves every namespace against `[channels]`.
    pub fn new(config: &Config) -> Self {
        Channels {
            max_length: config.max_channel_length,
            default: config.channels.clone(),
            namespaces: config
                .namespaces
                .iter()
                .map(|(name, ns)| (name.clone(), ns.apply(&config.channels)))
                .collect(),
        }
    }

    /// The options of `channel`, or `None` when the name is invalid or its namespace is
    /// not configured.
    pub fn options(&self, channel: &str) -> Option<&ChannelOptions> {
        if channel.is_empty()
            || channel.len() > self.max_length
            || channel.chars().any(|c| c.is_control())
        {
            return None;
        }
        match channel.split_once(':') {
            Some((namespace, _)) => self.namespaces.get(namespace),
            None => Some(&self.default),
        }
    }
}

/// Whether `user` may use `channel` when the channel is user-limited: a channel whose
/// name has a `#` (`dialog:#alice,bob`) belongs to the comma-separated users after the
/// last `#`; other channels belong to everyone.
pub fn user_may_use(channel: &str, user: &str) -> bool {
    match channel.rsplit_once('#') {
        Some((_, users)) => !user.is_empty() && users.split(',').any(|u| u == user),
        None => true,
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| {
        format!("{text:?} is not a duration ({e}); write e.g. \"500ms\", \"25s\", \"24h\"")
    })
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests;
