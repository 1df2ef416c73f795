//! The client side: trusted roots, client certificates and the `wss://` handshake.

use super::diagnostics::{io_error, webpki_error};
use super::pem::{key_error, read_ca_certificates, read_certificates, read_private_key};
use super::{provider, ALPN_HTTP11};
use crate::error::{Error, Phase};
use crate::transport::{ClientStream, Io};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_rustls::rustls;

/// Client-side TLS settings for `wss://` connections; see the [module docs](crate::tls) for the
/// defaults.
///
/// ```no_run
/// # async fn demo() -> Result<(), duplex::Error> {
/// use duplex::tls::ClientTls;
/// let tls = ClientTls::new().ca_file("dev-ca.pem");
/// let (ws, _) = duplex::ClientBuilder::new("wss://localhost:9443/")
///     .tls(tls)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    ca_files: Vec<PathBuf>,
    system_roots: Option<bool>,
    identity: Option<(PathBuf, PathBuf)>,
    danger_accept_invalid_certs: bool,
    custom: Option<Arc<ClientConfig>>,
}

impl ClientTls {
    /// The defaults: system roots, no client certificate, certificates verified.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the CA certificates in this PEM file. CA files **replace** the system roots
    /// unless [`system_roots(true)`](Self::system_roots) is also set; call again to add
    /// more files.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// Whether to trust the system's root certificates. The default is to trust them when
    /// no [`ca_file`](Self::ca_file) is given and not otherwise; `true` trusts them in
    /// addition to the CA files.
    pub fn system_roots(mut self, trust: bool) -> Self {
        self.system_roots = Some(trust);
        self
    }

    /// Presents this client certificate (PEM chain, the client's own certificate first)
    /// with its PEM private key (PKCS#8, PKCS#1 or SEC1) when the server asks for one.
    pub fn client_cert(mut self, cert_chain: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.identity = Some((cert_chain.into(), key.into()));
        self
    }

    /// **Dangerous**: accepts any server certificate — unknown issuer, expired, issued for
    /// another name — so anyone on the path can read and change the traffic. Meant for
    /// tests against self-signed servers (the CLI's `--insecure`). Off by default.
    /// Handshake signatures are still checked, so the server must hold the certificate's key.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.danger_accept_invalid_certs = accept;
        self
    }

    /// Uses this rustls configuration as it is, ignoring every other setting here (set its
    /// ALPN yourself if the server needs it).
    pub fn rustls_config(mut self, config: Arc<ClientConfig>) -> Self {
        self.custom = Some(config);
        self
    }

    /// Builds the rustls configuration, reading the CA and client certificate files.
    /// The default settings build once per process and share the result; other settings
    /// build on each `connect`, so a client opening many connections can build once and
    /// pass `ClientTls::new().rustls_config(tls.build()?)`.
    pub fn build(&self) -> Result<Arc<ClientConfig>, Error> {
        if let Some(custom) = &self.custom {
            return Ok(custom.clone());
        }
        let is_default = self.ca_files.is_empty()
            && self.system_roots.is_none()
            && self.identity.is_none()
            && !self.danger_accept_invalid_certs;
        if is_default {
            static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
            if let Some(config) = DEFAULT.get() {
                return Ok(config.clone());
            }
            let config = self.build_new()?;
            return Ok(DEFAULT.get_or_init(|| config).clone());
        }
        self.build_new()
    }

    fn build_new(&self) -> Result<Arc<ClientConfig>, Error> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::InvalidConfig(format!("TLS: {e}")))?;
        let builder = if self.danger_accept_invalid_certs {
            tracing::warn!("TLS certificate verification is OFF (danger_accept_invalid_certs)");
            let verifier = ServerVerifier {
                provider: provider(),
                certificates: CertificateCheck::AcceptAny,
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        } else if self.ca_files.is_empty() {
            builder.with_root_certificates(self.roots()?)
        } else {
            let (roots, pinned) = self.roots_and_pinned()?;
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| Error::InvalidConfig(format!("TLS: {e}")))?;
            let verifier = ServerVerifier {
                provider: provider(),
                certificates: CertificateCheck::WebPkiOrPinned { webpki, pinned },
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        };
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some((cert_path, key_path)) => {
                let chain = read_certificates(cert_path, key_path)?;
                let key = read_private_key(key_path, cert_path)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| key_error(e, cert_path, key_path))?
            }
        };
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(Arc::new(config))
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, Error> {
        self.roots_and_pinned().map(|(roots, _)| roots)
    }

    /// The trusted roots, and the certificates of the CA files as they were given (the
    /// ones a server may present as its own, see [`CertificateCheck`]).
    fn roots_and_pinned(
        &self,
    ) -> Result<(Arc<RootCertStore>, Vec<CertificateDer<'static>>), Error> {
        let use_system = self.system_roots.unwrap_or(self.ca_files.is_empty());
        if use_system && self.ca_files.is_empty() {
            return Ok((system_roots(), Vec::new()));
        }
        let mut pinned = Vec::new();
        let mut store = if use_system {
            (*system_roots()).clone()
        } else {
            RootCertStore::empty()
        };
        for path in &self.ca_files {
            for cert in read_ca_certificates(path)? {
                pinned.push(cert.clone());
                store.add(cert).map_err(|e| Error::TlsFile {
                    path: path.clone(),
                    reason: format!(
                        "a certificate in it cannot be used as a trust anchor ({e}); \
                         give the PEM file of the CA that issued the server's certificate"
                    ),
                })?;
            }
        }
        if store.is_empty() {
            return Err(Error::InvalidConfig(
                "TLS: system roots are turned off and no CA file is given, so no server \
                 could be trusted: give a CA file or turn system roots on"
                    .into(),
            ));
        }
        Ok((Arc::new(store), pinned))
    }
}

/// The system's root certificates, loaded once per process; the bundled Mozilla roots
/// (webpki-roots) when the system has none or they cannot be loaded.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, ignored) = store.add_parsable_certificates(loaded.certs);
            if store.is_empty() {
                tracing::warn!(
                    errors = ?loaded.errors,
                    "no system root certificates could be loaded; trusting the bundled \
                     Mozilla roots (webpki-roots) instead"
                );
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            } else {
                tracing::debug!(
                    added,
                    ignored,
                    errors = loaded.errors.len(),
                    "loaded system root certificates"
                );
            }
            Arc::new(store)
        })
        .clone()
}

/// The server certificate verifier for CA files and for `danger_accept_invalid_certs`;
/// the handshake signatures are checked in both cases, so the server must hold the
/// certificate's key.
#[derive(Debug)]
struct ServerVerifier {
    provider: Arc<CryptoProvider>,
    certificates: CertificateCheck,
}

#[derive(Debug)]
enum CertificateCheck {
    /// `danger_accept_invalid_certs`: any certificate.
    AcceptAny,
    /// webpki's verdict, except that a server presenting exactly a certificate from the
    /// CA files (`pinned`) is trusted even when that certificate says `CA:TRUE`.
    ///
    /// The common self-signed recipe (`openssl req -x509 ...`) marks the certificate as
    /// a CA, and webpki refuses a CA certificate as a server's own (`CaUsedAsEndEntity`).
    /// A user who gives that very certificate as the CA file has pinned it: curl, Python
    /// and browsers with an imported certificate accept it, so do we. Only that one error
    /// is forgiven, only for a byte-for-byte pinned certificate: webpki checks validity
    /// dates (and distrust) before basic constraints, and the name is checked here. The
    /// extended key usage, which webpki checks after basic constraints, is not: the user
    /// pinned this very certificate, as browsers do with an imported one.
    WebPkiOrPinned {
        webpki: Arc<WebPkiServerVerifier>,
        pinned: Vec<CertificateDer<'static>>,
    },
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let CertificateCheck::WebPkiOrPinned { webpki, pinned } = &self.certificates else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(ref other)))
                if matches!(webpki_error(other), Some(webpki::Error::CaUsedAsEndEntity))
                    && pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                let parsed = ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS step of a `wss://` connection: the handshake over `stream` with SNI and
/// certificate checks for `host` (a DNS name or an IP address, IPv6 with or without
/// brackets), bounded by `timeout`.
pub(crate) async fn connect<S: Io>(
    tls: &ClientTls,
    host: &str,
    stream: S,
    timeout: Duration,
) -> Result<ClientStream, Error> {
    let config = tls.build()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(bare.to_owned()).map_err(|e| Error::Tls {
        host: host.to_owned(),
        error: rustls::Error::General(format!("{bare:?} is not a valid TLS server name: {e}")),
    })?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let stream = tokio::time::timeout(timeout, connector.connect(name, stream))
        .await
        .map_err(|_| Error::Timeout(Phase::TlsHandshake))?
        .map_err(|e| io_error(e, host))?;
    Ok(ClientStream::new(stream))
}
