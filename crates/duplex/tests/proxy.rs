//! Client connections through real proxies from Debian packages, started on 127.0.0.1
//! ephemeral ports by the tests and stopped by PID: tinyproxy (HTTP CONNECT, with and
//! without BasicAuth), microsocks (SOCKS5, with and without username/password) and nginx's
//! stream module terminating TLS in front of tinyproxy (an `https://` proxy). The target
//! is a duplex echo server in this process. A missing program fails with a message to run
//! `scripts/setup-deps`.

mod daemons;

use daemons::{closed_port, echo_server, microsocks, nginx, tinyproxy, tls_echo_server};
use daemons::{s, Certs, Daemon, Scratch};
use duplex::tls::rustls::CertificateError;
use duplex::{ClientBuilder, Error, Message};

/// Connects with `builder`, echoes a text and a 70 kB binary message, closes.
async fn echo_through(builder: ClientBuilder) -> Result<(), Error> {
    let (mut ws, _) = builder.connect().await?;
    for m in [
        Message::text("through the proxy"),
        Message::binary(vec![7u8; 70_000]),
    ] {
        ws.send(m.clone()).await?;
        assert_eq!(ws.recv().await.expect("a reply")?, m);
    }
    ws.close(None).await
}

/// How many tunnels to `target` (`host:port`) the proxy opened, by its own log: the proof
/// that a connection went through the proxy, not around it. Counted after the proxy has
/// accepted the credentials, so refused attempts do not count.
fn tunnels(proxy: &Daemon, target: &str) -> usize {
    let line_end = match proxy.name.as_str() {
        // "opensock: opening connection to 127.0.0.1:PORT", after authentication.
        "tinyproxy" => format!("opening connection to {target}"),
        // "client[N] 127.0.0.1: connected to HOST:PORT", once the target answered.
        "microsocks" => format!("connected to {target}"),
        other => panic!("no tunnel log line known for {other}"),
    };
    proxy
        .log()
        .lines()
        .filter(|line| line.trim_end().ends_with(&line_end))
        .count()
}

/// Asserts the proxy opened exactly `expected` tunnels to `target`.
fn assert_tunnels(proxy: &Daemon, target: &str, expected: usize) {
    let seen = tunnels(proxy, target);
    assert_eq!(
        seen,
        expected,
        "{} opened {seen} tunnels to {target}, expected {expected}; its log:\n{}",
        proxy.name,
        proxy.log()
    );
}

fn ws(port: u16) -> ClientBuilder {
    ClientBuilder::new(format!("ws://127.0.0.1:{port}/"))
}

// ---- HTTP CONNECT: tinyproxy ---------------------------------------------------------

#[tokio::test]
async fn tinyproxy_connect_tunnels_to_the_echo_server() {
    let echo = echo_server().await;
    let proxy = tinyproxy(&[echo], None);
    let url = format!("http://127.0.0.1:{}", proxy.port);
    echo_through(ws(echo).proxy(&url)).await.unwrap();
    // Scheme-less `host:port` is an HTTP proxy too, as in curl.
    echo_through(ws(echo).proxy(&format!("127.0.0.1:{}", proxy.port)))
        .await
        .unwrap();
    assert_tunnels(&proxy, &format!("127.0.0.1:{echo}"), 2);
}

#[tokio::test]
async fn tinyproxy_refuses_a_port_outside_connect_port() {
    let echo = echo_server().await;
    let other = echo_server().await;
    let proxy = tinyproxy(&[echo], None);
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let e = ws(other).proxy(&url).connect().await.unwrap_err();
    assert!(matches!(e, Error::ProxyRefused { code: 403, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "proxy http://127.0.0.1:{} refused CONNECT 127.0.0.1:{other}: 403",
            proxy.port
        )),
        "{msg}"
    );
}

#[tokio::test]
async fn tinyproxy_reports_an_unreachable_target() {
    let target = closed_port();
    let proxy = tinyproxy(&[target], None);
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let e = ws(target).proxy(&url).connect().await.unwrap_err();
    // The proxy was reached: the failure is the proxy's answer about the target.
    let Error::ProxyRefused { code, .. } = &e else {
        panic!("expected ProxyRefused, got {e:?}");
    };
    assert!((500..600).contains(code), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("refused CONNECT 127.0.0.1:{target}: {code}")),
        "{e}"
    );
}

#[tokio::test]
async fn tinyproxy_basic_auth() {
    let echo = echo_server().await;
    let proxy = tinyproxy(&[echo], Some(("alice", "s3cr3t")));
    let port = proxy.port;

    echo_through(ws(echo).proxy(&format!("http://alice:s3cr3t@127.0.0.1:{port}")))
        .await
        .unwrap();
    assert_tunnels(&proxy, &format!("127.0.0.1:{echo}"), 1);

    let e = ws(echo)
        .proxy(&format!("http://127.0.0.1:{port}"))
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ProxyRefused { code: 407, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "proxy http://127.0.0.1:{port} refused CONNECT 127.0.0.1:{echo}: \
             407 Proxy Authentication Required"
        )),
        "{msg}"
    );

    let e = ws(echo)
        .proxy(&format!("http://alice:wrong-pw@127.0.0.1:{port}"))
        .connect()
        .await
        .unwrap_err();
    // tinyproxy 1.11 answers wrong credentials with 401 Unauthorized (missing ones with 407).
    assert!(
        matches!(
            e,
            Error::ProxyRefused {
                code: 401 | 407,
                ..
            }
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("credentials were not accepted"), "{msg}");
    assert!(!msg.contains("wrong-pw") && !format!("{e:?}").contains("wrong-pw"));
    // The refused attempts opened no tunnel.
    assert_tunnels(&proxy, &format!("127.0.0.1:{echo}"), 1);
}

#[tokio::test]
async fn wss_through_tinyproxy() {
    let dir = Scratch::new("proxy-wss");
    let certs = Certs::new(&dir);
    let echo = tls_echo_server(certs.acceptor()).await;
    let proxy = tinyproxy(&[echo], None);
    let builder = ClientBuilder::new(format!("wss://localhost:{echo}/"))
        .tls_ca_file(&certs.ca)
        .proxy(&format!("http://127.0.0.1:{}", proxy.port));
    echo_through(builder).await.unwrap();
    assert_tunnels(&proxy, &format!("localhost:{echo}"), 1);
}

// ---- the proxy itself unreachable, bad URLs ------------------------------------------

#[tokio::test]
async fn unreachable_proxy_is_a_proxy_connect_error() {
    let echo = echo_server().await;
    let dead = closed_port();
    for scheme in ["http", "socks5", "socks5h"] {
        let e = ws(echo)
            .proxy(&format!("{scheme}://user:pw@127.0.0.1:{dead}"))
            .connect()
            .await
            .unwrap_err();
        let Error::ProxyConnect { source, .. } = &e else {
            panic!("expected ProxyConnect, got {e:?}");
        };
        assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "cannot connect to proxy {scheme}://127.0.0.1:{dead}: "
            )),
            "{msg}"
        );
        assert!(!msg.contains("pw"), "{msg}");
    }
}

#[tokio::test]
async fn invalid_proxy_url_fails_connect() {
    let echo = echo_server().await;
    let e = ws(echo)
        .proxy("ftp://bob:hunter2@127.0.0.1:1")
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ProxyUrl { .. }), "{e:?}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    // no_proxy() after a proxy connects directly.
    echo_through(ws(echo).proxy("ftp://x").no_proxy())
        .await
        .unwrap();
}

#[tokio::test]
async fn silent_proxy_times_out_naming_the_proxy() {
    // Accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            open.push(tcp);
        }
    });
    let config = duplex::Config::default().handshake_timeout(std::time::Duration::from_millis(300));
    for scheme in ["http", "socks5h"] {
        let e = ws(9)
            .config(config.clone())
            .proxy(&format!("{scheme}://127.0.0.1:{port}"))
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(e, Error::ProxyFailed { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "proxy {scheme}://127.0.0.1:{port} failed: no tunnel to 127.0.0.1:9 within 300ms"
            )
        );
    }
    held.abort();
}

// ---- SOCKS5: microsocks --------------------------------------------------------------

#[tokio::test]
async fn microsocks_socks5_and_socks5h() {
    let echo = echo_server().await;
    let proxy = microsocks(None);
    for scheme in ["socks5", "socks5h"] {
        let url = format!("{scheme}://127.0.0.1:{}", proxy.port);
        echo_through(ws(echo).proxy(&url)).await.unwrap();
        // A host name: resolved here (socks5) or by the proxy (socks5h).
        let builder = ClientBuilder::new(format!("ws://localhost:{echo}/")).proxy(&url);
        echo_through(builder).await.unwrap();
    }
    // socks5 resolved "localhost" here, so the proxy saw 127.0.0.1 three times (two
    // IP URLs and that one); socks5h let it resolve the name itself once.
    assert_tunnels(&proxy, &format!("127.0.0.1:{echo}"), 3);
    assert_tunnels(&proxy, &format!("localhost:{echo}"), 1);
}

#[tokio::test]
async fn microsocks_reports_the_target_refusing() {
    let proxy = microsocks(None);
    let target = closed_port();
    let url = format!("socks5h://127.0.0.1:{}", proxy.port);
    let e = ws(target).proxy(&url).connect().await.unwrap_err();
    assert!(matches!(e, Error::ProxyRefused { code: 5, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "proxy {url} refused CONNECT 127.0.0.1:{target}: connection refused by the target \
             (SOCKS5 reply 5)"
        )
    );
}

#[tokio::test]
async fn microsocks_username_password() {
    let echo = echo_server().await;
    let proxy = microsocks(Some(("bob", "pa55")));
    let port = proxy.port;
    for scheme in ["socks5", "socks5h"] {
        echo_through(ws(echo).proxy(&format!("{scheme}://bob:pa55@127.0.0.1:{port}")))
            .await
            .unwrap();
    }
    assert_tunnels(&proxy, &format!("127.0.0.1:{echo}"), 2);

    let e = ws(echo)
        .proxy(&format!("socks5://bob:nope@127.0.0.1:{port}"))
        .connect()
        .await
        .unwrap_err();
    // RFC 1929: any status but 0 is a failure (microsocks sends 2).
    assert!(
        matches!(e, Error::ProxyRefused { code: 1..=255, .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "proxy socks5://127.0.0.1:{port} refused username/password authentication: \
             status 0x"
        )) && msg.ends_with("(RFC 1929): the user name or password is wrong"),
        "{msg}"
    );
    assert!(!msg.contains("nope"));

    let e = ws(echo)
        .proxy(&format!("socks5://127.0.0.1:{port}"))
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ProxyRefused { code: 255, .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("no acceptable authentication method (it wants authentication"),
        "{e}"
    );
}

#[tokio::test]
async fn wss_through_microsocks() {
    let dir = Scratch::new("proxy-wss-socks");
    let certs = Certs::new(&dir);
    let echo = tls_echo_server(certs.acceptor()).await;
    let proxy = microsocks(None);
    let builder = ClientBuilder::new(format!("wss://localhost:{echo}/"))
        .tls_ca_file(&certs.ca)
        .proxy(&format!("socks5h://127.0.0.1:{}", proxy.port));
    echo_through(builder).await.unwrap();
    assert_tunnels(&proxy, &format!("localhost:{echo}"), 1);
}

// ---- HTTPS proxy: nginx stream TLS in front of tinyproxy -----------------------------

/// nginx terminating TLS with `certs` and passing the bytes to `upstream`.
fn tls_front(certs: &Certs, upstream: &Daemon) -> Daemon {
    let (cert, key, up) = (s(&certs.cert), s(&certs.key), upstream.port);
    nginx(true, |port, _dir| {
        format!(
            "stream {{\n server {{\n  listen 127.0.0.1:{port} ssl;\n  ssl_certificate {cert};\n  \
             ssl_certificate_key {key};\n  proxy_pass 127.0.0.1:{up};\n }}\n}}"
        )
    })
}

#[tokio::test]
async fn https_proxy() {
    let dir = Scratch::new("proxy-https");
    let certs = Certs::new(&dir);
    let echo = echo_server().await;
    let proxy = tinyproxy(&[echo], Some(("carol", "pw")));
    let front = tls_front(&certs, &proxy);
    let port = front.port;

    echo_through(
        ws(echo)
            .tls_ca_file(&certs.ca)
            .proxy(&format!("https://carol:pw@localhost:{port}")),
    )
    .await
    .unwrap();
    assert_tunnels(&proxy, &format!("127.0.0.1:{echo}"), 1);

    // Refusals come through the TLS layer as from a plain proxy.
    let e = ws(echo)
        .tls_ca_file(&certs.ca)
        .proxy(&format!("https://localhost:{port}"))
        .connect()
        .await
        .unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "proxy https://localhost:{port} refused CONNECT 127.0.0.1:{echo}: 407"
        )),
        "{e}"
    );

    // A proxy certificate from an unknown CA fails in the TLS-to-proxy step.
    let other = Certs::named(&dir, "another CA");
    let e = ws(echo)
        .tls_ca_file(&other.ca)
        .proxy(&format!("https://carol:pw@localhost:{port}"))
        .connect()
        .await
        .unwrap_err();
    let Error::ProxyTls { source, .. } = &e else {
        panic!("expected ProxyTls, got {e:?}");
    };
    assert!(
        matches!(
            **source,
            Error::Certificate {
                reason: CertificateError::UnknownIssuer,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("TLS to proxy https://localhost:{port} failed: ")),
        "{e}"
    );
}

#[tokio::test]
async fn wss_through_https_proxy() {
    // TLS inside TLS: to the proxy, then end to end to the target.
    let dir = Scratch::new("proxy-https-wss");
    let certs = Certs::new(&dir);
    let echo = tls_echo_server(certs.acceptor()).await;
    let proxy = tinyproxy(&[echo], None);
    let front = tls_front(&certs, &proxy);
    let builder = ClientBuilder::new(format!("wss://localhost:{echo}/"))
        .tls_ca_file(&certs.ca)
        .proxy(&format!("https://127.0.0.1:{}", front.port));
    echo_through(builder).await.unwrap();
    assert_tunnels(&proxy, &format!("localhost:{echo}"), 1);
}

// ---- the environment, as a lookup (the process environment is left alone) ------------

#[tokio::test]
async fn proxy_chosen_from_an_environment_lookup() {
    let echo = echo_server().await;
    let proxy = microsocks(None);
    let env = [
        ("http_proxy", format!("socks5h://127.0.0.1:{}", proxy.port)),
        ("HTTPS_PROXY", "http://127.0.0.1:1".to_owned()),
        ("NO_PROXY", "example.com".to_owned()),
    ];
    let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let chosen = duplex::Proxy::from_env(false, "127.0.0.1", echo, lookup)
        .unwrap()
        .expect("http_proxy applies to ws://");
    assert_eq!(
        chosen.to_string(),
        format!("socks5h://127.0.0.1:{}", proxy.port)
    );
    echo_through(ws(echo).proxy(&chosen.to_string()))
        .await
        .unwrap();
    assert_tunnels(&proxy, &format!("127.0.0.1:{echo}"), 1);
    assert!(
        duplex::Proxy::from_env(false, "www.example.com", 80, lookup)
            .unwrap()
            .is_none()
    );
}
