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
//! connection with [`Error::Certificate`], naming the host and the reason; other TLS
//! failures give [`Error::Tls`], and unusable PEM files [`Error::TlsFile`].
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

mod describe;

use crate::error::Error;
use crate::transport::{ClientStream, Io};
use describe::webpki_error;
pub(crate) use describe::{describe, describe_certificate};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use tokio_rustls::rustls;
pub use tokio_rustls::{self, TlsAcceptor};

/// The ALPN protocol both sides offer: the WebSocket handshake is HTTP/1.1.
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The crypto provider of every configuration this module builds.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Client-side TLS settings for `wss://` connections; see the [module docs](self) for the
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
        .map_err(|_| Error::Timeout("TLS handshake"))?
        .map_err(|e| io_error(e, host, "TLS handshake"))?;
    Ok(ClientStream::new(stream))
}

/// Turns an I/O error of a TLS stream into [`Error::Certificate`] or [`Error::Tls`] when
/// rustls caused it; other I/O errors keep their kind and gain the step and host.
pub(crate) fn io_error(e: io::Error, host: &str, step: &str) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        let kind = e.kind();
        let inner = e.into_inner().expect("checked above");
        match inner.downcast::<rustls::Error>() {
            Ok(tls) => return from_rustls(*tls, host),
            Err(inner) => return Error::Io(io::Error::new(kind, inner)),
        }
    }
    let hint = if e.kind() == io::ErrorKind::UnexpectedEof && step == "TLS handshake" {
        " (the server hung up: does it speak TLS on this port? for a plain server use ws://)"
    } else {
        ""
    };
    Error::Io(io::Error::new(
        e.kind(),
        format!("{step} with {host}: {e}{hint}"),
    ))
}

/// Maps I/O errors caused by rustls inside an error from a later step (the WebSocket
/// handshake over TLS: with TLS 1.3 a server's verdict on the client certificate arrives
/// after the client finished its side of the TLS handshake).
pub(crate) fn after_handshake(e: Error, host: &str) -> Error {
    match e {
        Error::Io(io) if io.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => {
            io_error(io, host, "WebSocket handshake")
        }
        other => other,
    }
}

fn from_rustls(error: rustls::Error, host: &str) -> Error {
    match error {
        rustls::Error::InvalidCertificate(reason) => Error::Certificate {
            host: host.to_owned(),
            reason,
        },
        error => Error::Tls {
            host: host.to_owned(),
            error,
        },
    }
}

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
/// Fails with [`Error::Timeout`] or with [`Error::Io`] carrying the rustls error, such as
/// a client that did not present a required certificate.
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
        .map_err(|_| Error::Timeout("TLS handshake"))?
        .map_err(Error::Io)
}

/// Shorthand for `ServerTls::new(cert_chain, key).acceptor()`.
pub fn acceptor(cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<TlsAcceptor, Error> {
    ServerTls::new(cert_chain.as_ref(), key.as_ref()).acceptor()
}

fn file_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::TlsFile {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        let reason = match e.kind() {
            io::ErrorKind::NotFound => {
                let cwd = match std::env::current_dir() {
                    Ok(dir) if path.is_relative() => {
                        format!(" (relative paths start at {})", dir.display())
                    }
                    _ => String::new(),
                };
                format!("no such file: check the path{cwd}")
            }
            io::ErrorKind::PermissionDenied => {
                "permission denied: make it readable by this user".into()
            }
            _ => format!("cannot read it: {e}"),
        };
        file_error(path, reason)
    })
}

fn pem_error(path: &Path, e: pem::Error) -> Error {
    file_error(path, format!("not a valid PEM file ({e})"))
}

/// Every certificate of a chain file. `other` is the matching key file, named in the hint
/// when the two look swapped.
fn read_certificates(path: &Path, other: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        let reason = if PrivateKeyDer::from_pem_slice(&pem).is_ok() {
            format!(
                "it holds a private key but no certificate: did you swap the certificate \
                 and key files? (the file given as the key is {})",
                other.display()
            )
        } else {
            no_certificate_reason(&pem)
        };
        return Err(file_error(path, reason));
    }
    Ok(certs)
}

/// The certificates of a CA bundle.
fn read_ca_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, no_certificate_reason(&pem)));
    }
    Ok(certs)
}

fn no_certificate_reason(pem: &[u8]) -> String {
    if PrivateKeyDer::from_pem_slice(pem).is_ok() {
        "it holds a private key but no certificate: a PEM file with -----BEGIN \
         CERTIFICATE----- blocks is expected"
            .into()
    } else if pem.first() == Some(&0x30) {
        "no PEM certificate in it; it looks like DER: convert it with \
         `openssl x509 -inform der -in FILE -out FILE.pem`"
            .into()
    } else {
        "no certificate in it: a PEM file with -----BEGIN CERTIFICATE----- blocks is expected"
            .into()
    }
}

/// The private key of a key file. `other` is the matching certificate file.
fn read_private_key(path: &Path, other: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let pem = read_file(path)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let text = String::from_utf8_lossy(&pem);
            let reason = if text.contains("ENCRYPTED PRIVATE KEY") {
                "the private key is encrypted, which is not supported: decrypt it with \
                 `openssl pkey -in FILE -out key.pem`"
                    .to_owned()
            } else if text.contains("BEGIN CERTIFICATE") {
                format!(
                    "it holds a certificate but no private key: did you swap the certificate \
                     and key files? (the file given as the certificate is {})",
                    other.display()
                )
            } else {
                "no private key in it: a PEM file with a -----BEGIN PRIVATE KEY----- (or RSA \
                 / EC PRIVATE KEY) block is expected"
                    .to_owned()
            };
            Err(file_error(path, reason))
        }
        Err(e) => Err(pem_error(path, e)),
    }
}

fn key_error(e: rustls::Error, cert_path: &Path, key_path: &Path) -> Error {
    let reason = match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => format!(
            "this private key does not belong to the certificate in {}: give the key that was \
             generated with that certificate (the chain file must start with the certificate \
             for this key)",
            cert_path.display()
        ),
        e => format!("the private key cannot be used: {e}"),
    };
    file_error(key_path, reason)
}
