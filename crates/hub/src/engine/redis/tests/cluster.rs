//! What the engine does on a Redis Cluster.

use super::*;
use crate::engine::redis::test_server::RedisCluster;

/// A node's engine on a Redis Cluster, what it delivered and the control messages it got.
async fn cluster_node(
    cluster: &RedisCluster,
) -> (
    RedisEngine,
    Delivered,
    Arc<Mutex<Vec<crate::control::Control>>>,
) {
    let delivered: Delivered = Arc::default();
    let d = delivered.clone();
    let delivery: Delivery = Arc::new(move |channel: &str, p: &Publication, epoch: &str| {
        d.lock()
            .unwrap()
            .push((channel.to_owned(), p.offset, epoch.to_owned()));
    });
    let controls: Arc<Mutex<Vec<crate::control::Control>>> = Arc::default();
    let c = controls.clone();
    let options = RedisOptions {
        urls: cluster.urls(),
        cluster: true,
        sentinel_master: None,
        prefix: "hub".into(),
        presence_ttl: Duration::from_secs(60),
        wait: None,
    };
    let engine = RedisEngine::connect(
        &options,
        channels(&Config::default()),
        delivery,
        Arc::new(move |control| c.lock().unwrap().push(control)),
    )
    .await
    .unwrap();
    (engine, delivered, controls)
}

/// Keys held by each master.
async fn keys_per_master(cluster: &RedisCluster) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    for node in &cluster.nodes {
        let mut conn = redis::Client::open(node.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("hub:*")
            .query_async(&mut conn)
            .await
            .unwrap();
        all.push(keys);
    }
    all
}

#[tokio::test]
async fn a_cluster_spreads_channels_over_its_masters_and_nodes_share_them() {
    let cluster = RedisCluster::start(3);
    let (a, _, _) = cluster_node(&cluster).await;
    let (b, on_b, controls_on_b) = cluster_node(&cluster).await;
    let names: Vec<String> = (0..30).map(|i| format!("c{i}")).collect();
    for name in &names {
        b.subscribe(name).await.unwrap();
    }
    // Both nodes publish to every channel: offsets are contiguous across nodes, and
    // one publish per channel and node is in flight at once (several slots per batch).
    let mut acks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        acks.push(a.publish(name, json(&i.to_string()), None));
    }
    for pos in join_all(acks).await {
        assert_eq!(pos.unwrap().offset, 1);
    }
    for name in &names {
        assert_eq!(b.publish(name, json("0"), None).await.unwrap().offset, 2);
    }
    let seen = delivered_n(&on_b, 60).await;
    for name in &names {
        let offsets: Vec<u64> = seen
            .iter()
            .filter(|(c, _, _)| c == name)
            .map(|(_, o, _)| *o)
            .collect();
        assert_eq!(offsets, [1, 2], "{name}: {seen:?}");
    }
    // The same history from either node, in the epoch the feed carried.
    let history = a.history("c7", HistoryQuery::default()).await.unwrap();
    assert_eq!(history.position.offset, 2);
    let epoch = &seen.iter().find(|(c, _, _)| c == "c7").unwrap().2;
    assert_eq!(&history.position.epoch, epoch);
    assert_eq!(
        b.history("c7", HistoryQuery::default())
            .await
            .unwrap()
            .publications
            .len(),
        2
    );
    // Every master keeps some channels; a channel's keys are on one master.
    let keys = keys_per_master(&cluster).await;
    assert!(keys.iter().all(|k| !k.is_empty()), "{keys:?}");
    for name in &names {
        let holders = keys
            .iter()
            .filter(|k| {
                k.iter()
                    .any(|key| key.starts_with(&format!("hub:{{{name}}}:")))
            })
            .count();
        assert_eq!(holders, 1, "{name}: {keys:?}");
    }
    // Idempotency, presence and node info work across slots.
    let once = a
        .publish_once("c3", json("1"), None, "k".into())
        .await
        .unwrap();
    let again = b
        .publish_once("c3", json("1"), None, "k".into())
        .await
        .unwrap();
    assert_eq!(once, again);
    let info = ClientInfo {
        user: "u".into(),
        client: "x".into(),
        conn_info: None,
        chan_info: None,
    };
    a.add_presence("c5", "x", info).await.unwrap();
    assert_eq!(b.presence("c5").await.unwrap().len(), 1);
    a.report_node("node-a", "{}".into(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(b.nodes().await.unwrap(), ["{}"]);
    // Control messages go through the Cluster's sharded pub/sub.
    let control = crate::control::Control::Disconnect {
        user: "u".into(),
        client: None,
        reconnect: false,
    };
    a.control(&control).unwrap().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while controls_on_b.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no control message arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(controls_on_b.lock().unwrap()[0], control);
    b.check_writable().await.unwrap();
}

#[tokio::test]
async fn in_a_cluster_killed_feed_connections_resubscribe_and_catch_up() {
    let cluster = RedisCluster::start(3);
    let (a, _, _) = cluster_node(&cluster).await;
    let (b, on_b, _) = cluster_node(&cluster).await;
    feed_survives_killed_connections(&a, &b, &on_b, &cluster.urls()).await;
}

/// A connection to one node of the cluster (not cluster-aware).
async fn node_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The data of every publication in `channel`'s history, in order.
async fn history_data(engine: &RedisEngine, channel: &str) -> Vec<String> {
    let history = engine
        .history(channel, HistoryQuery::default())
        .await
        .unwrap();
    history
        .publications
        .iter()
        .map(|p| String::from_utf8_lossy(p.data.as_bytes()).into_owned())
        .collect()
}

/// The slot of `channel`'s keys (its hash tag).
async fn channel_slot(cluster: &RedisCluster, channel: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(channel)
        .query_async(&mut node_conn(&cluster.nodes[0].url).await)
        .await
        .unwrap()
}

/// Each node's id, in `cluster.nodes` order.
async fn node_ids(cluster: &RedisCluster) -> Vec<String> {
    let mut ids = Vec::new();
    for node in &cluster.nodes {
        let id: String = redis::cmd("CLUSTER")
            .arg("MYID")
            .query_async(&mut node_conn(&node.url).await)
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

/// Who serves `slot` as `node` sees it: the master's id and the port it announces.
async fn slot_server(node: &RedisServer, slot: u16) -> (String, i64) {
    let ranges: Vec<Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut node_conn(&node.url).await)
        .await
        .unwrap();
    for range in ranges {
        let Value::Array(range) = range else {
            panic!("CLUSTER SLOTS range {range:?}")
        };
        let (Value::Int(first), Value::Int(last), Value::Array(master)) =
            (&range[0], &range[1], &range[2])
        else {
            panic!("CLUSTER SLOTS range {range:?}")
        };
        if (*first..=*last).contains(&i64::from(slot)) {
            let (Value::Int(port), Value::BulkString(id)) = (&master[1], &master[2]) else {
                panic!("CLUSTER SLOTS master {master:?}")
            };
            return (String::from_utf8_lossy(id).into_owned(), *port);
        }
    }
    panic!("no master serves slot {slot}")
}

/// The index in `cluster.nodes` of the master serving `slot`.
async fn slot_owner(cluster: &RedisCluster, slot: u16) -> usize {
    let (id, _) = slot_server(&cluster.nodes[0], slot).await;
    let ids = node_ids(cluster).await;
    ids.iter()
        .position(|i| *i == id)
        .expect("the owner is a node")
}

#[tokio::test]
async fn in_a_cluster_a_publish_follows_its_slot_to_another_master() {
    let cluster = RedisCluster::start(3);
    let (a, _, _) = cluster_node(&cluster).await;
    // A channel with no keys yet, so its slot moves without migrating any.
    let channel = "moving";
    let slot = channel_slot(&cluster, channel).await;
    let owner = slot_owner(&cluster, slot).await;
    let ids = node_ids(&cluster).await;
    let target = (owner + 1) % cluster.nodes.len();
    // Resharding as redis-cli does it, without keys to move: importing on the new owner
    // and migrating on the old, then every master is told the new owner, the new owner
    // first (coming out of importing, it takes a new config epoch, so gossip from the
    // old owner cannot take the slot back).
    let setslot = |node: usize, state: &'static str, id: Option<String>| {
        let url = cluster.nodes[node].url.clone();
        async move {
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("SETSLOT").arg(slot).arg(state);
            if let Some(id) = id {
                cmd.arg(id);
            }
            let _: () = cmd.query_async(&mut node_conn(&url).await).await.unwrap();
        }
    };
    setslot(target, "IMPORTING", Some(ids[owner].clone())).await;
    setslot(owner, "MIGRATING", Some(ids[target].clone())).await;
    let mut order: Vec<usize> = vec![target, owner];
    order.extend((0..cluster.nodes.len()).filter(|i| *i != target && *i != owner));
    for i in order {
        setslot(i, "NODE", Some(ids[target].clone())).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for node in &cluster.nodes {
        while slot_server(node, slot).await.0 != ids[target] {
            assert!(
                Instant::now() < deadline,
                "the masters never agreed on the new owner"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The engine's slot map still names the old owner, which answers MOVED.
    assert_eq!(a.publish(channel, json("1"), None).await.unwrap().offset, 1);
    assert_eq!(a.publish(channel, json("2"), None).await.unwrap().offset, 2);
    let keys = keys_per_master(&cluster).await;
    let prefix = format!("hub:{{{channel}}}:");
    let holders: Vec<usize> = (0..keys.len())
        .filter(|i| keys[*i].iter().any(|k| k.starts_with(&prefix)))
        .collect();
    assert_eq!(holders, [target], "{keys:?}");
    assert_eq!(history_data(&a, channel).await, ["1", "2"]);
}

#[tokio::test]
async fn in_a_cluster_a_publish_whose_reply_is_lost_is_not_sent_again() {
    let cluster = RedisCluster::start(3);
    let channel = "lost";
    let slot = channel_slot(&cluster, channel).await;
    let owner = slot_owner(&cluster, slot).await;
    let eater = ReplyEater::start(cluster.nodes[owner].port).await;
    // The owner announces the relay's port, so clients reach it through the relay.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("cluster-announce-port")
        .arg(eater.port)
        .query_async(&mut node_conn(&cluster.nodes[owner].url).await)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    for node in &cluster.nodes {
        while slot_server(node, slot).await.1 != i64::from(eater.port) {
            assert!(
                Instant::now() < deadline,
                "the cluster never announced the relay"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (a, _, _) = cluster_node(&cluster).await;
    assert_eq!(a.publish(channel, json("1"), None).await.unwrap().offset, 1);
    eater.arm();
    // Stored, but the connection dropped before the reply: not acknowledged, and not
    // sent again (the Cluster client would retry it on a new connection: stored twice).
    let lost = a.publish(channel, json("2"), None).await;
    assert!(lost.is_err(), "acknowledged without a reply: {lost:?}");
    // The Cluster client reconnects in the background: a publish meanwhile may fail
    // without having been sent.
    let deadline = Instant::now() + Duration::from_secs(10);
    let next = loop {
        match a.publish(channel, json("3"), None).await {
            Ok(next) => break next,
            Err(e) => {
                assert!(Instant::now() < deadline, "no reconnect: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    assert_eq!(history_data(&a, channel).await, ["1", "2", "3"]);
    assert_eq!(next.offset, 3);
}

#[tokio::test]
async fn in_a_cluster_publishes_go_on_once_a_replica_takes_over_from_a_killed_master() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1);
    let (a, _, _) = cluster_node(&cluster).await;
    let channel = "failover";
    let slot = channel_slot(&cluster, channel).await;
    let owner = slot_owner(&cluster, slot).await;
    assert_eq!(a.publish(channel, json("1"), None).await.unwrap().offset, 1);
    // The replica has it (right after the cluster is made, it may still be syncing).
    let mut master = node_conn(&cluster.nodes[owner].url).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let replicated: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(100)
            .query_async(&mut master)
            .await
            .unwrap();
        if replicated == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the replica never caught up");
    }
    cluster.nodes[owner].kill();
    // Errors (never acknowledgements) until the replica is promoted, then the next offset:
    // no attempt that failed was stored.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut failed = 0;
    let next = loop {
        match a.publish(channel, json("2"), None).await {
            Ok(next) => break next,
            Err(e) => {
                failed += 1;
                assert!(
                    Instant::now() < deadline,
                    "no publish after the failover: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(failed > 0, "a publish succeeded on a killed master");
    assert_eq!(next.offset, 2);
    assert_eq!(history_data(&a, channel).await, ["1", "2"]);
}
