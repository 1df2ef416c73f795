//! TLS with rustls: `wss://` clients and the acceptor for TLS servers.
//!
//! Both sides use rustls with the `ring` crypto provider, installed explicitly in each
//! configuration (no process-wide default provider is needed or set), TLS 1.2 and 1.3, and
//! ALPN `http/1.1`.
//!
//! **Client** ([`ClientTls`], or the `tls_*` methods of [`ClientBuilder`](crate::ClientBuilder)):
//!
//! | setting | default | meaning |
//! | --- | --- | --- |
//! | trusted roots | the system's (rustls-native-certs; `SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured), or the bundled Mozilla set (webpki-roots) when the system has none or they fail to load | who may issue server certificates |
//! | [`ca_file`](ClientTls::ca_file) | none | PEM CA certificates to trust **instead of** the system roots (call again for more files) |
//! | [`system_roots`](ClientTls::system_roots) | on without CA files, off with them | `true` trusts the system roots **as well as** the CA files |
//! | [`client_cert`](ClientTls::client_cert) | none | PEM certificate chain and private key for servers that ask for a client certificate |
//! | [`danger_accept_invalid_certs`](ClientTls::danger_accept_invalid_certs) | off | accept any server certificate: for tests against self-signed servers only |
//! | [`rustls_config`](ClientTls::rustls_config) | none | a complete `rustls::ClientConfig`, replacing all of the above |
//!
//! SNI and certificate names come from the URL host; IP addresses are checked against the
//! certificate's IP address names (and send no SNI). A rejected certificate fails the
//! connection with [`Error::Certificate`](crate::Error::Certificate), naming the host and
//! the reason; other TLS failures give [`Error::Tls`](crate::Error::Tls) (from rustls) or
//! [`Error::TlsIo`](crate::Error::TlsIo) (the transport failed during the handshake), a
//! handshake that takes too long `Error::Timeout(Phase::TlsHandshake)`, and unusable PEM
//! files [`Error::TlsFile`](crate::Error::TlsFile).
//!
//! **Server** ([`ServerTls`]): a [`TlsAcceptor`] from PEM files. `duplex::accept` runs on any
//! `AsyncRead + AsyncWrite`, so the accepted TLS stream plugs straight in:
//!
//! ```no_run
//! # async fn demo() -> Result<(), duplex::Error> {
//! let acceptor = duplex::tls::ServerTls::new("cert.pem", "key.pem").acceptor()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9443").await?;
//! let (tcp, _) = listener.accept().await?;
//! let tls = duplex::tls::accept(&acceptor, tcp, std::time::Duration::from_secs(10)).await?;
//! let ws = duplex::accept(tls).await?;
//! # Ok(()) }
//! ```

mod client;
mod diagnostics;
mod pem;
mod server;

pub(crate) use client::connect;
pub use client::ClientTls;
pub(crate) use diagnostics::{after_handshake, describe, describe_certificate};
pub use server::{accept, acceptor, ServerTls};

use rustls::crypto::CryptoProvider;
use std::sync::{Arc, OnceLock};

pub use tokio_rustls::rustls;
pub use tokio_rustls::{self, TlsAcceptor};

/// The ALPN protocol both sides offer: the WebSocket handshake is HTTP/1.1.
pub(crate) const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The crypto provider of every configuration this module builds.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}
