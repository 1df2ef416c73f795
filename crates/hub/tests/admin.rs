//! The admin dashboard: `/admin` (the page), `/admin/stats` (its data) and
//! `/admin/api/<method>` (the inspector), behind `admin_password` or `api_key`.

mod common;

use common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;

const PASSWORD: &str = "correct horse battery";

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

async fn stats(addr: SocketAddr, secret: &str) -> Value {
    let (status, answer) = http(
        addr,
        "GET",
        "/admin/stats",
        &[("Authorization", &bearer(secret))],
        "",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// Polls `/admin/stats` until `done` holds for it (the sampler ticks every second).
async fn stats_until(addr: SocketAddr, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = stats(addr, API_KEY).await;
        if done(&answer) {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reached in {WAIT:?}: {answer}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The raw head of a `GET path` answer with `headers`.
async fn head(addr: SocketAddr, path: &str, headers: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("answer in time")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    answer.split_once("\r\n\r\n").unwrap().0.to_owned()
}

#[tokio::test]
async fn the_page_is_served_to_anyone_and_holds_no_data() {
    let hub = TestHub::start(config()).await;
    let (status, page) = http(hub.addr, "GET", "/admin", &[], "").await;
    assert_eq!(status, 200);
    let page = page.as_str().unwrap();
    assert!(page.contains("<title>duplex hub admin</title>"), "{page}");
    assert!(
        page.contains("/admin/stats"),
        "the page reads its data from /admin/stats"
    );
    let (status, _) = http(hub.addr, "POST", "/admin", &[], "").await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn the_data_needs_the_admin_password_or_the_api_key() {
    let mut cfg = config();
    cfg.admin_password = Some(PASSWORD.into());
    let hub = TestHub::start(cfg).await;
    for headers in [
        "",
        "Authorization: Bearer wrong\r\n",
        "Authorization: Basic Y29ycmVjdA==\r\n",
        // The API's own header is not the dashboard's.
        "X-API-Key: test-api-key\r\n",
    ] {
        let head = head(hub.addr, "/admin/stats", headers).await;
        assert!(head.starts_with("HTTP/1.1 401"), "{headers:?}: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer realm=\"duplex admin\""),
            "{head}"
        );
    }
    assert_eq!(hub.node.metrics.auth_failures.get("admin"), 4);
    for secret in [PASSWORD, API_KEY] {
        let answer = stats(hub.addr, secret).await;
        assert_eq!(answer["node"]["engine"], "memory", "{answer}");
    }
    // The scheme's case does not matter.
    let (status, _) = http(
        hub.addr,
        "GET",
        "/admin/stats",
        &[("Authorization", &format!("bearer {PASSWORD}"))],
        "",
    )
    .await;
    assert_eq!(status, 200);
    // The inspector's API calls are guarded the same way.
    let (status, answer) = http(
        hub.addr,
        "POST",
        "/admin/api/info",
        &[("Authorization", &bearer("wrong"))],
        "{}",
    )
    .await;
    assert_eq!((status, answer["error"]["code"].clone()), (401, json!(101)));
}

#[tokio::test]
async fn without_a_password_or_key_the_dashboard_is_off() {
    let mut cfg = config();
    cfg.api_key = None;
    let hub = TestHub::start(cfg).await;
    for (method, path) in [("GET", "/admin/stats"), ("POST", "/admin/api/info")] {
        let (status, answer) = http(
            hub.addr,
            method,
            path,
            &[("Authorization", &bearer(""))],
            "{}",
        )
        .await;
        assert_eq!(status, 403, "{path}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("admin_password"), "{message}");
    }
}

#[tokio::test]
async fn only_the_admin_password_opens_it_when_there_is_no_api_key() {
    let mut cfg = config();
    cfg.api_key = None;
    cfg.admin_password = Some(PASSWORD.into());
    let hub = TestHub::start(cfg).await;
    stats(hub.addr, PASSWORD).await;
    let (status, _) = http(
        hub.addr,
        "GET",
        "/admin/stats",
        &[("Authorization", &bearer(API_KEY))],
        "",
    )
    .await;
    assert_eq!(status, 401);
    // The HTTP API itself stays off: the password is the dashboard's.
    let (status, _) = http(
        hub.addr,
        "POST",
        "/api/info",
        &[("X-API-Key", PASSWORD)],
        "{}",
    )
    .await;
    assert_eq!(status, 403);
}

#[test]
fn a_short_admin_password_is_a_configuration_error() {
    let mut cfg = config();
    cfg.admin_password = Some("hunter2".into());
    let message = cfg.validate().unwrap_err().to_string();
    assert!(
        message.contains("admin_password") && message.contains("at least 12"),
        "{message}"
    );
}

#[tokio::test]
async fn stats_follow_connections_publications_and_deliveries() {
    let hub = TestHub::start(config()).await;
    let mut clients = Vec::new();
    for (user, channels) in [
        ("u1", &["chat:busy", "chat:quiet"][..]),
        ("u2", &["chat:busy"][..]),
        ("u3", &["chat:busy"][..]),
    ] {
        let mut client = Client::connect(&hub, &token(user)).await;
        for channel in channels {
            let reply = client
                .call(json!({"subscribe": {"channel": channel}}))
                .await;
            assert!(reply.get("error").is_none(), "{reply}");
        }
        clients.push(client);
    }
    for n in 0..5 {
        let (status, _) = hub
            .api("publish", json!({"channel": "chat:busy", "data": {"n": n}}))
            .await;
        assert_eq!(status, 200);
    }
    let answer = stats_until(hub.addr, |s| {
        s["series"].as_array().is_some_and(|series| {
            series
                .iter()
                .any(|x| x["publications"].as_f64() > Some(0.0))
        })
    })
    .await;
    let totals = &answer["totals"];
    assert_eq!(
        (
            &totals["connections"],
            &totals["subscriptions"],
            &totals["users"],
            &totals["channels"],
            &totals["publications"],
            &totals["deliveries"],
        ),
        (
            &json!(3),
            &json!(4),
            &json!(3),
            &json!(2),
            &json!(5),
            &json!(15)
        ),
        "{answer}"
    );
    assert_eq!(
        answer["busiest_channels"],
        json!([
            {"channel": "chat:busy", "subscribers": 3},
            {"channel": "chat:quiet", "subscribers": 1},
        ])
    );
    // Rates and latencies are per interval; summed over the series they are the totals.
    let series = answer["series"].as_array().unwrap();
    let sample = series
        .iter()
        .find(|x| x["publications"].as_f64() > Some(0.0))
        .unwrap();
    assert!(sample["ack_p50_ms"].as_f64().is_some(), "{sample}");
    assert!(sample["ack_p99_ms"].as_f64() >= sample["ack_p50_ms"].as_f64());
    assert!(sample["deliveries"].as_f64() > Some(0.0), "{sample}");
    assert_eq!(sample["connections"], 3);
    assert_eq!(answer["node"]["version"], duplex_hub::session::VERSION);
    drop(clients);
}

#[tokio::test]
async fn the_inspector_publishes_and_reads_history_and_presence() {
    let mut cfg = config();
    cfg.admin_password = Some(PASSWORD.into());
    cfg.namespaces.get_mut("chat").unwrap().presence = Some(true);
    let hub = TestHub::start(cfg).await;
    let mut client = Client::connect(&hub, &token("watcher")).await;
    client
        .call(json!({"subscribe": {"channel": "chat:room"}}))
        .await;
    let admin = [("Authorization", bearer(PASSWORD))];
    let admin: Vec<(&str, &str)> = admin.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, answer) = http(
        hub.addr,
        "POST",
        "/admin/api/publish",
        &admin,
        &json!({"channel": "chat:room", "data": {"text": "test"}}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["offset"], 1);
    // The subscriber got it, as from any publisher.
    let push = client.push().await;
    assert_eq!(push["pub"]["data"], json!({"text": "test"}), "{push}");
    let (_, history) = http(
        hub.addr,
        "POST",
        "/admin/api/history",
        &admin,
        &json!({"channel": "chat:room", "limit": 20, "reverse": true}).to_string(),
    )
    .await;
    assert_eq!(
        history["result"]["publications"][0]["data"],
        json!({"text": "test"}),
        "{history}"
    );
    let (_, presence) = http(
        hub.addr,
        "POST",
        "/admin/api/presence",
        &admin,
        &json!({"channel": "chat:room"}).to_string(),
    )
    .await;
    let clients: Vec<&Value> = presence["result"]["presence"]
        .as_object()
        .unwrap()
        .values()
        .collect();
    assert_eq!(clients.len(), 1, "{presence}");
    assert_eq!(clients[0]["user"], "watcher");
}
