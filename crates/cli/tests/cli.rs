//! The `duplex` binary, run as a user would.

mod common;

use common::{Echo, BIN};
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn connect(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .arg("connect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn piped_lines_become_messages_and_echoes_are_printed() {
    let echo = Echo::start();
    let out = connect(&[&echo.url], "hello\nwörld\n\nlast\n".as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello\nwörld\n\nlast\n"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn binary_mode_sends_stdin_raw() {
    let echo = Echo::start();
    let data: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    let out = connect(&["--binary", &echo.url], &data);
    assert_eq!(out.stdout, data);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn echo_serves_on_one_thread_or_several() {
    for threads in ["1", "3"] {
        let echo = Echo::start_with(&["--threads", threads], "ws");
        let out = connect(&[&echo.url], b"one\ntwo\n");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "one\ntwo\n",
            "--threads {threads}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_duplex"))
        .args(["echo", "--port", "0", "--threads", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads"));
}

#[test]
fn unreachable_server_exits_2_with_the_reason() {
    // Bind then drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = connect(&[&format!("ws://127.0.0.1:{port}/")], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open a TCP connection to 127.0.0.1:") && err.contains("refused"),
        "{err}"
    );
}

#[test]
fn bad_arguments_are_named() {
    let echo = Echo::start();
    let out = connect(&["-H", "no-colon", &echo.url], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"Name: value\""));
    let out = connect(&["ftp://127.0.0.1/"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not ws://"));
}

#[test]
fn busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(BIN)
        .args(["echo", "--port", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port"));
}

#[test]
fn server_close_code_sets_the_exit_code() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        rt.block_on(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = duplex::accept(tcp).await.unwrap();
            let frame = duplex::CloseFrame::new(duplex::CloseCode::POLICY_VIOLATION, "go away");
            ws.close(Some(frame)).await.unwrap();
        })
    });
    let mut child = Command::new(BIN)
        .args(["connect", &url])
        .stdin(Stdio::piped()) // kept open: the server closes first
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stdin = child.stdin.take();
    let out = child.wait_with_output().unwrap();
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1008: go away"));
}

/// A self-signed certificate for localhost/127.0.0.1, written to a temp dir.
struct Cert {
    dir: std::path::PathBuf,
}

impl Cert {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("duplex-cli-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_tls_echo(cert: &Cert) -> Echo {
    let (cert_path, key_path) = (cert.path("cert.pem"), cert.path("key.pem"));
    Echo::start_with(&["--tls-cert", &cert_path, "--tls-key", &key_path], "wss")
}

#[test]
fn wss_echo_with_a_ca_file() {
    let cert = Cert::new("ca");
    let echo = start_tls_echo(&cert);
    let out = connect(&["--ca", &cert.path("cert.pem"), &echo.url], b"over tls\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "over tls\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn wss_with_an_unknown_issuer_is_refused_unless_insecure() {
    let cert = Cert::new("unknown");
    let echo = start_tls_echo(&cert);
    let out = connect(&[&echo.url], b"hi\n");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown issuer"), "{err}");

    let out = connect(&["--insecure", &echo.url], b"hi\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not checked"),
        "the danger is said"
    );
}

#[test]
fn echo_names_a_missing_certificate_file() {
    let out = Command::new(BIN)
        .args([
            "echo",
            "--port",
            "0",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/cert.pem"));
}

#[test]
fn proxy_from_the_environment_is_used_and_named_when_it_fails() {
    let echo = Echo::start();
    // A port nobody listens on as the proxy: the failure must name the proxy, not the target.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = format!("http://127.0.0.1:{dead}");
    let out = Command::new(BIN)
        .args(["connect", &echo.url])
        .env("HTTP_PROXY", &proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&proxy), "{err}");

    // --no-proxy ignores the environment and reaches the server directly.
    let mut child = Command::new(BIN)
        .args(["connect", "--no-proxy", &echo.url])
        .env("HTTP_PROXY", &proxy)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"direct\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "direct\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn dns_failures_name_the_host() {
    let out = connect(&["--no-proxy", "ws://no-such-host.invalid:9/"], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot resolve host \"no-such-host.invalid\""),
        "{err}"
    );
}

/// `duplex echo --broadcast`: messages reach the other connections, not the sender, and
/// a subscriber that stops reading is closed with 1008 once it is 4,096 messages behind:
/// reading again within the close timeout (5 s), it gets what was queued, then the close.
/// (One that never reads again: tests/hostile.rs.)
#[test]
fn broadcast_relays_to_others_and_closes_a_stalled_subscriber_with_1008() {
    let relay = Echo::start_with(&["--broadcast"], "ws");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let test = async {
        use duplex::Message;
        let connect = || relay.plain_client();
        let mut publisher = connect().await;
        let mut listener = connect().await;
        let mut stalled = connect().await;
        publisher.send(Message::text("hello")).await.unwrap();
        assert_eq!(
            listener.recv().await.unwrap().unwrap(),
            Message::text("hello")
        );
        assert_eq!(
            stalled.recv().await.unwrap().unwrap(),
            Message::text("hello")
        );
        // `stalled` stops reading; the publisher sends in rounds of 500 that `listener`
        // reads before the next round, so it never falls far behind. 7,000 messages: the
        // socket buffers and the write queue take about a thousand, then 4,096 wait,
        // and few enough follow the cut that `stalled` reads within the close timeout.
        let payload = Message::binary(vec![0u8; 4096]);
        for _ in 0..14 {
            for _ in 0..500 {
                publisher.feed(payload.clone()).await.unwrap();
            }
            publisher.flush().await.unwrap();
            for _ in 0..500 {
                assert_eq!(listener.recv().await.unwrap().unwrap(), payload);
            }
        }
        // Now read what the stalled one got: some messages, then the close.
        let mut got = 0;
        let close = loop {
            match stalled.recv().await {
                Some(Ok(Message::Binary(_))) => got += 1,
                Some(Ok(Message::Close(frame))) => break frame,
                other => panic!("expected messages then a close, got {other:?}"),
            }
        };
        let frame = close.expect("a close code");
        assert_eq!(frame.code, duplex::CloseCode::POLICY_VIOLATION);
        assert!(frame.reason.contains("too slow"), "{}", frame.reason);
        assert!(
            got < 7_000,
            "the stalled subscriber was cut off ({got} messages)"
        );
        // The publisher never got its own messages back.
        assert!(futures_util::FutureExt::now_or_never(publisher.recv()).is_none());
    };
    runtime.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(60), test)
            .await
            .expect("the relay test finished within a minute")
    });
}

/// `duplex connect --insecure` to a plain server: it logs a `tracing` warning (TLS
/// verification off), then fails the TLS step. Returns what it wrote to stderr, with the
/// command run under `script` (a pseudo-terminal) when `tty` is set.
fn insecure_connect_log(tty: bool, no_color: Option<&str>) -> String {
    let echo = Echo::start();
    let url = echo.url.replace("ws://", "wss://");
    let mut cmd = if tty {
        let mut cmd = Command::new("script");
        let line = format!("{BIN} connect {url} --insecure");
        cmd.args(["-q", "-e", "-c", &line, "/dev/null"]);
        cmd
    } else {
        let mut cmd = Command::new(BIN);
        cmd.args(["connect", &url, "--insecure"]);
        cmd
    };
    cmd.env_remove("NO_COLOR").env("RUST_LOG", "warn");
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    // Under `script` stderr arrives on the terminal, so on our stdout.
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verification is OFF"), "no log line: {text}");
    text
}

#[test]
fn log_lines_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    const ESC: char = '\u{1b}';
    // Redirected (a pipe, as `2>log` is a file): plain text.
    let piped = insecure_connect_log(false, None);
    assert!(
        !piped.contains(ESC),
        "escape codes in redirected logs: {piped:?}"
    );
    // On a terminal: coloured, so the check above can see colour when there is some.
    let tty = insecure_connect_log(true, None);
    assert!(tty.contains(ESC), "no colour on a terminal: {tty:?}");
    // NO_COLOR set (to anything non-empty) turns it off even there; empty does not.
    let no_color = insecure_connect_log(true, Some("1"));
    assert!(
        !no_color.contains(ESC),
        "colour despite NO_COLOR: {no_color:?}"
    );
    let empty = insecure_connect_log(true, Some(""));
    assert!(
        empty.contains(ESC),
        "an empty NO_COLOR counts as unset: {empty:?}"
    );
}
