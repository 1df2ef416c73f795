//! The hub's error type.

use crate::config::ConfigError;

/// What can go wrong in the hub.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Storage failed: nothing was acknowledged.
    #[error("storage failed: {0}")]
    Storage(String),
    /// The engine was shut down.
    #[error("the storage engine has stopped")]
    Stopped,
    /// The channel's namespace is not configured (or the name is invalid).
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}: {source} (is the port in use? choose another with --port or DUPLEX_PORT)")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Reading or writing the data directory failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
}
