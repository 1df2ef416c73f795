//! Private and user-limited channels: subscription tokens, sub_refresh, `#` channels.

mod common;

use common::*;
use duplex_hub::auth::{unix_now, Claims};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn user_limited_channels_only_for_their_users() {
    let hub = TestHub::start(config()).await;
    let mut alice = Client::connect(&hub, &token("alice")).await;
    let mut carol = Client::connect(&hub, &token("carol")).await;
    let reply = alice
        .call(json!({"subscribe": {"channel": "chat:#alice,bob"}}))
        .await;
    assert!(reply.get("subscribe").is_some(), "{reply}");
    let reply = carol
        .call(json!({"subscribe": {"channel": "chat:#alice,bob"}}))
        .await;
    assert_eq!(error_code(&reply), 103);
    let reply = alice
        .call(json!({"publish": {"channel": "chat:#alice,bob", "data": "hi bob"}}))
        .await;
    assert_eq!(reply["publish"], json!({}));
    let mut cfg_hub_open = config();
    cfg_hub_open.channels.allow_publish_for_client = true;
    let open = TestHub::start(cfg_hub_open).await;
    let mut carol = Client::connect(&open, &token("carol")).await;
    let reply = carol
        .call(json!({"publish": {"channel": "dm#alice,bob", "data": "x"}}))
        .await;
    assert_eq!(
        error_code(&reply),
        103,
        "publishing into another users' channel"
    );
}

fn channel_token(user: &str, channel: &str, exp: Option<u64>, info: Option<&str>) -> String {
    token_with(Claims {
        sub: user.into(),
        channel: Some(channel.into()),
        exp,
        info: info.map(|i| serde_json::value::RawValue::from_string(i.into()).unwrap()),
        ..Default::default()
    })
}

fn private_config() -> duplex_hub::Config {
    let mut cfg = config();
    cfg.namespaces.insert(
        "private".into(),
        duplex_hub::config::NamespaceOptions {
            require_subscription_token: Some(true),
            allow_publish_for_subscriber: Some(true),
            join_leave: Some(true),
            ..Default::default()
        },
    );
    cfg
}

#[tokio::test]
async fn private_channels_need_a_subscription_token_for_that_channel_and_user() {
    let hub = TestHub::start(private_config()).await;
    let mut alice = Client::connect(&hub, &token("alice")).await;
    let reply = alice
        .call(json!({"subscribe": {"channel": "private:room"}}))
        .await;
    assert_eq!(error_code(&reply), 103, "no token");
    let wrong_channel = channel_token("alice", "private:other", None, None);
    let reply = alice
        .call(json!({"subscribe": {"channel": "private:room", "token": wrong_channel}}))
        .await;
    assert_eq!(error_code(&reply), 103, "a token for another channel");
    let wrong_user = channel_token("bob", "private:room", None, None);
    let reply = alice
        .call(json!({"subscribe": {"channel": "private:room", "token": wrong_user}}))
        .await;
    assert_eq!(error_code(&reply), 103, "a token for another user");
    let reply = alice
        .call(json!({"subscribe": {"channel": "private:room", "token": token("alice")}}))
        .await;
    assert_eq!(
        error_code(&reply),
        103,
        "a connection token is not a subscription token"
    );
    let expired = channel_token("alice", "private:room", Some(unix_now() - 5), None);
    let reply = alice
        .call(json!({"subscribe": {"channel": "private:room", "token": expired}}))
        .await;
    assert_eq!(error_code(&reply), 109);
    let good = channel_token(
        "alice",
        "private:room",
        Some(unix_now() + 600),
        Some("{\"role\":\"admin\"}"),
    );
    let reply = alice
        .call(json!({"subscribe": {"channel": "private:room", "token": good}}))
        .await;
    let sub = &reply["subscribe"];
    assert_eq!(sub["expires"], true, "{reply}");
    assert!(sub["ttl"].as_u64().unwrap() > 590, "{reply}");
    // The token's info is the client's chan_info in the channel.
    let presence = alice
        .call(json!({"presence": {"channel": "private:room"}}))
        .await;
    assert_eq!(
        presence["presence"]["presence"][&alice.client_id]["chan_info"],
        json!({"role": "admin"})
    );
    alice
        .call(json!({"publish": {"channel": "private:room", "data": 1}}))
        .await;
    assert_eq!(
        alice.push().await["pub"]["info"]["chan_info"],
        json!({"role": "admin"})
    );
    // A subscription token cannot connect.
    let mut client = Client::open(&hub).await;
    let reply = client
        .call(json!({"connect": {"token": channel_token("alice", "private:room", None, None)}}))
        .await;
    assert_eq!(error_code(&reply), 103);
    // A forged one ends the connection.
    let forged = duplex_hub::auth::sign(
        "another-secret-another-secret-another",
        &Claims {
            sub: "alice".into(),
            channel: Some("private:x".into()),
            ..Default::default()
        },
    );
    alice
        .send(json!({"subscribe": {"channel": "private:x", "token": forged}}))
        .await;
    assert_eq!(alice.closed().await.0, 3500);
}

#[tokio::test]
async fn sub_refresh_extends_a_private_subscription_and_without_it_3006() {
    let mut cfg = private_config();
    cfg.expired_close_delay = Duration::from_millis(300);
    let hub = TestHub::start(cfg).await;
    let mut refreshed = Client::connect(&hub, &token("alice")).await;
    let mut lapsed = Client::connect(&hub, &token("bob")).await;
    let short = |user: &str| channel_token(user, "private:r", Some(unix_now() + 2), None);
    refreshed
        .call(json!({"subscribe": {"channel": "private:r", "token": short("alice")}}))
        .await;
    lapsed
        .call(json!({"subscribe": {"channel": "private:r", "token": short("bob")}}))
        .await;
    let long = channel_token("alice", "private:r", Some(unix_now() + 3600), None);
    let reply = refreshed
        .call(json!({"sub_refresh": {"channel": "private:r", "token": long}}))
        .await;
    assert_eq!(reply["sub_refresh"]["expires"], true, "{reply}");
    assert!(reply["sub_refresh"]["ttl"].as_u64().unwrap() > 3500);
    let wrong = channel_token("alice", "private:other", Some(unix_now() + 3600), None);
    let reply = refreshed
        .call(json!({"sub_refresh": {"channel": "private:r", "token": wrong}}))
        .await;
    assert_eq!(error_code(&reply), 103);
    assert_eq!(lapsed.closed().await, (3006, "subscription expired".into()));
    let reply = refreshed.call(json!({"ping": {}})).await;
    assert_eq!(
        reply["ping"],
        json!({}),
        "the refreshed subscription's connection stays"
    );
}
