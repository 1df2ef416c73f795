//! Recovery: a client that comes back with its position gets exactly what it missed, or
//! is told plainly that it cannot.

mod common;

use common::*;
use duplex_hub::config::NamespaceOptions;
use duplex_hub::protocol::Payload;
use serde_json::{json, Value};

/// A JSON string of `len` pseudo-random letters: permessage-deflate (which the test
/// client negotiates) cannot shrink it much, so it really fills socket buffers.
fn incompressible(len: usize) -> Payload {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let letters: String = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect();
    Payload::from(serde_json::value::RawValue::from_string(format!("\"{letters}\"")).unwrap())
}

fn offsets(publications: &Value) -> Vec<u64> {
    publications.as_array().map_or(vec![], |a| {
        a.iter().map(|p| p["offset"].as_u64().unwrap()).collect()
    })
}

async fn subscribe_recover(
    client: &mut Client,
    channel: &str,
    offset: u64,
    epoch: &Value,
) -> Value {
    let reply = client
        .call(json!({"subscribe": {"channel": channel, "recover": true, "offset": offset, "epoch": epoch}}))
        .await;
    reply
        .get("subscribe")
        .cloned()
        .unwrap_or_else(|| panic!("subscribe failed: {reply}"))
}

#[tokio::test]
async fn a_client_that_comes_back_gets_exactly_what_it_missed() {
    let hub = TestHub::start(config()).await;
    let mut first = Client::connect(&hub, &token("u")).await;
    let sub = first
        .call(json!({"subscribe": {"channel": "chat:r"}}))
        .await;
    let epoch = sub["subscribe"]["epoch"].clone();
    for i in 1..=3 {
        hub.api("publish", json!({"channel": "chat:r", "data": i}))
            .await;
    }
    let mut last = 0;
    for _ in 1..=3 {
        last = first.push().await["pub"]["offset"].as_u64().unwrap();
    }
    assert_eq!(last, 3);
    drop(first);
    for i in 4..=6 {
        hub.api("publish", json!({"channel": "chat:r", "data": i}))
            .await;
    }
    let mut back = Client::connect(&hub, &token("u")).await;
    let result = subscribe_recover(&mut back, "chat:r", last, &epoch).await;
    assert_eq!(result["recovered"], true, "{result}");
    assert_eq!(result["was_recovering"], true);
    assert_eq!(offsets(&result["publications"]), [4, 5, 6]);
    assert_eq!(result["publications"][0]["data"], 4);
    assert_eq!(
        (result["offset"].clone(), result["epoch"].clone()),
        (json!(6), epoch.clone())
    );
    // Up to date already: recovered, nothing to send.
    let mut current = Client::connect(&hub, &token("u")).await;
    let result = subscribe_recover(&mut current, "chat:r", 6, &epoch).await;
    assert_eq!(result["recovered"], true, "{result}");
    assert!(result.get("publications").is_none(), "{result}");
}

#[tokio::test]
async fn never_partial_wrong_epoch_lost_history_or_a_future_offset() {
    let mut cfg = config();
    cfg.namespaces.insert(
        "short".into(),
        NamespaceOptions {
            history_size: Some(3),
            ..Default::default()
        },
    );
    let hub = TestHub::start(cfg).await;
    let (_, first) = hub
        .api("publish", json!({"channel": "short:x", "data": 1}))
        .await;
    let epoch = first["result"]["epoch"].clone();
    for i in 2..=6 {
        hub.api("publish", json!({"channel": "short:x", "data": i}))
            .await;
    }
    let mut client = Client::connect(&hub, &token("u")).await;
    // History keeps 4..6; the client needs 2 onwards.
    let result = subscribe_recover(&mut client, "short:x", 1, &epoch).await;
    assert!(result.get("recovered").is_none(), "{result}");
    assert!(
        result.get("publications").is_none(),
        "never a partial recovery: {result}"
    );
    assert_eq!(
        (result["offset"].clone(), result["epoch"].clone()),
        (json!(6), epoch.clone()),
        "the current position"
    );
    assert_eq!(result["was_recovering"], true);
    // Exactly covered: needs 4 onwards, history starts at 4.
    let mut client = Client::connect(&hub, &token("u")).await;
    let result = subscribe_recover(&mut client, "short:x", 3, &epoch).await;
    assert_eq!(result["recovered"], true, "{result}");
    assert_eq!(offsets(&result["publications"]), [4, 5, 6]);
    // Another epoch: the stream this offset belonged to is gone.
    let mut client = Client::connect(&hub, &token("u")).await;
    let result = subscribe_recover(&mut client, "short:x", 5, &json!("0000000000000000")).await;
    assert!(result.get("recovered").is_none(), "{result}");
    assert_eq!(result["epoch"], epoch);
    // An offset from the future.
    let mut client = Client::connect(&hub, &token("u")).await;
    let result = subscribe_recover(&mut client, "short:x", 99, &epoch).await;
    assert!(result.get("recovered").is_none(), "{result}");
}

#[tokio::test]
async fn no_gap_and_no_duplicate_across_the_switch_to_live() {
    let hub = TestHub::start(config()).await;
    let (_, position) = hub.api("history", json!({"channel": "chat:live"})).await;
    let epoch = position["result"]["epoch"].clone();
    const TOTAL: u64 = 300;
    let (halfway_tx, halfway) = tokio::sync::oneshot::channel();
    let engine = hub.node.engine.clone();
    let publisher = tokio::spawn(async move {
        let mut halfway_tx = Some(halfway_tx);
        for i in 1..=TOTAL {
            let data =
                Payload::from(serde_json::value::RawValue::from_string(i.to_string()).unwrap());
            engine.publish("chat:live", data, None).await.unwrap();
            if i == TOTAL / 3 {
                halfway_tx.take().unwrap().send(()).unwrap();
            }
        }
    });
    halfway.await.unwrap();
    // Subscribe from the start while publications keep coming.
    let mut client = Client::connect(&hub, &token("u")).await;
    let result = subscribe_recover(&mut client, "chat:live", 0, &epoch).await;
    assert_eq!(result["recovered"], true, "{result}");
    let mut seen = offsets(&result["publications"]);
    assert!(
        seen.len() as u64 >= TOTAL / 3,
        "history held what was published before: {}",
        seen.len()
    );
    while seen.last().copied().unwrap_or(0) < TOTAL {
        let push = client.push().await;
        seen.push(push["pub"]["offset"].as_u64().unwrap());
    }
    publisher.await.unwrap();
    assert_eq!(
        seen,
        (1..=TOTAL).collect::<Vec<_>>(),
        "every offset once, in order"
    );
}

#[tokio::test]
async fn a_slow_consumer_is_disconnected_with_3008_and_others_keep_going() {
    let mut cfg = config();
    cfg.client_queue_size = 8;
    let hub = TestHub::start(cfg).await;
    let mut slow = Client::connect(&hub, &token("slow")).await;
    slow.call(json!({"subscribe": {"channel": "chat:flood"}}))
        .await;
    let mut fast = Client::connect(&hub, &token("fast")).await;
    fast.call(json!({"subscribe": {"channel": "chat:flood"}}))
        .await;
    let data = incompressible(32 * 1024);
    // The slow client reads nothing: socket buffers fill, then its queue, then it is cut.
    let mut published = 0u64;
    while hub.node.metrics.slow_disconnects.get() == 0 {
        assert!(
            published < 20_000,
            "no slow-consumer disconnect after {published} publications of 32 KiB"
        );
        hub.node
            .engine
            .publish("chat:flood", data.clone(), None)
            .await
            .unwrap();
        published += 1;
        // The fast client keeps up.
        let push = fast.push().await;
        assert_eq!(push["pub"]["offset"], published);
    }
    assert_eq!(slow.closed().await, (3008, "slow".into()));
    assert_eq!(hub.node.metrics.disconnects.get("slow"), 1);
    let reply = fast
        .call(json!({"publish": {"channel": "chat:flood", "data": "still here"}}))
        .await;
    assert_eq!(reply["publish"], json!({}));
}

#[tokio::test]
async fn a_client_that_reads_nothing_at_all_is_let_go() {
    let mut cfg = config();
    // A queue large enough that it is the blocked write, not the queue, that gives out.
    cfg.client_queue_size = 100_000;
    cfg.write_timeout = std::time::Duration::from_millis(300);
    let hub = TestHub::start(cfg).await;
    let mut deaf = Client::connect(&hub, &token("deaf")).await;
    deaf.call(json!({"subscribe": {"channel": "chat:deaf"}}))
        .await;
    let data = incompressible(64 * 1024);
    // Fill its socket buffers and more; it never reads again.
    for _ in 0..400 {
        hub.node
            .engine
            .publish("chat:deaf", data.clone(), None)
            .await
            .unwrap();
    }
    // No event marks the end of a session from outside; watch the gauge, bounded.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while hub.node.metrics.connections.get() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hub still holds a client that reads nothing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let metrics = hub.node.metrics.render();
    assert_eq!(hub.node.metrics.slow_disconnects.get(), 1, "{metrics}");
    assert_eq!(hub.node.metrics.disconnects.get("slow"), 1, "{metrics}");
    drop(deaf);
}

#[tokio::test]
async fn a_live_subscriber_whose_stream_was_lost_is_told_with_3010() {
    let mut cfg = config();
    cfg.channels.history_ttl = std::time::Duration::from_millis(100);
    let hub = TestHub::start(cfg).await;
    let mut client = Client::connect(&hub, &token("u")).await;
    client
        .call(json!({"subscribe": {"channel": "quiet"}}))
        .await;
    hub.api("publish", json!({"channel": "quiet", "data": 1}))
        .await;
    assert_eq!(client.push().await["pub"]["offset"], 1);
    // The history's time-to-live passes (a wait for the clock), expiry drops the stream.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    hub.node.engine.expire().await.unwrap();
    let (_, next) = hub
        .api("publish", json!({"channel": "quiet", "data": 2}))
        .await;
    assert_eq!(next["result"]["offset"], 1, "a new stream: {next}");
    assert_eq!(client.closed().await, (3010, "insufficient state".into()));
}
