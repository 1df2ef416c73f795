//! A real nginx (Debian package) as a reverse proxy in front of a duplex echo server in
//! this process, with the standard WebSocket configuration:
//!
//! ```nginx
//! proxy_http_version 1.1;
//! proxy_set_header Upgrade $http_upgrade;
//! proxy_set_header Connection "upgrade";
//! ```
//!
//! nginx runs in the foreground as one process on an ephemeral 127.0.0.1 port with its
//! prefix, config, pid file, logs and temp paths in a scratch directory, and is killed by
//! PID at the end. Plain `ws://` and TLS terminated at nginx (`wss://` to nginx, `ws://`
//! behind it). A missing nginx fails with a message to run `scripts/setup-deps`.

mod daemons;

use daemons::{echo_server, nginx, nginx_http_temp_paths, s, Certs, Daemon, Scratch};
use duplex::{ClientBuilder, CloseCode, CloseFrame, Error, Message};

/// nginx proxying `/` to the echo server on `echo`, with TLS when `tls` is given.
fn reverse_proxy(echo: u16, tls: Option<&Certs>) -> Daemon {
    let ssl = tls.map(|c| (s(&c.cert), s(&c.key)));
    nginx(false, |port, dir| {
        let (listen, certs) = match &ssl {
            Some((cert, key)) => (
                format!("{port} ssl"),
                format!("ssl_certificate {cert};\n ssl_certificate_key {key};\n"),
            ),
            None => (port.to_string(), String::new()),
        };
        format!(
            "http {{\n access_log off;\n {temp}\n server {{\n  listen 127.0.0.1:{listen};\n  \
             {certs}\n  location / {{\n   proxy_pass http://127.0.0.1:{echo};\n   \
             proxy_http_version 1.1;\n   proxy_set_header Upgrade $http_upgrade;\n   \
             proxy_set_header Connection \"upgrade\";\n   proxy_set_header Host $host;\n   \
             proxy_read_timeout 60s;\n  }}\n }}\n}}",
            temp = nginx_http_temp_paths(dir),
        )
    })
}

/// Echoes several messages (up to 1 MiB, fragmented by nginx's buffers on the way) and
/// closes with a code and reason that must come back through nginx.
async fn echo_through(builder: ClientBuilder) -> Result<(), Error> {
    let (mut ws, response) = builder.connect().await?;
    assert!(
        response.deflate.is_some(),
        "deflate negotiated through nginx"
    );
    for m in [
        Message::text("hello through nginx"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::text("é".repeat(40_000)),
        Message::binary((0..1 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>()),
    ] {
        ws.send(m.clone()).await?;
        assert_eq!(ws.recv().await.expect("a reply")?, m);
    }
    ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")))
        .await?;
    assert!(ws.recv().await.is_none(), "the stream ends after the close");
    Ok(())
}

#[tokio::test]
async fn websocket_through_nginx_reverse_proxy() {
    let echo = echo_server().await;
    let nginx = reverse_proxy(echo, None);
    echo_through(
        ClientBuilder::new(format!("ws://127.0.0.1:{}/chat?room=1", nginx.port)).no_proxy(),
    )
    .await
    .unwrap_or_else(|e| panic!("through nginx: {e}\nnginx log:\n{}", nginx.log()));
    let error_log = std::fs::read_to_string(nginx.dir.path("error.log")).unwrap_or_default();
    assert!(
        !error_log.contains("[error]") && !error_log.contains("[crit]"),
        "nginx logged errors:\n{error_log}"
    );
}

#[tokio::test]
async fn wss_terminated_at_nginx() {
    let dir = Scratch::new("nginx-tls");
    let certs = Certs::new(&dir);
    let echo = echo_server().await;
    let nginx = reverse_proxy(echo, Some(&certs));
    for host in ["localhost", "127.0.0.1"] {
        let builder = ClientBuilder::new(format!("wss://{host}:{}/", nginx.port))
            .tls_ca_file(&certs.ca)
            .no_proxy();
        echo_through(builder)
            .await
            .unwrap_or_else(|e| panic!("wss://{host} through nginx: {e}\n{}", nginx.log()));
    }
    // The same server without trusting the test CA: the certificate is rejected.
    let e = ClientBuilder::new(format!("wss://localhost:{}/", nginx.port))
        .tls_ca_file(&Certs::named(&dir, "another CA").ca)
        .no_proxy()
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Certificate { .. }), "{e:?}");
}
