//! `duplex echo --broadcast`: one room shared by every connection. Each data message a
//! connection sends is encoded once ([`SharedFrame`], compressed once per deflate
//! setting) and queued on every other connection. A connection that falls more than
//! [`BACKLOG`] messages behind is closed with 1008, rather than slowing the room down or
//! buffering without bound.

use super::PeerAddr;
use bytes::Bytes;
use duplex::{CloseCode, CloseFrame, Message, SharedFrame, WebSocket};
use futures_util::{FutureExt, Sink, StreamExt};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
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

/// What woke a member up.
enum Event {
    /// A message from its peer (or the end of the connection).
    Received(Option<Result<Message, duplex::Error>>),
    /// Its write queue has room again for the frames waiting.
    Room(Result<(), duplex::Error>),
    /// Frames from the room.
    Relayed(Result<(u64, SharedFrame), RecvError>),
}

impl Member {
    /// Serves the member's open connection until it or the peer closes; logs the end.
    pub async fn serve<S>(self, mut ws: WebSocket<S>)
    where
        S: AsyncRead + AsyncWrite + Unpin + PeerAddr,
    {
        let result = match self.relay(&mut ws).await {
            // The member is gone by now: the frames it held are freed, and the room
            // keeps none for it while the close takes its time.
            Ok(Some(behind)) => close_lagging(&mut ws, behind).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        let peer = ws.get_ref().peer_addr();
        let peer = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        match result {
            Ok(()) => tracing::info!(%peer, "connection closed"),
            Err(e) => tracing::info!(%peer, error = %e, "connection ended with an error"),
        }
    }

    /// Relays the room's frames to the connection and its messages to the room, until
    /// the connection ends (`None`) or falls behind (`Some(why)`: to be closed).
    ///
    /// Frames are queued without waiting for room in the write queue: those that do not
    /// fit wait in `waiting`, counted, so a peer that stops reading is cut off once it is
    /// [`BACKLOG`] messages behind, even if it never reads again, and its messages keep
    /// being relayed meanwhile.
    async fn relay<S>(mut self, ws: &mut WebSocket<S>) -> Result<Option<String>, duplex::Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (id, frames) = (self.id, &mut self.frames);
        let mut waiting: VecDeque<SharedFrame> = VecDeque::new();
        loop {
            let blocked = !waiting.is_empty();
            let event = tokio::select! {
                event = poll_fn(|cx| poll_connection(ws, blocked, cx)) => event,
                relayed = frames.recv() => Event::Relayed(relayed),
            };
            match event {
                Event::Received(received) => match received {
                    Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                        let frame = SharedFrame::new(&unpinned(m))?;
                        // No receivers is not an error: the room may be empty.
                        let _ = self.room.frames.send((id, frame));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Ok(None),
                },
                Event::Room(ready) => ready?,
                Event::Relayed(relayed) => {
                    // As a `try_recv` result, so one match handles the first and the rest.
                    let mut next = relayed.map_err(|e| match e {
                        RecvError::Lagged(n) => TryRecvError::Lagged(n),
                        RecvError::Closed => TryRecvError::Closed,
                    });
                    // Take everything already sent, then queue it at once.
                    loop {
                        match next {
                            Ok((from, frame)) => {
                                if from != id {
                                    waiting.push_back(frame);
                                }
                            }
                            // Only when this task was starved for the whole backlog.
                            Err(TryRecvError::Lagged(missed)) => {
                                return Ok(Some(format!("too slow: {missed} messages dropped")));
                            }
                            Err(TryRecvError::Closed) => return Ok(None),
                            Err(TryRecvError::Empty) => break,
                        }
                        if waiting.len() > BACKLOG {
                            return Ok(Some(format!("too slow: over {BACKLOG} messages behind")));
                        }
                        next = frames.try_recv();
                    }
                }
            }
            // After the peer's close nothing more is sent: what waits is dropped, so a
            // normal close is not reported as a failed send.
            if ws.protocol().state() != duplex::ConnectionState::Open {
                waiting.clear();
            }
            // Whatever fits in the write queue now; receiving writes it out.
            while let Some(frame) = waiting.front() {
                match ws.feed_shared(frame).now_or_never() {
                    Some(fed) => {
                        fed?;
                        waiting.pop_front();
                    }
                    None => break,
                }
            }
        }
    }
}

/// The next message from the peer or, when frames wait (`blocked`), room in the write
/// queue: one future, as both need the connection.
fn poll_connection<S>(ws: &mut WebSocket<S>, blocked: bool, cx: &mut Context<'_>) -> Poll<Event>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if blocked {
        if let Poll::Ready(ready) = Pin::new(&mut *ws).poll_ready(cx) {
            return Poll::Ready(Event::Room(ready));
        }
    }
    ws.poll_next_unpin(cx).map(Event::Received)
}

/// The message with a payload of its own. A received payload is a slice of the
/// connection's read buffer, and a frame kept for a lagging member would keep that whole
/// buffer (up to 256 KiB) alive with it.
fn unpinned(message: Message) -> Message {
    match message {
        Message::Binary(b) => Message::Binary(Bytes::copy_from_slice(&b)),
        Message::Text(t) => Message::Text(t.as_str().into()),
        other => other,
    }
}

/// Closes a member that fell behind with 1008. The close frame follows what is queued;
/// a peer that does not read it within the close timeout loses its connection anyway.
async fn close_lagging<S>(ws: &mut WebSocket<S>, reason: String) -> Result<(), duplex::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tracing::info!(%reason, "closing a connection that fell behind the room");
    ws.close(Some(CloseFrame::new(CloseCode::POLICY_VIOLATION, reason)))
        .await
}
