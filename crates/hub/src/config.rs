//! The hub's configuration: one TOML file, `DUPLEX_*` environment variables and
//! command-line flags, each overriding the one before. Every key and default is listed
//! in `docs/configuration.md`; this module is the code behind that page.
//!
//! Loading merges the three sources into one TOML table and deserializes it strictly: an
//! unknown key or a bad value fails with the key's full name (`channels.history_size`)
//! and where it came from.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the hub keeps publications.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// SQLite in `data_dir`: publications survive restarts and `kill -9`.
    Sqlite,
    /// Process memory: lost on restart (every channel gets a new epoch).
    Memory,
}

/// When a publication counts as stored (the SQLite engine).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
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
    /// HS256 secret for connection tokens; unset means development mode.
    pub token_hmac_secret: Option<String>,
    /// RS256 public key for tokens: PEM text, or the path of a PEM file.
    pub token_rsa_public_key: Option<String>,
    /// ES256 (P-256) public key for tokens: PEM text, or the path of a PEM file.
    pub token_ecdsa_public_key: Option<String>,
    /// Required `aud` of connection tokens (unset: not checked).
    pub token_audience: Option<String>,
    /// Required `iss` of connection tokens (unset: not checked).
    pub token_issuer: Option<String>,
    /// Clock skew allowed on tokens' `exp` and `nbf`.
    #[serde(deserialize_with = "duration")]
    pub token_leeway: Duration,
    /// Key for the server HTTP API; unset disables the API (outside development mode).
    pub api_key: Option<String>,
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
            durability: Durability::Commit,
            token_hmac_secret: None,
            token_rsa_public_key: None,
            token_ecdsa_public_key: None,
            token_audience: None,
            token_issuer: None,
            token_leeway: Duration::ZERO,
            api_key: None,
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
            client_queue_size: 4096,
            max_message_size: 65536,
            shutdown_timeout: Duration::from_secs(10),
            channels: ChannelOptions::default(),
            namespaces: BTreeMap::new(),
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
    /// Whether anonymous clients (no token) may subscribe and, where publishing is
    /// allowed, publish here.
    pub allow_anonymous: bool,
    /// Private channels: subscribing needs a subscription token for the channel.
    pub require_subscription_token: bool,
    /// The largest publication data, in bytes of JSON (0: only the message limits).
    pub max_publication_size: usize,
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
            allow_anonymous: false,
            require_subscription_token: false,
            max_publication_size: 0,
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
    pub allow_anonymous: Option<bool>,
    pub require_subscription_token: Option<bool>,
    pub max_publication_size: Option<usize>,
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
            allow_anonymous: self.allow_anonymous.unwrap_or(base.allow_anonymous),
            require_subscription_token: self
                .require_subscription_token
                .unwrap_or(base.require_subscription_token),
            max_publication_size: self
                .max_publication_size
                .unwrap_or(base.max_publication_size),
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

/// A configuration that cannot be used: names the key (or file) and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("the config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// toml's description, with the line.
        message: String,
    },
    /// A key is unknown or its value unusable.
    #[error("config key `{key}`: {message}")]
    Key {
        /// The key's full name.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An environment variable is not a configuration key.
    #[error("environment variable {name} is not a duplex setting (the DUPLEX_* variables are listed in docs/configuration.md); unset it or fix its name")]
    UnknownVariable {
        /// The variable.
        name: String,
    },
}

/// The kinds of values flags and environment variables carry (a file's TOML is typed).
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    /// Comma-separated strings.
    List,
}

/// The keys settable from the environment, `DUPLEX_` + the key in capitals with `.` as `_`.
const ENV_KEYS: &[(&str, Kind)] = &[
    ("host", Kind::Str),
    ("port", Kind::Int),
    ("data_dir", Kind::Str),
    ("engine", Kind::Str),
    ("durability", Kind::Str),
    ("token_hmac_secret", Kind::Str),
    ("api_key", Kind::Str),
    ("token_rsa_public_key", Kind::Str),
    ("token_ecdsa_public_key", Kind::Str),
    ("token_audience", Kind::Str),
    ("token_issuer", Kind::Str),
    ("token_leeway", Kind::Str),
    ("allow_anonymous", Kind::Bool),
    ("allowed_origins", Kind::List),
    ("ping_interval", Kind::Str),
    ("pong_timeout", Kind::Str),
    ("connect_timeout", Kind::Str),
    ("write_timeout", Kind::Str),
    ("expired_close_delay", Kind::Str),
    ("client_queue_size", Kind::Int),
    ("max_connections", Kind::Int),
    ("max_connections_per_user", Kind::Int),
    ("max_subscriptions_per_client", Kind::Int),
    ("max_channel_length", Kind::Int),
    ("max_commands_per_second", Kind::Int),
    ("max_connections_per_second_per_ip", Kind::Int),
    ("max_message_size", Kind::Int),
    ("shutdown_timeout", Kind::Str),
    ("channels.history_size", Kind::Int),
    ("channels.history_ttl", Kind::Str),
    ("channels.presence", Kind::Bool),
    ("channels.join_leave", Kind::Bool),
    ("channels.allow_subscribe_for_client", Kind::Bool),
    ("channels.allow_publish_for_subscriber", Kind::Bool),
    ("channels.allow_publish_for_client", Kind::Bool),
    ("channels.allow_history_for_subscriber", Kind::Bool),
    ("channels.allow_presence_for_subscriber", Kind::Bool),
    ("channels.allow_anonymous", Kind::Bool),
    ("channels.require_subscription_token", Kind::Bool),
    ("channels.max_publication_size", Kind::Int),
];

/// The environment variable for a key.
pub fn env_name(key: &str) -> String {
    format!("DUPLEX_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Values given on the command line, as (key, value) pairs; they override everything.
#[derive(Clone, Debug, Default)]
pub struct Overrides(Vec<(String, toml::Value)>);

impl Overrides {
    /// Sets `key` (a dotted name, e.g. `port` or `channels.presence`).
    pub fn set(&mut self, key: &str, value: impl Into<toml::Value>) -> &mut Self {
        self.0.push((key.to_owned(), value.into()));
        self
    }
}

/// Where a value came from, for error messages.
fn source_of(
    key: &str,
    file: Option<&Path>,
    env: &[(String, String)],
    flags: &Overrides,
) -> String {
    if flags.0.iter().any(|(k, _)| k == key) {
        return "set by a command-line flag".into();
    }
    let name = env_name(key);
    if env.iter().any(|(k, _)| *k == name) {
        return format!("set by {name}");
    }
    match file {
        Some(path) => format!("in {}", path.display()),
        None => "default".into(),
    }
}

impl Config {
    /// Loads `file` (if any), then the `DUPLEX_*` variables in `env`, then `flags`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Syntax {
                        path: path.to_owned(),
                        message: e.to_string(),
                    })?
            }
            None => toml::Table::new(),
        };
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with("DUPLEX_"))
            .collect();
        for (name, value) in &env {
            let Some((key, kind)) = ENV_KEYS.iter().find(|(key, _)| env_name(key) == *name) else {
                return Err(ConfigError::UnknownVariable { name: name.clone() });
            };
            let value = match kind {
                Kind::Str => toml::Value::String(value.clone()),
                Kind::List => toml::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(|v| toml::Value::String(v.to_owned()))
                        .collect(),
                ),
                Kind::Int => value
                    .trim()
                    .parse::<i64>()
                    .map(toml::Value::Integer)
                    .map_err(|_| ConfigError::Key {
                        key: (*key).into(),
                        message: format!("{name}={value:?} is not a whole number"),
                    })?,
                Kind::Bool => match value.trim() {
                    "true" | "1" => toml::Value::Boolean(true),
                    "false" | "0" => toml::Value::Boolean(false),
                    _ => {
                        return Err(ConfigError::Key {
                            key: (*key).into(),
                            message: format!("{name}={value:?} is not true or false"),
                        })
                    }
                },
            };
            insert(&mut table, key, value);
        }
        for (key, value) in &flags.0 {
            insert(&mut table, key, value.clone());
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let source = source_of(&key, file, &env, flags);
                ConfigError::Key {
                    message: format!("{} ({source})", e.into_inner().message()),
                    key,
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: &str| {
            Err(ConfigError::Key {
                key: key.into(),
                message: message.into(),
            })
        };
        let check_channel = |prefix: &str, o: &ChannelOptions| {
            if o.history_size == 0 {
                return bad(
                    &format!("{prefix}.history_size"),
                    "must be at least 1: every channel keeps history so that clients can recover",
                );
            }
            if o.history_ttl.is_zero() {
                return bad(
                    &format!("{prefix}.history_ttl"),
                    "must be longer than 0s (e.g. \"24h\")",
                );
            }
            Ok(())
        };
        check_channel("channels", &self.channels)?;
        for (name, ns) in &self.namespaces {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return bad(
                    &format!("namespaces.{name}"),
                    "a namespace name is letters, digits, '_' and '-' only",
                );
            }
            check_channel(&format!("namespaces.{name}"), &ns.apply(&self.channels))?;
        }
        if self.ping_interval < Duration::from_secs(1) {
            return bad("ping_interval", "must be at least \"1s\"");
        }
        if self.pong_timeout.is_zero() || self.pong_timeout >= self.ping_interval {
            return bad(
                "pong_timeout",
                "must be longer than 0s and shorter than ping_interval",
            );
        }
        if self.connect_timeout.is_zero() {
            return bad("connect_timeout", "must be longer than 0s (e.g. \"10s\")");
        }
        if self.write_timeout.is_zero() {
            return bad("write_timeout", "must be longer than 0s (e.g. \"10s\")");
        }
        if self.max_channel_length == 0 {
            return bad("max_channel_length", "must be at least 1");
        }
        if self.client_queue_size == 0 {
            return bad("client_queue_size", "must be at least 1");
        }
        if self.max_message_size < 1024 {
            return bad("max_message_size", "must be at least 1024 bytes");
        }
        if let Some(secret) = &self.token_hmac_secret {
            if secret.len() < 32 {
                return bad(
                    "token_hmac_secret",
                    "must be at least 32 characters (HS256 wants 256 bits); generate one with `openssl rand -hex 32`",
                );
            }
        }
        for pattern in &self.allowed_origins {
            if let Err(message) = crate::http::origin::validate_pattern(pattern) {
                return bad("allowed_origins", &message);
            }
        }
        self.token_keys()?;
        if self.api_key.as_deref() == Some("") {
            return bad(
                "api_key",
                "must not be empty; remove it to disable the HTTP API",
            );
        }
        Ok(())
    }
}

impl Config {
    /// The keys tokens are verified with, read and parsed (PEM files included).
    pub fn token_keys(&self) -> Result<crate::auth::TokenKeys, ConfigError> {
        use jsonwebtoken::Algorithm;
        let load = |key: &str, value: &Option<String>, algorithm| {
            value
                .as_deref()
                .map(|v| crate::auth::load_public_key(v, algorithm))
                .transpose()
                .map_err(|message| ConfigError::Key {
                    key: key.into(),
                    message,
                })
        };
        Ok(crate::auth::TokenKeys {
            hmac: self
                .token_hmac_secret
                .as_deref()
                .map(|s| jsonwebtoken::DecodingKey::from_secret(s.as_bytes())),
            rsa: load(
                "token_rsa_public_key",
                &self.token_rsa_public_key,
                Algorithm::RS256,
            )?,
            ecdsa: load(
                "token_ecdsa_public_key",
                &self.token_ecdsa_public_key,
                Algorithm::ES256,
            )?,
        })
    }
}

fn insert(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        Some((head, rest)) => {
            let entry = table
                .entry(head)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                insert(inner, rest, value);
            }
        }
        None => {
            table.insert(key.to_owned(), value);
        }
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
