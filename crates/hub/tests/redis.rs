//! Several hub nodes on one Redis (`engine = "redis"`), each a real hub on its own port,
//! with a real `redis-server` started by the test.

mod common;

use common::redis_server::{RedisCluster, RedisServer};
use common::*;
use duplex_hub::config::{Config, EngineKind};
use serde_json::{json, Value};

fn redis_config(server: &RedisServer) -> Config {
    let mut config = config();
    config.engine = EngineKind::Redis;
    config.redis = vec![server.url.clone()];
    config
}

async fn subscribed(hub: &TestHub, user: &str, channel: &str) -> (Client, Value) {
    let mut client = Client::connect(hub, &token(user)).await;
    let reply = client
        .call(json!({"subscribe": {"channel": channel}}))
        .await;
    assert!(reply.get("error").is_none(), "{reply}");
    (client, reply)
}

/// The offsets a subscribe reply recovered (it must say `recovered: true`).
fn recovered_offsets(reply: &Value) -> Vec<u64> {
    let result = &reply["subscribe"];
    assert_eq!(result["recovered"], true, "{reply}");
    result["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn clients_on_every_node_get_what_any_node_published() {
    let server = RedisServer::start();
    let nodes = [
        TestHub::start(redis_config(&server)).await,
        TestHub::start(redis_config(&server)).await,
        TestHub::start(redis_config(&server)).await,
    ];
    let (mut on_b, _) = subscribed(&nodes[1], "bob", "chat:room").await;
    let (mut on_c, _) = subscribed(&nodes[2], "cy", "chat:room").await;
    // A backend publishes through node A's API...
    let (status, answer) = nodes[0]
        .api("publish", json!({"channel": "chat:room", "data": {"n": 1}}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["offset"], 1);
    for client in [&mut on_b, &mut on_c] {
        let push = client.push().await;
        assert_eq!(
            (&push["pub"]["data"], &push["pub"]["offset"]),
            (&json!({"n": 1}), &json!(1)),
            "{push}"
        );
    }
    // ...and a client on node C publishes: B gets it with the publisher's info.
    let reply = on_c
        .call(json!({"publish": {"channel": "chat:room", "data": {"n": 2}}}))
        .await;
    assert!(reply.get("error").is_none(), "{reply}");
    let push = on_b.push().await;
    assert_eq!(push["pub"]["offset"], 2, "{push}");
    assert_eq!(push["pub"]["info"]["user"], "cy", "{push}");
    let own = on_c.push().await;
    assert_eq!(own["pub"]["offset"], 2, "{own}");
}

#[tokio::test]
async fn presence_and_history_are_the_same_from_every_node() {
    let server = RedisServer::start();
    let a = TestHub::start(redis_config(&server)).await;
    let b = TestHub::start(redis_config(&server)).await;
    let (_ada, _) = subscribed(&a, "ada", "chat:p").await;
    let (_bob, _) = subscribed(&b, "bob", "chat:p").await;
    for n in 1..=3 {
        b.api("publish", json!({"channel": "chat:p", "data": {"n": n}}))
            .await;
    }
    for hub in [&a, &b] {
        let (_, presence) = hub.api("presence", json!({"channel": "chat:p"})).await;
        let mut users: Vec<&str> = presence["result"]["presence"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c["user"].as_str().unwrap())
            .collect();
        users.sort_unstable();
        assert_eq!(users, ["ada", "bob"], "{presence}");
    }
    let (_, from_a) = a
        .api("history", json!({"channel": "chat:p", "limit": -1}))
        .await;
    let (_, from_b) = b
        .api("history", json!({"channel": "chat:p", "limit": -1}))
        .await;
    assert_eq!(from_a["result"], from_b["result"]);
    assert_eq!(
        from_a["result"]["publications"].as_array().unwrap().len(),
        3,
        "{from_a}"
    );
}

#[tokio::test]
async fn a_client_whose_node_went_away_recovers_on_another() {
    let server = RedisServer::start();
    let mut a = TestHub::start(redis_config(&server)).await;
    let b = TestHub::start(redis_config(&server)).await;
    let (mut client, reply) = subscribed(&a, "ada", "chat:r").await;
    let epoch = reply["subscribe"]["epoch"].clone();
    b.api("publish", json!({"channel": "chat:r", "data": {"n": 1}}))
        .await;
    assert_eq!(client.push().await["pub"]["offset"], 1);
    a.stop().await;
    // Published while the client has no node.
    for n in 2..=4 {
        let (status, _) = b
            .api("publish", json!({"channel": "chat:r", "data": {"n": n}}))
            .await;
        assert_eq!(status, 200);
    }
    let mut again = Client::connect(&b, &token("ada")).await;
    let reply = again
        .call(json!({"subscribe": {"channel": "chat:r", "recover": true, "offset": 1, "epoch": epoch}}))
        .await;
    assert_eq!(recovered_offsets(&reply), [2, 3, 4], "{reply}");
    // And it is live on the new node.
    b.api("publish", json!({"channel": "chat:r", "data": {"n": 5}}))
        .await;
    assert_eq!(again.push().await["pub"]["offset"], 5);
}

#[tokio::test]
async fn two_hubs_with_different_prefixes_do_not_see_each_other() {
    let server = RedisServer::start();
    let a = TestHub::start(redis_config(&server)).await;
    let mut other = redis_config(&server);
    other.redis_prefix = "other".into();
    let b = TestHub::start(other).await;
    let (_, first) = a
        .api("publish", json!({"channel": "chat:x", "data": 1}))
        .await;
    let (_, second) = b
        .api("publish", json!({"channel": "chat:x", "data": 1}))
        .await;
    assert_eq!(first["result"]["offset"], 1);
    assert_eq!(second["result"]["offset"], 1, "its own stream: {second}");
}

#[test]
fn redis_configuration_errors_name_the_key() {
    for (urls, expected) in [
        (vec![], "needs a Redis URL"),
        (vec!["http://127.0.0.1:6379".to_owned()], "not a Redis URL"),
        (vec!["rediss://127.0.0.1:6379".to_owned()], "TLS to Redis"),
        (
            vec!["redis://a:1".to_owned(), "http://b:1".to_owned()],
            "\"http://b:1\" is not a Redis URL",
        ),
    ] {
        let mut config = config();
        config.engine = EngineKind::Redis;
        config.redis = urls;
        let message = config.validate().unwrap_err().to_string();
        assert!(
            message.contains("redis") && message.contains(expected),
            "{message}"
        );
    }
    for (cluster, master, expected) in [
        (true, Some("m"), "not both"),
        (false, Some(""), "must name the master"),
    ] {
        let mut config = config();
        config.engine = EngineKind::Redis;
        config.redis_cluster = cluster;
        config.redis_sentinel_master = master.map(str::to_owned);
        let message = config.validate().unwrap_err().to_string();
        assert!(
            message.contains("redis_sentinel_master") && message.contains(expected),
            "{message}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_redis_stops_the_start_with_a_clear_error() {
    let server = RedisServer::start();
    let mut config = redis_config(&server);
    drop(server);
    config.redis = vec![config.redis[0].clone()];
    let error = duplex_hub::Hub::bind(config)
        .await
        .err()
        .expect("no Redis: no hub")
        .to_string();
    assert!(error.contains("redis"), "{error}");
}

#[tokio::test]
async fn joins_and_leaves_reach_subscribers_on_other_nodes() {
    let server = RedisServer::start();
    let a = TestHub::start(redis_config(&server)).await;
    let b = TestHub::start(redis_config(&server)).await;
    let mut alice = Client::connect(&a, &token("alice")).await;
    alice
        .call(json!({"subscribe": {"channel": "chat:jl", "join_leave": true}}))
        .await;
    let mut bob = Client::connect(&b, &token("bob")).await;
    bob.call(json!({"subscribe": {"channel": "chat:jl"}})).await;
    let join = alice.push().await;
    assert_eq!(join["join"]["info"]["user"], "bob", "{join}");
    assert_eq!(join["join"]["info"]["client"], json!(bob.client_id));
    bob.call(json!({"unsubscribe": {"channel": "chat:jl"}}))
        .await;
    let leave = alice.push().await;
    assert_eq!(leave["leave"]["info"]["user"], "bob", "{leave}");
}

#[tokio::test]
async fn server_api_commands_reach_clients_on_other_nodes() {
    let server = RedisServer::start();
    let a = TestHub::start(redis_config(&server)).await;
    let b = TestHub::start(redis_config(&server)).await;
    let (mut bob, _) = subscribed(&b, "bob", "chat:s").await;
    // Node A is asked; bob is on node B.
    let (_, answer) = a
        .api("subscribe", json!({"user": "bob", "channel": "chat:extra"}))
        .await;
    assert_eq!(answer["result"], json!({}), "{answer}");
    let push = bob.push().await;
    assert_eq!(push["channel"], "chat:extra", "{push}");
    assert!(push.get("subscribe").is_some(), "{push}");
    let (_, answer) = a
        .api("unsubscribe", json!({"user": "bob", "channel": "chat:s"}))
        .await;
    assert_eq!(answer["result"], json!({}), "{answer}");
    let push = bob.push().await;
    assert_eq!(push["channel"], "chat:s", "{push}");
    assert!(push.get("unsubscribe").is_some(), "{push}");
    let (_, answer) = a.api("disconnect", json!({"user": "bob"})).await;
    assert_eq!(answer["result"], json!({}), "{answer}");
    assert_eq!(bob.closed().await.0, 3503);
}

#[tokio::test]
async fn redis_down_then_back_empty_health_errors_recovery_and_a_new_epoch() {
    let mut server = RedisServer::start();
    let a = TestHub::start(redis_config(&server)).await;
    let (mut client, reply) = subscribed(&a, "ada", "chat:e").await;
    let old_epoch = reply["subscribe"]["epoch"].clone();
    a.api("publish", json!({"channel": "chat:e", "data": 1}))
        .await;
    assert_eq!(client.push().await["pub"]["offset"], 1);
    server.kill();
    // Down: no acknowledgement, and health says so.
    let (status, answer) = a
        .api("publish", json!({"channel": "chat:e", "data": 2}))
        .await;
    assert!(answer.get("error").is_some(), "{status} {answer}");
    let (status, _) = http(a.addr, "GET", "/healthz", &[], "").await;
    assert_eq!(status, 503);
    // Back, empty (no persistence): the node recovers by itself.
    server.restart();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (status, _) = http(a.addr, "GET", "/healthz", &[], "").await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "healthz stays {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (_, answer) = a
        .api("publish", json!({"channel": "chat:e", "data": 3}))
        .await;
    assert_eq!(answer["result"]["offset"], 1, "a new stream: {answer}");
    assert_ne!(answer["result"]["epoch"], old_epoch);
    // The subscriber learns its position is gone, and that it cannot recover.
    assert_eq!(client.closed().await.0, 3010);
    let mut again = Client::connect(&a, &token("ada")).await;
    let reply = again
        .call(json!({"subscribe": {"channel": "chat:e", "recover": true, "offset": 1, "epoch": old_epoch}}))
        .await;
    // `recovered` is left out when false, as Centrifugo does.
    assert_ne!(reply["subscribe"]["recovered"], true, "{reply}");
    assert_eq!(reply["subscribe"]["was_recovering"], true, "{reply}");
    assert_ne!(reply["subscribe"]["epoch"], old_epoch, "{reply}");
}

#[tokio::test]
async fn info_lists_every_node() {
    let server = RedisServer::start();
    let a = TestHub::start(redis_config(&server)).await;
    let b = TestHub::start(redis_config(&server)).await;
    let (_bob, _) = subscribed(&b, "bob", "chat:i").await;
    // Each node reports itself once a second after start, then every few seconds.
    let deadline = std::time::Instant::now() + WAIT;
    let nodes = loop {
        let (_, info) = a.api("info", json!({})).await;
        let nodes = info["result"]["nodes"].as_array().unwrap().clone();
        if nodes.len() == 2 {
            break nodes;
        }
        assert!(std::time::Instant::now() < deadline, "{info}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        nodes[0]["uid"],
        json!(a.node.uid()),
        "this node first: {nodes:?}"
    );
    assert_eq!(nodes[1]["uid"], json!(b.node.uid()), "{nodes:?}");
    assert_eq!(nodes[1]["name"], "duplex-hub");
}

#[tokio::test]
async fn channels_spread_over_three_redis_shards_and_work_across_nodes() {
    let servers = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    let sharded = || {
        let mut config = redis_config(&servers[0]);
        config.redis = servers.iter().map(|s| s.url.clone()).collect();
        config
    };
    let a = TestHub::start(sharded()).await;
    let b = TestHub::start(sharded()).await;
    let channels: Vec<String> = (0..24).map(|i| format!("chat:shard-{i}")).collect();
    let mut client = Client::connect(&b, &token("bob")).await;
    for channel in &channels {
        let reply = client
            .call(json!({"subscribe": {"channel": channel}}))
            .await;
        assert!(reply.get("error").is_none(), "{reply}");
    }
    for channel in &channels {
        let (_, answer) = a
            .api(
                "publish",
                json!({"channel": channel, "data": {"c": channel}}),
            )
            .await;
        assert_eq!(answer["result"]["offset"], 1, "{answer}");
    }
    let mut got = Vec::new();
    for _ in &channels {
        let push = client.push().await;
        assert_eq!(push["pub"]["data"]["c"], push["channel"], "{push}");
        got.push(push["channel"].as_str().unwrap().to_owned());
    }
    got.sort();
    let mut want = channels.clone();
    want.sort();
    assert_eq!(got, want);
    // Every Redis keeps some of the channels, and no channel is on two.
    let mut total = 0;
    for server in &servers {
        let mut conn = redis::Client::open(server.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let metas: Vec<String> = redis::cmd("KEYS")
            .arg("duplex:{chat:shard-*}:m")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!metas.is_empty(), "a shard without channels");
        total += metas.len();
    }
    assert_eq!(total, channels.len());
    // Control messages still reach other nodes.
    let (_, answer) = a.api("disconnect", json!({"user": "bob"})).await;
    assert_eq!(answer["result"], json!({}));
    assert_eq!(client.closed().await.0, 3503);
}

#[tokio::test]
async fn a_redis_cluster_serves_nodes_that_publish_receive_and_recover_across_each_other() {
    let cluster = RedisCluster::start(3);
    let on_cluster = || {
        let mut config = config();
        config.engine = EngineKind::Redis;
        config.redis = cluster.urls();
        config.redis_cluster = true;
        config
    };
    let mut a = TestHub::start(on_cluster()).await;
    let b = TestHub::start(on_cluster()).await;
    let channels: Vec<String> = (0..12).map(|i| format!("chat:slot-{i}")).collect();
    let mut client = Client::connect(&a, &token("ada")).await;
    let mut epochs = Vec::new();
    for channel in &channels {
        let reply = client
            .call(json!({"subscribe": {"channel": channel}}))
            .await;
        assert!(reply.get("error").is_none(), "{reply}");
        epochs.push(reply["subscribe"]["epoch"].clone());
    }
    for channel in &channels {
        let (_, answer) = b
            .api("publish", json!({"channel": channel, "data": {"n": 1}}))
            .await;
        assert_eq!(answer["result"]["offset"], 1, "{answer}");
    }
    let mut got = Vec::new();
    for _ in &channels {
        let push = client.push().await;
        assert_eq!(push["pub"]["offset"], 1, "{push}");
        got.push(push["channel"].as_str().unwrap().to_owned());
    }
    got.sort();
    let mut want = channels.clone();
    want.sort();
    assert_eq!(got, want);
    // The client's node goes; what was published meanwhile is recovered on the other.
    a.stop().await;
    for channel in &channels {
        for n in 2..=3 {
            let (status, _) = b
                .api("publish", json!({"channel": channel, "data": {"n": n}}))
                .await;
            assert_eq!(status, 200);
        }
    }
    let mut again = Client::connect(&b, &token("ada")).await;
    for (channel, epoch) in channels.iter().zip(&epochs) {
        let reply = again
            .call(json!({"subscribe": {"channel": channel, "recover": true, "offset": 1, "epoch": epoch}}))
            .await;
        assert_eq!(recovered_offsets(&reply), [2, 3], "{reply}");
    }
    // Control messages and node info cross the Cluster too.
    let (_, info) = b.api("info", json!({})).await;
    let nodes = info["result"]["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["uid"], json!(b.node.uid()), "{info}");
    let (_, answer) = b.api("disconnect", json!({"user": "ada"})).await;
    assert_eq!(answer["result"], json!({}));
    assert_eq!(again.closed().await.0, 3503);
    let (status, _) = http(b.addr, "GET", "/healthz", &[], "").await;
    assert_eq!(status, 200);
}
