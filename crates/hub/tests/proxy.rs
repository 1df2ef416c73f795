//! Backend proxies against a real HTTP backend in the test: the application decides
//! connects, refreshes, subscribes, publishes, RPCs and sends, and a backend that is
//! down, slow or answers garbage costs the client one defined error, never the hub.

mod common;

use common::*;
use duplex_hub::config::{Config, NamespaceOptions};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What the backend does with a call.
enum Answer {
    /// 200 with this JSON body.
    Json(Value),
    /// 200 with this body as it is.
    Raw(&'static str),
    /// Another status.
    Status(u16),
    /// Never answers (the hub's timeout must end the call).
    Hang,
}

/// One call the backend received: the path, the JSON body and the headers.
#[derive(Debug)]
struct Call {
    path: String,
    body: Value,
    headers: http::HeaderMap,
}

/// A real HTTP/1.1 backend on an ephemeral port; every call is reported on `calls`.
struct Backend {
    addr: SocketAddr,
    calls: mpsc::UnboundedReceiver<Call>,
}

impl Backend {
    async fn start(decide: impl Fn(&str, &Value) -> Answer + Send + Sync + 'static) -> Backend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (report, calls) = mpsc::unbounded_channel();
        let decide = Arc::new(decide);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (decide, report) = (decide.clone(), report.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: http::Request<hyper::body::Incoming>| {
                            let (decide, report) = (decide.clone(), report.clone());
                            async move {
                                let path = request.uri().path().to_owned();
                                let headers = request.headers().clone();
                                let bytes = request.into_body().collect().await.unwrap().to_bytes();
                                let body: Value = serde_json::from_slice(&bytes).unwrap();
                                let answer = decide(&path, &body);
                                let _ = report.send(Call {
                                    path,
                                    body,
                                    headers,
                                });
                                let (status, text) = match answer {
                                    Answer::Json(v) => (200, v.to_string()),
                                    Answer::Raw(t) => (200, t.to_owned()),
                                    Answer::Status(s) => (s, String::new()),
                                    Answer::Hang => std::future::pending().await,
                                };
                                let mut response =
                                    http::Response::new(Full::new(Bytes::from(text)));
                                *response.status_mut() =
                                    http::StatusCode::from_u16(status).unwrap();
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Backend { addr, calls }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next call the backend received.
    async fn next_call(&mut self) -> Call {
        tokio::time::timeout(WAIT, self.calls.recv())
            .await
            .expect("a backend call in time")
            .expect("the backend runs")
    }
}

/// A hub whose every proxy points at `backend`, with `room:` proxied for subscribe and
/// publish.
fn proxied(backend: &Backend) -> Config {
    let mut config = config();
    config.proxy.connect_endpoint = Some(backend.url("/connect"));
    config.proxy.refresh_endpoint = Some(backend.url("/refresh"));
    config.proxy.subscribe_endpoint = Some(backend.url("/subscribe"));
    config.proxy.publish_endpoint = Some(backend.url("/publish"));
    config.proxy.rpc_endpoint = Some(backend.url("/rpc"));
    config.proxy.send_endpoint = Some(backend.url("/send"));
    config.proxy.timeout = Duration::from_millis(300);
    config.proxy.http_headers = vec!["Cookie".into()];
    config.namespaces.insert(
        "room".into(),
        NamespaceOptions {
            proxy_subscribe: Some(true),
            proxy_publish: Some(true),
            ..Default::default()
        },
    );
    config
}

/// Opens a WebSocket with a cookie and sends a token-less connect with `data`.
async fn connect_with(hub: &TestHub, data: Value) -> (Client, Value) {
    let (ws, _) = duplex::ClientBuilder::new(hub.ws_url())
        .header("Cookie", "session=abc")
        .connect()
        .await
        .expect("WebSocket connects");
    let mut client = Client::from_ws(ws);
    let reply = client
        .call_or_close(json!({"connect": {"data": data, "name": "test"}}))
        .await
        .unwrap_or(Value::Null);
    if let Some(id) = reply["connect"]["client"].as_str() {
        client.client_id = id.to_owned();
    }
    (client, reply)
}

fn connect_answer(body: &Value) -> Answer {
    match body["data"]["mode"].as_str() {
        Some("reject") => Answer::Json(json!({"error": {"code": 1001, "message": "not today"}})),
        Some("ban") => Answer::Json(json!({"disconnect": {"code": 4501, "reason": "banned"}})),
        Some("garbage") => Answer::Raw("<html>oops</html>"),
        Some("status") => Answer::Status(500),
        Some("hang") => Answer::Hang,
        _ => Answer::Json(json!({"result": {
            "user": body["data"]["user"],
            "info": {"name": "Alice"},
            "data": {"welcome": 1},
            "channels": ["news"],
        }})),
    }
}

#[tokio::test]
async fn the_connect_proxy_decides_who_connects() {
    let mut backend = Backend::start(|_, body| connect_answer(body)).await;
    let hub = TestHub::start(proxied(&backend)).await;

    let (mut alice, reply) = connect_with(&hub, json!({"user": "alice"})).await;
    let result = &reply["connect"];
    assert_eq!(result["data"], json!({"welcome": 1}), "{reply}");
    assert!(
        result["subs"]["news"].is_object(),
        "server-side channel: {reply}"
    );
    assert!(result.get("expires").is_none(), "no expiry given: {reply}");
    let call = backend.next_call().await;
    assert_eq!(call.path, "/connect");
    assert_eq!(call.body["client"], json!(alice.client_id));
    assert_eq!(
        (
            &call.body["transport"],
            &call.body["protocol"],
            &call.body["encoding"]
        ),
        (&json!("websocket"), &json!("json"), &json!("json"))
    );
    assert_eq!(call.body["data"], json!({"user": "alice"}));
    assert_eq!(call.body["name"], json!("test"));
    assert_eq!(
        call.headers["cookie"], "session=abc",
        "allowed header passed on"
    );

    // The user and info the backend gave are who the client is.
    let presence = alice.call(json!({"presence": {"channel": "news"}})).await;
    let me = &presence["presence"]["presence"][&alice.client_id];
    assert_eq!(
        (&me["user"], &me["conn_info"]),
        (&json!("alice"), &json!({"name": "Alice"})),
        "{presence}"
    );

    // A token still goes through the token path, not the backend.
    let _bob = Client::connect(&hub, &token("bob")).await;
    assert!(
        backend.calls.try_recv().is_err(),
        "a token connect is not proxied"
    );
}

#[tokio::test]
async fn the_connect_proxy_rejects_with_its_error_or_disconnects_with_its_code() {
    let mut backend = Backend::start(|_, body| connect_answer(body)).await;
    let hub = TestHub::start(proxied(&backend)).await;

    let (_client, reply) = connect_with(&hub, json!({"mode": "reject"})).await;
    assert_eq!(
        reply["error"],
        json!({"code": 1001, "message": "not today"}),
        "{reply}"
    );
    backend.next_call().await;

    let mut client = Client::open(&hub).await;
    client
        .send(json!({"connect": {"data": {"mode": "ban"}, "name": "test"}}))
        .await;
    let push = client.push().await;
    assert_eq!(
        push["disconnect"],
        json!({"code": 4501, "reason": "banned", "reconnect": false}),
        "the disconnect push comes before the close: {push}"
    );
    assert_eq!(client.closed().await, (4501, "banned".to_owned()));
    assert_eq!(hub.node.metrics.disconnects.get("backend"), 1);
}

#[tokio::test]
async fn a_backend_that_is_down_slow_or_talks_garbage_costs_one_error_100() {
    let backend = Backend::start(|_, body| connect_answer(body)).await;
    let mut config = proxied(&backend);
    let hub = TestHub::start(config.clone()).await;
    for mode in ["garbage", "status", "hang"] {
        let (_client, reply) = connect_with(&hub, json!({"mode": mode})).await;
        assert_eq!(
            reply["error"],
            json!({"code": 100, "message": "internal server error", "temporary": true}),
            "{mode}: {reply}"
        );
    }
    assert_eq!(hub.node.metrics.proxy_errors.get("connect"), 3);

    // A backend that is not listening at all.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = closed.local_addr().unwrap();
    drop(closed);
    config.proxy.connect_endpoint = Some(format!("http://{down}/connect"));
    let hub_down = TestHub::start(config).await;
    let (_client, reply) = connect_with(&hub_down, json!({"user": "x"})).await;
    assert_eq!(common::error_code(&reply), 100, "{reply}");

    // The hub keeps serving everything that does not need the backend.
    let mut client = Client::connect(&hub, &token("carol")).await;
    let reply = client
        .call(json!({"subscribe": {"channel": "chat:x"}}))
        .await;
    assert!(reply.get("subscribe").is_some(), "{reply}");
    let reply = client
        .call(json!({"publish": {"channel": "chat:x", "data": {"ok": true}}}))
        .await;
    assert!(reply.get("publish").is_some(), "{reply}");
}

#[tokio::test]
async fn the_subscribe_proxy_grants_channels_with_info_and_data() {
    let mut backend = Backend::start(|path, body| match (path, body["channel"].as_str()) {
        ("/subscribe", Some("room:open")) => Answer::Json(json!({"result": {
            "info": {"role": "guest"}, "data": {"topic": "rust"}}})),
        ("/subscribe", _) => {
            Answer::Json(json!({"error": {"code": 1403, "message": "members only"}}))
        }
        _ => Answer::Status(404),
    })
    .await;
    let hub = TestHub::start(proxied(&backend)).await;
    let mut client = Client::connect(&hub, &token("dave")).await;

    let reply = client
        .call(json!({"subscribe": {"channel": "room:open", "data": {"why": "curious"}}}))
        .await;
    assert_eq!(
        reply["subscribe"]["data"],
        json!({"topic": "rust"}),
        "{reply}"
    );
    let call = backend.next_call().await;
    assert_eq!(
        (
            &call.body["user"],
            &call.body["channel"],
            &call.body["data"]
        ),
        (
            &json!("dave"),
            &json!("room:open"),
            &json!({"why": "curious"})
        )
    );
    let presence = client
        .call(json!({"presence": {"channel": "room:open"}}))
        .await;
    let me = &presence["presence"]["presence"][&client.client_id];
    assert_eq!(me["chan_info"], json!({"role": "guest"}), "{presence}");

    let reply = client
        .call(json!({"subscribe": {"channel": "room:closed"}}))
        .await;
    assert_eq!(
        reply["error"],
        json!({"code": 1403, "message": "members only"}),
        "{reply}"
    );
    // Namespaces without proxy_subscribe are not asked.
    let reply = client
        .call(json!({"subscribe": {"channel": "chat:y"}}))
        .await;
    assert!(reply.get("subscribe").is_some(), "{reply}");
    backend.next_call().await;
    assert!(backend.calls.try_recv().is_err(), "chat: is not proxied");
}

#[tokio::test]
async fn the_publish_proxy_rewrites_or_refuses_publications() {
    let backend = Backend::start(|path, body| match (path, body["data"]["text"].as_str()) {
        ("/subscribe", _) => Answer::Json(json!({"result": {}})),
        ("/publish", Some("spam")) => {
            Answer::Json(json!({"error": {"code": 1002, "message": "no spam"}}))
        }
        ("/publish", Some(text)) => {
            Answer::Json(json!({"result": {"data": {"text": text, "checked": true}}}))
        }
        _ => Answer::Status(404),
    })
    .await;
    let hub = TestHub::start(proxied(&backend)).await;
    let mut client = Client::connect(&hub, &token("erin")).await;
    client
        .call(json!({"subscribe": {"channel": "room:a"}}))
        .await;

    let reply = client
        .call(json!({"publish": {"channel": "room:a", "data": {"text": "spam"}}}))
        .await;
    assert_eq!(
        reply["error"],
        json!({"code": 1002, "message": "no spam"}),
        "{reply}"
    );
    let reply = client
        .call(json!({"publish": {"channel": "room:a", "data": {"text": "hi"}}}))
        .await;
    assert!(reply.get("publish").is_some(), "{reply}");
    let push = client.push().await;
    assert_eq!(
        push["pub"]["data"],
        json!({"text": "hi", "checked": true}),
        "{push}"
    );
    assert_eq!(
        push["pub"]["offset"],
        json!(1),
        "the refused one was not stored"
    );
}

#[tokio::test]
async fn rpc_and_send_reach_the_backend() {
    let mut backend = Backend::start(|path, body| match path {
        "/rpc" if body["method"] == "sum" => {
            let sum: i64 = body["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_i64)
                .sum();
            Answer::Json(json!({"result": {"data": {"sum": sum}}}))
        }
        "/rpc" => Answer::Json(json!({"error": {"code": 104, "message": "method not found"}})),
        "/send" => Answer::Json(json!({"result": {}})),
        _ => Answer::Status(404),
    })
    .await;
    let hub = TestHub::start(proxied(&backend)).await;
    let mut client = Client::connect(&hub, &token("frank")).await;

    let reply = client
        .call(json!({"rpc": {"method": "sum", "data": [1, 2, 3]}}))
        .await;
    assert_eq!(reply["rpc"]["data"], json!({"sum": 6}), "{reply}");
    let call = backend.next_call().await;
    assert_eq!(
        (&call.body["user"], &call.body["method"]),
        (&json!("frank"), &json!("sum"))
    );
    let reply = client.call(json!({"rpc": {"method": "nope"}})).await;
    assert_eq!(common::error_code(&reply), 104);
    backend.next_call().await;

    client
        .send_raw(r#"{"send":{"data":{"typing":true}}}"#)
        .await;
    let call = backend.next_call().await;
    assert_eq!(
        (call.path.as_str(), &call.body["data"]),
        ("/send", &json!({"typing": true}))
    );

    // Without an rpc endpoint, rpc is not available.
    let mut config = config();
    config.proxy.send_endpoint = Some(backend.url("/send"));
    let plain = TestHub::start(config).await;
    let mut client = Client::connect(&plain, &token("frank")).await;
    let reply = client.call(json!({"rpc": {"method": "sum"}})).await;
    assert_eq!(common::error_code(&reply), 108);
}

#[tokio::test]
async fn the_refresh_proxy_prolongs_a_connection_until_it_says_expired() {
    let refreshes = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = refreshes.clone();
    let soon = || duplex_hub::auth::unix_now() + 1;
    let mut backend = Backend::start(move |path, _| match path {
        "/connect" => Answer::Json(json!({"result": {"user": "gina", "expire_at": soon()}})),
        "/refresh" if counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => {
            Answer::Json(json!({"result": {"expire_at": soon()}}))
        }
        "/refresh" => Answer::Json(json!({"result": {"expired": true}})),
        _ => Answer::Status(404),
    })
    .await;
    let hub = TestHub::start(proxied(&backend)).await;
    let (mut client, reply) = connect_with(&hub, json!({})).await;
    assert!(
        reply["connect"].get("expires").is_none(),
        "the hub refreshes, not the client: {reply}"
    );
    assert_eq!(backend.next_call().await.path, "/connect");
    let first = backend.next_call().await;
    assert_eq!(
        (first.path.as_str(), &first.body["user"]),
        ("/refresh", &json!("gina"))
    );
    assert_eq!(backend.next_call().await.path, "/refresh");
    assert_eq!(client.closed().await.0, 3005);
    assert_eq!(refreshes.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn proxy_settings_are_checked() {
    let mut config = Config::default();
    config.proxy.connect_endpoint = Some("ftp://x/connect".into());
    let e = config.validate().unwrap_err().to_string();
    assert!(
        e.contains("proxy.connect_endpoint") && e.contains("http://"),
        "{e}"
    );

    let mut config = Config::default();
    config.namespaces.insert(
        "room".into(),
        NamespaceOptions {
            proxy_publish: Some(true),
            ..Default::default()
        },
    );
    let e = config.validate().unwrap_err().to_string();
    assert!(
        e.contains("namespaces.room.proxy_publish") && e.contains("proxy.publish_endpoint"),
        "{e}"
    );

    let mut config = Config::default();
    config.proxy.http_headers = vec!["bad header".into()];
    let e = config.validate().unwrap_err().to_string();
    assert!(e.contains("proxy.http_headers"), "{e}");
}

/// A client speaking the Protobuf format (`centrifuge-protobuf`) with the hub's own wire
/// types: enough for a publish through the proxy.
struct ProtobufClient {
    ws: duplex::WebSocket<duplex::ClientStream>,
    next_id: u32,
    backlog: std::collections::VecDeque<duplex_hub::protocol::protobuf::wire::Reply>,
}

impl ProtobufClient {
    async fn connect(hub: &TestHub, token: &str) -> ProtobufClient {
        use duplex_hub::protocol::protobuf::wire;
        let (ws, _) = duplex::ClientBuilder::new(hub.ws_url())
            .protocol("centrifuge-protobuf")
            .connect()
            .await
            .expect("WebSocket connects");
        let mut client = ProtobufClient {
            ws,
            next_id: 0,
            backlog: Default::default(),
        };
        let reply = client
            .call(wire::Command {
                connect: Some(wire::ConnectRequest {
                    token: token.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await;
        assert!(reply.connect.is_some(), "{reply:?}");
        client
    }

    async fn call(
        &mut self,
        mut command: duplex_hub::protocol::protobuf::wire::Command,
    ) -> duplex_hub::protocol::protobuf::wire::Reply {
        use prost::Message as _;
        self.next_id += 1;
        command.id = self.next_id;
        let id = self.next_id;
        self.ws
            .send(duplex::Message::binary(
                command.encode_length_delimited_to_vec(),
            ))
            .await
            .unwrap();
        loop {
            let reply = self.next().await;
            if reply.id == id {
                return reply;
            }
            self.backlog.push_back(reply);
        }
    }

    /// The next reply or push (pings skipped).
    async fn next(&mut self) -> duplex_hub::protocol::protobuf::wire::Reply {
        use duplex_hub::protocol::protobuf::wire;
        use prost::Message as _;
        loop {
            if let Some(reply) = self.backlog.pop_front() {
                if reply.id == 0 && reply.push.is_none() {
                    continue; // the hub's ping
                }
                return reply;
            }
            let message = tokio::time::timeout(WAIT, self.ws.recv())
                .await
                .expect("a message in time")
                .expect("the connection stays open")
                .expect("a message");
            let duplex::Message::Binary(bytes) = message else {
                panic!("a Protobuf client gets binary messages: {message:?}");
            };
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                self.backlog
                    .push_back(wire::Reply::decode_length_delimited(&mut rest).unwrap());
            }
        }
    }
}

#[tokio::test]
async fn binary_publications_go_to_the_publish_proxy_as_b64data_and_back() {
    use base64::Engine as _;
    use duplex_hub::protocol::protobuf::wire;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut backend = Backend::start(move |path, body| match path {
        "/subscribe" => Answer::Json(json!({"result": {}})),
        // The backend stores bytes of its own choosing, or answers base64 that is not.
        "/publish" if body["data"]["broken"] == true => {
            Answer::Json(json!({"result": {"b64data": "not base64!"}}))
        }
        "/publish" => Answer::Json(json!({"result": {"b64data": "CQgH"}})),
        _ => Answer::Status(404),
    })
    .await;
    let hub = TestHub::start(proxied(&backend)).await;
    let mut json_client = Client::connect(&hub, &token("erin")).await;
    json_client
        .call(json!({"subscribe": {"channel": "room:b"}}))
        .await;
    assert_eq!(backend.next_call().await.path, "/subscribe");
    let mut pb = ProtobufClient::connect(&hub, &token("frank")).await;
    let subscribed = pb
        .call(wire::Command {
            subscribe: Some(wire::SubscribeRequest {
                channel: "room:b".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    assert!(subscribed.subscribe.is_some(), "{subscribed:?}");
    assert_eq!(backend.next_call().await.path, "/subscribe");

    let published = pb
        .call(wire::Command {
            publish: Some(wire::PublishRequest {
                channel: "room:b".into(),
                data: vec![0, 1, 2],
            }),
            ..Default::default()
        })
        .await;
    assert!(published.publish.is_some(), "{published:?}");
    let call = backend.next_call().await;
    assert_eq!(call.path, "/publish");
    assert_eq!(
        call.body["b64data"],
        json!(b64(&[0, 1, 2])),
        "{}",
        call.body
    );
    assert!(call.body.get("data").is_none(), "{}", call.body);
    // Stored as the backend chose: bytes for Protobuf, base64 for JSON.
    let push = pb.next().await.push.expect("a push");
    assert_eq!(push.publication.expect("a publication").data, [9, 8, 7]);
    let push = json_client.push().await;
    assert_eq!(push["pub"]["data"], json!("CQgH"), "{push}");

    // base64 that does not decode: error 100, nothing stored, counted.
    let reply = json_client
        .call(json!({"publish": {"channel": "room:b", "data": {"broken": true}}}))
        .await;
    assert_eq!(error_code(&reply), 100, "{reply}");
    assert_eq!(hub.node.metrics.proxy_errors.get("publish"), 1);
}
