//! One rule for closing (`WebSocket` docs, "Closing"): no close frame given means 1000,
//! whichever way the connection is closed; a frame given is sent as it is.

use bytes::BytesMut;
use duplex::{CloseCode, CloseFrame, Config, Message, Role, WebSocket};
use futures_util::SinkExt;
use tokio::io::DuplexStream;

fn pair() -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = tokio::io::duplex(4096);
    let client = WebSocket::from_parts(a, Role::Client, Config::default(), BytesMut::new());
    let server = WebSocket::from_parts(b, Role::Server, Config::default(), BytesMut::new());
    (client, server)
}

/// The close frame `server` receives after `close` ran on the client.
async fn received_close<F>(close: F) -> Option<CloseFrame>
where
    F: AsyncFnOnce(&mut WebSocket<DuplexStream>),
{
    let (mut client, mut server) = pair();
    let peer = tokio::spawn(async move {
        let frame = match server.recv().await {
            Some(Ok(Message::Close(frame))) => frame,
            other => panic!("no close frame: {other:?}"),
        };
        // The rest of the close handshake: the reply goes out, the stream ends.
        assert!(server.recv().await.is_none());
        frame
    });
    close(&mut client).await;
    // The client's side of the handshake: the peer's reply, then the end of the stream.
    while let Some(m) = client.recv().await {
        assert!(matches!(m, Ok(Message::Close(_))), "{m:?}");
    }
    peer.await.unwrap()
}

#[tokio::test]
async fn no_frame_given_is_1000_whichever_way_the_connection_closes() {
    let normal = Some(CloseFrame::new(CloseCode::NORMAL, ""));
    assert_eq!(
        received_close(async |ws| ws.close(None).await.unwrap()).await,
        normal,
        "close(None)"
    );
    assert_eq!(
        received_close(async |ws| ws.send(Message::Close(None)).await.unwrap()).await,
        normal,
        "send(Message::Close(None))"
    );
    assert_eq!(
        received_close(async |ws| ws.send_uncompressed(Message::Close(None)).await.unwrap()).await,
        normal,
        "send_uncompressed(Message::Close(None))"
    );
    assert_eq!(
        received_close(async |ws| SinkExt::close(ws).await.unwrap()).await,
        normal,
        "Sink::close"
    );
    let (client, mut server) = pair();
    let peer = tokio::spawn(async move { server.recv().await });
    let (_reader, mut writer) = client.split();
    writer.close().await.unwrap();
    assert!(
        matches!(peer.await.unwrap(), Some(Ok(Message::Close(f))) if f == normal),
        "WebSocketWriter::close"
    );
}

#[tokio::test]
async fn a_frame_given_is_sent_as_it_is() {
    let bye = CloseFrame::new(CloseCode::GOING_AWAY, "restarting");
    let sent = bye.clone();
    assert_eq!(
        received_close(async move |ws| ws.close(Some(sent)).await.unwrap()).await,
        Some(bye.clone())
    );
    let sent = bye.clone();
    assert_eq!(
        received_close(async move |ws| ws.send(Message::Close(Some(sent))).await.unwrap()).await,
        Some(bye)
    );
}

#[tokio::test(start_paused = true)]
async fn a_close_sent_as_a_message_starts_the_close_deadline() {
    // A peer that never reads nor answers: the close handshake ends at the deadline,
    // whichever way our close frame was sent.
    for uncompressed in [false, true] {
        let (a, _silent) = tokio::io::duplex(1 << 20);
        let config = Config::default().close_timeout(std::time::Duration::from_millis(50));
        let mut client = WebSocket::from_parts(a, Role::Client, config, BytesMut::new());
        if uncompressed {
            client
                .send_uncompressed(Message::Close(None))
                .await
                .unwrap();
        } else {
            client.send(Message::Close(None)).await.unwrap();
        }
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), client.recv())
            .await
            .expect("the close deadline ended the wait");
        assert!(
            matches!(
                ended,
                Some(Err(duplex::Error::Timeout(duplex::Phase::CloseHandshake)))
            ),
            "uncompressed: {uncompressed}: {ended:?}"
        );
    }
}
