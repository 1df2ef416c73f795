//! Connection settings, with their defaults in one place.

use duplex_proto::deflate::DeflateConfig;
use duplex_proto::Limits;
use std::time::Duration;

/// Settings for one connection, client or server.
///
/// | setting | default | meaning |
/// | --- | --- | --- |
/// | `limits` | [`Limits::default`] | frame, message, fragment and header limits |
/// | `write_buffer_limit` | 1 MiB | queued outgoing bytes before `send` waits (backpressure) |
/// | `handshake_timeout` | 10 s | time for the opening handshake |
/// | `close_timeout` | 5 s | time to wait for the peer's close frame and TCP close |
/// | `ping_interval` | off | send a ping after this long without receiving anything |
/// | `idle_timeout` | off | fail the connection after this long without receiving anything |
/// | `deflate` | on, [`DeflateConfig::default`] | permessage-deflate: clients offer it, servers accept offers; `None` turns it off |
///
/// TLS is set apart from this, since it differs by role: for `wss://` clients with
/// [`ClientTls`](crate::ClientTls) or the `tls_*` methods of
/// [`ClientBuilder`](crate::ClientBuilder) (defaults: system roots, certificates verified,
/// no client certificate, ALPN `http/1.1`), for servers with
/// [`ServerTls`](crate::ServerTls); the [`tls`](crate::tls) module lists every default.
/// `handshake_timeout` bounds the TLS handshake too, as a step of its own.
///
/// The struct is `#[non_exhaustive]`, so settings can be added without a breaking
/// release: start from `Config::default()` and chain the setters (or assign fields).
///
/// ```
/// use std::time::Duration;
/// let config = duplex::Config::default()
///     .idle_timeout(Some(Duration::from_secs(60)))
///     .write_buffer_limit(256 << 10);
/// assert_eq!(config.handshake_timeout, Duration::from_secs(10));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Protocol limits.
    pub limits: Limits,
    /// Outgoing bytes that may be queued before `send` waits for the socket.
    pub write_buffer_limit: usize,
    /// Bound on the opening handshake.
    pub handshake_timeout: Duration,
    /// Bound on the closing handshake.
    pub close_timeout: Duration,
    /// Keepalive: a ping after this long without incoming traffic.
    pub ping_interval: Option<Duration>,
    /// Fail the connection (close code 1001) after this long without incoming traffic.
    pub idle_timeout: Option<Duration>,
    /// permessage-deflate (RFC 7692) settings; `None` neither offers nor accepts it.
    pub deflate: Option<DeflateConfig>,
}

impl Config {
    /// Sets `limits`: the protocol limits.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets `write_buffer_limit`: outgoing bytes queued before `send` waits.
    #[must_use]
    pub fn write_buffer_limit(mut self, write_buffer_limit: usize) -> Self {
        self.write_buffer_limit = write_buffer_limit;
        self
    }

    /// Sets `handshake_timeout`: the bound on the opening handshake.
    #[must_use]
    pub fn handshake_timeout(mut self, handshake_timeout: Duration) -> Self {
        self.handshake_timeout = handshake_timeout;
        self
    }

    /// Sets `close_timeout`: the bound on the closing handshake.
    #[must_use]
    pub fn close_timeout(mut self, close_timeout: Duration) -> Self {
        self.close_timeout = close_timeout;
        self
    }

    /// Sets `ping_interval`: a ping after this long without incoming traffic.
    #[must_use]
    pub fn ping_interval(mut self, ping_interval: Option<Duration>) -> Self {
        self.ping_interval = ping_interval;
        self
    }

    /// Sets `idle_timeout`: fail the connection after this long without incoming traffic.
    #[must_use]
    pub fn idle_timeout(mut self, idle_timeout: Option<Duration>) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Sets `deflate`: permessage-deflate, or `None` for none.
    #[must_use]
    pub fn deflate(mut self, deflate: Option<DeflateConfig>) -> Self {
        self.deflate = deflate;
        self
    }

    /// Checks the settings; the message names the setting and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(d) = &self.deflate {
            d.validate().map_err(|e| format!("deflate: {e}"))?;
        }
        if self.write_buffer_limit == 0 {
            return Err("write_buffer_limit = 0 would block every send: use at least 1".into());
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            write_buffer_limit: 1 << 20,
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            ping_interval: None,
            idle_timeout: None,
            deflate: Some(DeflateConfig::default()),
        }
    }
}
