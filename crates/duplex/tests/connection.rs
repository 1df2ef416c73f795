//! The tokio layer end to end over loopback TCP and in-memory pipes.

use bytes::{Bytes, BytesMut};
use duplex::{Accept, CloseCode, CloseFrame, Config, Error, Message, Reject};
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Binds an ephemeral port and serves each accepted connection with `handler`.
async fn server<F, Fut>(handler: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(handler(tcp));
        }
    });
    url
}

async fn echo_server() -> String {
    server(|tcp| async move {
        let mut ws = duplex::accept(tcp).await.unwrap();
        while let Some(Ok(m)) = ws.next().await {
            if m.is_data() {
                ws.send(m).await.unwrap();
            }
        }
    })
    .await
}

#[tokio::test]
async fn echoes_text_and_binary() {
    let url = echo_server().await;
    let (mut ws, _) = duplex::connect(&url).await.unwrap();
    for m in [
        Message::text("hello"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::text(""),
        Message::binary(vec![7u8; 70_000]),
    ] {
        ws.send(m.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), m);
    }
    ws.close(None).await.unwrap();
    assert!(
        ws.recv().await.is_none(),
        "stream ends after the close handshake"
    );
}

#[tokio::test]
async fn pings_are_answered_automatically() {
    let url = echo_server().await;
    let (mut ws, _) = duplex::connect(&url).await.unwrap();
    ws.send(Message::Ping(Bytes::from_static(b"are you there")))
        .await
        .unwrap();
    assert_eq!(
        ws.recv().await.unwrap().unwrap(),
        Message::Pong(Bytes::from_static(b"are you there"))
    );
}

#[tokio::test]
async fn close_handshake_reports_the_code_on_both_sides() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let url = server(move |tcp| {
        let tx = tx.lock().unwrap().take();
        async move {
            let mut ws = duplex::accept(tcp).await.unwrap();
            let mut seen = Vec::new();
            while let Some(m) = ws.next().await {
                seen.push(m.unwrap());
            }
            let _ = tx.unwrap().send(seen);
        }
    })
    .await;
    let (mut ws, _) = duplex::connect(&url).await.unwrap();
    ws.send(Message::Close(Some(CloseFrame::new(4001u16, "done"))))
        .await
        .unwrap();
    match ws.recv().await {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::from(4001)),
        other => panic!("expected the echoed close, got {other:?}"),
    }
    assert!(ws.recv().await.is_none());
    let seen = rx.await.unwrap();
    assert_eq!(
        seen,
        vec![Message::Close(Some(CloseFrame::new(4001u16, "done")))]
    );
}

#[tokio::test]
async fn dropped_connection_is_abnormal_closure() {
    let url = server(|tcp| async move {
        let ws = duplex::accept(tcp).await.unwrap();
        drop(ws); // no close frame
    })
    .await;
    let (mut ws, _) = duplex::connect(&url).await.unwrap();
    assert!(matches!(ws.recv().await, Some(Err(Error::AbnormalClosure))));
    assert!(ws.recv().await.is_none());
}

#[tokio::test]
async fn application_can_reject_with_a_status() {
    let url = server(|tcp| async move {
        let result = duplex::accept_with(tcp, Config::default(), |req| {
            if req.headers().get("authorization").is_some() {
                Ok(Accept::default())
            } else {
                Err(Reject::new(
                    http::StatusCode::UNAUTHORIZED,
                    "token required",
                ))
            }
        })
        .await;
        assert!(matches!(
            result,
            Err(Error::Rejected { status: 401 }) | Ok(_)
        ));
        if let Ok(mut ws) = result {
            ws.close(None).await.unwrap();
        }
    })
    .await;
    let err = duplex::connect(&url).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { status: 401 }), "{err}");
    let ok = duplex::ClientBuilder::new(&url)
        .header("authorization", "Bearer x")
        .connect()
        .await;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn subprotocol_and_request_details_reach_the_server() {
    let url = server(|tcp| async move {
        let mut ws = duplex::accept_with(tcp, Config::default(), |req| {
            assert_eq!(req.path(), "/room");
            assert_eq!(req.query(), Some("id=7"));
            assert_eq!(req.origin(), Some("http://example.test"));
            assert_eq!(req.protocols().collect::<Vec<_>>(), ["v2", "v1"]);
            Ok(Accept::default().protocol("v1"))
        })
        .await
        .unwrap();
        while ws.next().await.is_some() {}
    })
    .await;
    let (mut ws, response) = duplex::ClientBuilder::new(format!("{url}/room?id=7"))
        .protocol("v2")
        .protocol("v1")
        .origin("http://example.test")
        .connect()
        .await
        .unwrap();
    assert_eq!(response.protocol.as_deref(), Some("v1"));
    ws.close(None).await.unwrap();
}

/// Sends raw bytes as the client and returns everything the server sent until it closed.
async fn raw_exchange(url: &str, request: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(url.trim_start_matches("ws://"))
        .await
        .unwrap();
    tcp.write_all(request).await.unwrap();
    let mut got = Vec::new();
    tcp.read_to_end(&mut got).await.unwrap();
    got
}

const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

#[tokio::test]
async fn bad_handshakes_get_an_http_status_with_a_reason() {
    let url = server(|tcp| async move {
        let _ = duplex::accept(tcp).await;
    })
    .await;
    let wrong_version = UPGRADE.replace("Version: 13", "Version: 8");
    let reply = String::from_utf8(raw_exchange(&url, wrong_version.as_bytes()).await).unwrap();
    assert!(reply.starts_with("HTTP/1.1 426 "), "{reply}");
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{reply}"
    );

    // Not an upgrade at all: plain HTTP, answered 404 by default (accept_with_http
    // takes a handler for these).
    let plain_get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let reply = String::from_utf8(raw_exchange(&url, plain_get.as_bytes()).await).unwrap();
    assert!(reply.starts_with("HTTP/1.1 404 "), "{reply}");
    assert!(
        reply.contains("Upgrade: websocket"),
        "the body names the reason: {reply}"
    );

    // An upgrade attempt missing a header is still a broken upgrade: 400.
    let no_upgrade = UPGRADE.replace("Upgrade: websocket\r\n", "");
    let reply = String::from_utf8(raw_exchange(&url, no_upgrade.as_bytes()).await).unwrap();
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    assert!(
        reply.contains("missing header Upgrade: websocket"),
        "the body names the reason: {reply}"
    );

    let post = UPGRADE.replace("GET", "POST");
    let reply = String::from_utf8(raw_exchange(&url, post.as_bytes()).await).unwrap();
    assert!(reply.starts_with("HTTP/1.1 405 "), "{reply}");

    let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n", "a".repeat(20_000));
    let reply = String::from_utf8(raw_exchange(&url, huge.as_bytes()).await).unwrap();
    assert!(reply.starts_with("HTTP/1.1 431 "), "{reply}");
}

#[tokio::test]
async fn protocol_violation_closes_with_1002_and_reports_it() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let url = server(move |tcp| {
        let tx = tx.lock().unwrap().take();
        async move {
            let mut ws = duplex::accept(tcp).await.unwrap();
            let first = ws.next().await;
            let _ = tx.unwrap().send(first);
        }
    })
    .await;
    let mut request = UPGRADE.as_bytes().to_vec();
    request.extend_from_slice(&[0x81, 0x02, b'h', b'i']); // unmasked client frame
    let reply = raw_exchange(&url, &request).await;
    let frames_at = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        &reply[frames_at..],
        &[0x88, 0x02, 0x03, 0xEA],
        "close 1002, then TCP close"
    );
    let seen = rx.await.unwrap();
    assert!(
        matches!(
            seen,
            Some(Err(Error::Protocol(
                duplex_proto::Violation::UnmaskedClientFrame
            )))
        ),
        "{seen:?}"
    );
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let url = server(|tcp| async move {
        let mut config = Config::default();
        config.limits.max_message_size = 1000;
        let mut ws = duplex::accept_with(tcp, config, |_| Ok(Accept::default()))
            .await
            .unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let (mut ws, _) = duplex::connect(&url).await.unwrap();
    ws.send(Message::binary(vec![0u8; 1001])).await.unwrap();
    match ws.recv().await {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::MESSAGE_TOO_BIG),
        other => panic!("expected close 1009, got {other:?}"),
    }
}

#[tokio::test]
async fn the_keepalive_settings_reach_the_protocol_through_both_handshakes() {
    // The timers themselves are tested on a paused clock (tests/timers.rs); here, that
    // a config given to the client builder and to `accept_with_config` arms them.
    let config = Config::default()
        .ping_interval(Some(Duration::from_secs(20)))
        .idle_timeout(Some(Duration::from_secs(60)))
        .close_timeout(Duration::from_secs(3));
    let expected = duplex::Timeouts::default()
        .ping_interval(config.ping_interval)
        .idle_timeout(config.idle_timeout)
        .close_timeout(Some(config.close_timeout));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server_config = config.clone();
    let url = server(move |tcp| {
        let (tx, config) = (tx.clone(), server_config.clone());
        async move {
            let ws = duplex::accept_with(tcp, config, |_| Ok(Accept::default()))
                .await
                .unwrap();
            let _ = tx.send(ws.protocol().timeouts().copied());
        }
    })
    .await;
    let (client, _) = duplex::ClientBuilder::new(&url)
        .config(config)
        .connect()
        .await
        .unwrap();
    assert_eq!(client.protocol().timeouts(), Some(&expected), "client");
    assert_eq!(rx.recv().await.unwrap(), Some(expected), "server");
}

/// A server that completes the handshake by hand, then reads without ever answering
/// (not even a close) until the client hangs up; sends what it read to the channel.
async fn silent_server() -> (String, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let url = server(move |mut tcp| {
        let tx = tx.clone();
        async move {
            let mut buf = vec![0u8; 4096];
            let mut input = BytesMut::new();
            let req = loop {
                let n = tcp.read(&mut buf).await.unwrap();
                input.extend_from_slice(&buf[..n]);
                if let Some(req) =
                    duplex::UpgradeRequest::parse(&mut input, &Default::default()).unwrap()
                {
                    break req;
                }
            };
            let mut out = BytesMut::new();
            req.accept(None, &Default::default(), &mut out);
            tcp.write_all(&out).await.unwrap();
            let mut got = input.to_vec();
            while let Ok(n @ 1..) = tcp.read(&mut buf).await {
                got.extend_from_slice(&buf[..n]);
            }
            let _ = tx.send(got);
        }
    })
    .await;
    (url, rx)
}

/// The close code of `bytes` if they are exactly one masked close frame (a client's).
fn close_code_of_masked_frame(bytes: &[u8]) -> Option<u16> {
    let [0x88, len, m0, m1, m2, m3, payload @ ..] = bytes else {
        return None;
    };
    let len = usize::from(len & 0x7f);
    if bytes[1] & 0x80 == 0 || payload.len() != len || len < 2 {
        return None;
    }
    let mask = [*m0, *m1, *m2, *m3];
    let code = [payload[0] ^ mask[0], payload[1] ^ mask[1]];
    Some(u16::from_be_bytes(code))
}

#[tokio::test]
async fn close_gives_up_waiting_for_a_silent_peer_after_close_timeout() {
    let (silent, mut received) = silent_server().await;
    let close_timeout = Duration::from_millis(200);
    let config = Config::default().close_timeout(close_timeout);
    let (mut client, _) = duplex::ClientBuilder::new(&silent)
        .config(config)
        .connect()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    // The peer never answers the close frame nor closes TCP: close() must not wait
    // forever (the server's read loop would hold the test for ever).
    let outcome = tokio::time::timeout(Duration::from_secs(30), client.close(None))
        .await
        .expect("close() returned after close_timeout, not never");
    let waited = started.elapsed();
    assert!(
        waited >= close_timeout,
        "close() waited {waited:?}, less than the close timeout"
    );
    assert!(
        matches!(
            outcome,
            Ok(()) | Err(Error::Timeout(duplex::Phase::CloseHandshake))
        ),
        "{outcome:?}"
    );
    // The transport was closed: the peer saw our close frame (1000), then the end.
    let bytes = received.recv().await.unwrap();
    assert_eq!(close_code_of_masked_frame(&bytes), Some(1000), "{bytes:?}");
}

#[tokio::test]
async fn accept_gives_up_on_a_client_that_never_finishes_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handshake_timeout = Duration::from_millis(200);
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let config = Config::default().handshake_timeout(handshake_timeout);
        let started = std::time::Instant::now();
        let result = duplex::accept_with(tcp, config, |_| Ok(Accept::default())).await;
        (result.map(drop), started.elapsed())
    });
    // Half a request head, then silence with the connection held open.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .await
        .unwrap();
    let (result, waited) = tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("accept gave up")
        .unwrap();
    assert!(
        matches!(
            result,
            Err(Error::Timeout(duplex::Phase::WebSocketHandshake))
        ),
        "{result:?}"
    );
    assert!(waited >= handshake_timeout, "gave up after {waited:?}");
    // The server answered 408 and let go of the connection: the client reads the end.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest))
        .await
        .expect("the server closed the connection")
        .unwrap();
    let answer = String::from_utf8_lossy(&rest);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
}

#[tokio::test]
async fn split_halves_work_from_different_tasks() {
    let url = echo_server().await;
    let (ws, _) = duplex::connect(&url).await.unwrap();
    let (mut reader, mut writer) = ws.split();
    let sender = tokio::spawn(async move {
        for i in 0..100 {
            writer.send(Message::text(format!("m{i}"))).await.unwrap();
        }
        writer.close().await.unwrap();
    });
    let mut got = Vec::new();
    while let Some(m) = reader.recv().await {
        match m.unwrap() {
            Message::Text(t) => got.push(t.to_string()),
            Message::Close(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    sender.await.unwrap();
    assert_eq!(got, (0..100).map(|i| format!("m{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn send_waits_while_the_write_buffer_is_full() {
    // An in-memory pipe with a small buffer and a peer that does not read yet.
    let (client_io, mut server_io) = tokio::io::duplex(1024);
    let config = Config::default().write_buffer_limit(4096);
    let mut ws =
        duplex::WebSocket::from_parts(client_io, duplex::Role::Client, config, BytesMut::new());
    let chunk = Message::binary(vec![1u8; 1000]);
    // A client frame of 1000 bytes: 2 header + 2 length + 4 mask bytes.
    const FRAME: usize = 1008;
    let mut queued = 0;
    while ws.feed(chunk.clone()).now_or_never().is_some() {
        queued += 1;
        // What may be accepted before waiting: the limit, what the pipe itself holds,
        // and the one frame that crossed the limit.
        assert!(
            queued * FRAME <= 4096 + 1024 + FRAME,
            "{queued} frames accepted: backpressure came too late"
        );
    }
    // Once the peer reads, the pending send completes.
    let pending = tokio::spawn(async move { ws.feed(chunk).await.map(|_| ws) });
    let mut sink = vec![0u8; 64 << 10];
    while !pending.is_finished() {
        let _ = server_io.read(&mut sink).await.unwrap();
    }
    assert!(pending.await.unwrap().is_ok());
    assert!(queued >= 4, "the buffer holds its limit before waiting");
}

#[tokio::test]
async fn sending_after_close_is_an_error() {
    let url = echo_server().await;
    let (mut ws, _) = duplex::connect(&url).await.unwrap();
    ws.close(None).await.unwrap();
    assert!(matches!(
        ws.send(Message::text("late")).await,
        Err(Error::ConnectionClosed)
    ));
    assert!(matches!(
        SinkExt::send(&mut ws, Message::text("late")).await,
        Err(Error::ConnectionClosed)
    ));
}

#[tokio::test]
async fn urls_are_validated_with_a_clear_error() {
    for (url, needle) in [
        ("http://127.0.0.1/", "not ws://"),
        ("not a url", "relative URL"),
    ] {
        let err = duplex::connect(url).await.unwrap_err();
        assert!(err.to_string().contains(needle), "{url}: {err}");
    }
}

#[tokio::test]
async fn an_invalid_header_is_named_without_its_value() {
    for (name, value, want, needle) in [
        (
            "bad name",
            "v",
            duplex::HeaderPart::Name,
            "invalid HTTP header name",
        ),
        (
            "x-token",
            "secret\r\ninjected: 1",
            duplex::HeaderPart::Value,
            "line breaks",
        ),
    ] {
        let err = duplex::ClientBuilder::new("ws://127.0.0.1:9/")
            .header(name, value)
            .connect()
            .await
            .unwrap_err();
        assert!(err.is_usage(), "{err:?}");
        let Error::InvalidHeader {
            name: got,
            part,
            reason,
        } = &err
        else {
            panic!("expected InvalidHeader, got {err:?}");
        };
        assert_eq!(got, name);
        assert_eq!(*part, want);
        assert!(reason.contains(needle), "{reason}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}

#[tokio::test]
async fn a_peer_leaving_during_the_handshake_is_named_on_both_sides() {
    // The server reads the request and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut seen = Vec::new();
        while !seen.ends_with(b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client left first");
            seen.extend_from_slice(&buf[..n]);
        }
    });
    let err = duplex::connect(&url).await.unwrap_err();
    server.await.unwrap();
    assert!(
        matches!(
            err,
            Error::HandshakeInterrupted {
                peer: duplex::Role::Server
            }
        ),
        "{err:?}"
    );
    assert!(err.is_handshake() && !err.is_timeout(), "{err:?}");

    // The client sends half a request and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
    });
    let (tcp, _) = listener.accept().await.unwrap();
    client.await.unwrap();
    let err = duplex::accept(tcp).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::HandshakeInterrupted {
                peer: duplex::Role::Client
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the client closed the connection during the WebSocket handshake"
    );
}

#[tokio::test]
async fn a_shared_frame_reaches_every_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    // Two clients with permessage-deflate (the default), one without.
    for deflate in [true, true, false] {
        let builder = duplex::ClientBuilder::new(&url);
        let builder = if deflate {
            builder
        } else {
            builder.deflate(None)
        };
        let (client, server) = tokio::join!(builder.connect(), async {
            duplex::accept(listener.accept().await.unwrap().0).await
        });
        clients.push(client.unwrap().0);
        let server = server.unwrap();
        assert_eq!(server.is_compressing(), deflate);
        servers.push(server);
    }
    let big = Message::binary(vec![9u8; 100_000]);
    let after = Message::binary(vec![9u8; 50_000]);
    for message in [Message::text("tick"), big] {
        let frame = duplex::SharedFrame::new(&message).unwrap();
        for ws in &mut servers {
            ws.send_shared(&frame).await.unwrap();
            // A message of the connection's own after the shared one.
            ws.send(after.clone()).await.unwrap();
        }
        for ws in &mut clients {
            assert_eq!(ws.recv().await.unwrap().unwrap(), message);
            assert_eq!(ws.recv().await.unwrap().unwrap(), after);
        }
    }
    // A client cannot send shared (unmasked) frames, and closed connections refuse them.
    let frame = duplex::SharedFrame::new(&Message::text("x")).unwrap();
    assert!(matches!(
        clients[0].send_shared(&frame).await,
        Err(Error::InvalidSend(_))
    ));
    let client = &mut clients[0];
    let (closed, _) = tokio::join!(servers[0].close(None), async {
        while client.recv().await.is_some() {}
    });
    closed.unwrap();
    assert!(matches!(
        servers[0].send_shared(&frame).await,
        Err(Error::ConnectionClosed)
    ));
}

#[tokio::test]
async fn large_messages_cross_in_both_directions_intact() {
    let url = echo_server().await;
    let (mut ws, _) = duplex::ClientBuilder::new(&url)
        .deflate(None)
        .connect()
        .await
        .unwrap();
    // Sizes around the zero-copy threshold and the 16/64-bit length boundaries.
    for size in [4095usize, 4096, 65535, 65536, 1 << 20] {
        let m = Message::binary((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        ws.feed(m.clone()).await.unwrap();
        ws.feed(Message::text("after")).await.unwrap();
        ws.flush().await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), m);
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("after"));
    }
}

/// A transport that counts the write calls that reach it.
struct CountingWrites<T> {
    inner: T,
    writes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for CountingWrites<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for CountingWrites<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn replies_fed_to_a_burst_leave_in_one_write_when_receiving_resumes() {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let writes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server_io = CountingWrites {
        inner: server_io,
        writes: writes.clone(),
    };
    let mut server = duplex::WebSocket::from_parts(
        server_io,
        duplex::Role::Server,
        Config::default(),
        BytesMut::new(),
    );
    let mut client = duplex::WebSocket::from_parts(
        client_io,
        duplex::Role::Client,
        Config::default(),
        BytesMut::new(),
    );
    // Eight messages in one write: the server reads them in one go.
    for i in 0..8 {
        client.feed(Message::text(format!("m{i}"))).await.unwrap();
    }
    client.flush().await.unwrap();
    let echo = tokio::spawn(async move {
        // Feed each echo without flushing; the receive that finds nothing more to read
        // sends them.
        while let Some(Ok(m)) = server.next().await {
            if m.is_data() {
                server.feed(m).await.unwrap();
            }
        }
    });
    for i in 0..8 {
        let m = tokio::time::timeout(Duration::from_secs(5), client.next())
            .await
            .expect("the fed echoes were flushed by the server's receive")
            .unwrap()
            .unwrap();
        assert_eq!(m, Message::text(format!("m{i}")));
    }
    assert_eq!(
        writes.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "eight echoes in one write"
    );
    client.close(None).await.unwrap();
    echo.await.unwrap();
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_without_an_answer() {
    // A browser's speculative preconnect or a port scan sent no request: no 408.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let config = Config::default().handshake_timeout(Duration::from_millis(100));
        duplex::accept_with(tcp, config, |_| Ok(Accept::default()))
            .await
            .map(drop)
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest))
        .await
        .expect("the server closed the connection")
        .unwrap();
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    let result = server.await.unwrap();
    assert!(
        matches!(
            result,
            Err(Error::Timeout(duplex::Phase::WebSocketHandshake))
        ),
        "{result:?}"
    );
}
