//! A hub in the test process on an ephemeral port, and a raw protocol client over a
//! real WebSocket that checks every reply and push it gets.
#![allow(dead_code)]

pub mod redis_server;

use duplex::{ClientStream, Message, WebSocket};
use duplex_hub::auth::{sign, Claims};
use duplex_hub::config::{Config, EngineKind};
use duplex_hub::{Hub, Node};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

pub const SECRET: &str = "test-secret-test-secret-test-secret!";
pub const API_KEY: &str = "test-api-key";
/// Bound on any single wait: a hung hub fails the test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestHub {
    pub addr: SocketAddr,
    pub node: Arc<Node>,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    pub dir: Option<tempfile::TempDir>,
}

/// The configuration tests start from: memory engine, a secret, an API key, a
/// `chat` namespace where subscribers publish and see joins and leaves.
pub fn config() -> Config {
    let mut config = Config {
        port: 0,
        engine: EngineKind::Memory,
        token_hmac_secret: Some(SECRET.into()),
        api_key: Some(API_KEY.into()),
        ..Config::default()
    };
    config.namespaces.insert(
        "chat".into(),
        duplex_hub::config::NamespaceOptions {
            allow_publish_for_subscriber: Some(true),
            join_leave: Some(true),
            ..Default::default()
        },
    );
    config
}

impl TestHub {
    pub async fn start(config: Config) -> TestHub {
        Self::start_in(config, None).await
    }

    pub async fn start_in(mut config: Config, dir: Option<tempfile::TempDir>) -> TestHub {
        if let Some(dir) = &dir {
            config.data_dir = dir.path().to_owned();
        }
        let hub = Hub::bind(config).await.expect("hub binds");
        let addr = hub.local_addr();
        let node = hub.node().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            hub.run(async {
                let _ = stopped.await;
            })
            .await
            .expect("hub runs");
        });
        TestHub {
            addr,
            node,
            stop: Some(stop),
            done: Some(done),
            dir,
        }
    }

    /// Shuts down as on SIGTERM and waits until it is done.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            tokio::time::timeout(WAIT, done)
                .await
                .expect("hub stops in time")
                .unwrap();
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/connection/websocket", self.addr)
    }

    /// `POST /api/<method>` with the API key; the status and the JSON answer.
    pub async fn api(&self, method: &str, body: Value) -> (u16, Value) {
        http(
            self.addr,
            "POST",
            &format!("/api/{method}"),
            &[("X-API-Key", API_KEY)],
            &body.to_string(),
        )
        .await
    }
}

/// One HTTP/1.1 request on a fresh connection: the status and the body as JSON (or as
/// a JSON string when it is not JSON).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("HTTP answer in time")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let status: u16 = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let value = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
    (status, value)
}

pub fn token(sub: &str) -> String {
    sign(
        SECRET,
        &Claims {
            sub: sub.into(),
            ..Default::default()
        },
    )
}

pub fn token_with(claims: Claims) -> String {
    sign(SECRET, &claims)
}

pub struct Client {
    pub ws: WebSocket<ClientStream>,
    next_id: u64,
    /// Replies and pushes received but not yet asked for.
    backlog: VecDeque<Value>,
    pub client_id: String,
}

impl Client {
    /// A WebSocket connection without the connect command.
    pub async fn open(hub: &TestHub) -> Client {
        let (ws, _) = duplex::connect(&hub.ws_url())
            .await
            .expect("WebSocket connects");
        Client::from_ws(ws)
    }

    /// A client on a WebSocket opened some other way (with headers, say).
    pub fn from_ws(ws: WebSocket<ClientStream>) -> Client {
        Client {
            ws,
            next_id: 0,
            backlog: VecDeque::new(),
            client_id: String::new(),
        }
    }

    /// Connects and sends `connect` with `token`; panics unless it succeeds.
    pub async fn connect(hub: &TestHub, token: &str) -> Client {
        let mut client = Client::open(hub).await;
        let reply = client
            .call(json!({"connect": {"token": token, "name": "test"}}))
            .await;
        let result = reply
            .get("connect")
            .unwrap_or_else(|| panic!("connect failed: {reply}"));
        client.client_id = result["client"].as_str().unwrap().to_owned();
        client
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    /// Sends `command` with the next id; returns that id.
    pub async fn send(&mut self, mut command: Value) -> u64 {
        self.next_id += 1;
        command["id"] = json!(self.next_id);
        self.send_raw(&command.to_string()).await;
        self.next_id
    }

    /// Sends `command` and waits for its reply (pushes meanwhile are kept).
    pub async fn call(&mut self, command: Value) -> Value {
        let id = self.send(command).await;
        self.reply(id).await
    }

    /// Sends `command`; its reply, or `None` when the hub closes the connection instead.
    pub async fn call_or_close(&mut self, command: Value) -> Option<Value> {
        let id = self.send(command).await;
        loop {
            if let Some(i) = self.backlog.iter().position(|v| v["id"] == json!(id)) {
                return self.backlog.remove(i);
            }
            match tokio::time::timeout(WAIT, self.ws.recv())
                .await
                .expect("an answer in time")
            {
                Some(Ok(Message::Text(text))) => {
                    for line in text.as_str().split('\n') {
                        self.backlog.push_back(serde_json::from_str(line).unwrap());
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Waits for the reply to command `id` (everything else received meanwhile is kept).
    pub async fn reply(&mut self, id: u64) -> Value {
        loop {
            if let Some(i) = self.backlog.iter().position(|v| v["id"] == json!(id)) {
                return self.backlog.remove(i).unwrap();
            }
            self.fill().await;
        }
    }

    /// The next push (a reply without id and with `push`), in arrival order.
    pub async fn push(&mut self) -> Value {
        loop {
            if let Some(i) = self.backlog.iter().position(|v| v.get("push").is_some()) {
                return self.backlog.remove(i).unwrap()["push"].clone();
            }
            self.fill().await;
        }
    }

    /// The next line from the hub, whatever it is.
    pub async fn receive(&mut self) -> Value {
        loop {
            if let Some(v) = self.backlog.pop_front() {
                return v;
            }
            self.fill().await;
        }
    }

    /// Reads one WebSocket message from the hub into the backlog, line by line.
    async fn fill(&mut self) {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.recv())
                .await
                .expect("a message from the hub in time")
                .expect("connection open")
                .expect("no error");
            match message {
                Message::Text(text) => {
                    for line in text.as_str().split('\n') {
                        let value = serde_json::from_str(line)
                            .unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
                        self.backlog.push_back(value);
                    }
                    return;
                }
                Message::Close(frame) => panic!("closed by the hub: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Whether nothing received is waiting unread.
    pub fn backlog_is_empty(&self) -> bool {
        self.backlog.is_empty()
    }

    /// Reads until the hub closes; returns the close code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.recv())
                .await
                .expect("the hub closes in time");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (frame.code.as_u16(), frame.reason)
                }
                Some(Ok(Message::Close(None))) => return (1005, String::new()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("connection failed instead of closing: {e}"),
                None => panic!("connection ended without a close frame"),
            }
        }
    }
}

/// The error code in a reply, or a panic naming the reply.
pub fn error_code(reply: &Value) -> u64 {
    reply["error"]["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("expected an error reply, got {reply}"))
}
