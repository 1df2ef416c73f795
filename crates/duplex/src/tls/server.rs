//! The server side: certificate, key and client CAs from PEM files, and the accept step.

use super::diagnostics::io_error;
use super::pem::{key_error, read_ca_certificates, read_certificates, read_private_key};
use super::{provider, TlsAcceptor, ALPN_HTTP11};
use crate::error::{Error, Phase};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;

/// Server-side TLS: certificate chain and private key from PEM files, optionally
/// requiring client certificates.
///
/// ```no_run
/// # fn demo() -> Result<(), duplex::Error> {
/// let acceptor = duplex::tls::ServerTls::new("fullchain.pem", "privkey.pem").acceptor()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ServerTls {
    cert_chain: PathBuf,
    key: PathBuf,
    client_cas: Vec<PathBuf>,
}

impl ServerTls {
    /// The server's certificate chain (PEM, its own certificate first, then the
    /// intermediates) and its private key (PEM: PKCS#8, PKCS#1 or SEC1, unencrypted).
    pub fn new(cert_chain: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert_chain: cert_chain.into(),
            key: key.into(),
            client_cas: Vec::new(),
        }
    }

    /// Requires every client to present a certificate issued by a CA in this PEM file
    /// (call again for more files). Off by default: no client certificate is asked for.
    pub fn client_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_cas.push(path.into());
        self
    }

    /// Builds the rustls configuration (ALPN `http/1.1`), reading the files. Errors name
    /// the file and the fix: missing file, no certificate, no key, key not matching.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, Error> {
        let chain = read_certificates(&self.cert_chain, &self.key)?;
        let key = read_private_key(&self.key, &self.cert_chain)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::InvalidConfig(format!("TLS: {e}")))?;
        let builder = if self.client_cas.is_empty() {
            builder.with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            for path in &self.client_cas {
                for cert in read_ca_certificates(path)? {
                    roots.add(cert).map_err(|e| Error::TlsFile {
                        path: path.clone(),
                        reason: format!("a certificate in it cannot be used as a client CA ({e})"),
                    })?;
                }
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| Error::InvalidConfig(format!("TLS client CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| key_error(e, &self.cert_chain, &self.key))?;
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(Arc::new(config))
    }

    /// Builds a [`TlsAcceptor`]: `acceptor.accept(tcp).await?` gives a stream for
    /// [`accept`](crate::accept) / [`accept_with`](crate::accept_with).
    pub fn acceptor(&self) -> Result<TlsAcceptor, Error> {
        Ok(TlsAcceptor::from(self.server_config()?))
    }
}

/// The server's TLS handshake on an accepted connection, bounded by `timeout` (use the
/// same [`Config::handshake_timeout`](crate::Config::handshake_timeout) as the WebSocket
/// handshake, so a client that stalls in the TLS step cannot hold the task forever).
/// Fails with [`Error::Timeout`], with [`Error::Tls`] or [`Error::Certificate`] (host
/// `client`) when rustls refused the client, such as one that did not present a required
/// certificate, or with [`Error::TlsIo`] when the transport failed.
pub async fn accept<S>(
    acceptor: &TlsAcceptor,
    stream: S,
    timeout: Duration,
) -> Result<tokio_rustls::server::TlsStream<S>, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    tokio::time::timeout(timeout, acceptor.accept(stream))
        .await
        .map_err(|_| Error::Timeout(Phase::TlsHandshake))?
        .map_err(|e| io_error(e, "client"))
}

/// Shorthand for `ServerTls::new(cert_chain, key).acceptor()`.
pub fn acceptor(cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<TlsAcceptor, Error> {
    ServerTls::new(cert_chain.as_ref(), key.as_ref()).acceptor()
}
