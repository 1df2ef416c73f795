//! `duplex echo --broadcast`: one room shared by every connection. Each data message a
//! connection sends is encoded once ([`SharedFrame`], compressed once per deflate
//! setting) and queued on every other connection. A connection that falls more than
//! [`BACKLOG`] messages behind is closed with 1008, rather than slowing the room down or
//! buffering without bound.

use super::PeerAddr;
use duplex::{CloseCode, CloseFrame, Message, SharedFrame, WebSocket};
use futures_util::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

/// Messages a connection may fall behind the room before it is closed.
pub const BACKLOG: usize = 4096;

/// The room: a broadcast channel of frames tagged with their sender.
#[derive(Clone)]
pub struct Room {
    frames: broadcast::Sender<(u64, SharedFrame)>,
    next_id: Arc<AtomicU64>,
}

impl Room {
    pub fn new() -> Self {
        Self {
            frames: broadcast::channel(BACKLOG).0,
            next_id: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A new member, receiving from now on: joined before its handshake completes, so a
    /// client gets every message sent after its connection opened.
    pub fn join(&self) -> Member {
        Member {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            frames: self.frames.subscribe(),
            room: self.clone(),
        }
    }
}

/// A connection's place in the room.
pub struct Member {
    id: u64,
    frames: broadcast::Receiver<(u64, SharedFrame)>,
    room: Room,
}

impl Member {
    /// Serves the member's open connection until it or the peer closes; logs the end.
    pub async fn serve<S>(mut self, mut ws: WebSocket<S>)
    where
        S: AsyncRead + AsyncWrite + Unpin + PeerAddr,
    {
        let result = self.relay(&mut ws).await;
        let peer = ws.get_ref().peer_addr();
        let peer = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        match result {
            Ok(()) => tracing::info!(%peer, "connection closed"),
            Err(e) => tracing::info!(%peer, error = %e, "connection ended with an error"),
        }
    }

    async fn relay<S>(&mut self, ws: &mut WebSocket<S>) -> Result<(), duplex::Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (id, frames) = (self.id, &mut self.frames);
        loop {
            tokio::select! {
                received = ws.next() => match received {
                    Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                        // No receivers is not an error: the room may be empty.
                        let _ = self.room.frames.send((id, SharedFrame::new(&m)?));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Ok(()),
                },
                relayed = frames.recv() => {
                    // As a `try_recv` result, so one match handles the first and the rest.
                    let mut next = relayed.map_err(|e| match e {
                        RecvError::Lagged(n) => TryRecvError::Lagged(n),
                        RecvError::Closed => TryRecvError::Closed,
                    });
                    // Queue everything already waiting, then write it at once.
                    loop {
                        match next {
                            Ok((from, frame)) => {
                                if from != id {
                                    ws.feed_shared(&frame).await?;
                                }
                            }
                            Err(TryRecvError::Lagged(missed)) => {
                                tracing::info!(missed, "closing a connection that fell behind the room");
                                let reason = format!("too slow: {missed} messages dropped");
                                ws.close(Some(CloseFrame::new(CloseCode::POLICY_VIOLATION, reason))).await?;
                                return Ok(());
                            }
                            Err(TryRecvError::Closed) => return Ok(()),
                            Err(TryRecvError::Empty) => break,
                        }
                        next = frames.try_recv();
                    }
                    ws.flush().await?;
                }
            }
        }
    }
}
