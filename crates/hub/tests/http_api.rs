//! The server HTTP API, health, metrics and the start page.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn the_api_key_is_required_in_either_header() {
    let hub = TestHub::start(config()).await;
    let body = json!({"channel": "chat:a", "data": 1}).to_string();
    let (status, answer) = http(hub.addr, "POST", "/api/publish", &[], &body).await;
    assert_eq!((status, answer["error"]["code"].clone()), (401, json!(101)));
    let (status, _) = http(
        hub.addr,
        "POST",
        "/api/publish",
        &[("X-API-Key", "wrong")],
        &body,
    )
    .await;
    assert_eq!(status, 401);
    let (status, answer) = http(
        hub.addr,
        "POST",
        "/api/publish",
        &[("Authorization", &format!("apikey {API_KEY}"))],
        &body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["offset"], 1);
    assert_eq!(hub.node.metrics.auth_failures.get("api key"), 2);
}

#[tokio::test]
async fn the_api_is_off_without_a_key() {
    let mut cfg = config();
    cfg.api_key = None;
    let hub = TestHub::start(cfg).await;
    let (status, answer) = http(hub.addr, "POST", "/api/info", &[("X-API-Key", "")], "{}").await;
    assert_eq!(status, 403, "{answer}");
}

#[tokio::test]
async fn publish_broadcast_history_presence_and_info() {
    let hub = TestHub::start(config()).await;
    let (status, first) = hub
        .api("publish", json!({"channel": "chat:a", "data": {"n": 1}}))
        .await;
    assert_eq!(status, 200);
    let epoch = first["result"]["epoch"].clone();
    assert!(epoch.as_str().is_some_and(|e| !e.is_empty()), "{first}");
    let (_, second) = hub
        .api("publish", json!({"channel": "chat:a", "data": {"n": 2}}))
        .await;
    assert_eq!(second["result"], json!({"offset": 2, "epoch": epoch}));
    let (_, answer) = hub
        .api("publish", json!({"channel": "nosuch:a", "data": 1}))
        .await;
    assert_eq!(answer["error"]["code"], 102);
    let (_, answer) = hub.api("publish", json!({"channel": "chat:a"})).await;
    assert_eq!(answer["error"]["code"], 107);

    let (_, answer) = hub
        .api(
            "broadcast",
            json!({"channels": ["chat:a", "chat:b", "nosuch:c"], "data": "all"}),
        )
        .await;
    let responses = answer["result"]["responses"].as_array().unwrap();
    assert_eq!(responses[0]["result"]["offset"], 3);
    assert_eq!(responses[1]["result"]["offset"], 1);
    assert_eq!(responses[2]["error"]["code"], 102);

    let (_, history) = hub
        .api("history", json!({"channel": "chat:a", "limit": -1}))
        .await;
    let data: Vec<_> = history["result"]["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["data"].clone())
        .collect();
    assert_eq!(data, [json!({"n": 1}), json!({"n": 2}), json!("all")]);
    let (_, history) = hub
        .api(
            "history",
            json!({"channel": "chat:a", "limit": 1, "reverse": true}),
        )
        .await;
    assert_eq!(history["result"]["publications"][0]["offset"], 3);
    let (_, history) = hub
        .api(
            "history",
            json!({"channel": "chat:a", "limit": -1, "since": {"offset": 1, "epoch": "x"}}),
        )
        .await;
    assert_eq!(history["error"]["code"], 112);

    let mut client = Client::connect(&hub, &token("ada")).await;
    client
        .call(json!({"subscribe": {"channel": "chat:a"}}))
        .await;
    let (_, presence) = hub.api("presence", json!({"channel": "chat:a"})).await;
    assert_eq!(
        presence["result"]["presence"][&client.client_id]["user"], "ada",
        "{presence}"
    );
    let (_, stats) = hub
        .api("presence_stats", json!({"channel": "chat:a"}))
        .await;
    assert_eq!(stats["result"], json!({"num_clients": 1, "num_users": 1}));
    let (_, info) = hub.api("info", json!({})).await;
    let node = &info["result"]["nodes"][0];
    assert_eq!(
        (
            node["num_clients"].clone(),
            node["num_users"].clone(),
            node["num_channels"].clone()
        ),
        (json!(1), json!(1), json!(1)),
        "{info}"
    );
    assert_eq!(node["uid"].as_str().map(str::len), Some(16), "{info}");

    let (status, answer) = hub.api("nosuch", json!({})).await;
    assert_eq!((status, answer["error"]["code"].clone()), (404, json!(104)));
    let (status, answer) = http(
        hub.addr,
        "POST",
        "/api/publish",
        &[("X-API-Key", API_KEY)],
        "{not json",
    )
    .await;
    assert_eq!((status, answer["error"]["code"].clone()), (400, json!(107)));
}

#[tokio::test]
async fn an_api_publish_reaches_subscribers() {
    let hub = TestHub::start(config()).await;
    let mut client = Client::connect(&hub, &token("u")).await;
    client
        .call(json!({"subscribe": {"channel": "chat:feed"}}))
        .await;
    hub.api(
        "publish",
        json!({"channel": "chat:feed", "data": {"price": 1}}),
    )
    .await;
    let push = client.push().await;
    assert_eq!(push["pub"]["data"], json!({"price": 1}));
    assert!(
        push["pub"].get("info").is_none(),
        "an API publication has no publisher info"
    );
}

#[tokio::test]
async fn binary_data_is_published_as_b64data() {
    let hub = TestHub::start(config()).await;
    let mut client = Client::connect(&hub, &token("u")).await;
    client
        .call(json!({"subscribe": {"channel": "chat:bin"}}))
        .await;
    let (_, reply) = hub
        .api("publish", json!({"channel": "chat:bin", "b64data": "AP8K"}))
        .await;
    assert_eq!(reply["result"]["offset"], json!(1), "{reply}");
    // A JSON client sees bytes as base64, as protobuf's JSON mapping writes them.
    let push = client.push().await;
    assert_eq!(push["pub"]["data"], json!("AP8K"), "{push}");
    // base64 of JSON is a JSON publication.
    let (_, reply) = hub
        .api(
            "broadcast",
            json!({"channels": ["chat:bin"], "b64data": "eyJrIjoxfQ=="}),
        )
        .await;
    assert_eq!(
        reply["result"]["responses"][0]["result"]["offset"],
        json!(2),
        "{reply}"
    );
    assert_eq!(client.push().await["pub"]["data"], json!({"k": 1}));
    for bad in [
        json!({"channel": "chat:bin", "b64data": "AP8K", "data": 1}),
        json!({"channel": "chat:bin", "b64data": "%%%"}),
        json!({"channel": "chat:bin"}),
    ] {
        let (_, reply) = hub.api("publish", bad.clone()).await;
        assert_eq!(reply["error"]["code"], json!(107), "{bad}: {reply}");
    }
}

#[tokio::test]
async fn healthz_metrics_and_the_start_page() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.engine = duplex_hub::config::EngineKind::Sqlite;
    let mut hub = TestHub::start_in(cfg, Some(dir)).await;
    let (status, body) = http(hub.addr, "GET", "/healthz", &[], "").await;
    assert_eq!((status, body), (200, json!("ok\n")));
    let mut client = Client::connect(&hub, &token("u")).await;
    client
        .call(json!({"subscribe": {"channel": "chat:m"}}))
        .await;
    client
        .call(json!({"publish": {"channel": "chat:m", "data": 1}}))
        .await;
    client.push().await;
    let (status, metrics) = http(hub.addr, "GET", "/metrics", &[], "").await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap();
    for line in [
        "duplex_hub_connections 1\n",
        "duplex_hub_subscriptions 1\n",
        "duplex_hub_commands_total{method=\"publish\"} 1\n",
        "duplex_hub_publications_total 1\n",
        "duplex_hub_deliveries_total 1\n",
        "duplex_hub_publish_ack_seconds_count 1\n",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    let (status, page) = http(hub.addr, "GET", "/", &[], "").await;
    assert_eq!(status, 200);
    let page = page.as_str().unwrap();
    assert!(page.contains("/connection/websocket") && page.contains("/duplex-client.js"));
    let (status, client) = http(hub.addr, "GET", "/duplex-client.js", &[], "").await;
    assert_eq!(status, 200);
    assert!(client.as_str().unwrap().contains("export class Hub"));
    let (status, _) = http(hub.addr, "GET", "/nothing", &[], "").await;
    assert_eq!(status, 404);
    // A refused handshake is counted by status.
    let (status, _) = http(
        hub.addr,
        "GET",
        "/connection/websocket",
        &[("Upgrade", "websocket"), ("Connection", "Upgrade")],
        "",
    )
    .await;
    assert_eq!(status, 426, "no Sec-WebSocket-Version: upgrade required");
    assert_eq!(hub.node.metrics.handshake_failures.get("426"), 1);
    // Storage stopped: not healthy (once the cached result, a second old at most, is
    // stale: the wait is for the clock).
    hub.node.engine.shutdown().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _) = http(hub.addr, "GET", "/healthz", &[], "").await;
    assert_eq!(status, 503);
    hub.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_does_not_hold_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut hub = TestHub::start(config()).await;
    let mut idle = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 256];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    // The connection stays open and idle; shutdown must not wait for it.
    tokio::time::timeout(std::time::Duration::from_secs(3), hub.stop())
        .await
        .expect("shutdown is not held by an idle HTTP connection");
    let n = tokio::time::timeout(WAIT, idle.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "the hub closed the idle connection");
}

async fn handshake_with_origin(hub: &TestHub, origin: Option<&str>) -> Result<(), String> {
    let mut builder = duplex::ClientBuilder::new(hub.ws_url());
    if let Some(origin) = origin {
        builder = builder.origin(origin);
    }
    builder
        .connect()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn browser_origins_are_checked_before_the_upgrade() {
    let hub = TestHub::start(config()).await;
    let own = format!("http://{}", hub.addr);
    assert!(
        handshake_with_origin(&hub, None).await.is_ok(),
        "no Origin: not a browser"
    );
    assert!(
        handshake_with_origin(&hub, Some(&own)).await.is_ok(),
        "the hub's own pages"
    );
    let refused = handshake_with_origin(&hub, Some("https://evil.example"))
        .await
        .unwrap_err();
    assert!(refused.contains("403"), "{refused}");
    assert_eq!(hub.node.metrics.handshake_failures.get("origin"), 1);
    assert_eq!(
        hub.node.metrics.handshake_failures.get("403"),
        0,
        "counted once, by reason"
    );

    let mut cfg = config();
    cfg.allowed_origins = vec![
        "https://*.example.com".into(),
        "http://localhost:3000".into(),
    ];
    let listed = TestHub::start(cfg).await;
    assert!(
        handshake_with_origin(&listed, Some("https://app.example.com"))
            .await
            .is_ok()
    );
    assert!(
        handshake_with_origin(&listed, Some("http://localhost:3000"))
            .await
            .is_ok()
    );
    assert!(handshake_with_origin(&listed, Some("https://example.com"))
        .await
        .is_err());
    let own = format!("http://{}", listed.addr);
    assert!(
        handshake_with_origin(&listed, Some(&own)).await.is_err(),
        "a list replaces the same-origin default"
    );

    let mut cfg = config();
    cfg.allowed_origins = vec!["*".into()];
    let open = TestHub::start(cfg).await;
    assert!(
        handshake_with_origin(&open, Some("https://anywhere.example"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_idempotent_publish_retried_across_a_restart_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let mut cfg = config();
    cfg.engine = duplex_hub::config::EngineKind::Sqlite;
    let mut hub = TestHub::start_in(cfg.clone(), Some(dir)).await;
    let body = json!({"channel": "chat:pay", "data": {"amount": 5}, "idempotency_key": "order-17"});
    let (_, first) = hub.api("publish", body.clone()).await;
    let (_, retry) = hub.api("publish", body.clone()).await;
    assert_eq!(
        first["result"], retry["result"],
        "the retry gets the first answer"
    );
    hub.stop().await;
    let dir = hub.dir.take().unwrap();
    assert_eq!(dir.path(), path);
    let restarted = TestHub::start_in(cfg, Some(dir)).await;
    let (_, after) = restarted.api("publish", body).await;
    assert_eq!(
        after["result"], first["result"],
        "remembered across the restart"
    );
    let (_, history) = restarted
        .api("history", json!({"channel": "chat:pay", "limit": -1}))
        .await;
    assert_eq!(
        history["result"]["publications"].as_array().unwrap().len(),
        1,
        "{history}"
    );
    let (_, broadcast) = restarted
        .api(
            "broadcast",
            json!({"channels": ["chat:pay", "chat:other"], "data": 1, "idempotency_key": "b-1"}),
        )
        .await;
    let (_, again) = restarted
        .api(
            "broadcast",
            json!({"channels": ["chat:pay", "chat:other"], "data": 1, "idempotency_key": "b-1"}),
        )
        .await;
    assert_eq!(broadcast, again);
    assert_eq!(broadcast["result"]["responses"][0]["result"]["offset"], 2);
}

#[tokio::test]
async fn channels_history_remove_batch_and_server_side_subscribe() {
    let hub = TestHub::start(config()).await;
    let mut client = Client::connect(&hub, &token("ada")).await;
    client
        .call(json!({"subscribe": {"channel": "chat:a"}}))
        .await;
    let (_, channels) = hub.api("channels", json!({})).await;
    assert_eq!(
        channels["result"]["channels"]["chat:a"]["num_clients"], 1,
        "{channels}"
    );

    // A server-side subscription arrives as a subscribe push, then its publications.
    let (_, answer) = hub
        .api("subscribe", json!({"user": "ada", "channel": "chat:news"}))
        .await;
    assert_eq!(answer["result"], json!({}));
    let push = client.push().await;
    assert_eq!(push["channel"], "chat:news");
    assert_eq!(push["subscribe"]["recoverable"], true, "{push}");
    hub.api("publish", json!({"channel": "chat:news", "data": "n"}))
        .await;
    assert_eq!(client.push().await["pub"]["data"], "n");
    let (_, answer) = hub
        .api("subscribe", json!({"user": "ada", "channel": "nosuch:x"}))
        .await;
    assert_eq!(answer["error"]["code"], 102);

    // history_remove drops the publications and keeps the position.
    let (_, published) = hub
        .api("publish", json!({"channel": "chat:a", "data": 1}))
        .await;
    let (_, answer) = hub
        .api("history_remove", json!({"channel": "chat:a"}))
        .await;
    assert_eq!(answer["result"], json!({}));
    let (_, history) = hub
        .api("history", json!({"channel": "chat:a", "limit": -1}))
        .await;
    assert!(history["result"].get("publications").is_none(), "{history}");
    assert_eq!(history["result"]["offset"], published["result"]["offset"]);
    assert_eq!(history["result"]["epoch"], published["result"]["epoch"]);

    // batch: each command's reply under its method's name, errors as errors.
    let (_, batch) = hub
        .api(
            "batch",
            json!({"commands": [
                {"publish": {"channel": "chat:a", "data": 2}},
                {"presence_stats": {"channel": "chat:a"}},
                {"publish": {"channel": "nosuch:x", "data": 3}},
                {"batch": {"commands": []}}
            ]}),
        )
        .await;
    let replies = batch["replies"]
        .as_array()
        .unwrap_or_else(|| panic!("{batch}"));
    assert_eq!(replies[0]["publish"]["offset"], 2, "{batch}");
    assert_eq!(replies[1]["presence_stats"]["num_clients"], 1);
    assert_eq!(replies[2]["error"]["code"], 102);
    assert_eq!(replies[3]["error"]["code"], 107, "no batch inside a batch");
}

#[tokio::test]
async fn new_connections_per_second_per_address_are_limited_with_429() {
    let mut cfg = config();
    cfg.max_connections_per_second_per_ip = 2;
    let hub = TestHub::start(cfg).await;
    assert!(handshake_with_origin(&hub, None).await.is_ok());
    assert!(handshake_with_origin(&hub, None).await.is_ok());
    // The bucket holds two and refills one every 500 ms: of three more made at once,
    // at least one finds it empty.
    let mut refused = Vec::new();
    for _ in 0..3 {
        if let Err(e) = handshake_with_origin(&hub, None).await {
            refused.push(e);
        }
    }
    assert!(
        !refused.is_empty(),
        "no 429 after five handshakes in a burst of two"
    );
    assert!(refused.iter().all(|e| e.contains("429")), "{refused:?}");
    assert_eq!(
        hub.node
            .metrics
            .limits
            .get("max_connections_per_second_per_ip"),
        refused.len() as u64
    );
    // Plain HTTP is not counted.
    let (status, _) = http(hub.addr, "GET", "/healthz", &[], "").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_demo_ticker_publishes_a_random_walk_through_the_engine() {
    let mut cfg = config();
    cfg.demo_ticker = true;
    cfg.namespaces.insert("ticker".into(), Default::default());
    let hub = TestHub::start(cfg).await;
    let mut client = Client::connect(&hub, &token("viewer")).await;
    let reply = client
        .call(json!({"subscribe": {"channel": "ticker:DPLX"}}))
        .await;
    assert!(reply.get("subscribe").is_some(), "{reply}");
    let (first, second) = (client.push().await, client.push().await);
    let offset = |p: &serde_json::Value| p["pub"]["offset"].as_u64().unwrap();
    assert_eq!(offset(&second), offset(&first) + 1, "{first} {second}");
    for p in [&first, &second] {
        assert_eq!(p["pub"]["data"]["symbol"], json!("DPLX"), "{p}");
        let price = p["pub"]["data"]["price"].as_f64().unwrap();
        assert!(price > 100.0 && price < 140.0, "a walk from 120: {p}");
    }
    // Stored like any publication: in the history.
    let (status, history) = hub
        .api("history", json!({"channel": "ticker:DPLX", "limit": 10}))
        .await;
    assert_eq!(status, 200);
    assert!(
        history["result"]["publications"].as_array().unwrap().len() >= 2,
        "{history}"
    );
    // Counted like any publication (the dashboard shows them).
    assert!(hub.node.metrics.publications.get() >= 2);
    assert!(hub.node.metrics.snapshot().ack_count >= 2);

    let mut bare = config();
    bare.demo_ticker = true;
    let e = duplex_hub::Node::new(bare)
        .await
        .err()
        .expect("no ticker namespace")
        .to_string();
    assert!(
        e.contains("demo_ticker") && e.contains("namespaces.ticker"),
        "{e}"
    );
}
