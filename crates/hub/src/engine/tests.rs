//! The same checks against every engine (Redis on a `redis-server` the test starts).

use super::*;
use crate::config::{Channels, Config, Durability};
use serde_json::value::RawValue;
use std::sync::Mutex;

fn json(s: &str) -> Payload {
    Payload::from(RawValue::from_string(s.to_owned()).unwrap())
}

fn raw(s: &str) -> crate::protocol::reply::Json {
    Arc::from(RawValue::from_string(s.to_owned()).unwrap())
}

type Delivered = Arc<Mutex<Vec<(String, u64, Payload)>>>;

fn channels(history_size: usize) -> Channels {
    let mut config = Config::default();
    config.channels.history_size = history_size;
    Channels::new(&config)
}

fn sink() -> (Delivery, Delivered) {
    let delivered: Delivered = Arc::default();
    let d = delivered.clone();
    let delivery: Delivery = Arc::new(move |channel: &str, p: &Publication, _epoch: &str| {
        d.lock()
            .unwrap()
            .push((channel.to_owned(), p.offset, p.data.clone()));
    });
    (delivery, delivered)
}

/// The three engines, each with its delivery record; the Redis one on a `redis-server`
/// of its own (kept alive by the returned handle).
async fn engines(
    history_size: usize,
    dir: &std::path::Path,
) -> (
    Vec<(&'static str, Arc<dyn Engine>, Delivered)>,
    super::redis::test_server::RedisServer,
) {
    let (d1, seen1) = sink();
    let (d2, seen2) = sink();
    let (d3, seen3) = sink();
    let server = super::redis::test_server::RedisServer::start();
    let redis = RedisEngine::connect(
        &RedisOptions {
            urls: vec![server.url.clone()],
            cluster: false,
            sentinel_master: None,
            prefix: "test".into(),
            presence_ttl: std::time::Duration::from_secs(60),
            wait: None,
        },
        channels(history_size),
        d3,
        Arc::new(|_| {}),
    )
    .await
    .unwrap();
    let list = vec![
        (
            "memory",
            Arc::new(MemoryEngine::new(channels(history_size), d1)) as Arc<dyn Engine>,
            seen1,
        ),
        (
            "sqlite",
            Arc::new(
                SqliteEngine::open(dir, Durability::Commit, channels(history_size), d2).unwrap(),
            ),
            seen2,
        ),
        ("redis", Arc::new(redis), seen3),
    ];
    (list, server)
}

/// Waits until everything stored so far has reached the sink (Redis delivers through
/// pub/sub, after the acknowledgement): a marker published last arrives last. The
/// marker's own delivery is taken out of the record.
async fn settle(engine: &Arc<dyn Engine>, delivered: &Delivered) {
    engine.subscribe("settle").await.unwrap();
    let marker = engine.publish("settle", json("0"), None).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        {
            let mut seen = delivered.lock().unwrap();
            if seen
                .iter()
                .any(|(c, o, _)| c == "settle" && *o == marker.offset)
            {
                seen.retain(|(c, _, _)| c != "settle");
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the marker was never delivered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    engine.unsubscribe("settle");
}

#[tokio::test]
async fn offsets_are_contiguous_and_delivered_in_order_after_storing() {
    let dir = tempfile::tempdir().unwrap();
    let (list, _redis) = engines(100, dir.path()).await;
    for (name, engine, delivered) in list {
        engine.subscribe("a").await.unwrap();
        // Many publishes queued at once share commits and keep their call order.
        let acks: Vec<_> = (0..50)
            .map(|i| engine.publish("a", json(&i.to_string()), None))
            .collect();
        let mut offsets = Vec::new();
        for ack in acks {
            offsets.push(ack.await.unwrap().offset);
        }
        assert_eq!(offsets, (1..=50).collect::<Vec<_>>(), "{name}");
        settle(&engine, &delivered).await;
        let seen: Vec<u64> = delivered
            .lock()
            .unwrap()
            .iter()
            .map(|(_, o, _)| *o)
            .collect();
        assert_eq!(seen, offsets, "{name}: delivered in offset order");
        let history = engine.history("a", HistoryQuery::default()).await.unwrap();
        assert_eq!(history.publications.len(), 50, "{name}");
        for (i, p) in history.publications.iter().enumerate() {
            assert_eq!(p.data.as_bytes(), i.to_string().as_bytes(), "{name}");
            assert_eq!(p.offset, i as u64 + 1, "{name}");
        }
        engine.shutdown().await;
    }
}

#[tokio::test]
async fn history_selects_since_limit_and_reverse_and_keeps_history_size() {
    let dir = tempfile::tempdir().unwrap();
    let (list, _redis) = engines(5, dir.path()).await;
    for (name, engine, _) in list {
        for i in 1..=8 {
            engine
                .publish("b", json(&i.to_string()), None)
                .await
                .unwrap();
        }
        let offsets = |h: &History| h.publications.iter().map(|p| p.offset).collect::<Vec<_>>();
        let all = engine.history("b", HistoryQuery::default()).await.unwrap();
        assert_eq!(
            offsets(&all),
            [4, 5, 6, 7, 8],
            "{name}: only history_size kept"
        );
        assert_eq!((all.position.offset, all.oldest), (8, 4), "{name}");
        let since = engine
            .history(
                "b",
                HistoryQuery {
                    since: Some(5),
                    limit: Some(2),
                    reverse: false,
                },
            )
            .await
            .unwrap();
        assert_eq!(offsets(&since), [6, 7], "{name}");
        let reverse = engine
            .history(
                "b",
                HistoryQuery {
                    since: None,
                    limit: Some(2),
                    reverse: true,
                },
            )
            .await
            .unwrap();
        assert_eq!(offsets(&reverse), [8, 7], "{name}");
        let before = engine
            .history(
                "b",
                HistoryQuery {
                    since: Some(6),
                    limit: None,
                    reverse: true,
                },
            )
            .await
            .unwrap();
        assert_eq!(offsets(&before), [5, 4], "{name}");
        let position_only = engine
            .history(
                "b",
                HistoryQuery {
                    since: None,
                    limit: Some(0),
                    reverse: false,
                },
            )
            .await
            .unwrap();
        assert!(position_only.publications.is_empty(), "{name}");
        assert_eq!(position_only.position, all.position, "{name}");
        engine.shutdown().await;
    }
}

#[tokio::test]
async fn a_new_channel_gets_an_epoch_that_its_publications_keep() {
    let dir = tempfile::tempdir().unwrap();
    let (list, _redis) = engines(10, dir.path()).await;
    for (name, engine, _) in list {
        let empty = engine
            .history("fresh", HistoryQuery::default())
            .await
            .unwrap();
        assert_eq!(empty.position.offset, 0, "{name}");
        assert!(!empty.position.epoch.is_empty(), "{name}");
        let position = engine.publish("fresh", json("1"), None).await.unwrap();
        assert_eq!(
            position,
            Position {
                offset: 1,
                epoch: empty.position.epoch.clone()
            },
            "{name}"
        );
        engine.shutdown().await;
    }
}

#[tokio::test]
async fn binary_payloads_are_stored_delivered_and_read_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (list, _redis) = engines(10, dir.path()).await;
    // Newlines and a zero byte first: the Redis live message and stored form must not
    // split or mistake them.
    let payloads = [
        Payload::from_bytes(vec![0, b'\n', 0xff, b'\n', 7]).unwrap(),
        json("{\"k\":\"v\"}"),
        Payload::from_bytes(b"not json".to_vec()).unwrap(),
    ];
    for (name, engine, delivered) in list {
        engine.subscribe("b").await.unwrap();
        for payload in &payloads {
            engine.publish("b", payload.clone(), None).await.unwrap();
        }
        settle(&engine, &delivered).await;
        let live: Vec<Payload> = delivered
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, p)| p.clone())
            .collect();
        assert_eq!(live, payloads, "{name}: delivered");
        let history = engine.history("b", HistoryQuery::default()).await.unwrap();
        let stored: Vec<Payload> = history.publications.into_iter().map(|p| p.data).collect();
        assert_eq!(stored, payloads, "{name}: history");
        engine.shutdown().await;
    }
}

#[tokio::test]
async fn sqlite_keeps_streams_across_restarts_and_memory_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _) = sink();
    let first = SqliteEngine::open(dir.path(), Durability::Fsync, channels(10), d).unwrap();
    let position = first.publish("c", json("{\"k\":1}"), None).await.unwrap();
    first.shutdown().await;
    let (d, _) = sink();
    let second = SqliteEngine::open(dir.path(), Durability::Fsync, channels(10), d).unwrap();
    let history = second.history("c", HistoryQuery::default()).await.unwrap();
    assert_eq!(history.position, position);
    assert_eq!(history.publications[0].data.as_bytes(), b"{\"k\":1}");
    assert_eq!(
        second.publish("c", json("2"), None).await.unwrap().offset,
        2
    );
    second.shutdown().await;
    assert!(matches!(
        second.publish("c", json("3"), None).await,
        Err(Error::Stopped)
    ));

    let (d, _) = sink();
    let memory = MemoryEngine::new(channels(10), d);
    let before = memory.publish("c", json("1"), None).await.unwrap();
    let (d, _) = sink();
    let restarted = MemoryEngine::new(channels(10), d);
    let after = restarted
        .history("c", HistoryQuery::default())
        .await
        .unwrap();
    assert_ne!(
        after.position.epoch, before.epoch,
        "a restarted memory engine must not reuse an epoch"
    );
}

#[tokio::test]
async fn publisher_info_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (list, _redis) = engines(10, dir.path()).await;
    for (name, engine, _) in list {
        let info = ClientInfo {
            user: "42".into(),
            client: "c1".into(),
            conn_info: Some(raw("{\"name\":\"Ada\"}")),
            chan_info: None,
        };
        engine.publish("d", json("1"), Some(info)).await.unwrap();
        engine.publish("d", json("2"), None).await.unwrap();
        let history = engine.history("d", HistoryQuery::default()).await.unwrap();
        let got = history.publications[0].info.as_ref().unwrap();
        assert_eq!(
            (got.user.as_str(), got.client.as_str()),
            ("42", "c1"),
            "{name}"
        );
        assert_eq!(
            got.conn_info.as_ref().unwrap().get(),
            "{\"name\":\"Ada\"}",
            "{name}"
        );
        assert!(history.publications[1].info.is_none(), "{name}");
        engine.shutdown().await;
    }
}

#[tokio::test]
async fn unknown_namespaces_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (list, _redis) = engines(10, dir.path()).await;
    for (name, engine, delivered) in list {
        assert!(
            matches!(
                engine.publish("nope:x", json("1"), None).await,
                Err(Error::UnknownChannel(_))
            ),
            "{name}"
        );
        settle(&engine, &delivered).await;
        assert!(delivered.lock().unwrap().is_empty(), "{name}");
        engine.shutdown().await;
    }
}

#[tokio::test]
async fn a_stream_whose_history_expired_entirely_gets_a_new_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.channels.history_ttl = std::time::Duration::from_millis(50);
    let (d1, _) = sink();
    let (d2, _) = sink();
    let engines: Vec<(&str, Arc<dyn Engine>)> = vec![
        (
            "memory",
            Arc::new(MemoryEngine::new(Channels::new(&config), d1)),
        ),
        (
            "sqlite",
            Arc::new(
                SqliteEngine::open(dir.path(), Durability::Commit, Channels::new(&config), d2)
                    .unwrap(),
            ),
        ),
    ];
    for (name, engine) in engines {
        let old = engine.publish("t", json("1"), None).await.unwrap();
        // The time-to-live has to pass: this waits for the clock, not for an event.
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        let before_expiry = engine.history("t", HistoryQuery::default()).await.unwrap();
        assert!(
            before_expiry.publications.is_empty(),
            "{name}: expired publications are never served"
        );
        assert_eq!(
            before_expiry.position, old,
            "{name}: the stream stands until expiry runs"
        );
        engine.expire().await.unwrap();
        let after = engine.history("t", HistoryQuery::default()).await.unwrap();
        assert_eq!(after.position.offset, 0, "{name}");
        assert_ne!(
            after.position.epoch, old.epoch,
            "{name}: a lost stream gets a new epoch"
        );
        engine.shutdown().await;
    }
}

#[tokio::test]
async fn never_published_streams_expire_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.channels.history_ttl = std::time::Duration::from_millis(50);
    let (d1, _) = sink();
    let (d2, _) = sink();
    let engines: Vec<(&str, Arc<dyn Engine>)> = vec![
        (
            "memory",
            Arc::new(MemoryEngine::new(Channels::new(&config), d1)),
        ),
        (
            "sqlite",
            Arc::new(
                SqliteEngine::open(dir.path(), Durability::Commit, Channels::new(&config), d2)
                    .unwrap(),
            ),
        ),
    ];
    for (name, engine) in engines {
        let first = engine
            .history("empty", HistoryQuery::default())
            .await
            .unwrap();
        engine.expire().await.unwrap();
        let kept = engine
            .history("empty", HistoryQuery::default())
            .await
            .unwrap();
        assert_eq!(
            kept.position, first.position,
            "{name}: younger than the time-to-live, kept"
        );
        // The time-to-live has to pass: this waits for the clock.
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        engine.expire().await.unwrap();
        let after = engine
            .history("empty", HistoryQuery::default())
            .await
            .unwrap();
        assert_ne!(
            after.position.epoch, first.position.epoch,
            "{name}: dropped, so a new stream"
        );
        engine.shutdown().await;
    }
}

#[tokio::test]
async fn an_idempotency_key_stores_once_and_answers_the_first_position() {
    let dir = tempfile::tempdir().unwrap();
    let (list, _redis) = engines(100, dir.path()).await;
    for (name, engine, delivered) in list {
        engine.subscribe("i").await.unwrap();
        engine.subscribe("j").await.unwrap();
        // Two with one key queued together (one commit group), then a retry later.
        let a = engine.publish_once("i", json("1"), None, "k1".into());
        let b = engine.publish_once("i", json("1"), None, "k1".into());
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert_eq!(a, b, "{name}");
        let retry = engine
            .publish_once("i", json("1"), None, "k1".into())
            .await
            .unwrap();
        assert_eq!(retry, a, "{name}");
        let other = engine
            .publish_once("i", json("2"), None, "k2".into())
            .await
            .unwrap();
        assert_eq!(
            other.offset, 2,
            "{name}: another key is another publication"
        );
        let same_key_elsewhere = engine
            .publish_once("j", json("1"), None, "k1".into())
            .await
            .unwrap();
        assert_eq!(same_key_elsewhere.offset, 1, "{name}: keys are per channel");
        let history = engine.history("i", HistoryQuery::default()).await.unwrap();
        assert_eq!(history.publications.len(), 2, "{name}");
        settle(&engine, &delivered).await;
        assert_eq!(
            delivered.lock().unwrap().len(),
            3,
            "{name}: repeats are not delivered"
        );
        engine.shutdown().await;
    }
}

#[tokio::test]
async fn removed_history_keeps_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (list, _redis) = engines(10, dir.path()).await;
    for (name, engine, _) in list {
        let first = engine.publish("r", json("1"), None).await.unwrap();
        engine.remove_history("r").await.unwrap();
        engine.expire().await.unwrap();
        let history = engine.history("r", HistoryQuery::default()).await.unwrap();
        assert!(history.publications.is_empty(), "{name}");
        assert_eq!(
            history.position, first,
            "{name}: same epoch and offset after removal and expiry"
        );
        assert_eq!(
            engine.publish("r", json("2"), None).await.unwrap().offset,
            2,
            "{name}"
        );
        engine.shutdown().await;
    }
}
