//! The cancel-safety promises of `WebSocket` (its docs, "Cancel safety"): `recv`, `flush`
//! and `close` cut short in a `select!` after every single poll lose nothing.

use bytes::BytesMut;
use duplex::{CloseCode, Config, Message, Role, WebSocket};
use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use tokio::io::DuplexStream;

/// A client and a server over an in-memory pipe of `capacity` bytes: a small pipe makes
/// frames arrive and leave in pieces.
fn pair(capacity: usize) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = tokio::io::duplex(capacity);
    let client = WebSocket::from_parts(a, Role::Client, Config::default(), BytesMut::new());
    let server = WebSocket::from_parts(b, Role::Server, Config::default(), BytesMut::new());
    (client, server)
}

/// Message `i`: text or binary, 0 to about 3 KiB, its number in the first bytes.
fn message(i: usize) -> Message {
    let body = format!("{i:05}{}", "x".repeat(i * 37 % 3000));
    if i.is_multiple_of(2) {
        Message::text(body)
    } else {
        Message::binary(body.into_bytes())
    }
}

/// Polls `future` once; `Some` if it finished, `None` if it was pending and is dropped
/// (cancelled), as a `select!` whose other branch is always ready would do.
async fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

const MESSAGES: usize = 200;

#[tokio::test]
async fn recv_cut_short_after_every_poll_loses_nothing() {
    let (mut client, mut server) = pair(64);
    let sender = tokio::spawn(async move {
        for i in 0..MESSAGES {
            client.send(message(i)).await.unwrap();
        }
        client.close(None).await.unwrap();
    });
    let (mut received, mut cancelled, mut closed) = (0, 0, false);
    loop {
        match poll_once(server.recv()).await {
            None => {
                cancelled += 1;
                tokio::task::yield_now().await;
            }
            Some(Some(Ok(Message::Close(frame)))) => {
                assert_eq!(frame.map(|f| f.code), Some(CloseCode::NORMAL));
                closed = true;
            }
            Some(Some(Ok(m))) => {
                assert_eq!(m, message(received), "message {received}");
                received += 1;
            }
            Some(Some(Err(e))) => panic!("after {received} messages: {e}"),
            Some(None) => break,
        }
    }
    drop(server);
    sender.await.unwrap();
    assert_eq!(received, MESSAGES);
    assert!(closed, "the close frame arrived");
    assert!(
        cancelled > MESSAGES,
        "recv was cut short only {cancelled} times: the test did not test"
    );
}

#[tokio::test]
async fn flush_and_close_cut_short_after_every_poll_lose_nothing() {
    let (mut client, mut server) = pair(64);
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(m) = client.recv().await {
            got.push(m.unwrap());
        }
        got
    });
    for i in 0..MESSAGES {
        server.feed(message(i)).await.unwrap();
    }
    let mut cancelled = 0;
    while poll_once(server.flush()).await.is_none() {
        cancelled += 1;
        tokio::task::yield_now().await;
    }
    let flushes_cancelled = cancelled;
    loop {
        match poll_once(server.close(None)).await {
            None => {
                cancelled += 1;
                tokio::task::yield_now().await;
            }
            Some(result) => break result.unwrap(),
        }
    }
    let got = reader.await.unwrap();
    assert_eq!(got.len(), MESSAGES + 1, "every message and the close frame");
    for (i, m) in got[..MESSAGES].iter().enumerate() {
        assert_eq!(*m, message(i), "message {i}");
    }
    assert!(
        matches!(&got[MESSAGES], Message::Close(Some(f)) if f.code == CloseCode::NORMAL),
        "{:?}",
        got[MESSAGES]
    );
    assert!(
        flushes_cancelled > 10 && cancelled > flushes_cancelled,
        "flush cut short {flushes_cancelled} times, close {} times: the test did not test",
        cancelled - flushes_cancelled
    );
}
