//! A relay that loses a reply: what a network failure does between a command running
//! and its client hearing of it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP relay to a Redis that, once armed, passes the next `EVAL` on but swallows the
/// replies that follow it and hangs up: the command ran, and its client never learns.
pub(super) struct ReplyEater {
    pub(super) port: u16,
    armed: Arc<AtomicBool>,
}

impl ReplyEater {
    pub(super) async fn start(to: u16) -> ReplyEater {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let shared = armed.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(("127.0.0.1", to)).await.unwrap();
                tokio::spawn(Self::relay(client, server, shared.clone()));
            }
        });
        ReplyEater { port, armed }
    }

    /// The next `EVAL` runs, but its client gets no reply: the connection drops.
    pub(super) fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    async fn relay(client: TcpStream, server: TcpStream, armed: Arc<AtomicBool>) {
        let (mut from_client, mut to_client) = client.into_split();
        let (mut from_server, mut to_server) = server.into_split();
        let eating = Arc::new(AtomicBool::new(false));
        let eat = eating.clone();
        let up = async move {
            let mut buf = vec![0; 64 * 1024];
            while let Ok(n @ 1..) = from_client.read(&mut buf).await {
                let command = &buf[..n];
                // Decided before the command reaches the node, so before its reply.
                if command.windows(4).any(|w| w == b"EVAL") && armed.swap(false, Ordering::SeqCst) {
                    eat.store(true, Ordering::SeqCst);
                }
                if to_server.write_all(command).await.is_err() {
                    break;
                }
            }
        };
        let down = async move {
            let mut buf = vec![0; 64 * 1024];
            while let Ok(n @ 1..) = from_server.read(&mut buf).await {
                if eating.load(Ordering::SeqCst) {
                    break;
                }
                if to_client.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        // Either way ends the connection: both sockets close when dropped.
        tokio::select! {
            () = up => {}
            () = down => {}
        }
    }
}
