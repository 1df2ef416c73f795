//! The command's error type.

/// What can stop a `duplex` command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Could not listen on the requested address.
    #[error("cannot listen on {addr}: {source} (is the port in use? try another --port)")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Could not connect or complete the handshake.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        source: duplex::Error,
    },
    /// The TLS certificate or key cannot be used.
    #[error("{0}")]
    Tls(duplex::Error),
    /// A command-line value is not usable.
    #[error("{0}")]
    Usage(String),
    /// The connection failed after it was open.
    #[error("connection failed: {0}")]
    Connection(#[from] duplex::Error),
    /// The hub refused or failed a request (`duplex pub`, `duplex sub`).
    #[error("{0}")]
    Hub(String),
    /// Terminal or pipe IO failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    /// The process exit code: 2 for usage and connection set-up, 3 for a failed
    /// connection.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_)
            | CliError::Bind { .. }
            | CliError::Connect { .. }
            | CliError::Tls(_) => 2,
            CliError::Connection(_) | CliError::Io(_) | CliError::Hub(_) => 3,
        }
    }
}
