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
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
