//! `duplex serve`: runs the hub (duplex-hub) until SIGINT or SIGTERM.

use crate::error::CliError;
use clap::Args;
use duplex_hub::{Config, Hub, Overrides};
use std::path::PathBuf;

/// Flags override `DUPLEX_*` variables, which override the config file; every key is in
/// docs/configuration.md.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on (0: any free port) [default: 8080].
    #[arg(long)]
    port: Option<u16>,
    /// Directory for the database and generated secrets [default: ./data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Storage engine: sqlite, memory or redis [default: sqlite].
    #[arg(long)]
    engine: Option<String>,
    /// The Redis of the redis engine; repeat it to spread channels over several
    /// [default: redis://127.0.0.1:6379].
    #[arg(long, value_name = "URL")]
    redis: Vec<String>,
    /// The --redis URLs are seed nodes of one Redis Cluster (7.0 or newer).
    #[arg(long)]
    redis_cluster: bool,
    /// The --redis URLs are Sentinels watching the master of this name.
    #[arg(long, value_name = "NAME")]
    redis_sentinel_master: Option<String>,
    /// When a publication counts as stored: commit or fsync [default: commit].
    #[arg(long)]
    durability: Option<String>,
    /// HS256 secret for connection tokens (unset: development mode).
    #[arg(long, value_name = "SECRET")]
    token_secret: Option<String>,
    /// Key for the server HTTP API.
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// Let clients connect without a token.
    #[arg(long)]
    allow_anonymous: bool,
    /// Publish a demo ticker (a random walk of a few symbols) to ticker:SYMBOL.
    #[arg(long)]
    demo_ticker: bool,
}

impl ServeArgs {
    fn overrides(&self) -> Overrides {
        let mut o = Overrides::default();
        if let Some(v) = &self.host {
            o.set("host", v.as_str());
        }
        if let Some(v) = self.port {
            o.set("port", i64::from(v));
        }
        if let Some(v) = &self.data_dir {
            o.set("data_dir", v.display().to_string());
        }
        if let Some(v) = &self.engine {
            o.set("engine", v.as_str());
        }
        if !self.redis.is_empty() {
            o.set("redis", self.redis.clone());
        }
        if let Some(v) = &self.durability {
            o.set("durability", v.as_str());
        }
        if let Some(v) = &self.token_secret {
            o.set("token_hmac_secret", v.as_str());
        }
        if let Some(v) = &self.api_key {
            o.set("api_key", v.as_str());
        }
        if self.allow_anonymous {
            o.set("allow_anonymous", true);
        }
        if self.demo_ticker {
            o.set("demo_ticker", true);
        }
        if self.redis_cluster {
            o.set("redis_cluster", true);
        }
        if let Some(v) = &self.redis_sentinel_master {
            o.set("redis_sentinel_master", v.as_str());
        }
        o
    }
}

/// Loads the configuration, binds, and serves until a signal.
pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars(), &args.overrides())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    duplex_hub::devmode::apply(&mut config).map_err(|e| CliError::Usage(e.to_string()))?;
    let hub = Hub::bind(config)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    hub.run(shutdown_signal())
        .await
        .map_err(|e| CliError::Usage(e.to_string()))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
