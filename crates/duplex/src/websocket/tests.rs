//! Unit tests of the tokio layer that need its private state: held pongs, the close
//! deadline, read-buffer sizing.
use super::*;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};

/// A transport that counts the reads that returned data.
struct CountingReads<T> {
    inner: T,
    reads: Arc<AtomicUsize>,
}

impl<T: AsyncRead + Unpin> AsyncRead for CountingReads<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.reads.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CountingReads<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A masked client ping (zero mask) with a 2-byte sequence number as its payload.
fn ping(seq: u16) -> [u8; 8] {
    let [hi, lo] = seq.to_be_bytes();
    [0x89, 0x82, 0, 0, 0, 0, hi, lo]
}

#[tokio::test]
async fn a_ping_flood_from_a_peer_that_never_reads_holds_one_pong() {
    let (mut client, server_io) = tokio::io::duplex(16 << 10);
    let config = Config::default().write_buffer_limit(4096);
    let limit = config.write_buffer_limit;
    let mut server = WebSocket::from_parts(server_io, Role::Server, config, BytesMut::new());
    const PINGS: u16 = 20_000;
    let flood = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        for seq in 0..PINGS {
            client.write_all(&ping(seq)).await.unwrap();
        }
        client
    });
    // The server only reads, as a receive-only application does: before holding pongs
    // back, each ping queued its pong and the queue grew with the flood.
    for seq in 0..PINGS {
        let got = server.next().await.unwrap().unwrap();
        assert_eq!(
            got,
            Message::Ping(Bytes::copy_from_slice(&seq.to_be_bytes()))
        );
        assert!(
            server.write_buf.len() < limit + 8,
            "{} bytes queued after ping {seq}",
            server.write_buf.len()
        );
    }
    let mut client = flood.await.unwrap();
    // Now the peer reads: the pongs come, the last one answering the last ping.
    let reader = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut last = None;
        let mut head = [0u8; 4];
        while last != Some(PINGS - 1) {
            client.read_exact(&mut head).await.unwrap();
            assert_eq!(head[..2], [0x8A, 2], "a pong with the ping's payload");
            last = Some(u16::from_be_bytes([head[2], head[3]]));
        }
        // Kept open until the select below is decided.
        client
    });
    tokio::select! {
        next = server.next() => panic!("the client sent nothing more: {next:?}"),
        read = reader => drop(read.unwrap()),
    }
}

#[tokio::test(start_paused = true)]
async fn a_held_pong_goes_out_before_our_own_close() {
    let (mut client, server_io) = tokio::io::duplex(1024);
    let config = Config::default()
        .write_buffer_limit(4096)
        .close_timeout(std::time::Duration::from_millis(200));
    let mut server = WebSocket::from_parts(server_io, Role::Server, config, BytesMut::new());
    // Fill the queue past its limit (the pipe holds 1 KiB), then receive a ping.
    let filler = Message::binary(vec![1u8; 8 << 10]);
    server.feed(filler).now_or_never();
    assert!(server.write_buf.len() >= 4096);
    {
        use tokio::io::AsyncWriteExt;
        client.write_all(&ping(7)).await.unwrap();
    }
    let got = server.next().await.unwrap().unwrap();
    assert_eq!(
        got,
        Message::Ping(Bytes::copy_from_slice(&7u16.to_be_bytes()))
    );
    assert!(server.rare.as_ref().is_some_and(|r| r.held_pong.is_some()));
    // Our close: the pong is queued ahead of it.
    server.start_send_message(&Message::Close(None)).unwrap();
    let reader = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut got = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            client.read_to_end(&mut got),
        )
        .await;
        got
    });
    let _ = server.close(None).await;
    let got = reader.await.unwrap();
    let tail = &got[got.len() - 8..];
    assert_eq!(
        tail,
        &[0x8A, 2, 0, 7, 0x88, 2, 0x03, 0xE8],
        "pong, then our close (1000): {tail:?}"
    );
}

#[tokio::test]
async fn a_streaming_peer_costs_one_read_per_message_and_an_idle_one_no_buffer() {
    let (client_io, server_io) = tokio::io::duplex(4 << 20);
    let reads = Arc::new(AtomicUsize::new(0));
    let server_io = CountingReads {
        inner: server_io,
        reads: reads.clone(),
    };
    let mut server =
        WebSocket::from_parts(server_io, Role::Server, Config::default(), BytesMut::new());
    let mut client =
        WebSocket::from_parts(client_io, Role::Client, Config::default(), BytesMut::new());
    let big = Message::binary(vec![7u8; 64 << 10]);
    let mut per_message = Vec::new();
    for _ in 0..5 {
        let before = reads.load(Ordering::Relaxed);
        client.send(big.clone()).await.unwrap();
        assert_eq!(server.next().await.unwrap().unwrap(), big);
        // The socket is empty now: the server waits.
        assert!(server.next().now_or_never().is_none());
        per_message.push(reads.load(Ordering::Relaxed) - before);
        assert!(
            server.read_buf.capacity() > 0,
            "a streaming peer's buffer is kept"
        );
    }
    // The first message is read in two steps (its size is not known yet); the next
    // ones in one read each.
    assert_eq!(per_message[1..], [1, 1, 1, 1], "{per_message:?}");
    // Small messages again: the buffer goes once the socket is empty.
    client.send(Message::text("tick")).await.unwrap();
    assert_eq!(server.next().await.unwrap().unwrap(), Message::text("tick"));
    assert!(server.next().now_or_never().is_none());
    assert_eq!(
        server.read_buf.capacity(),
        0,
        "an idle connection holds no read buffer"
    );
}

#[tokio::test]
async fn the_close_deadline_holds_while_messages_keep_arriving() {
    // Two million masked 4-byte messages already read: receiving never waits for the
    // transport, so the deadline must be looked at between messages. Real time (a
    // paused clock does not move while the task is busy); 10 ms cannot decode them all.
    let frame = [0x82u8, 0x84, 0, 0, 0, 0, 1, 2, 3, 4];
    let mut backlog = BytesMut::with_capacity(frame.len() * 2_000_000);
    for _ in 0..2_000_000 {
        backlog.extend_from_slice(&frame);
    }
    let (ours, _peer) = tokio::io::duplex(1 << 16);
    let config = Config::default().close_timeout(std::time::Duration::from_millis(10));
    let mut ws = WebSocket::from_parts(ours, Role::Server, config, backlog);
    let outcome = ws.close(None).await;
    assert!(
        matches!(
            outcome,
            Err(Error::Timeout(crate::error::Phase::CloseHandshake))
        ),
        "{outcome:?}"
    );
    assert!(
        !ws.read_buf.is_empty(),
        "the deadline ended the close before the backlog did"
    );
}
