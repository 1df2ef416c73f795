//! The tokio layer runs the protocol's timers (keepalive ping, idle timeout, close
//! deadline) at the instants it is told. Tokio's clock is paused, so every wait here is
//! virtual and exact: nothing sleeps for real, and a timer a moment early or late fails.

use bytes::BytesMut;
use duplex::{Config, Error, Message, Phase, Role, WebSocket};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Awaits `f`, failing the test if it has not finished within a virtual day: a timer
/// that is never registered leaves the runtime idle, the paused clock jumps here, and
/// the test fails instead of hanging.
async fn within_a_day<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(secs(86_400), f)
        .await
        .expect("still waiting after a (virtual) day: a timer was never armed")
}

/// A client connection over a pipe whose other end the test drives by hand.
fn client(config: Config) -> (WebSocket<DuplexStream>, DuplexStream) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let ws = WebSocket::from_parts(ours, Role::Client, config, BytesMut::new());
    (ws, theirs)
}

/// Reads one frame a client wrote; returns its opcode, unmasked payload and the
/// (virtual) instant it arrived.
async fn read_client_frame(peer: &mut DuplexStream) -> (u8, Vec<u8>, Instant) {
    let mut head = [0u8; 6];
    peer.read_exact(&mut head).await.unwrap();
    let at = Instant::now();
    assert_eq!(head[1] & 0x80, 0x80, "client frames are masked");
    let len = usize::from(head[1] & 0x7f);
    assert!(len < 126, "a control frame");
    let mut payload = vec![0u8; len];
    peer.read_exact(&mut payload).await.unwrap();
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= head[2 + i % 4];
    }
    (head[0] & 0x0f, payload, at)
}

#[tokio::test(start_paused = true)]
async fn a_ping_goes_out_after_each_quiet_interval() {
    let (mut ws, mut peer) = client(Config::default().ping_interval(Some(secs(20))));
    let start = Instant::now();
    let reader = tokio::spawn(async move {
        let message = ws.recv().await;
        (ws, message)
    });
    let (opcode, payload, at) = within_a_day(read_client_frame(&mut peer)).await;
    assert_eq!((opcode, payload.len()), (0x9, 0));
    assert_eq!(at - start, secs(20), "the first ping");

    // A server frame at 30 s: the next ping is due 20 s after it, not after the ping.
    tokio::time::sleep_until(start + secs(30)).await;
    peer.write_all(&[0x8a, 0x00]).await.unwrap(); // a pong
    let (ws, message) = reader.await.unwrap();
    assert!(matches!(message, Some(Ok(Message::Pong(_)))), "{message:?}");
    let reader = tokio::spawn(async move {
        let mut ws = ws;
        let message = ws.recv().await;
        (ws, message)
    });
    let (opcode, _, at) = read_client_frame(&mut peer).await;
    assert_eq!(opcode, 0x9);
    assert_eq!(at - start, secs(50), "the second ping");
    reader.abort();
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_closed_with_1001_at_the_idle_timeout() {
    let config = Config::default()
        .idle_timeout(Some(secs(60)))
        .close_timeout(secs(5));
    let (mut ws, mut peer) = client(config);
    let start = Instant::now();
    let outcome = tokio::spawn(async move { (ws.recv().await, Instant::now()) });
    let (opcode, payload, at) = read_client_frame(&mut peer).await;
    assert_eq!(opcode, 0x8);
    assert_eq!(&payload[..2], &1001u16.to_be_bytes(), "going away");
    assert_eq!(&payload[2..], b"idle timeout");
    assert_eq!(at - start, secs(60));
    // The peer never answers: the close handshake ends 5 s later, with the idle
    // timeout as the cause.
    let (message, ended) = within_a_day(outcome).await.unwrap();
    assert!(
        matches!(message, Some(Err(Error::Timeout(Phase::Idle)))),
        "{message:?}"
    );
    assert_eq!(ended - start, secs(65));
}

#[tokio::test(start_paused = true)]
async fn close_gives_up_on_a_silent_peer_at_the_close_timeout() {
    let (mut ws, _peer) = client(Config::default().close_timeout(secs(5)));
    let start = Instant::now();
    let outcome = within_a_day(ws.close(None)).await;
    assert!(
        matches!(outcome, Err(Error::Timeout(Phase::CloseHandshake))),
        "{outcome:?}"
    );
    assert_eq!(start.elapsed(), secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_slow_reader_gets_everything_queued_before_the_close() {
    // A 1 KiB pipe read 1 KiB a second: the 64 KiB message takes about 64 s, far beyond
    // the 5 s close timeout, but every write makes progress and the deadline moves.
    let (ours, mut peer) = tokio::io::duplex(1024);
    let config = Config::default().close_timeout(secs(5));
    let mut ws = WebSocket::from_parts(ours, Role::Server, config, BytesMut::new());
    let payload = vec![7u8; 64 << 10];
    ws.feed(Message::binary(payload.clone())).await.unwrap();
    let start = Instant::now();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            tokio::time::sleep(secs(1)).await;
            match peer.read(&mut buf).await.unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
            if got.ends_with(&[0x88, 2, 0x03, 0xe8]) {
                // Our close is in: answer it as a peer does.
                peer.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])
                    .await
                    .unwrap();
            }
        }
        got
    });
    within_a_day(ws.close(None)).await.unwrap();
    assert!(start.elapsed() > secs(60), "took {:?}", start.elapsed());
    let got = reader.await.unwrap();
    assert_eq!(got[..2], [0x82, 127], "the binary message first");
    assert_eq!(&got[10..10 + payload.len()], &payload[..]);
    assert_eq!(
        &got[10 + payload.len()..],
        &[0x88, 2, 0x03, 0xe8],
        "then our close"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reader_that_stops_meets_the_deadline_from_its_last_read() {
    let (ours, mut peer) = tokio::io::duplex(1024);
    let config = Config::default().close_timeout(secs(5));
    let mut ws = WebSocket::from_parts(ours, Role::Server, config, BytesMut::new());
    ws.feed(Message::binary(vec![7u8; 64 << 10])).await.unwrap();
    let start = Instant::now();
    // Reads for 10 s, then stops for good (keeping the pipe open).
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        for _ in 0..10 {
            tokio::time::sleep(secs(1)).await;
            assert!(peer.read(&mut buf).await.unwrap() > 0);
        }
        peer
    });
    let outcome = ws.close(None).await;
    assert!(
        matches!(outcome, Err(Error::Timeout(Phase::CloseHandshake))),
        "{outcome:?}"
    );
    assert_eq!(
        start.elapsed(),
        secs(15),
        "5 s after the last write made progress"
    );
    drop(reader.await.unwrap());
}

/// A peer that reads 1 KiB a second and answers our close once it has it all.
async fn slow_reader_that_answers(mut peer: DuplexStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        tokio::time::sleep(secs(1)).await;
        match peer.read(&mut buf).await.unwrap() {
            0 => return got,
            n => got.extend_from_slice(&buf[..n]),
        }
        if got.ends_with(&[0x88, 2, 0x03, 0xe8]) {
            peer.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])
                .await
                .unwrap();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn every_way_of_closing_lets_a_slow_reader_have_it_all() {
    // `send(Close)`, the Sink's close and the split writer's close flush on their own,
    // before `recv` runs the timers: their writes must move the deadline too.
    for way in ["send", "sink", "writer"] {
        let (ours, peer) = tokio::io::duplex(1024);
        let config = Config::default().close_timeout(secs(5));
        let mut ws = WebSocket::from_parts(ours, Role::Server, config, BytesMut::new());
        ws.feed(Message::binary(vec![7u8; 64 << 10])).await.unwrap();
        let reader = tokio::spawn(slow_reader_that_answers(peer));
        let start = Instant::now();
        let end = match way {
            "send" => {
                ws.send(Message::Close(None)).await.unwrap();
                within_a_day(ws.recv()).await
            }
            "sink" => {
                futures_util::SinkExt::close(&mut ws).await.unwrap();
                within_a_day(ws.recv()).await
            }
            _ => {
                let (mut reader_half, mut writer) = ws.split();
                writer.close().await.unwrap();
                within_a_day(reader_half.recv()).await
            }
        };
        assert!(
            matches!(end, Some(Ok(Message::Close(_)))),
            "{way}: {end:?} after {:?}",
            start.elapsed()
        );
        assert!(
            start.elapsed() > secs(60),
            "{way}: took {:?}",
            start.elapsed()
        );
        let got = reader.await.unwrap();
        assert_eq!(
            got.len(),
            10 + (64 << 10) + 4,
            "{way}: all of it, then the close"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn with_keepalive_on_the_close_deadline_is_not_held_back_by_the_ping_timer() {
    // The ping timer is set for 20 s; closing at 1 s needs an earlier wake-up.
    let config = Config::default()
        .ping_interval(Some(secs(20)))
        .idle_timeout(Some(secs(60)))
        .close_timeout(secs(5));
    let (mut ws, _peer) = client(config);
    let start = Instant::now();
    let idle = tokio::time::timeout(secs(1), ws.recv()).await;
    assert!(idle.is_err(), "nothing arrives: {idle:?}");
    let outcome = within_a_day(ws.close(None)).await;
    assert!(
        matches!(outcome, Err(Error::Timeout(Phase::CloseHandshake))),
        "{outcome:?}"
    );
    assert_eq!(start.elapsed(), secs(6));
}

#[tokio::test(start_paused = true)]
async fn with_keepalive_on_a_peer_close_is_answered_and_the_wait_for_its_end_bounded() {
    let config = Config::default()
        .ping_interval(Some(secs(20)))
        .close_timeout(secs(5));
    let (mut ws, mut peer) = client(config);
    let start = Instant::now();
    tokio::time::sleep(secs(2)).await;
    // The server's close, unmasked; it then keeps the transport open.
    peer.write_all(&[0x88, 0x02, 0x03, 0xe8]).await.unwrap();
    let close = within_a_day(ws.recv()).await;
    assert!(matches!(close, Some(Ok(Message::Close(_)))), "{close:?}");
    let (opcode, payload, _) = read_client_frame(&mut peer).await;
    assert_eq!(
        (opcode, payload),
        (0x8, 1000u16.to_be_bytes().to_vec()),
        "the echo"
    );
    // The client waits for the server to end the TCP connection, at most 5 s.
    let end = within_a_day(ws.recv()).await;
    assert!(end.is_none(), "a clean close: {end:?}");
    assert_eq!(start.elapsed(), secs(7));
}
