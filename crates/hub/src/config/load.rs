//! Loading: one TOML table merged from the file, the `DUPLEX_*` variables and the
//! flags, deserialized strictly, then checked for what the types cannot say.

use super::{ChannelOptions, Config};
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// The shortest `admin_password` accepted: the login can be tried over the network.
const MIN_ADMIN_PASSWORD: usize = 12;

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
    ("redis", Kind::List),
    ("redis_cluster", Kind::Bool),
    ("redis_sentinel_master", Kind::Str),
    ("redis_prefix", Kind::Str),
    ("redis_wait_replicas", Kind::Int),
    ("redis_wait_timeout", Kind::Str),
    ("durability", Kind::Str),
    ("token_hmac_secret", Kind::Str),
    ("api_key", Kind::Str),
    ("admin_password", Kind::Str),
    ("token_rsa_public_key", Kind::Str),
    ("token_ecdsa_public_key", Kind::Str),
    ("token_jwks_url", Kind::Str),
    ("token_jwks_refresh", Kind::Str),
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
    ("max_bytes_per_second", Kind::Int),
    ("max_message_size", Kind::Int),
    ("shutdown_timeout", Kind::Str),
    ("demo_ticker", Kind::Bool),
    ("channels.history_size", Kind::Int),
    ("channels.history_ttl", Kind::Str),
    ("channels.presence", Kind::Bool),
    ("channels.join_leave", Kind::Bool),
    ("channels.allow_subscribe_for_client", Kind::Bool),
    ("channels.allow_publish_for_subscriber", Kind::Bool),
    ("channels.allow_publish_for_client", Kind::Bool),
    ("channels.allow_history_for_subscriber", Kind::Bool),
    ("channels.allow_presence_for_subscriber", Kind::Bool),
    ("channels.allow_subscribe_for_anonymous", Kind::Bool),
    ("channels.allow_publish_for_anonymous", Kind::Bool),
    ("channels.require_subscription_token", Kind::Bool),
    ("channels.max_publication_size", Kind::Int),
    ("channels.proxy_subscribe", Kind::Bool),
    ("channels.proxy_publish", Kind::Bool),
    ("proxy.connect_endpoint", Kind::Str),
    ("proxy.refresh_endpoint", Kind::Str),
    ("proxy.subscribe_endpoint", Kind::Str),
    ("proxy.publish_endpoint", Kind::Str),
    ("proxy.rpc_endpoint", Kind::Str),
    ("proxy.send_endpoint", Kind::Str),
    ("proxy.timeout", Kind::Str),
    ("proxy.http_headers", Kind::List),
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
            if o.proxy_subscribe && self.proxy.subscribe_endpoint.is_none() {
                return bad(
                    &format!("{prefix}.proxy_subscribe"),
                    "needs proxy.subscribe_endpoint (the URL the backend answers on)",
                );
            }
            if o.proxy_publish && self.proxy.publish_endpoint.is_none() {
                return bad(
                    &format!("{prefix}.proxy_publish"),
                    "needs proxy.publish_endpoint (the URL the backend answers on)",
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
        if self.max_bytes_per_second > 0
            && (self.max_bytes_per_second as usize) < self.max_message_size
        {
            return bad(
                "max_bytes_per_second",
                &format!(
                    "must be at least max_message_size ({} bytes): the bucket holds one second of bytes, and a message larger than it could never pass; raise it or lower max_message_size",
                    self.max_message_size
                ),
            );
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
        self.validate_proxy()?;
        if self.engine == super::EngineKind::Redis {
            match self.redis.as_slice() {
                [] => {
                    return bad(
                        "redis",
                        "the redis engine needs a Redis URL: redis = [\"redis://HOST:PORT\"]",
                    )
                }
                urls => {
                    for url in urls {
                        if url.starts_with("rediss://") {
                            return bad("redis", "TLS to Redis (rediss://) is not supported yet; use redis:// on a private network or a TLS tunnel");
                        }
                        if !url.starts_with("redis://") {
                            return bad(
                                "redis",
                                &format!("{url:?} is not a Redis URL; use redis://HOST:PORT"),
                            );
                        }
                    }
                }
            }
            if self.redis_cluster && self.redis_sentinel_master.is_some() {
                return bad(
                    "redis_sentinel_master",
                    "a Redis Cluster fails over by itself: set redis_cluster or redis_sentinel_master, not both",
                );
            }
            if self.redis_sentinel_master.as_deref() == Some("") {
                return bad(
                    "redis_sentinel_master",
                    "must name the master the Sentinels monitor (their `sentinel monitor NAME ...`)",
                );
            }
            if self.redis_prefix.is_empty() || self.redis_prefix.contains(['{', '}']) {
                return bad("redis_prefix", "must be non-empty, without { or }");
            }
        }
        if self.api_key.as_deref() == Some("") {
            return bad(
                "api_key",
                "must not be empty; remove it to disable the HTTP API",
            );
        }
        if self
            .admin_password
            .as_deref()
            .is_some_and(|p| p.chars().count() < MIN_ADMIN_PASSWORD)
        {
            return bad(
                "admin_password",
                &format!("must be at least {MIN_ADMIN_PASSWORD} characters (it guards the dashboard and the API behind it); generate one with `openssl rand -hex 16`"),
            );
        }
        Ok(())
    }
}

impl Config {
    fn validate_proxy(&self) -> Result<(), ConfigError> {
        let p = &self.proxy;
        let endpoints = [
            ("token_jwks_url", &self.token_jwks_url),
            ("proxy.connect_endpoint", &p.connect_endpoint),
            ("proxy.refresh_endpoint", &p.refresh_endpoint),
            ("proxy.subscribe_endpoint", &p.subscribe_endpoint),
            ("proxy.publish_endpoint", &p.publish_endpoint),
            ("proxy.rpc_endpoint", &p.rpc_endpoint),
            ("proxy.send_endpoint", &p.send_endpoint),
        ];
        for (key, url) in endpoints {
            let Some(url) = url else { continue };
            let ok = url
                .parse::<http::Uri>()
                .ok()
                .filter(|u| u.host().is_some())
                .is_some_and(|u| matches!(u.scheme_str(), Some("http" | "https")));
            if !ok {
                return Err(ConfigError::Key {
                    key: key.into(),
                    message: format!(
                        "{url:?} is not an http:// or https:// URL (e.g. \"http://127.0.0.1:3000/centrifugo/connect\")"
                    ),
                });
            }
        }
        if self.token_jwks_refresh < Duration::from_secs(1) {
            return Err(ConfigError::Key {
                key: "token_jwks_refresh".into(),
                message: "must be at least \"1s\" (e.g. \"1h\")".into(),
            });
        }
        if p.timeout.is_zero() {
            return Err(ConfigError::Key {
                key: "proxy.timeout".into(),
                message: "must be longer than 0s (e.g. \"1s\")".into(),
            });
        }
        for name in &p.http_headers {
            if http::HeaderName::try_from(name.as_str()).is_err() {
                return Err(ConfigError::Key {
                    key: "proxy.http_headers".into(),
                    message: format!("{name:?} is not an HTTP header name"),
                });
            }
        }
        Ok(())
    }

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
