//! `wss://` end to end over loopback with certificates made at test time by rcgen:
//! trust, every kind of certificate rejection, client certificates, the insecure option,
//! and the file errors of the server helper.

use duplex::tls::rustls::{AlertDescription, CertificateError};
use duplex::tls::{ClientTls, ServerTls, TlsAcceptor};
use duplex::{ClientBuilder, Error, Message};
use futures_util::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A scratch directory for PEM files, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "duplex-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate authority.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate and its key, both PEM.
    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose, expired: bool) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "duplex test");
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn server(&self, names: &[&str]) -> Leaf {
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth, false)
    }
}

struct Leaf {
    cert: String,
    key: String,
}

impl Leaf {
    /// Writes the certificate and key files: `(cert, key)`.
    fn write(&self, dir: &Dir, name: &str) -> (PathBuf, PathBuf) {
        (
            dir.write(&format!("{name}.crt"), &self.cert),
            dir.write(&format!("{name}.key"), &self.key),
        )
    }
}

/// The usual setup: a CA, a server certificate for localhost and 127.0.0.1 and the files.
struct Pki {
    dir: Dir,
    ca: Ca,
    ca_file: PathBuf,
}

impl Pki {
    fn new() -> Self {
        let dir = Dir::new();
        let ca = Ca::new("duplex test CA");
        let ca_file = dir.write("ca.pem", &ca.pem());
        Self { dir, ca, ca_file }
    }

    fn acceptor(&self, leaf: &Leaf) -> TlsAcceptor {
        let (cert, key) = leaf.write(&self.dir, "server");
        ServerTls::new(cert, key).acceptor().unwrap()
    }
}

/// An echo server over TLS on 127.0.0.1:0. Returns the port and a channel of the TLS
/// handshake errors the server saw.
async fn tls_echo_server(acceptor: TlsAcceptor) -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (errors, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let errors = errors.clone();
            tokio::spawn(async move {
                match acceptor.accept(&mut tcp).await {
                    Ok(tls) => {
                        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
                        let Ok(mut ws) = duplex::accept(tls).await else {
                            return;
                        };
                        while let Some(Ok(m)) = ws.next().await {
                            if m.is_data() && ws.send(m).await.is_err() {
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = errors.send(e.to_string());
                        // The alert went out; read until the client hangs up so closing
                        // does not reset the connection under the alert.
                        let _ = tcp.shutdown().await;
                        let mut buf = [0u8; 4096];
                        let drain =
                            async { while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {} };
                        let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
                    }
                }
            });
        }
    });
    (port, seen)
}

/// Connects, sends one message and expects it back.
async fn echo_once(builder: ClientBuilder) -> Result<(), Error> {
    let (mut ws, _) = builder.connect().await?;
    ws.send(Message::text("hello over tls")).await?;
    let reply = ws.recv().await.expect("a reply")?;
    assert_eq!(reply, Message::text("hello over tls"));
    ws.close(None).await
}

fn certificate_error(result: Result<(), Error>) -> (String, CertificateError, String) {
    match result {
        Err(e @ Error::Certificate { .. }) => {
            let text = e.to_string();
            eprintln!("{text}");
            let Error::Certificate { host, reason } = e else {
                unreachable!()
            };
            (host, reason, text)
        }
        other => panic!("expected Error::Certificate, got {other:?}"),
    }
}

#[tokio::test]
async fn good_chain_with_custom_ca_echoes_over_wss() {
    let pki = Pki::new();
    let (port, _) =
        tls_echo_server(pki.acceptor(&pki.ca.server(&["localhost", "127.0.0.1"]))).await;
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("wss://{host}:{port}/path?q=1");
        echo_once(ClientBuilder::new(url).tls_ca_file(&pki.ca_file))
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
    }
}

#[tokio::test]
async fn custom_ca_can_be_added_to_the_system_roots() {
    let pki = Pki::new();
    let (port, _) = tls_echo_server(pki.acceptor(&pki.ca.server(&["localhost"]))).await;
    let tls = ClientTls::new().ca_file(&pki.ca_file).system_roots(true);
    echo_once(ClientBuilder::new(format!("wss://localhost:{port}/")).tls(tls))
        .await
        .unwrap();
}

#[tokio::test]
async fn certificate_for_another_name_is_a_name_mismatch() {
    let pki = Pki::new();
    let (port, mut seen) = tls_echo_server(pki.acceptor(&pki.ca.server(&["other.example"]))).await;
    let result =
        echo_once(ClientBuilder::new(format!("wss://localhost:{port}/")).tls_ca_file(&pki.ca_file))
            .await;
    let (host, reason, text) = certificate_error(result);
    assert_eq!(host, "localhost");
    assert!(
        matches!(
            reason,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ),
        "{reason:?}"
    );
    assert!(text.contains("name mismatch"), "{text}");
    assert!(text.contains("other.example"), "{text}");
    // The client told the server why it hung up.
    let server_saw = seen.recv().await.unwrap();
    assert!(server_saw.contains("BadCertificate"), "{server_saw}");
}

#[tokio::test]
async fn expired_certificate_is_rejected_as_expired() {
    let pki = Pki::new();
    let leaf = pki
        .ca
        .issue(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth, true);
    let (port, _) = tls_echo_server(pki.acceptor(&leaf)).await;
    let result =
        echo_once(ClientBuilder::new(format!("wss://localhost:{port}/")).tls_ca_file(&pki.ca_file))
            .await;
    let (host, reason, text) = certificate_error(result);
    assert_eq!(host, "localhost");
    assert!(
        matches!(
            reason,
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        ),
        "{reason:?}"
    );
    assert!(text.contains("expired"), "{text}");
}

#[tokio::test]
async fn private_ca_without_ca_file_is_an_unknown_issuer() {
    let pki = Pki::new();
    let (port, _) = tls_echo_server(pki.acceptor(&pki.ca.server(&["localhost"]))).await;
    // No CA file: the system roots (or the bundled ones) do not know the test CA.
    let result = echo_once(ClientBuilder::new(format!("wss://localhost:{port}/"))).await;
    let (host, reason, text) = certificate_error(result);
    assert_eq!(host, "localhost");
    assert!(
        matches!(reason, CertificateError::UnknownIssuer),
        "{reason:?}"
    );
    assert!(text.contains("unknown issuer"), "{text}");
    assert!(
        text.contains("CA file"),
        "the message names the fix: {text}"
    );
}

#[tokio::test]
async fn another_ca_is_an_unknown_issuer() {
    let pki = Pki::new();
    let (port, _) = tls_echo_server(pki.acceptor(&pki.ca.server(&["127.0.0.1"]))).await;
    let other_ca = pki.dir.write("other-ca.pem", &Ca::new("another CA").pem());
    let result =
        echo_once(ClientBuilder::new(format!("wss://127.0.0.1:{port}/")).tls_ca_file(other_ca))
            .await;
    let (host, reason, _) = certificate_error(result);
    assert_eq!(host, "127.0.0.1");
    assert!(
        matches!(reason, CertificateError::UnknownIssuer),
        "{reason:?}"
    );
}

/// A self-signed certificate as `openssl req -x509 -newkey rsa:2048 -nodes -subj
/// /CN=localhost -addext subjectAltName=DNS:localhost` makes it: marked CA:TRUE.
fn self_signed_ca_as_server(names: &[&str]) -> Leaf {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Leaf {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

#[tokio::test]
async fn self_signed_ca_certificate_pinned_as_the_ca_file_is_accepted() {
    let dir = Dir::new();
    let leaf = self_signed_ca_as_server(&["localhost"]);
    let (cert, key) = leaf.write(&dir, "self-signed");
    let (port, _) = tls_echo_server(ServerTls::new(&cert, key).acceptor().unwrap()).await;
    echo_once(ClientBuilder::new(format!("wss://localhost:{port}/")).tls_ca_file(&cert))
        .await
        .unwrap();
    // Also beside the system roots.
    let tls = ClientTls::new().ca_file(&cert).system_roots(true);
    echo_once(ClientBuilder::new(format!("wss://localhost:{port}/")).tls(tls))
        .await
        .unwrap();
}

#[tokio::test]
async fn pinned_ca_certificate_still_needs_the_right_name_and_pin() {
    let dir = Dir::new();
    let leaf = self_signed_ca_as_server(&["localhost"]);
    let (cert, key) = leaf.write(&dir, "self-signed");
    let (port, _) = tls_echo_server(ServerTls::new(&cert, key).acceptor().unwrap()).await;
    // The pinned certificate, reached under a name it does not list.
    let result =
        echo_once(ClientBuilder::new(format!("wss://127.0.0.1:{port}/")).tls_ca_file(&cert)).await;
    let (_, reason, text) = certificate_error(result);
    assert!(
        matches!(reason, CertificateError::NotValidForNameContext { .. }),
        "{reason:?}"
    );
    assert!(text.contains("name mismatch"), "{text}");
    // Another CA:TRUE certificate pinned: the server's is not the pinned one, so webpki's
    // refusal of a CA certificate as a server's own stands.
    let other = dir.write("other.pem", &self_signed_ca_as_server(&["localhost"]).cert);
    let result =
        echo_once(ClientBuilder::new(format!("wss://localhost:{port}/")).tls_ca_file(other)).await;
    let (_, reason, text) = certificate_error(result);
    assert!(matches!(reason, CertificateError::Other(_)), "{reason:?}");
    assert!(text.contains("pin it"), "{text}");
}

#[tokio::test]
async fn ca_certificate_served_under_a_trusted_ca_is_refused_in_words() {
    // A CA:TRUE certificate issued by the trusted CA and presented as the server's own
    // is not pinned, so webpki's refusal stands, as a sentence with the fix.
    let pki = Pki::new();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &pki.ca.issuer).unwrap();
    let leaf = Leaf {
        cert: cert.pem(),
        key: key.serialize_pem(),
    };
    let (port, _) = tls_echo_server(pki.acceptor(&leaf)).await;
    let result =
        echo_once(ClientBuilder::new(format!("wss://localhost:{port}/")).tls_ca_file(&pki.ca_file))
            .await;
    let (_, reason, text) = certificate_error(result);
    assert!(matches!(reason, CertificateError::Other(_)), "{reason:?}");
    assert!(
        text.contains("CA certificate (basicConstraints CA:TRUE)"),
        "{text}"
    );
    assert!(text.contains("pin it"), "{text}");
    assert!(!text.contains("OtherError"), "no debug dump: {text}");
}

#[tokio::test]
async fn insecure_option_connects_to_an_unknown_ca_server() {
    let pki = Pki::new();
    // Unknown CA and the wrong name: both ignored when verification is off.
    let (port, _) = tls_echo_server(pki.acceptor(&pki.ca.server(&["other.example"]))).await;
    echo_once(
        ClientBuilder::new(format!("wss://localhost:{port}/")).danger_accept_invalid_certs(true),
    )
    .await
    .unwrap();
}

/// A server that requires client certificates issued by the test CA.
async fn client_auth_server(pki: &Pki) -> (u16, mpsc::UnboundedReceiver<String>) {
    let (cert, key) = pki.ca.server(&["localhost"]).write(&pki.dir, "server");
    let acceptor = ServerTls::new(cert, key)
        .client_ca_file(&pki.ca_file)
        .acceptor()
        .unwrap();
    tls_echo_server(acceptor).await
}

#[tokio::test]
async fn required_client_certificate_works_when_given() {
    let pki = Pki::new();
    let (port, _) = client_auth_server(&pki).await;
    let client = pki.ca.issue(
        &["client.example"],
        ExtendedKeyUsagePurpose::ClientAuth,
        false,
    );
    let (cert, key) = client.write(&pki.dir, "client");
    echo_once(
        ClientBuilder::new(format!("wss://localhost:{port}/"))
            .tls_ca_file(&pki.ca_file)
            .tls_client_cert(cert, key),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn required_client_certificate_fails_without_one() {
    let pki = Pki::new();
    let (port, mut seen) = client_auth_server(&pki).await;
    let result =
        echo_once(ClientBuilder::new(format!("wss://localhost:{port}/")).tls_ca_file(&pki.ca_file))
            .await;
    match result {
        Err(
            ref e @ Error::Tls {
                ref host,
                ref error,
            },
        ) => {
            eprintln!("{e}");
            assert_eq!(host, "localhost");
            assert_eq!(
                *error,
                duplex::tls::rustls::Error::AlertReceived(AlertDescription::CertificateRequired)
            );
            assert!(
                e.to_string().contains("requires a client certificate"),
                "{e}"
            );
        }
        other => panic!("expected Error::Tls with a CertificateRequired alert, got {other:?}"),
    }
    let server_saw = seen.recv().await.unwrap();
    assert!(server_saw.contains("no certificates"), "{server_saw}");
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    let (port, _) = client_auth_server(&pki).await;
    let stranger = Ca::new("stranger CA").issue(
        &["client.example"],
        ExtendedKeyUsagePurpose::ClientAuth,
        false,
    );
    let (cert, key) = stranger.write(&pki.dir, "stranger");
    let result = echo_once(
        ClientBuilder::new(format!("wss://localhost:{port}/"))
            .tls_ca_file(&pki.ca_file)
            .tls_client_cert(cert, key),
    )
    .await;
    match result {
        Err(Error::Tls { error, .. }) => assert_eq!(
            error,
            duplex::tls::rustls::Error::AlertReceived(AlertDescription::UnknownCA)
        ),
        other => panic!("expected Error::Tls with an UnknownCA alert, got {other:?}"),
    }
}

#[tokio::test]
async fn ipv6_address_urls_verify_against_ip_names() {
    // Runs or fails: a machine without an IPv6 loopback cannot vouch for IPv6 support.
    let listener = TcpListener::bind("[::1]:0")
        .await
        .expect("this test needs the IPv6 loopback [::1] (enable IPv6 on lo)");
    let port = listener.local_addr().unwrap().port();
    let pki = Pki::new();
    let acceptor = pki.acceptor(&pki.ca.server(&["::1"]));
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = duplex::tls::accept(&acceptor, tcp, Duration::from_secs(5))
            .await
            .unwrap();
        let mut ws = duplex::accept(tls).await.unwrap();
        while let Some(Ok(m)) = ws.next().await {
            if m.is_data() && ws.send(m).await.is_err() {
                break;
            }
        }
    });
    echo_once(ClientBuilder::new(format!("wss://[::1]:{port}/")).tls_ca_file(&pki.ca_file))
        .await
        .unwrap();
}

#[tokio::test]
async fn plain_server_on_a_wss_url_is_a_tls_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let _ = tcp
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
        let mut buf = [0u8; 4096];
        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    match ClientBuilder::new(format!("wss://127.0.0.1:{port}/"))
        .connect()
        .await
    {
        Err(e @ Error::Tls { .. }) => {
            let text = e.to_string();
            let Error::Tls { host, error } = e else {
                unreachable!()
            };
            assert_eq!(host, "127.0.0.1");
            assert!(
                matches!(error, duplex::tls::rustls::Error::InvalidMessage(_)),
                "{error:?}"
            );
            assert!(text.contains("ws://"), "the message names the fix: {text}");
        }
        other => panic!("expected Error::Tls, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_hanging_up_in_the_tls_handshake_is_a_tls_io_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        // Read the whole ClientHello record (5-byte header with its length), answer
        // nothing, hang up: a clean close, not a reset over unread bytes.
        let mut header = [0u8; 5];
        tcp.read_exact(&mut header).await.unwrap();
        let mut hello = vec![0u8; usize::from(u16::from_be_bytes([header[3], header[4]]))];
        tcp.read_exact(&mut hello).await.unwrap();
    });
    let err = ClientBuilder::new(format!("wss://127.0.0.1:{port}/"))
        .connect()
        .await
        .unwrap_err();
    server.await.unwrap();
    assert!(err.is_tls(), "{err:?}");
    let text = err.to_string();
    let Error::TlsIo { host, source } = err else {
        panic!("expected Error::TlsIo, got {err:?}");
    };
    assert_eq!(host, "127.0.0.1");
    assert_eq!(source.kind(), std::io::ErrorKind::UnexpectedEof, "{source}");
    assert!(text.contains("for a plain server use ws://"), "{text}");
}

#[tokio::test]
async fn silent_server_times_out_in_the_tls_step() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (_tcp, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let config = duplex::Config::default().handshake_timeout(Duration::from_millis(300));
    let result = ClientBuilder::new(format!("wss://127.0.0.1:{port}/"))
        .config(config)
        .connect()
        .await;
    assert!(
        matches!(result, Err(Error::Timeout(duplex::Phase::TlsHandshake))),
        "{result:?}"
    );
}

#[tokio::test]
async fn server_tls_accept_names_a_missing_client_certificate() {
    let pki = Pki::new();
    let (cert, key) = pki.ca.server(&["localhost"]).write(&pki.dir, "server");
    let acceptor = ServerTls::new(cert, key)
        .client_ca_file(&pki.ca_file)
        .acceptor()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = tokio::spawn(echo_once(
        ClientBuilder::new(format!("wss://localhost:{port}/")).tls_ca_file(&pki.ca_file),
    ));
    let (tcp, _) = listener.accept().await.unwrap();
    let result = duplex::tls::accept(&acceptor, tcp, Duration::from_secs(5)).await;
    let error = result.expect_err("no client certificate, no TLS");
    assert!(error.is_tls(), "{error:?}");
    assert!(
        matches!(
            &error,
            Error::Tls { host, error: duplex::tls::rustls::Error::NoCertificatesPresented }
                if host == "client"
        ),
        "{error:?}"
    );
    assert!(client.await.unwrap().is_err(), "the client was refused too");
}

#[tokio::test]
async fn server_tls_accept_times_out_on_a_silent_client() {
    let pki = Pki::new();
    let acceptor = pki.acceptor(&pki.ca.server(&["localhost"]));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let result = duplex::tls::accept(&acceptor, tcp, Duration::from_millis(200)).await;
    assert!(
        matches!(result, Err(Error::Timeout(duplex::Phase::TlsHandshake))),
        "{:?}",
        result.err()
    );
}

fn file_error(result: Result<impl std::fmt::Debug, Error>) -> (PathBuf, String) {
    match result {
        Err(e @ Error::TlsFile { .. }) => {
            let text = e.to_string();
            eprintln!("{text}");
            let Error::TlsFile { path, reason } = e else {
                unreachable!()
            };
            assert!(text.contains(&path.display().to_string()), "{text}");
            (path, reason)
        }
        other => panic!("expected Error::TlsFile, got {other:?}"),
    }
}

#[test]
fn server_files_errors_name_the_file_and_the_fix() {
    let pki = Pki::new();
    let (cert, key) = pki.ca.server(&["localhost"]).write(&pki.dir, "good");
    let (_, other_key) = pki.ca.server(&["localhost"]).write(&pki.dir, "other");
    let missing = pki.dir.0.join("missing.pem");
    let empty = pki.dir.write("empty.pem", "not a pem file\n");

    let (path, reason) = file_error(ServerTls::new(&missing, &key).server_config());
    assert_eq!(path, missing);
    assert!(reason.contains("no such file"), "{reason}");

    let (path, reason) = file_error(ServerTls::new(&empty, &key).server_config());
    assert_eq!(path, empty);
    assert!(reason.contains("no certificate"), "{reason}");

    let (path, reason) = file_error(ServerTls::new(&cert, &empty).server_config());
    assert_eq!(path, empty);
    assert!(reason.contains("no private key"), "{reason}");

    let (path, reason) = file_error(ServerTls::new(&key, &cert).server_config());
    assert_eq!(path, key, "the certificate file given is the key");
    assert!(reason.contains("swap"), "{reason}");

    let (path, reason) = file_error(ServerTls::new(&cert, &other_key).server_config());
    assert_eq!(path, other_key);
    assert!(
        reason.contains("does not belong to the certificate"),
        "{reason}"
    );
    assert!(reason.contains(&cert.display().to_string()), "{reason}");

    ServerTls::new(&cert, &key).acceptor().unwrap();
    duplex::tls::acceptor(&cert, &key).unwrap();
}

#[tokio::test]
async fn client_file_errors_name_the_file() {
    let pki = Pki::new();
    let missing = pki.dir.0.join("no-ca.pem");
    let result = ClientBuilder::new("wss://127.0.0.1:1/")
        .tls_ca_file(&missing)
        .connect()
        .await;
    // The TCP connect to port 1 fails first, so check the TLS settings directly too.
    assert!(result.is_err());
    let (path, reason) = file_error(ClientTls::new().ca_file(&missing).build());
    assert_eq!(path, missing);
    assert!(reason.contains("no such file"), "{reason}");

    let (cert, key) = pki.ca.server(&["localhost"]).write(&pki.dir, "c");
    let (path, reason) = file_error(ClientTls::new().client_cert(&key, &cert).build());
    assert_eq!(path, key);
    assert!(reason.contains("swap"), "{reason}");
}

#[test]
fn wss_urls_are_accepted_and_bad_schemes_named() {
    // Builds the default client config (system or bundled roots) without a network.
    ClientTls::new().build().unwrap();
    let err = futures_util::FutureExt::now_or_never(
        ClientBuilder::new("https://example.invalid/").connect(),
    )
    .expect("fails before any IO")
    .unwrap_err();
    assert!(err.to_string().contains("wss://"), "{err}");
}

#[test]
fn errors_and_settings_cross_threads() {
    fn is<T: Send + Sync>() {}
    is::<Error>();
    is::<ClientTls>();
    is::<ServerTls>();
}

#[tokio::test]
async fn close_to_a_tls_peer_that_never_reads_ends_at_the_close_timeout() {
    // A TLS shutdown waits to write its close_notify alert, which a peer that never
    // reads never lets happen: past the close timeout the server must give up anyway.
    use futures_util::FutureExt;
    let pki = Pki::new();
    let acceptor = pki.acceptor(&pki.ca.server(&["localhost"]));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let close_timeout = Duration::from_millis(300);
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let config = duplex::Config::default().close_timeout(close_timeout);
        let mut ws = duplex::accept_with(tls, config, |_| Ok(duplex::Accept::default()))
            .await
            .unwrap();
        // Fill the socket buffers and the write queue: the client reads nothing.
        let chunk = Message::binary(vec![0u8; 64 << 10]);
        while matches!(ws.feed(chunk.clone()).now_or_never(), Some(Ok(()))) {}
        let started = std::time::Instant::now();
        let result = ws.close(None).await;
        (result, started.elapsed())
    });
    let (client, _) = ClientBuilder::new(format!("wss://localhost:{port}/"))
        .tls_ca_file(&pki.ca_file)
        .deflate(None)
        .connect()
        .await
        .unwrap();
    let (result, waited) = tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("close() returned instead of waiting on the TLS shutdown for ever")
        .unwrap();
    assert!(
        matches!(result, Err(Error::Timeout(duplex::Phase::CloseHandshake))),
        "{result:?}"
    );
    assert!(waited >= close_timeout, "gave up after {waited:?}");
    drop(client);
}
