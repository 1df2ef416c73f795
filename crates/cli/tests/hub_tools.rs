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
