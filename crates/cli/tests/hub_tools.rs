//! The hub's command-line tools end to end: `duplex token`, against the hub's own
//! verifier and a running `duplex serve`.

mod common;
#[path = "common/serve.rs"]
mod serve;

use common::BIN;
use duplex_hub::auth::{unix_now, Verifier};
use std::process::Command;

const SECRET: &str = "tools-test-secret-tools-test-secret!";

fn duplex(args: &[&str]) -> (i32, String, String) {
    duplex_with_input(args, "")
}

#[test]
fn token_mints_connection_and_subscription_tokens_the_hub_accepts() {
    let (code, token, stderr) = duplex(&[
        "token",
        "--secret",
        SECRET,
        "--user",
        "alice",
        "--ttl",
        "1h",
        "--info",
        r#"{"name":"Alice"}"#,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let identity = Verifier::new(SECRET).verify(&token, unix_now()).unwrap();
    assert_eq!(identity.user, "alice");
    let exp = identity.expires_at.unwrap();
    assert!(
        (unix_now() + 3590..=unix_now() + 3600).contains(&exp),
        "{exp}"
    );
    assert_eq!(identity.info.unwrap().get(), r#"{"name":"Alice"}"#);

    let (code, token, stderr) = duplex(&[
        "token",
        "--secret",
        SECRET,
        "--user",
        "alice",
        "--channel",
        "secret:room",
        "--ttl",
        "0",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let grant = Verifier::new(SECRET)
        .verify_channel(&token, "secret:room", "alice", unix_now())
        .unwrap();
    assert_eq!(grant.expires_at, None, "--ttl 0: no expiry");
    assert!(
        Verifier::new(SECRET).verify(&token, unix_now()).is_err(),
        "not a connection token"
    );
}

#[test]
fn token_refuses_what_the_hub_would() {
    let (code, _, stderr) = duplex(&["token", "--secret", "short", "--user", "a"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--secret") && stderr.contains("32"),
        "{stderr}"
    );
    let (code, _, stderr) = duplex(&["token", "--secret", SECRET, "--user", "a", "--ttl", "soon"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--ttl"), "{stderr}");
    let (code, _, stderr) = duplex(&["token", "--secret", SECRET, "--user", "a", "--info", "{"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--info"), "{stderr}");
}

const API_KEY: &str = "tools-test-api-key";

/// `duplex serve` with a secret and an API key (not development mode), memory engine.
fn hub() -> (serve::Serve, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--engine",
        "memory",
        "--token-secret",
        SECRET,
        "--api-key",
        API_KEY,
    ];
    (serve::Serve::start(dir.path(), &args), dir)
}

/// Runs `duplex` with `stdin`; exit code, stdout, stderr.
fn duplex_with_input(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pub_prints_the_offset_of_each_stored_publication() {
    let (hub, _dir) = hub();
    let url = format!("http://127.0.0.1:{}", hub.port);
    let (code, out, err) = duplex(&["pub", &url, "news", r#"{"n":1}"#, "--api-key", API_KEY]);
    assert_eq!((code, out.as_str()), (0, "1"), "{err}");
    // One publication per line from stdin; text that is not JSON goes as a string.
    let (code, out, err) = duplex_with_input(
        &["pub", &url, "news", "-", "--api-key", API_KEY],
        "{\"n\":2}\nplain words\n\n[3]\n",
    );
    assert_eq!((code, out.as_str()), (0, "2\n3\n4"), "{err}");
    // A ws:// URL names the same hub; a repeated idempotency key stores once.
    let ws = format!("ws://127.0.0.1:{}/connection/websocket", hub.port);
    for _ in 0..2 {
        let (code, out, err) = duplex(&[
            "pub",
            &ws,
            "news",
            "again",
            "--api-key",
            API_KEY,
            "--idempotency-key",
            "k",
        ]);
        assert_eq!((code, out.as_str()), (0, "5"), "{err}");
    }
    let (code, _, err) = duplex(&["pub", &url, "news", "x", "--api-key", "wrong"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--api-key"), "{err}");
    let (code, _, err) = duplex(&["pub", &url, "nowhere:x", "x", "--api-key", API_KEY]);
    assert_eq!(code, 3, "an unknown namespace: {err}");
    assert!(err.contains("102"), "{err}");
}

/// A `duplex sub` child whose stdout and stderr lines arrive on channels.
struct Sub {
    child: std::process::Child,
    out: std::sync::mpsc::Receiver<String>,
    err: std::sync::mpsc::Receiver<String>,
}

impl Sub {
    fn start(args: &[&str]) -> Sub {
        use std::io::BufRead;
        let mut child = Command::new(BIN)
            .arg("sub")
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = |stream: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let out = lines(Box::new(child.stdout.take().unwrap()));
        let err = lines(Box::new(child.stderr.take().unwrap()));
        Sub { child, out, err }
    }

    /// The next stdout line (a publication).
    fn publication(&self) -> serde_json::Value {
        let line = self.out.recv_timeout(WAIT).expect("a publication in time");
        serde_json::from_str(&line).unwrap()
    }

    /// Waits for a stderr line containing `text`; returns the lines up to it.
    fn said(&self, text: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = self
                .err
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("no {text:?} on stderr: {seen:#?}"));
            let done = line.contains(text);
            seen.push(line);
            if done {
                return seen;
            }
        }
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

#[test]
fn sub_prints_publications_and_recovers_them_across_a_hub_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    // SQLite (the default): the stream and its offsets survive the restart.
    let args = [
        "--port",
        &port,
        "--token-secret",
        SECRET,
        "--api-key",
        API_KEY,
    ];
    let mut hub = serve::Serve::start(dir.path(), &args);
    let http = format!("http://127.0.0.1:{port}");
    let (_, token, _) = duplex(&["token", "--secret", SECRET, "--user", "reader"]);
    let (code, _, err) = duplex(&["pub", &http, "news", "first", "--api-key", API_KEY]);
    assert_eq!(code, 0, "{err}");

    let sub = Sub::start(&[&http, "news", "--token", &token, "--json"]);
    sub.said("subscribed to news at 1:");
    for text in ["a", "b"] {
        duplex(&["pub", &http, "news", text, "--api-key", API_KEY]);
    }
    let (a, b) = (sub.publication(), sub.publication());
    assert_eq!(
        (&a["offset"], &a["data"]),
        (&serde_json::json!(2), &serde_json::json!("a"))
    );
    assert_eq!(
        (&b["offset"], &b["data"]),
        (&serde_json::json!(3), &serde_json::json!("b"))
    );

    // kill -9 and a restart on the same port: publications made meanwhile are recovered.
    hub.child.kill().unwrap();
    hub.child.wait().unwrap();
    sub.said("reconnecting");
    let _hub = serve::Serve::start(dir.path(), &args);
    let (code, out, err) = duplex(&["pub", &http, "news", "c", "--api-key", API_KEY]);
    assert_eq!((code, out.as_str()), (0, "4"), "{err}");
    let said = sub.said("subscribed to news at");
    assert!(!said.iter().any(|l| l.contains("missed")), "{said:#?}");
    let c = sub.publication();
    assert_eq!(
        (&c["offset"], &c["data"], &c["epoch"]),
        (&serde_json::json!(4), &serde_json::json!("c"), &a["epoch"])
    );
    duplex(&["pub", &http, "news", "d", "--api-key", API_KEY]);
    assert_eq!(
        sub.publication()["offset"],
        serde_json::json!(5),
        "live again, nothing twice"
    );
}

#[test]
fn sub_exits_2_when_the_hub_refuses_the_token_and_says_when_data_was_missed() {
    let (hub, _dir) = hub();
    let http = format!("http://127.0.0.1:{}", hub.port);
    let mut bad = Sub::start(&[&http, "news", "--token", "not-a-token"]);
    let status = bad.child.wait().unwrap();
    assert_eq!(status.code(), Some(2));
    bad.said("refused");

    duplex(&["pub", &http, "news", "x", "--api-key", API_KEY]);
    let (_, token, _) = duplex(&["token", "--secret", SECRET, "--user", "reader"]);
    let sub = Sub::start(&[
        &http,
        "news",
        "--token",
        &token,
        "--since",
        "0:another-epoch",
    ]);
    let said = sub.said("subscribed to news at 1:");
    assert!(said.iter().any(|l| l.contains("missed data")), "{said:#?}");
}
