//! What only the Redis engine does: several nodes on one Redis, and Redis failures. (The
//! checks every engine passes are in `engine/tests.rs`.)

use super::test_server::{wait_for_replica, RedisSentinel, RedisServer};
use super::*;
use crate::config::Config;
use futures_util::future::join_all;
use serde_json::value::RawValue;
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod cluster;
mod reply_eater;

use reply_eater::ReplyEater;

type Delivered = Arc<Mutex<Vec<(String, u64, String)>>>;

fn json(s: &str) -> Payload {
    Payload::from(RawValue::from_string(s.to_owned()).unwrap())
}

fn raw(s: &str) -> crate::protocol::reply::Json {
    Arc::from(RawValue::from_string(s.to_owned()).unwrap())
}

fn channels(config: &Config) -> Channels {
    Channels::new(config)
}

fn options(server: &RedisServer) -> RedisOptions {
    RedisOptions {
        urls: vec![server.url.clone()],
        cluster: false,
        sentinel_master: None,
        prefix: "hub".into(),
        presence_ttl: Duration::from_secs(60),
        wait: None,
    }
}

/// A node's engine on `server`, and what it delivered.
async fn node(server: &RedisServer, config: &Config) -> (RedisEngine, Delivered) {
    let delivered: Delivered = Arc::default();
    let d = delivered.clone();
    let delivery: Delivery = Arc::new(move |channel: &str, p: &Publication, epoch: &str| {
        d.lock()
            .unwrap()
            .push((channel.to_owned(), p.offset, epoch.to_owned()));
    });
    let engine = RedisEngine::connect(
        &options(server),
        channels(config),
        delivery,
        Arc::new(|_| {}),
    )
    .await
    .unwrap();
    (engine, delivered)
}

/// An engine on `options` that only publishes and reads: what it is delivered goes
/// nowhere.
async fn publisher(options: &RedisOptions) -> RedisEngine {
    RedisEngine::connect(
        options,
        channels(&Config::default()),
        Arc::new(|_: &str, _: &Publication, _: &str| {}),
        Arc::new(|_| {}),
    )
    .await
    .unwrap()
}

/// Waits (bounded) until `delivered` holds `n` entries.
async fn delivered_n(delivered: &Delivered, n: usize) -> Vec<(String, u64, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = delivered.lock().unwrap().clone();
        if seen.len() >= n {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} delivered: {seen:?}",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (bounded) until `delivered` reaches offset `top`, asserting all along that it
/// came in offset order with no gap (a repeat is allowed: the session drops it).
async fn delivered_up_to_without_gap(delivered: &Delivered, top: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut reached = 0;
        for (_, offset, _) in delivered.lock().unwrap().iter() {
            assert!(
                *offset <= reached + 1,
                "a gap: {:?}",
                delivered.lock().unwrap()
            );
            reached = reached.max(*offset);
        }
        if reached >= top {
            return;
        }
        assert!(Instant::now() < deadline, "{:?}", delivered.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `b` follows a channel that `a` publishes to while every connection with a
/// subscription (the nodes' feeds and control) on the Redis instances at `urls` is cut:
/// `b` gets every offset, in order, with no gap, and is healthy again.
async fn feed_survives_killed_connections(
    a: &RedisEngine,
    b: &RedisEngine,
    on_b: &Delivered,
    urls: &[String],
) {
    b.subscribe("g").await.unwrap();
    a.publish("g", json("1"), None).await.unwrap();
    delivered_n(on_b, 1).await;
    for url in urls {
        kill_subscribed_connections(url).await;
    }
    for n in 2..=4 {
        a.publish("g", json(&n.to_string()), None).await.unwrap();
    }
    delivered_up_to_without_gap(on_b, 4).await;
    b.check_writable().await.unwrap();
}

/// Closes every connection with a subscription on the Redis at `url`.
async fn kill_subscribed_connections(url: &str) {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: Value = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn nodes_share_offsets_and_deliver_each_others_publications() {
    let server = RedisServer::start();
    let config = Config::default();
    let (a, on_a) = node(&server, &config).await;
    let (b, on_b) = node(&server, &config).await;
    b.subscribe("x").await.unwrap();
    a.subscribe("x").await.unwrap();
    // Both nodes publish at once: one sequence of offsets, no duplicates.
    let from_a: Vec<_> = (0..20)
        .map(|i| a.publish("x", json(&i.to_string()), None))
        .collect();
    let from_b: Vec<_> = (0..20)
        .map(|i| b.publish("x", json(&i.to_string()), None))
        .collect();
    let mut offsets = Vec::new();
    for ack in from_a.into_iter().chain(from_b) {
        offsets.push(ack.await.unwrap().offset);
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (1..=40).collect::<Vec<_>>());
    // Each node delivers all 40, in offset order, whoever published them.
    for seen in [delivered_n(&on_a, 40).await, delivered_n(&on_b, 40).await] {
        let got: Vec<u64> = seen.iter().map(|(_, o, _)| *o).collect();
        assert_eq!(got, (1..=40).collect::<Vec<_>>());
    }
    // History is the same from either node.
    let (ha, hb) = (
        a.history("x", HistoryQuery::default()).await.unwrap(),
        b.history("x", HistoryQuery::default()).await.unwrap(),
    );
    assert_eq!(ha.position, hb.position);
    assert_eq!(ha.publications.len(), 40);
}

#[tokio::test]
async fn an_unsubscribed_node_gets_nothing_and_the_last_unsubscribe_stops_the_feed() {
    let server = RedisServer::start();
    let config = Config::default();
    let (a, on_a) = node(&server, &config).await;
    let (b, on_b) = node(&server, &config).await;
    b.subscribe("y").await.unwrap();
    b.subscribe("y").await.unwrap();
    b.unsubscribe("y");
    a.subscribe("marker").await.unwrap();
    b.subscribe("marker").await.unwrap();
    a.publish("y", json("1"), None).await.unwrap();
    a.publish("marker", json("1"), None).await.unwrap();
    // b still has one subscription to y: it got y before the marker; a never had y.
    let seen_b = delivered_n(&on_b, 2).await;
    assert_eq!(seen_b[0].0, "y");
    let seen_a = delivered_n(&on_a, 1).await;
    assert_eq!(
        seen_a.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["marker"]
    );
    b.unsubscribe("y");
    a.publish("y", json("2"), None).await.unwrap();
    a.publish("marker", json("2"), None).await.unwrap();
    let seen_b = delivered_n(&on_b, 3).await;
    assert_eq!(seen_b[2].0, "marker", "y is no longer fed to b: {seen_b:?}");
}

#[tokio::test]
async fn a_lost_meta_key_gives_a_new_epoch_never_the_old_stream() {
    let server = RedisServer::start();
    let config = Config::default();
    let (a, _) = node(&server, &config).await;
    let first = a.publish("z", json("1"), None).await.unwrap();
    a.publish("z", json("2"), None).await.unwrap();
    // As after a Redis restart without persistence, or an eviction.
    let mut conn = a.shards[0].conn.clone();
    let _: Value = redis::cmd("DEL")
        .arg(a.keys.meta("z"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let next = a.publish("z", json("3"), None).await.unwrap();
    assert_eq!(next.offset, 1);
    assert_ne!(next.epoch, first.epoch);
    let history = a.history("z", HistoryQuery::default()).await.unwrap();
    let offsets: Vec<u64> = history.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [1], "the old stream went with its epoch");
}

#[tokio::test]
async fn presence_is_shared_and_expires_unless_refreshed() {
    let server = RedisServer::start();
    let config = Config::default();
    let (a, _) = node(&server, &config).await;
    let (b, _) = node(&server, &config).await;
    let info = |client: &str| ClientInfo {
        user: "u".into(),
        client: client.into(),
        conn_info: Some(raw("{\"name\":\"Ada\"}")),
        chan_info: None,
    };
    a.add_presence("p", "c1", info("c1")).await.unwrap();
    b.add_presence("p", "c2", info("c2")).await.unwrap();
    let seen = a.presence("p").await.unwrap();
    assert_eq!(seen.keys().collect::<Vec<_>>(), ["c1", "c2"]);
    assert_eq!(
        seen["c1"].conn_info.as_ref().unwrap().get(),
        "{\"name\":\"Ada\"}"
    );
    b.remove_presence("p", "c2").await.unwrap();
    assert_eq!(a.presence("p").await.unwrap().len(), 1);
    // An entry whose node died is not refreshed: it goes at its expiry time.
    let (hash, expiry) = a.keys.presence("p");
    let mut conn = a.shards[0].conn.clone();
    let _: Value = redis::cmd("ZADD")
        .arg(&expiry)
        .arg(now_ms() - 1)
        .arg("c1")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(b.presence("p").await.unwrap().is_empty());
    let left: i64 = redis::cmd("HLEN")
        .arg(&hash)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "expired entries are removed, not only hidden");
}

#[tokio::test]
async fn a_history_ttl_loses_the_stream_in_redis_itself() {
    let server = RedisServer::start();
    let mut config = Config::default();
    config.channels.history_ttl = Duration::from_millis(100);
    let (a, _) = node(&server, &config).await;
    let old = a.publish("t", json("1"), None).await.unwrap();
    // The time-to-live has to pass: this waits for the clock, not for an event.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let after = a.history("t", HistoryQuery::default()).await.unwrap();
    assert_eq!(after.position.offset, 0);
    assert_ne!(after.position.epoch, old.epoch);
}

#[tokio::test]
async fn while_redis_is_down_nothing_is_acknowledged_and_health_fails() {
    let mut server = RedisServer::start();
    let config = Config::default();
    let (a, _) = node(&server, &config).await;
    a.check_writable().await.unwrap();
    a.publish("d", json("1"), None).await.unwrap();
    server.kill();
    assert!(
        a.publish("d", json("2"), None).await.is_err(),
        "no false ack"
    );
    assert!(a.check_writable().await.is_err());
    assert!(a.history("d", HistoryQuery::default()).await.is_err());
}

#[tokio::test]
async fn publishes_after_shutdown_fail() {
    let server = RedisServer::start();
    let (a, _) = node(&server, &Config::default()).await;
    a.publish("s", json("1"), None).await.unwrap();
    a.shutdown().await;
    assert!(matches!(
        a.publish("s", json("2"), None).await,
        Err(Error::Stopped)
    ));
}

#[tokio::test]
async fn health_holds_with_subscriptions_and_info_with_newlines_is_delivered() {
    let server = RedisServer::start();
    let config = Config::default();
    let (a, _) = node(&server, &config).await;
    let (b, on_b) = node(&server, &config).await;
    b.subscribe("h").await.unwrap();
    // A subscribed connection answers a ping differently.
    b.check_writable().await.unwrap();
    let info = ClientInfo {
        user: "u".into(),
        client: "c".into(),
        // As a backend may write it.
        conn_info: Some(raw("{\n  \"name\": \"Ada\"\n}")),
        chan_info: None,
    };
    a.publish("h", json("{\"text\":\"a\\nb\"}"), Some(info))
        .await
        .unwrap();
    let seen = delivered_n(&on_b, 1).await;
    assert_eq!(seen[0].1, 1);
}

#[tokio::test]
async fn odd_history_bounds_are_answered_not_refused() {
    let server = RedisServer::start();
    let (a, _) = node(&server, &Config::default()).await;
    a.publish("o", json("1"), None).await.unwrap();
    for query in [
        HistoryQuery {
            since: Some(1_000_000_000_000_000),
            limit: None,
            reverse: false,
        },
        HistoryQuery {
            since: Some(0),
            limit: None,
            reverse: true,
        },
    ] {
        let history = a.history("o", query).await.unwrap();
        assert!(history.publications.is_empty(), "{query:?}");
        assert_eq!(history.position.offset, 1);
    }
}

#[tokio::test]
async fn idempotency_keys_are_encoded_in_key_names() {
    let server = RedisServer::start();
    let (a, _) = node(&server, &Config::default()).await;
    // Unencoded, a `}` would end the hash tag and could alias another channel's keys.
    let first = a
        .publish_once("k", json("1"), None, "X}:m".into())
        .await
        .unwrap();
    let again = a
        .publish_once("k", json("1"), None, "X}:m".into())
        .await
        .unwrap();
    assert_eq!(first, again);
    let mut conn = a.shards[0].conn.clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.contains(&"hub:{k}:i:587d3a6d".to_owned()), "{keys:?}");
    assert!(keys.iter().all(|k| !k.contains("X}")), "{keys:?}");
}

#[tokio::test]
async fn after_the_feed_connection_is_killed_nothing_is_missed() {
    let server = RedisServer::start();
    let config = Config::default();
    let (a, _) = node(&server, &config).await;
    let (b, on_b) = node(&server, &config).await;
    feed_survives_killed_connections(&a, &b, &on_b, std::slice::from_ref(&server.url)).await;
}

#[tokio::test]
async fn a_publish_whose_reply_is_lost_is_not_acknowledged_nor_sent_again() {
    let server = RedisServer::start();
    let eater = ReplyEater::start(server.port).await;
    let mut through = options(&server);
    through.urls = vec![format!("redis://127.0.0.1:{}/", eater.port)];
    let engine = publisher(&through).await;
    assert_eq!(
        engine.publish("l", json("1"), None).await.unwrap().offset,
        1
    );
    eater.arm();
    let lost = engine.publish("l", json("2"), None).await;
    assert!(lost.is_err(), "acknowledged without a reply: {lost:?}");
    // The connection comes back; the lost publish was stored once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let next = loop {
        match engine.publish("l", json("3"), None).await {
            Ok(next) => break next,
            Err(e) => {
                assert!(Instant::now() < deadline, "no reconnect: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let history = engine.history("l", HistoryQuery::default()).await.unwrap();
    let data: Vec<&[u8]> = history
        .publications
        .iter()
        .map(|p| p.data.as_bytes())
        .collect();
    assert_eq!(data, [b"1", b"2", b"3"]);
    assert_eq!(next.offset, 3);
}

#[tokio::test]
async fn with_wait_a_publish_is_acknowledged_only_once_replicated() {
    let primary = RedisServer::start();
    let mut replica =
        RedisServer::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    wait_for_replica(&primary.url).await;
    let mut waiting = options(&primary);
    // Long enough for a replica on a loaded machine to acknowledge (300 ms was not, once
    // in a full test run); the refusal below waits this long too.
    waiting.wait = Some((1, Duration::from_secs(2)));
    let engine = publisher(&waiting).await;
    assert_eq!(
        engine.publish("w", json("1"), None).await.unwrap().offset,
        1
    );
    replica.kill();
    let refused = engine.publish("w", json("2"), None).await;
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("replicas confirmed"), "{message}");
}

#[tokio::test]
async fn with_sentinel_a_failover_acknowledges_nothing_unstored_and_the_feed_follows() {
    let mut master = RedisServer::start();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    wait_for_replica(&master.url).await;
    let sentinel = RedisSentinel::start(&master, "hub-master");
    let watched = || RedisOptions {
        urls: vec![sentinel.url.clone()],
        cluster: false,
        sentinel_master: Some("hub-master".into()),
        prefix: "hub".into(),
        presence_ttl: Duration::from_secs(60),
        wait: None,
    };
    let options = watched();
    let connect = |delivery: Delivery| {
        RedisEngine::connect(
            &options,
            channels(&Config::default()),
            delivery,
            Arc::new(|_| {}),
        )
    };
    let a = connect(Arc::new(|_: &str, _: &Publication, _: &str| {}))
        .await
        .unwrap();
    let on_b: Delivered = Arc::default();
    let d = on_b.clone();
    let b = connect(Arc::new(
        move |channel: &str, p: &Publication, epoch: &str| {
            d.lock()
                .unwrap()
                .push((channel.to_owned(), p.offset, epoch.to_owned()));
        },
    ))
    .await
    .unwrap();
    b.subscribe("f").await.unwrap();
    assert_eq!(a.publish("f", json("1"), None).await.unwrap().offset, 1);
    delivered_n(&on_b, 1).await;
    // Replication is asynchronous: offset 1 must be on the replica before the master dies.
    let mut on_replica = redis::Client::open(replica.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let len: u64 = redis::cmd("XLEN")
            .arg("hub:{f}:s")
            .query_async(&mut on_replica)
            .await
            .unwrap();
        if len == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "offset 1 never reached the replica"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    master.kill();
    // Until the Sentinel promotes the replica, publishes fail (nothing is acknowledged);
    // then they are stored on the new master, after offset 1.
    let mut acked = vec![1];
    let mut refused = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < 4 {
        assert!(Instant::now() < deadline, "no failover: {acked:?}");
        match a.publish("f", json("2"), None).await {
            Ok(position) => acked.push(position.offset),
            Err(_) => {
                refused += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(acked, [1, 2, 3, 4]);
    assert!(refused > 0, "the publishes never saw the master gone");
    // (Sentinel closed the promoted replica's client connections: a new one.)
    let role: Vec<Value> = redis::cmd("ROLE")
        .query_async(
            &mut redis::Client::open(replica.url.as_str())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(text(&role[0]).as_deref(), Some("master"));
    // The other node's feed found the new master and caught up: no gap.
    delivered_up_to_without_gap(&on_b, 4).await;
    a.check_writable().await.unwrap();
    b.check_writable().await.unwrap();
}
