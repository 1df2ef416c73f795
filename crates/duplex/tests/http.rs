//! HTTP integration: the hyper upgrade adapter, the axum extractor, and plain HTTP
//! answered on the raw server's WebSocket port.

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use duplex::{Accept, CloseCode, Config, Message, Reject, WebSocket};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The server config under test: deflate on (the default) and a 1000-byte message limit.
fn small_config() -> Config {
    let mut config = Config::default();
    config.limits.max_message_size = 1000;
    config
}

/// Server side of every test: greets with what was negotiated, then echoes.
async fn greet_and_echo<S>(mut ws: WebSocket<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let hello = format!(
        "compressing={} max_message_size={}",
        ws.is_compressing(),
        ws.config().limits.max_message_size
    );
    if ws.send(Message::text(hello)).await.is_err() {
        return;
    }
    while let Some(Ok(message)) = ws.recv().await {
        if message.is_data() && ws.send(message).await.is_err() {
            return;
        }
    }
}

/// The upgrade decision of the hyper and raw servers: `chat` when offered, 403 for
/// `?deny`.
fn choose_chat(request: &duplex::UpgradeRequest) -> Result<Accept, Reject> {
    if request.query() == Some("deny") {
        return Err(Reject::new(
            http::StatusCode::FORBIDDEN,
            "denied by the test",
        ));
    }
    if request.protocols().any(|p| p == "chat") {
        Ok(Accept::default().protocol("chat"))
    } else {
        Ok(Accept::default())
    }
}

// ===================================================================== hyper

async fn hyper_service(
    mut request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/" || !duplex::hyper::is_upgrade_request(&request) {
        let body = format!("plain HTTP at {}\n", request.uri().path());
        return Ok(hyper::Response::new(Full::from(body)));
    }
    let upgraded = duplex::hyper::upgrade_with(&mut request, small_config(), choose_chat);
    match upgraded {
        Ok((response, pending)) => {
            tokio::spawn(async move {
                if let Ok(ws) = pending.await {
                    greet_and_echo(ws).await;
                }
            });
            Ok(response)
        }
        Err(rejection) => Ok(rejection.into_response()),
    }
}

/// A hyper HTTP/1.1 server with upgrades on an ephemeral port; its `host:port`.
async fn hyper_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service_fn(hyper_service))
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

// ===================================================================== axum

async fn axum_ws(State(config): State<Config>, ws: duplex::axum::WebSocketUpgrade) -> Response {
    ws.protocols(["v2.chat", "chat"])
        .config(config)
        .header("x-served-by", "axum")
        .on_upgrade(greet_and_echo)
}

/// An axum app on an ephemeral port (`/` plain, `/ws` upgrades); its `host:port`.
async fn axum_server() -> String {
    let app = Router::new()
        .route("/", get(|| async { "plain HTTP from axum\n" }))
        .route("/ws", get(axum_ws))
        .with_state(small_config());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

// ===================================================================== raw HTTP

/// One HTTP exchange on a new connection: the response head and body, read by its
/// `Content-Length` (so keep-alive servers need not close) or to the end.
async fn http_exchange(addr: &str, request: &str) -> (String, String) {
    let exchange = async {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(got[..end + 4].to_vec()).unwrap();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().unwrap())
                    })
                    .filter(|_| !request.starts_with("HEAD "));
                if let Some(length) = length {
                    if got.len() >= end + 4 + length {
                        let body = String::from_utf8(got[end + 4..end + 4 + length].to_vec());
                        return (head, body.unwrap());
                    }
                }
            }
            match tcp.read(&mut buf).await.unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8(got).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
        (format!("{head}\r\n\r\n"), body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the server answers in time")
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

const UPGRADE_HEADERS: &str = "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                               Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

// ===================================================================== shared checks

/// Connects to `url` offering `chat`, checks the greeting, echo, subprotocol and
/// deflate, then that a message over the server's limit closes with 1009.
async fn check_websocket(url: &str) {
    let (mut ws, response) = duplex::ClientBuilder::new(url)
        .protocol("other")
        .protocol("chat")
        .connect()
        .await
        .unwrap();
    assert_eq!(response.protocol.as_deref(), Some("chat"));
    assert!(response.deflate.is_some());
    assert!(ws.is_compressing(), "permessage-deflate negotiated");
    assert_eq!(
        ws.recv().await.unwrap().unwrap(),
        Message::text("compressing=true max_message_size=1000")
    );
    for message in [
        Message::text("hello"),
        Message::binary(vec![7u8; 1000]),
        Message::text("é".repeat(500)),
    ] {
        ws.send(message.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), message);
    }
    // 1001 zeros compress to a few bytes: the limit applies to the inflated size.
    ws.send(Message::binary(vec![0u8; 1001])).await.unwrap();
    match ws.recv().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::MESSAGE_TOO_BIG),
        other => panic!("expected close 1009, got {other:?}"),
    }
}

// ===================================================================== tests: hyper

#[tokio::test]
async fn hyper_upgrade_echoes_with_subprotocol_deflate_and_limits() {
    let addr = hyper_server().await;
    check_websocket(&format!("ws://{addr}/")).await;

    // Without deflate or subprotocols offered, neither is chosen.
    let (mut ws, response) = duplex::ClientBuilder::new(format!("ws://{addr}/"))
        .deflate(None)
        .connect()
        .await
        .unwrap();
    assert_eq!(response.protocol, None);
    assert!(!ws.is_compressing());
    assert_eq!(
        ws.recv().await.unwrap().unwrap(),
        Message::text("compressing=false max_message_size=1000")
    );
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn hyper_serves_plain_http_and_rejects_broken_upgrades_like_the_raw_server() {
    let addr = hyper_server().await;
    let (head, body) = http_exchange(&addr, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(body, "plain HTTP at /status\n");

    let wrong_version =
        format!("GET / HTTP/1.1\r\n{UPGRADE_HEADERS}Sec-WebSocket-Version: 8\r\n\r\n");
    let (head, body) = http_exchange(&addr, &wrong_version).await;
    assert!(head.starts_with("HTTP/1.1 426 "), "{head}");
    assert_eq!(header(&head, "sec-websocket-version"), Some("13"));
    assert_eq!(
        body,
        "unsupported Sec-WebSocket-Version (only 13 is supported)\n"
    );

    let no_key = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Version: 13\r\n\r\n";
    let (head, body) = http_exchange(&addr, no_key).await;
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    assert_eq!(body, "missing header Sec-WebSocket-Key\n");

    // The application's rejection, with its status and reason.
    let denied =
        format!("GET /?deny HTTP/1.1\r\n{UPGRADE_HEADERS}Sec-WebSocket-Version: 13\r\n\r\n");
    let (head, body) = http_exchange(&addr, &denied).await;
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    assert_eq!(body, "denied by the test\n");
    match duplex::connect(&format!("ws://{addr}/?deny")).await {
        Err(duplex::Error::Rejected { status: 403 }) => {}
        other => panic!("expected a 403 rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn hyper_upgrade_without_a_hyper_connection_is_426() {
    let mut request = http::Request::get("/")
        .header("host", "x")
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    assert!(duplex::hyper::is_upgrade_request(&request));
    let rejection =
        duplex::hyper::upgrade::<_, Full<Bytes>>(&mut request, Config::default()).unwrap_err();
    assert_eq!(rejection.status(), 426);
    let bad = Config::default().write_buffer_limit(0);
    let rejection = duplex::hyper::upgrade::<_, Full<Bytes>>(&mut request, bad).unwrap_err();
    assert_eq!(rejection.status(), 500);
    assert!(
        rejection.reason().contains("write_buffer_limit"),
        "{rejection}"
    );
}

// ===================================================================== tests: axum

#[tokio::test]
async fn axum_extractor_echoes_with_subprotocol_deflate_and_limits() {
    let addr = axum_server().await;
    check_websocket(&format!("ws://{addr}/ws")).await;

    let (mut ws, response) = duplex::ClientBuilder::new(format!("ws://{addr}/ws"))
        .protocol("v2.chat")
        .protocol("chat")
        .connect()
        .await
        .unwrap();
    assert_eq!(
        response.protocol.as_deref(),
        Some("v2.chat"),
        "the server's preference among the offered"
    );
    assert_eq!(response.headers["x-served-by"], "axum");
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn axum_extractor_rejects_non_upgrades_with_status_and_reason() {
    let addr = axum_server().await;
    let (head, body) = http_exchange(&addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(body, "plain HTTP from axum\n");

    let (head, body) = http_exchange(&addr, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    assert_eq!(body, "missing header Upgrade: websocket\n");
    assert!(header(&head, "content-type")
        .unwrap()
        .starts_with("text/plain"));

    let wrong_version =
        format!("GET /ws HTTP/1.1\r\n{UPGRADE_HEADERS}Sec-WebSocket-Version: 8\r\n\r\n");
    let (head, body) = http_exchange(&addr, &wrong_version).await;
    assert!(head.starts_with("HTTP/1.1 426 "), "{head}");
    assert_eq!(header(&head, "sec-websocket-version"), Some("13"));
    assert!(body.contains("Sec-WebSocket-Version"), "{body}");

    match duplex::connect(&format!("ws://{addr}/nowhere")).await {
        Err(duplex::Error::Rejected { status: 404 }) => {}
        other => panic!("expected 404 from the router, got {other:?}"),
    }
}

// ===================================================================== tests: raw server

/// A raw `duplex` server on an ephemeral port, each connection served by `serve`.
async fn raw_server<F, Fut>(serve: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve(tcp));
        }
    });
    addr
}

#[tokio::test]
async fn raw_server_answers_plain_http_with_404_by_default() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let addr = raw_server(move |tcp| {
        let tx = tx.clone();
        async move {
            match duplex::accept_with(tcp, small_config(), choose_chat).await {
                Ok(ws) => greet_and_echo(ws).await,
                Err(e) => {
                    let _ = tx.send(e.to_string());
                }
            }
        }
    })
    .await;
    let (head, body) = http_exchange(&addr, "GET /page HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    assert_eq!(header(&head, "connection"), Some("close"));
    assert!(body.contains("only accepts WebSocket upgrades"), "{body}");
    assert!(rx.recv().await.unwrap().contains("404"));

    // A broken upgrade is still a 400, not a 404.
    let no_key = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Version: 13\r\n\r\n";
    let (head, _) = http_exchange(&addr, no_key).await;
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");

    check_websocket(&format!("ws://{addr}/")).await;
}

fn page(request: &http::Request<()>) -> http::Response<String> {
    match request.uri().path() {
        "/health" => http::Response::builder()
            .header("content-type", "application/json")
            .header("content-length", "999")
            .body(format!(
                "{{\"method\":\"{}\",\"query\":\"{}\"}}",
                request.method(),
                request.uri().query().unwrap_or("")
            ))
            .unwrap(),
        _ => duplex::not_found(request).map(String::from),
    }
}

#[tokio::test]
async fn raw_server_answers_plain_http_with_the_hook_and_upgrades_on_the_same_port() {
    let addr = raw_server(|tcp| async move {
        if let Ok(Some(ws)) = duplex::accept_with_http(tcp, small_config(), choose_chat, page).await
        {
            greet_and_echo(ws).await;
        }
    })
    .await;
    let (head, body) = http_exchange(&addr, "GET /health?x=1 HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(header(&head, "content-type"), Some("application/json"));
    assert_eq!(
        header(&head, "content-length"),
        Some("30"),
        "the real length replaces the handler's"
    );
    assert_eq!(body, r#"{"method":"GET","query":"x=1"}"#);

    // HEAD: the same head, no body.
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = String::new();
    tcp.read_to_string(&mut got).await.unwrap();
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(got.ends_with("\r\n\r\n"), "no body after HEAD: {got}");
    assert_eq!(header(&got, "content-length"), Some("28"));

    // Any method; the body is not read, and the answer arrives intact.
    let post = format!(
        "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{}",
        "a".repeat(100_000)
    );
    let (head, body) = http_exchange(&addr, &post).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(body, r#"{"method":"POST","query":""}"#);

    // The hook may fall back to the default 404.
    let (head, _) = http_exchange(&addr, "GET /other HTTP/1.0\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");

    check_websocket(&format!("ws://{addr}/")).await;
}

// ===================================================================== handshake timeout

/// A hyper server whose service takes `delay` to return the 101 after calling
/// `upgrade` with `handshake_timeout`; what the pending upgrade resolved to goes to
/// the channel.
async fn slow_hyper_server(
    handshake_timeout: Duration,
    delay: Duration,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<Result<(), String>>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            let service = service_fn(move |mut request: hyper::Request<Incoming>| {
                let tx = tx.clone();
                async move {
                    let config = Config::default().handshake_timeout(handshake_timeout);
                    let (response, pending) =
                        duplex::hyper::upgrade::<_, Full<Bytes>>(&mut request, config).unwrap();
                    tokio::spawn(async move {
                        let outcome = pending.await.map(drop).map_err(|e| e.to_string());
                        let _ = tx.send(outcome);
                    });
                    // The application is slow to answer (a database call, say).
                    tokio::time::sleep(delay).await;
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn hyper_upgrade_not_completed_within_the_handshake_timeout_fails() {
    let (addr, mut outcomes) =
        slow_hyper_server(Duration::from_millis(100), Duration::from_secs(3)).await;
    let url = format!("ws://{addr}/");
    let client = tokio::spawn(async move { duplex::connect(&url).await.map(drop) });
    let outcome = outcomes.recv().await.unwrap();
    assert_eq!(
        outcome,
        Err("timed out: WebSocket handshake".to_string()),
        "the pending upgrade gives up after handshake_timeout"
    );
    client.abort();
    // Within the timeout the same slow service upgrades normally.
    let (addr, mut outcomes) =
        slow_hyper_server(Duration::from_secs(10), Duration::from_millis(100)).await;
    let (mut ws, _) = duplex::connect(&format!("ws://{addr}/")).await.unwrap();
    assert_eq!(outcomes.recv().await.unwrap(), Ok(()));
    drop(ws.close(None).await);
}
