//! Each limit: hit, answered with the protocol's code, counted, and the neighbours untouched.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn connection_and_subscription_limits() {
    let mut cfg = config();
    cfg.max_connections = 3;
    cfg.max_connections_per_user = 2;
    cfg.max_subscriptions_per_client = 2;
    let hub = TestHub::start(cfg).await;
    let mut a1 = Client::connect(&hub, &token("a")).await;
    let _a2 = Client::connect(&hub, &token("a")).await;
    let mut a3 = Client::open(&hub).await;
    a3.send(json!({"connect": {"token": token("a")}})).await;
    assert_eq!(
        a3.closed().await,
        (3504, "connection limit".into()),
        "a third connection of user a"
    );
    let _b1 = Client::connect(&hub, &token("b")).await;
    let mut b2 = Client::open(&hub).await;
    b2.send(json!({"connect": {"token": token("b")}})).await;
    assert_eq!(
        b2.closed().await.0,
        3504,
        "a fourth connection on a node of three"
    );
    assert_eq!(hub.node.metrics.limits.get("max_connections_per_user"), 1);
    assert_eq!(hub.node.metrics.limits.get("max_connections"), 1);

    a1.call(json!({"subscribe": {"channel": "chat:1"}})).await;
    a1.call(json!({"subscribe": {"channel": "chat:2"}})).await;
    let reply = a1.call(json!({"subscribe": {"channel": "chat:3"}})).await;
    assert_eq!(error_code(&reply), 106);
    a1.call(json!({"unsubscribe": {"channel": "chat:1"}})).await;
    let reply = a1.call(json!({"subscribe": {"channel": "chat:3"}})).await;
    assert!(
        reply.get("subscribe").is_some(),
        "room again after an unsubscribe: {reply}"
    );
    assert_eq!(
        hub.node.metrics.limits.get("max_subscriptions_per_client"),
        1
    );

    // A connection that leaves frees its place.
    drop(a1);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut again = Client::open(&hub).await;
        let reply = again
            .call_or_close(json!({"connect": {"token": token("c")}}))
            .await;
        if reply.is_some() {
            break;
        }
        // The hub notices the dropped connection asynchronously; no event marks it.
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place of a closed connection is never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn commands_over_the_rate_get_111_and_neighbours_are_untouched() {
    let mut cfg = config();
    cfg.max_commands_per_second = 5;
    let hub = TestHub::start(cfg).await;
    let mut noisy = Client::connect(&hub, &token("noisy")).await;
    let mut quiet = Client::connect(&hub, &token("quiet")).await;
    let batch: Vec<String> = (1..=20)
        .map(|id| json!({"id": id, "ping": {}}).to_string())
        .collect();
    noisy.send_raw(&batch.join("\n")).await;
    let mut ok = 0;
    let mut limited = 0;
    for id in 1..=20u64 {
        let reply = noisy.reply(id).await;
        if reply.get("ping").is_some() {
            ok += 1;
        } else {
            assert_eq!(error_code(&reply), 111, "{reply}");
            limited += 1;
        }
    }
    // A burst of five, plus at most one more if the bucket refilled meanwhile.
    assert!((5..=6).contains(&ok), "{ok} passed, {limited} limited");
    assert_eq!(
        hub.node.metrics.limits.get("max_commands_per_second"),
        limited
    );
    let reply = quiet.call(json!({"ping": {}})).await;
    assert_eq!(
        reply["ping"],
        json!({}),
        "another connection has its own budget"
    );
}

#[tokio::test]
async fn publications_over_the_namespace_size_get_106() {
    let mut cfg = config();
    cfg.namespaces.insert(
        "small".into(),
        duplex_hub::config::NamespaceOptions {
            max_publication_size: Some(16),
            allow_publish_for_subscriber: Some(true),
            ..Default::default()
        },
    );
    let hub = TestHub::start(cfg).await;
    let mut client = Client::connect(&hub, &token("u")).await;
    client
        .call(json!({"subscribe": {"channel": "small:a"}}))
        .await;
    let reply = client
        .call(json!({"publish": {"channel": "small:a", "data": "0123456789abcdef"}}))
        .await;
    assert_eq!(error_code(&reply), 106, "18 bytes of JSON over 16");
    let reply = client
        .call(json!({"publish": {"channel": "small:a", "data": "0123456789abcd"}}))
        .await;
    assert_eq!(reply["publish"], json!({}), "16 bytes: allowed");
    let (_, answer) = hub
        .api(
            "publish",
            json!({"channel": "small:a", "data": "0123456789abcdef"}),
        )
        .await;
    assert_eq!(answer["error"]["code"], 106);
    let (_, answer) = hub
        .api(
            "broadcast",
            json!({"channels": ["small:a", "chat:b"], "data": "0123456789abcdef"}),
        )
        .await;
    assert_eq!(answer["result"]["responses"][0]["error"]["code"], 106);
    assert_eq!(answer["result"]["responses"][1]["result"]["offset"], 1);
    assert_eq!(hub.node.metrics.limits.get("max_publication_size"), 3);
}

#[tokio::test]
async fn bytes_over_the_rate_get_111_and_neighbours_are_untouched() {
    let mut cfg = config();
    cfg.max_message_size = 2048;
    cfg.max_bytes_per_second = 4096;
    let hub = TestHub::start(cfg).await;
    let mut noisy = Client::connect(&hub, &token("noisy")).await;
    let mut quiet = Client::connect(&hub, &token("quiet")).await;
    // Ten messages of about 1.5 KiB: the 4 KiB bucket lets two pass (three if it
    // refilled meanwhile); the rest get 111 for each command they carry.
    let padding = "x".repeat(1500);
    for id in 1..=10u64 {
        noisy
            .send_raw(&json!({"id": id, "history": {"channel": padding}}).to_string())
            .await;
    }
    let mut passed = 0;
    let mut limited = 0;
    for id in 1..=10u64 {
        let reply = noisy.reply(id).await;
        match error_code(&reply) {
            111 => limited += 1,
            _ => passed += 1, // 102: the long channel name, answered, not limited
        }
    }
    assert!(
        (2..=3).contains(&passed),
        "{passed} passed, {limited} limited"
    );
    assert_eq!(hub.node.metrics.limits.get("max_bytes_per_second"), limited);
    let reply = quiet.call(json!({"ping": {}})).await;
    assert_eq!(
        reply["ping"],
        json!({}),
        "another connection has its own budget"
    );
}

#[test]
fn a_byte_rate_below_the_message_size_is_refused() {
    let cfg = duplex_hub::Config {
        max_bytes_per_second: 1000,
        ..Default::default()
    };
    let e = cfg.validate().unwrap_err().to_string();
    assert!(
        e.contains("max_bytes_per_second") && e.contains("max_message_size"),
        "{e}"
    );
}
