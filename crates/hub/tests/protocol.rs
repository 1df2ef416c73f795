//! Every command, error and disconnect code, over real WebSocket connections.

mod common;

use common::*;
use duplex_hub::auth::{unix_now, Claims};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn connect_answers_client_version_ping_and_pong() {
    let hub = TestHub::start(config()).await;
    let mut client = Client::open(&hub).await;
    let reply = client
        .call(json!({"connect": {"token": token("42"), "name": "test", "version": "1"}}))
        .await;
    let result = &reply["connect"];
    assert!(!result["client"].as_str().unwrap().is_empty(), "{reply}");
    assert!(
        result["version"]
            .as_str()
            .unwrap()
            .starts_with("duplex-hub "),
        "{reply}"
    );
    assert_eq!(result["ping"], 25);
    assert_eq!(result["pong"], true);
    assert!(
        result.get("expires").is_none(),
        "no exp, no expiry: {reply}"
    );

    let exp = unix_now() + 600;
    let mut client = Client::open(&hub).await;
    let reply = client
        .call(json!({"connect": {"token": token_with(Claims { sub: "7".into(), exp: Some(exp), ..Default::default() })}}))
        .await;
    assert_eq!(reply["connect"]["expires"], true, "{reply}");
    let ttl = reply["connect"]["ttl"].as_u64().unwrap();
    assert!((590..=600).contains(&ttl), "{reply}");
}

#[tokio::test]
async fn tokens_missing_expired_and_forged_get_the_protocol_codes() {
    let hub = TestHub::start(config()).await;
    // Missing token, anonymous off: 101, the connection stays for the client to close.
    let mut client = Client::open(&hub).await;
    let reply = client.call(json!({"connect": {}})).await;
    assert_eq!(error_code(&reply), 101);
    // Expired: 109, so that the SDK fetches a new token.
    let mut client = Client::open(&hub).await;
    let expired = token_with(Claims {
        sub: "1".into(),
        exp: Some(unix_now() - 5),
        ..Default::default()
    });
    let reply = client.call(json!({"connect": {"token": expired}})).await;
    assert_eq!(error_code(&reply), 109);
    // Forged: disconnect 3500, do not reconnect.
    let mut client = Client::open(&hub).await;
    let forged = duplex_hub::auth::sign(
        "another-secret-another-secret-another",
        &Claims {
            sub: "1".into(),
            ..Default::default()
        },
    );
    client.send(json!({"connect": {"token": forged}})).await;
    assert_eq!(client.closed().await, (3500, "invalid token".into()));
    let mut client = Client::open(&hub).await;
    client
        .send(json!({"connect": {"token": "not.a.jwt"}}))
        .await;
    assert_eq!(client.closed().await.0, 3500);
    assert_eq!(hub.node.metrics.auth_failures.get("invalid"), 2);
    assert_eq!(hub.node.metrics.auth_failures.get("expired"), 1);
    assert_eq!(hub.node.metrics.auth_failures.get("missing token"), 1);
}

#[tokio::test]
async fn anonymous_clients_only_where_allowed() {
    let mut cfg = config();
    cfg.allow_anonymous = true;
    cfg.namespaces.insert(
        "public".into(),
        duplex_hub::config::NamespaceOptions {
            allow_subscribe_for_anonymous: Some(true),
            allow_publish_for_subscriber: Some(true),
            ..Default::default()
        },
    );
    cfg.namespaces.insert(
        "open".into(),
        duplex_hub::config::NamespaceOptions {
            allow_subscribe_for_anonymous: Some(true),
            allow_publish_for_anonymous: Some(true),
            allow_publish_for_subscriber: Some(true),
            ..Default::default()
        },
    );
    let hub = TestHub::start(cfg).await;
    let mut client = Client::connect(&hub, "").await;
    for channel in ["public:news", "open:news"] {
        let reply = client
            .call(json!({"subscribe": {"channel": channel}}))
            .await;
        assert!(reply.get("subscribe").is_some(), "{reply}");
    }
    let publish = |channel: &str| json!({"publish": {"channel": channel, "data": {}}});
    let reply = client.call(publish("public:news")).await;
    assert_eq!(
        error_code(&reply),
        103,
        "subscribing is allowed, publishing not"
    );
    let reply = client.call(publish("open:news")).await;
    assert!(reply.get("publish").is_some(), "{reply}");
    let reply = client
        .call(json!({"subscribe": {"channel": "chat:room"}}))
        .await;
    assert_eq!(error_code(&reply), 103);
    let reply = client.call(json!({"refresh": {"token": token("1")}})).await;
    assert_eq!(
        error_code(&reply),
        107,
        "anonymous connections have nothing to refresh"
    );
}

#[tokio::test]
async fn protocol_violations_disconnect_with_3501() {
    let hub = TestHub::start(config()).await;
    for (what, text) in [
        (
            "a command before connect",
            "{\"id\":1,\"subscribe\":{\"channel\":\"chat:a\"}}",
        ),
        ("not JSON", "hello"),
        ("a command without id", "{\"connect\":{}}"),
    ] {
        let mut client = Client::open(&hub).await;
        client.send_raw(text).await;
        assert_eq!(
            client.closed().await,
            (3501, "bad request".into()),
            "{what}"
        );
    }
    let mut client = Client::connect(&hub, &token("1")).await;
    client.send(json!({"connect": {"token": token("1")}})).await;
    assert_eq!(client.closed().await.0, 3501, "a second connect");
    let mut client = Client::connect(&hub, &token("1")).await;
    client
        .ws
        .send(duplex::Message::binary(vec![1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(client.closed().await.0, 3501, "binary on the JSON protocol");
}

#[tokio::test]
async fn no_connect_in_time_is_stale() {
    let mut cfg = config();
    cfg.connect_timeout = Duration::from_millis(200);
    let hub = TestHub::start(cfg).await;
    let mut client = Client::open(&hub).await;
    assert_eq!(client.closed().await, (3502, "stale".into()));
}

#[tokio::test]
async fn publish_is_acknowledged_and_pushed_to_subscribers_with_its_offset() {
    let hub = TestHub::start(config()).await;
    let mut alice = Client::connect(&hub, &token("alice")).await;
    let mut bob = Client::connect(&hub, &token("bob")).await;
    let sub = bob
        .call(json!({"subscribe": {"channel": "chat:lobby"}}))
        .await;
    let sub = &sub["subscribe"];
    assert_eq!(
        (sub["recoverable"].clone(), sub["positioned"].clone()),
        (json!(true), json!(true))
    );
    assert!(!sub["epoch"].as_str().unwrap().is_empty());
    assert!(
        sub.get("offset").is_none(),
        "a new channel is at offset 0: {sub}"
    );
    alice
        .call(json!({"subscribe": {"channel": "chat:lobby"}}))
        .await;
    let ack = alice
        .call(json!({"publish": {"channel": "chat:lobby", "data": {"text": "hi"}}}))
        .await;
    assert_eq!(ack["publish"], json!({}), "{ack}");
    let push = bob.push().await;
    assert_eq!(push["channel"], "chat:lobby");
    assert_eq!(push["pub"]["data"], json!({"text": "hi"}));
    assert_eq!(push["pub"]["offset"], 1);
    assert_eq!(push["pub"]["info"]["user"], "alice");
    assert_eq!(push["pub"]["info"]["client"], json!(alice.client_id));
    let own = alice.push().await;
    assert_eq!(
        own["pub"]["offset"], 1,
        "the publisher gets its own publication too"
    );
}

#[tokio::test]
async fn publish_and_subscribe_refusals() {
    let mut cfg = config();
    cfg.namespaces.insert(
        "locked".into(),
        duplex_hub::config::NamespaceOptions {
            allow_subscribe_for_client: Some(false),
            ..Default::default()
        },
    );
    let hub = TestHub::start(cfg).await;
    let mut client = Client::connect(&hub, &token("u")).await;
    let reply = client
        .call(json!({"subscribe": {"channel": "nosuch:x"}}))
        .await;
    assert_eq!(error_code(&reply), 102, "unknown namespace");
    let reply = client.call(json!({"subscribe": {"channel": ""}})).await;
    assert_eq!(error_code(&reply), 102, "empty channel name");
    let reply = client
        .call(json!({"subscribe": {"channel": "locked:x"}}))
        .await;
    assert_eq!(error_code(&reply), 103);
    client
        .call(json!({"subscribe": {"channel": "chat:x"}}))
        .await;
    let reply = client
        .call(json!({"subscribe": {"channel": "chat:x"}}))
        .await;
    assert_eq!(error_code(&reply), 105);
    // Publishing: chat allows subscribers; the default namespace does not.
    let reply = client
        .call(json!({"publish": {"channel": "chat:y", "data": 1}}))
        .await;
    assert_eq!(error_code(&reply), 103, "not subscribed");
    client
        .call(json!({"subscribe": {"channel": "plain"}}))
        .await;
    let reply = client
        .call(json!({"publish": {"channel": "plain", "data": 1}}))
        .await;
    assert_eq!(
        error_code(&reply),
        103,
        "allow_publish_for_subscriber is off by default"
    );
    let reply = client.call(json!({"publish": {"channel": "chat:x"}})).await;
    assert_eq!(error_code(&reply), 107, "publish without data");
    let reply = client
        .call(json!({"publish": {"channel": "nosuch:x", "data": 1}}))
        .await;
    assert_eq!(error_code(&reply), 102);
    let reply = client.call(json!({"rpc": {"method": "x"}})).await;
    assert_eq!(error_code(&reply), 108, "rpc");
    let reply = client
        .call(json!({"sub_refresh": {"channel": "chat:nosub", "token": "t"}}))
        .await;
    assert_eq!(
        error_code(&reply),
        103,
        "sub_refresh without the subscription"
    );
    let reply = client.call(json!({"ping": {}})).await;
    assert_eq!(reply["ping"], json!({}));
}

#[tokio::test]
async fn unsubscribe_stops_the_pushes() {
    let hub = TestHub::start(config()).await;
    let mut client = Client::connect(&hub, &token("u")).await;
    client
        .call(json!({"subscribe": {"channel": "chat:a"}}))
        .await;
    client
        .call(json!({"subscribe": {"channel": "chat:b"}}))
        .await;
    let reply = client
        .call(json!({"unsubscribe": {"channel": "chat:a"}}))
        .await;
    assert_eq!(reply["unsubscribe"], json!({}));
    hub.api("publish", json!({"channel": "chat:a", "data": "gone"}))
        .await;
    hub.api("publish", json!({"channel": "chat:b", "data": "here"}))
        .await;
    // Pushes arrive in publish order, so "here" coming first means "gone" never will.
    let push = client.push().await;
    assert_eq!(
        (push["channel"].clone(), push["pub"]["data"].clone()),
        (json!("chat:b"), json!("here"))
    );
    let again = client
        .call(json!({"subscribe": {"channel": "chat:a"}}))
        .await;
    assert!(
        again.get("subscribe").is_some(),
        "can subscribe again: {again}"
    );
}

#[tokio::test]
async fn history_with_limit_since_and_reverse() {
    let hub = TestHub::start(config()).await;
    let mut client = Client::connect(&hub, &token("u")).await;
    for i in 1..=5 {
        hub.api("publish", json!({"channel": "chat:h", "data": i}))
            .await;
    }
    let reply = client
        .call(json!({"history": {"channel": "chat:h", "limit": -1}}))
        .await;
    assert_eq!(error_code(&reply), 103, "history needs a subscription");
    let sub = client
        .call(json!({"subscribe": {"channel": "chat:h"}}))
        .await;
    let epoch = sub["subscribe"]["epoch"].clone();
    assert_eq!(sub["subscribe"]["offset"], 5);
    let data = |reply: &Value| -> Vec<i64> {
        reply["history"]["publications"]
            .as_array()
            .map_or(vec![], |a| {
                a.iter().map(|p| p["data"].as_i64().unwrap()).collect()
            })
    };
    let all = client
        .call(json!({"history": {"channel": "chat:h", "limit": -1}}))
        .await;
    assert_eq!(data(&all), [1, 2, 3, 4, 5]);
    assert_eq!(
        (
            all["history"]["offset"].clone(),
            all["history"]["epoch"].clone()
        ),
        (json!(5), epoch.clone())
    );
    let position = client.call(json!({"history": {"channel": "chat:h"}})).await;
    assert!(data(&position).is_empty(), "limit 0: position only");
    assert_eq!(position["history"]["offset"], 5);
    let since = client.call(json!({"history": {"channel": "chat:h", "limit": 2, "since": {"offset": 2, "epoch": epoch}}})).await;
    assert_eq!(data(&since), [3, 4]);
    let reverse = client
        .call(json!({"history": {"channel": "chat:h", "limit": 2, "reverse": true}}))
        .await;
    assert_eq!(data(&reverse), [5, 4]);
    let wrong = client.call(json!({"history": {"channel": "chat:h", "limit": -1, "since": {"offset": 2, "epoch": "other"}}})).await;
    assert_eq!(error_code(&wrong), 112);
}

#[tokio::test]
async fn presence_stats_and_join_leave() {
    let hub = TestHub::start(config()).await;
    let mut alice = Client::connect(&hub, &token("alice")).await;
    alice
        .call(json!({"subscribe": {"channel": "chat:p", "join_leave": true}}))
        .await;
    let mut bob = Client::connect(&hub, &token("bob")).await;
    bob.call(json!({"subscribe": {"channel": "chat:p"}})).await;
    let join = alice.push().await;
    assert_eq!(join["channel"], "chat:p");
    assert_eq!(join["join"]["info"]["user"], "bob");
    assert_eq!(join["join"]["info"]["client"], json!(bob.client_id));
    let mut bob2 = Client::connect(&hub, &token("bob")).await;
    bob2.call(json!({"subscribe": {"channel": "chat:p"}})).await;
    alice.push().await;
    let presence = alice.call(json!({"presence": {"channel": "chat:p"}})).await;
    let map = presence["presence"]["presence"].as_object().unwrap();
    assert_eq!(map.len(), 3, "{presence}");
    assert_eq!(map[&bob.client_id]["user"], "bob");
    let stats = alice
        .call(json!({"presence_stats": {"channel": "chat:p"}}))
        .await;
    assert_eq!(
        stats["presence_stats"],
        json!({"num_clients": 3, "num_users": 2})
    );
    bob.call(json!({"unsubscribe": {"channel": "chat:p"}}))
        .await;
    let leave = alice.push().await;
    assert_eq!(leave["leave"]["info"]["client"], json!(bob.client_id));
    drop(bob2);
    let leave = alice.push().await;
    assert_eq!(
        leave["leave"]["info"]["user"], "bob",
        "a dropped connection leaves too"
    );
    let stats = alice
        .call(json!({"presence_stats": {"channel": "chat:p"}}))
        .await;
    assert_eq!(
        stats["presence_stats"],
        json!({"num_clients": 1, "num_users": 1})
    );
    let reply = alice
        .call(json!({"presence": {"channel": "chat:other"}}))
        .await;
    assert_eq!(error_code(&reply), 103, "presence needs a subscription");
}

#[tokio::test]
async fn presence_can_be_off() {
    let mut cfg = config();
    cfg.channels.presence = false;
    let hub = TestHub::start(cfg).await;
    let mut client = Client::connect(&hub, &token("u")).await;
    client
        .call(json!({"subscribe": {"channel": "plain"}}))
        .await;
    let reply = client.call(json!({"presence": {"channel": "plain"}})).await;
    assert_eq!(error_code(&reply), 108);
    let reply = client
        .call(json!({"presence_stats": {"channel": "plain"}}))
        .await;
    assert_eq!(error_code(&reply), 108);
}

#[tokio::test]
async fn refresh_extends_the_connection_and_refuses_another_user() {
    let hub = TestHub::start(config()).await;
    let soon = unix_now() + 100;
    let mut client = Client::connect(
        &hub,
        &token_with(Claims {
            sub: "u".into(),
            exp: Some(soon),
            ..Default::default()
        }),
    )
    .await;
    let later = unix_now() + 3600;
    let reply = client.call(json!({"refresh": {"token": token_with(Claims { sub: "u".into(), exp: Some(later), ..Default::default() })}})).await;
    assert_eq!(reply["refresh"]["expires"], true, "{reply}");
    assert!(reply["refresh"]["ttl"].as_u64().unwrap() > 3500, "{reply}");
    assert_eq!(reply["refresh"]["client"], json!(client.client_id));
    let reply = client.call(json!({"refresh": {"token": token_with(Claims { sub: "u".into(), exp: Some(unix_now() - 1), ..Default::default() })}})).await;
    assert_eq!(error_code(&reply), 109);
    client
        .send(json!({"refresh": {"token": token("mallory")}}))
        .await;
    assert_eq!(client.closed().await.0, 3500);
}

#[tokio::test]
async fn an_expired_connection_gets_expired_close_delay_to_refresh_then_3005() {
    let mut cfg = config();
    cfg.expired_close_delay = Duration::from_millis(1500);
    let hub = TestHub::start(cfg).await;
    let claims = |exp| Claims {
        sub: "u".into(),
        exp: Some(exp),
        ..Default::default()
    };
    let mut refreshed = Client::connect(&hub, &token_with(claims(unix_now() + 2))).await;
    let mut lapsed = Client::connect(&hub, &token_with(claims(unix_now() + 2))).await;
    // The SDKs refresh once ttl has run out; the token's two seconds have to pass first.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let reply = refreshed
        .call(json!({"refresh": {"token": token_with(claims(unix_now() + 3600))}}))
        .await;
    assert_eq!(
        reply["refresh"]["expires"], true,
        "a refresh after exp, within the delay: {reply}"
    );
    assert_eq!(lapsed.closed().await, (3005, "expired".into()));
    let reply = refreshed.call(json!({"ping": {}})).await;
    assert_eq!(reply["ping"], json!({}), "the refreshed connection stays");
}

#[tokio::test]
async fn commands_after_a_refused_connect_are_dropped_not_fatal() {
    let hub = TestHub::start(config()).await;
    let mut client = Client::open(&hub).await;
    let expired = token_with(Claims {
        sub: "u".into(),
        exp: Some(unix_now() - 5),
        ..Default::default()
    });
    let batch = format!(
        "{}\n{}",
        json!({"id": 1, "connect": {"token": expired}}),
        json!({"id": 2, "subscribe": {"channel": "chat:a"}})
    );
    client.send_raw(&batch).await;
    assert_eq!(error_code(&client.reply(1).await), 109);
    // The SDK would now close and come back with a fresh token; this client retries here.
    let reply = client.call(json!({"connect": {"token": token("u")}})).await;
    assert!(reply.get("connect").is_some(), "{reply}");
    let reply = client
        .call(json!({"subscribe": {"channel": "chat:a"}}))
        .await;
    assert!(reply.get("subscribe").is_some(), "{reply}");
    assert!(
        client.backlog_is_empty(),
        "no reply to the dropped subscribe"
    );
}

#[tokio::test]
async fn server_side_subscriptions_from_the_token() {
    let hub = TestHub::start(config()).await;
    let mut client = Client::open(&hub).await;
    let token = token_with(Claims {
        sub: "u".into(),
        channels: vec!["chat:news".into()],
        ..Default::default()
    });
    let reply = client.call(json!({"connect": {"token": token}})).await;
    let subs = &reply["connect"]["subs"];
    assert_eq!(subs["chat:news"]["recoverable"], true, "{reply}");
    hub.api("publish", json!({"channel": "chat:news", "data": "x"}))
        .await;
    let push = client.push().await;
    assert_eq!(
        (push["channel"].clone(), push["pub"]["data"].clone()),
        (json!("chat:news"), json!("x"))
    );
}

#[tokio::test]
async fn pings_need_pongs() {
    let mut cfg = config();
    cfg.ping_interval = Duration::from_secs(1);
    cfg.pong_timeout = Duration::from_millis(300);
    let hub = TestHub::start(cfg).await;
    let mut answering = Client::connect(&hub, &token("a")).await;
    let mut silent = Client::connect(&hub, &token("b")).await;
    assert_eq!(
        answering.receive().await,
        json!({}),
        "the hub's ping is an empty reply"
    );
    answering.send_raw("{}").await;
    assert_eq!(
        answering.receive().await,
        json!({}),
        "a second ping: still connected"
    );
    answering.send_raw("{}").await;
    assert_eq!(silent.receive().await, json!({}));
    assert_eq!(silent.closed().await, (3012, "no pong".into()));
    let reply = answering.call(json!({"ping": {}})).await;
    assert_eq!(
        reply["ping"],
        json!({}),
        "the answering client is still served"
    );
}

#[tokio::test]
async fn shutdown_disconnects_clients_with_3001() {
    let mut hub = TestHub::start(config()).await;
    let mut client = Client::connect(&hub, &token("u")).await;
    client
        .call(json!({"subscribe": {"channel": "chat:a"}}))
        .await;
    let stop = hub.stop();
    let (closed, ()) = tokio::join!(client.closed(), stop);
    assert_eq!(closed, (3001, "shutdown".into()));
}

#[tokio::test]
async fn several_commands_in_one_message_get_their_replies() {
    let hub = TestHub::start(config()).await;
    let mut client = Client::open(&hub).await;
    let batch = format!(
        "{}\n{}\n{}",
        json!({"id": 1, "connect": {"token": token("u")}}),
        json!({"id": 2, "subscribe": {"channel": "chat:batch"}}),
        json!({"id": 3, "publish": {"channel": "chat:batch", "data": "b"}})
    );
    client.send_raw(&batch).await;
    assert!(client.reply(1).await.get("connect").is_some());
    assert!(client.reply(2).await.get("subscribe").is_some());
    assert_eq!(client.reply(3).await["publish"], json!({}));
    assert_eq!(client.push().await["pub"]["data"], "b");
}

#[tokio::test]
async fn the_api_unsubscribes_and_disconnects_users_with_pushes() {
    let hub = TestHub::start(config()).await;
    let mut client = Client::connect(&hub, &token("target")).await;
    let mut other = Client::connect(&hub, &token("other")).await;
    client
        .call(json!({"subscribe": {"channel": "chat:u"}}))
        .await;
    client
        .call(json!({"subscribe": {"channel": "chat:v"}}))
        .await;
    other
        .call(json!({"subscribe": {"channel": "chat:u"}}))
        .await;
    let (_, answer) = hub
        .api(
            "unsubscribe",
            json!({"user": "target", "channel": "chat:u"}),
        )
        .await;
    assert_eq!(answer["result"], json!({}));
    let push = client.push().await;
    assert_eq!(push["channel"], "chat:u");
    assert_eq!(
        push["unsubscribe"],
        json!({"code": 2000, "reason": "server unsubscribe"})
    );
    hub.api("publish", json!({"channel": "chat:u", "data": "after"}))
        .await;
    hub.api("publish", json!({"channel": "chat:v", "data": "v"}))
        .await;
    assert_eq!(
        client.push().await["channel"],
        "chat:v",
        "no more chat:u publications"
    );
    assert_eq!(
        other.push().await["pub"]["data"],
        "after",
        "other users keep their subscription"
    );

    let (_, answer) = hub.api("disconnect", json!({"user": "target"})).await;
    assert_eq!(answer["result"], json!({}));
    let disconnect = client.receive().await;
    assert_eq!(
        disconnect["push"]["disconnect"],
        json!({"code": 3503, "reason": "force disconnect", "reconnect": false})
    );
    assert_eq!(client.closed().await, (3503, "force disconnect".into()));
    hub.api(
        "disconnect",
        json!({"user": "other", "client": other.client_id, "reconnect": true}),
    )
    .await;
    assert_eq!(other.closed().await.0, 3011);
}

#[tokio::test]
async fn an_active_client_with_an_expired_token_is_still_disconnected() {
    let mut cfg = config();
    cfg.ping_interval = Duration::from_secs(1);
    cfg.pong_timeout = Duration::from_millis(500);
    cfg.expired_close_delay = Duration::from_millis(500);
    let hub = TestHub::start(cfg).await;
    let claims = Claims {
        sub: "u".into(),
        exp: Some(unix_now() + 2),
        ..Default::default()
    };
    let mut client = Client::connect(&hub, &token_with(claims)).await;
    // Answer every ping and keep sending commands: activity must not push the end back.
    let started = std::time::Instant::now();
    loop {
        match tokio::time::timeout(WAIT, client.ws.recv())
            .await
            .expect("the hub acts in time")
        {
            Some(Ok(duplex::Message::Text(text))) => {
                if text.as_str().split('\n').any(|l| l == "{}") {
                    client.send_raw("{}").await;
                }
                client.send(json!({"ping": {}})).await;
            }
            Some(Ok(duplex::Message::Close(Some(frame)))) => {
                assert_eq!(frame.code.as_u16(), 3005, "{frame:?}");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "never disconnected"
        );
    }
}

#[tokio::test]
async fn server_side_subscriptions_recover_from_the_position_in_connect_subs() {
    let hub = TestHub::start(config()).await;
    let (_, first) = hub
        .api("publish", json!({"channel": "chat:srv", "data": 1}))
        .await;
    let epoch = first["result"]["epoch"].clone();
    hub.api("publish", json!({"channel": "chat:srv", "data": 2}))
        .await;
    hub.api("publish", json!({"channel": "chat:srv", "data": 3}))
        .await;
    let token = token_with(Claims {
        sub: "u".into(),
        channels: vec!["chat:srv".into()],
        ..Default::default()
    });
    let mut client = Client::open(&hub).await;
    let reply = client
        .call(json!({"connect": {"token": token, "subs": {"chat:srv": {"recover": true, "offset": 1, "epoch": epoch}}}}))
        .await;
    let sub = &reply["connect"]["subs"]["chat:srv"];
    assert_eq!(sub["recovered"], true, "{reply}");
    let data: Vec<_> = sub["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["data"].clone())
        .collect();
    assert_eq!(data, [json!(2), json!(3)]);
}

#[tokio::test]
async fn reject_unrecovered_flag_gets_error_112_and_no_subscription() {
    let hub = TestHub::start(config()).await;
    hub.api("publish", json!({"channel": "chat:f", "data": 1}))
        .await;
    let mut client = Client::connect(&hub, &token("u")).await;
    let reply = client
        .call(json!({"subscribe": {"channel": "chat:f", "recover": true, "offset": 1, "epoch": "wrong", "flag": 3}}))
        .await;
    assert_eq!(error_code(&reply), 112);
    let reply = client
        .call(json!({"subscribe": {"channel": "chat:f", "flag": 3}}))
        .await;
    assert!(
        reply.get("subscribe").is_some(),
        "not left subscribed by the refusal: {reply}"
    );
    // Without the flag, an unrecoverable position is a success with recovered: false.
    let mut other = Client::connect(&hub, &token("u")).await;
    let reply = other
        .call(json!({"subscribe": {"channel": "chat:f", "recover": true, "offset": u64::MAX, "epoch": "wrong"}}))
        .await;
    assert!(reply["subscribe"].get("recovered").is_none(), "{reply}");
}

#[tokio::test]
async fn many_history_replies_in_one_message_are_written_in_parts() {
    let hub = TestHub::start(config()).await;
    let data = json!("y".repeat(1000));
    for _ in 0..300 {
        hub.api("publish", json!({"channel": "chat:big", "data": data}))
            .await;
    }
    let mut client = Client::connect(&hub, &token("u")).await;
    client
        .call(json!({"subscribe": {"channel": "chat:big"}}))
        .await;
    // Five whole-history reads (about 320 KB each) in one client message.
    let batch: Vec<String> = (100..105)
        .map(|id| json!({"id": id, "history": {"channel": "chat:big", "limit": -1}}).to_string())
        .collect();
    client.send_raw(&batch.join("\n")).await;
    let mut messages = 0;
    let mut replies = 0;
    while replies < 5 {
        match tokio::time::timeout(WAIT, client.ws.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            duplex::Message::Text(text) => {
                messages += 1;
                for line in text.as_str().split('\n') {
                    let reply: serde_json::Value = serde_json::from_str(line).unwrap();
                    if reply["history"]["publications"]
                        .as_array()
                        .is_some_and(|p| p.len() == 300)
                    {
                        replies += 1;
                    }
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        messages >= 5,
        "each reply over the budget is written before the next is read ({messages} messages)"
    );
}

#[tokio::test]
async fn a_client_publish_with_an_idempotency_key_is_stored_once() {
    let hub = TestHub::start(config()).await;
    let mut client = Client::connect(&hub, &token("retrier")).await;
    client
        .call(json!({"subscribe": {"channel": "chat:retry"}}))
        .await;
    let publish =
        json!({"publish": {"channel": "chat:retry", "data": {"n": 1}, "idempotency_key": "k1"}});
    for _ in 0..2 {
        let reply = client.call(publish.clone()).await;
        assert!(reply.get("publish").is_some(), "{reply}");
    }
    let reply = client
        .call(json!({"history": {"channel": "chat:retry", "limit": 10}}))
        .await;
    let publications = reply["history"]["publications"].as_array().unwrap();
    assert_eq!(publications.len(), 1, "stored once: {reply}");
    // Another key is another publication.
    let other =
        json!({"publish": {"channel": "chat:retry", "data": {"n": 2}, "idempotency_key": "k2"}});
    client.call(other).await;
    let reply = client
        .call(json!({"history": {"channel": "chat:retry", "limit": 10}}))
        .await;
    assert_eq!(
        reply["history"]["publications"].as_array().unwrap().len(),
        2
    );
}
