//! One client connection: commands in, replies and pushes out.
//!
//! The session is one task that owns the WebSocket. It answers commands in the order
//! they arrive, except publishes, whose acknowledgements wait for the commit and are
//! sent when it is done (the protocol matches replies by id). Pushes come through the
//! connection's bounded queue; a publication is sent only if its offset is past what the
//! connection already has, which is how the switch from history to the live stream has
//! no gap and no duplicate.

mod commands;
mod proxied;

use crate::auth::{unix_now, Identity};
use crate::node::Node;
use crate::protocol::reply::{self, ClientInfo, PresenceStatsResult};
use crate::protocol::{DisconnectCode, ErrorCode, Format, UnsubscribeCode};
use crate::registry::{ClientHandle, Outgoing};
use duplex::{CloseFrame, Message, WebSocket};
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{sleep_until, Instant as TokioInstant};

/// The hub's version string in connect replies.
pub const VERSION: &str = concat!("duplex-hub ", env!("CARGO_PKG_VERSION"));

/// Pushes taken from the queue per write: bounds the time between reads.
const QUEUE_BATCH: usize = 256;

/// Replies that wait for something: a commit, a backend. The set is made at the first
/// (most connections only subscribe and never need one).
#[derive(Default)]
struct Pending(Option<FuturesUnordered<BoxFuture<'static, Deferred>>>);

impl Pending {
    fn push(&mut self, reply: BoxFuture<'static, Deferred>) {
        self.0.get_or_insert_with(FuturesUnordered::new).push(reply);
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, FuturesUnordered::len)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next reply that is ready (None when there are none).
    async fn next(&mut self) -> Option<Deferred> {
        match &mut self.0 {
            Some(replies) => replies.next().await,
            None => None,
        }
    }
}

/// What a deferred command ends in.
enum Deferred {
    /// The answer to command `id`.
    Answer(u32, Result<reply::Reply, Failure>),
    /// Nothing to send (`send`).
    Nothing,
    /// The backend ends the connection.
    Disconnect(u16, String),
}

struct Subscription {
    /// The last offset sent (or recovered); later publications only.
    offset: u64,
    /// The stream's epoch when the client subscribed.
    epoch: String,
    /// The subscription token's `info`, shown with this client in the channel.
    chan_info: Option<reply::Json>,
    /// When the subscription ends unless its token is refreshed.
    closes_at: Option<TokioInstant>,
    join_leave: bool,
}

struct Connected {
    identity: Identity,
    /// When the connection is closed unless refreshed: `expired_close_delay` after the
    /// token's `exp` (the SDKs ask for a new token only once `ttl` has run out).
    closes_at: Option<TokioInstant>,
    anonymous: bool,
    /// Let in by the connect proxy: at `closes_at` the refresh proxy is asked.
    via_backend: bool,
    handle: Arc<ClientHandle>,
    queue: crate::queue::Receiver,
    subscriptions: HashMap<Arc<str>, Subscription>,
}

impl Connected {
    fn info(&self) -> ClientInfo {
        ClientInfo {
            user: self.identity.user.clone(),
            client: self.handle.id.clone(),
            conn_info: self.identity.info.clone(),
            chan_info: None,
        }
    }

    /// Who this client is in `channel`: with the subscription token's info.
    fn info_in(&self, channel: &str) -> ClientInfo {
        let mut info = self.info();
        info.chan_info = self
            .subscriptions
            .get(channel)
            .and_then(|s| s.chan_info.clone());
        info
    }
}

/// The session's deadlines.
#[derive(Clone, Copy)]
enum Timer {
    /// `connect_timeout`: no connect command yet.
    Connect,
    /// Time to ping.
    Ping,
    /// `pong_timeout`: the ping was not answered.
    Pong,
    /// A subscription token expired without a `sub_refresh`.
    SubscriptionExpired,
    /// The connection token expired without a `refresh`.
    Expired,
}

/// What a command's handling decided.
enum Step {
    /// Go on (reply lines may be waiting in `out`).
    Continue,
    /// End the connection with this code.
    Disconnect(DisconnectCode),
    /// End the connection as the backend said.
    BackendDisconnect(u16, String),
    /// The connection failed while writing.
    Gone,
}

/// Reply bytes collected before they are written out, even in the middle of one
/// client message: bounds what one message of many `history` commands can pile up.
const OUT_BUDGET: usize = 256 * 1024;

/// Publishes awaiting their commit per connection; past this the session reads no more
/// commands until some are acknowledged.
const MAX_PENDING: usize = 1024;

/// How the hub ends a connection.
enum Ending {
    /// One of the protocol's codes.
    Code(DisconnectCode),
    /// A code and reason from the backend.
    Backend(u16, String),
}

/// Runs a session until the client leaves or the hub ends it. `format`: the encoding the
/// handshake chose; `headers`: the handshake headers passed on to backend proxies.
///
/// A plain function returning an async block, not an `async fn`: an `async fn` keeps
/// its arguments twice in its future (as captured and as moved into locals), and this
/// future lives as long as the connection.
pub fn run<S>(
    node: Arc<Node>,
    mut ws: WebSocket<S>,
    format: Format,
    headers: http::HeaderMap,
) -> impl std::future::Future<Output = ()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut session = Session {
        headers,
        node: node.clone(),
        connected: None,
        format,
        out: Vec::new(),
        pending: Pending::default(),
        connect_failed: false,
        command_rate: std::num::NonZeroU32::new(node.config.max_commands_per_second)
            .map(|n| governor::RateLimiter::direct(governor::Quota::per_second(n))),
        byte_rate: std::num::NonZeroU32::new(node.config.max_bytes_per_second)
            .map(|n| governor::RateLimiter::direct(governor::Quota::per_second(n))),
    };
    async move {
        let code = session.serve(&mut ws).await;
        // Leave the channels first: whatever the last writes do, presence and the
        // registry are clean.
        Box::pin(session.leave_all()).await;
        let code = match code {
            None => {
                node.metrics.disconnects.inc("client closed");
                return;
            }
            Some(Ending::Backend(code, reason)) => {
                node.metrics.disconnects.inc("backend");
                let goodbye = async {
                    ws.send(format.message(format.custom_disconnect(code, &reason)))
                        .await?;
                    ws.close(Some(CloseFrame::new(code, reason))).await
                };
                let limit = node.config.write_timeout + node.websocket.close_timeout;
                let _ = tokio::time::timeout(limit, Box::pin(goodbye)).await;
                return;
            }
            Some(Ending::Code(code)) => code,
        };
        node.metrics.disconnects.inc(code.label());
        if code == DisconnectCode::Slow {
            node.metrics.slow_disconnects.inc();
        }
        // A slow client's socket is full: only the close frame is worth trying. Both writes
        // are bounded: a peer that trickles its reads cannot hold the task.
        let limit = node.config.write_timeout;
        let goodbye = async {
            if code != DisconnectCode::Slow {
                ws.send(format.message(format.disconnect(code))).await?;
            }
            ws.close(Some(CloseFrame::new(code.code(), code.reason())))
                .await
        };
        let _ = tokio::time::timeout(limit + node.websocket.close_timeout, Box::pin(goodbye)).await;
    }
}

struct Session {
    node: Arc<Node>,
    /// Handshake headers for backend proxies (`proxy.http_headers` only).
    headers: http::HeaderMap,
    connected: Option<Connected>,
    /// JSON or Protobuf.
    format: Format,
    /// Replies to send with the next write, encoded and joined.
    out: Vec<u8>,
    /// Publish acknowledgements waiting for their commit.
    pending: Pending,
    /// The last connect was refused: later commands are dropped, not a protocol error.
    connect_failed: bool,
    /// `max_commands_per_second`, when set.
    command_rate: Option<governor::DefaultDirectRateLimiter>,
    /// `max_bytes_per_second`, when set: one cell per byte received.
    byte_rate: Option<governor::DefaultDirectRateLimiter>,
}

impl Session {
    /// The main loop; returns how the hub ends it, or `None` when the client left.
    async fn serve<S>(&mut self, ws: &mut WebSocket<S>) -> Option<Ending>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let node = self.node.clone();
        let config = &node.config;
        let connect_deadline = TokioInstant::now() + config.connect_timeout;
        let mut next_ping = TokioInstant::now() + config.ping_interval;
        let mut pong_deadline: Option<TokioInstant> = None;
        let shutdown = self.node.shutdown.clone();
        let write_limit = config.write_timeout;
        loop {
            let expires = self.expiry_deadline();
            let subscription_expires = self
                .connected
                .as_ref()
                .and_then(|c| c.subscriptions.values().filter_map(|s| s.closes_at).min());
            let handle = self.connected.as_ref().map(|c| c.handle.clone());
            // One timer, for whichever deadline comes first (each `Sleep` a select!
            // waits on is 112 bytes of every connection's task).
            let next_timer = [
                self.connected
                    .is_none()
                    .then_some((connect_deadline, Timer::Connect)),
                (self.connected.is_some() && pong_deadline.is_none())
                    .then_some((next_ping, Timer::Ping)),
                pong_deadline.map(|at| (at, Timer::Pong)),
                subscription_expires.map(|at| (at, Timer::SubscriptionExpired)),
                expires.map(|at| (at, Timer::Expired)),
            ]
            .into_iter()
            .flatten()
            .min_by_key(|(at, _)| *at);
            let step = tokio::select! {
                () = shutdown.cancelled() => Step::Disconnect(DisconnectCode::Shutdown),
                code = async { match &handle { Some(h) => h.ended().await, None => std::future::pending().await } } => Step::Disconnect(code),
                message = ws.recv(), if self.pending.len() < MAX_PENDING => match message {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
                    Some(Ok(Message::Text(text))) if self.format.is_text() => {
                        pong_deadline = None;
                        // Boxed, as every rarely taken path here: the task's future is
                        // allocated for the connection's whole life at the size of its
                        // largest state, and idle connections are most of a hub's.
                        Box::pin(self.handle_message(ws, text.as_bytes())).await
                    }
                    Some(Ok(Message::Binary(bytes))) if !self.format.is_text() => {
                        pong_deadline = None;
                        Box::pin(self.handle_message(ws, &bytes)).await
                    }
                    Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                        tracing::info!(format = self.format.name(), "a message of the other format (text for binary or binary for text); disconnecting (3501)");
                        Step::Disconnect(DisconnectCode::BadRequest)
                    }
                    Some(Ok(_)) => Step::Continue,
                },
                Some(deferred) = self.pending.next(), if !self.pending.is_empty() => match deferred {
                    Deferred::Answer(id, result) => self.answer(id, result),
                    Deferred::Nothing => Step::Continue,
                    Deferred::Disconnect(code, reason) => Step::BackendDisconnect(code, reason),
                },
                item = async { match self.connected.as_mut() { Some(c) => c.queue.recv().await, None => std::future::pending().await } } => {
                    if let Some(item) = item {
                        let guard = WriteGuard { limit: write_limit, handle: handle.as_deref(), shutdown: &shutdown };
                        let write = std::pin::pin!(self.forward(ws, item));
                        if let Err(stop) = guard.run(write).await {
                            return stop.map(Ending::Code);
                        }
                    }
                    Step::Continue
                }
                timer = async { match next_timer { Some((at, timer)) => { sleep_until(at).await; timer } None => std::future::pending().await } } => match timer {
                    Timer::Connect => {
                        tracing::info!("no connect command within connect_timeout; disconnecting (3502)");
                        Step::Disconnect(DisconnectCode::Stale)
                    }
                    Timer::Ping => {
                        self.refresh_presence();
                        self.push_out(self.format.ping());
                        next_ping = TokioInstant::now() + config.ping_interval;
                        pong_deadline = Some(TokioInstant::now() + config.pong_timeout);
                        Step::Continue
                    }
                    Timer::Pong => {
                        tracing::info!("no pong within pong_timeout; disconnecting (3012)");
                        Step::Disconnect(DisconnectCode::NoPong)
                    }
                    Timer::SubscriptionExpired => {
                        tracing::info!("subscription token expired without a sub_refresh; disconnecting (3006)");
                        Step::Disconnect(DisconnectCode::SubscriptionExpired)
                    }
                    Timer::Expired => Box::pin(self.expired()).await,
                },
            };
            if let Err(stop) = self.write_out(ws).await {
                return stop.map(Ending::Code);
            }
            match step {
                Step::Continue => {}
                Step::Disconnect(code) => return Some(Ending::Code(code)),
                Step::BackendDisconnect(code, reason) => {
                    return Some(Ending::Backend(code, reason))
                }
                Step::Gone => return None,
            }
        }
    }

    /// Adds this client's presence entries again where they expire (the Redis engine),
    /// so they outlive it only if its node dies. In the background: a slow Redis does
    /// not hold the session (a refresh that lands after a leave leaves an entry for at
    /// most the presence TTL).
    fn refresh_presence(&self) {
        let (Some(connected), Some(_)) = (&self.connected, self.node.engine.presence_ttl()) else {
            return;
        };
        for channel in connected.subscriptions.keys() {
            if !self
                .node
                .channels
                .options(channel)
                .is_some_and(|o| o.presence)
            {
                continue;
            }
            let add = self.node.engine.add_presence(
                channel,
                &connected.handle.id,
                connected.info_in(channel),
            );
            let channel = channel.clone();
            tokio::spawn(async move {
                if let Err(e) = add.await {
                    tracing::warn!(%channel, error = %e, "presence refresh failed");
                }
            });
        }
    }

    /// When an unrefreshed connection is closed (set at connect and at refresh).
    fn expiry_deadline(&self) -> Option<TokioInstant> {
        self.connected.as_ref()?.closes_at
    }

    /// Adds an encoded reply or push to the next write.
    fn push_out(&mut self, item: Vec<u8>) {
        self.format.append(&mut self.out, item);
    }

    /// Adds the answer to command `id`; the step is a disconnect when that is the answer.
    fn answer(&mut self, id: u32, result: Result<reply::Reply, Failure>) -> Step {
        let item = match result {
            Ok(reply) => self.format.reply(id, &reply),
            Err(Failure::Error(code)) => self.format.error(id, code),
            Err(Failure::Backend(e)) => {
                self.format
                    .custom_error(id, e.code, &e.message, e.temporary)
            }
            Err(Failure::Disconnect(code)) => return Step::Disconnect(code),
            Err(Failure::BackendDisconnect(code, reason)) => {
                return Step::BackendDisconnect(code, reason)
            }
        };
        self.push_out(item);
        Step::Continue
    }

    /// Writes the replies collected so far in one message, bounded by `write_timeout`.
    async fn write_out<S>(&mut self, ws: &mut WebSocket<S>) -> Result<(), Option<DisconnectCode>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if self.out.is_empty() {
            return Ok(());
        }
        // Taken, not copied: an idle connection keeps no buffer.
        let message = self.format.message(std::mem::take(&mut self.out));
        let handle = self.connected.as_ref().map(|c| c.handle.clone());
        let guard = WriteGuard {
            limit: self.node.config.write_timeout,
            handle: handle.as_deref(),
            shutdown: &self.node.shutdown,
        };
        let write = std::pin::pin!(ws.send(message));
        guard.run(write).await
    }

    /// Whether the collected replies are over [`OUT_BUDGET`].
    fn out_is_full(&self) -> bool {
        self.out.len() > OUT_BUDGET
    }

    /// Sends a queued push, and whatever else is queued, in one write.
    async fn forward<S>(
        &mut self,
        ws: &mut WebSocket<S>,
        first: Outgoing,
    ) -> Result<(), duplex::Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut item = Some(first);
        let mut taken = 0;
        let mut unsubscribed = Vec::new();
        let mut subscribed = Vec::new();
        while let Some(current) = item.take() {
            let Some(connected) = self.connected.as_mut() else {
                break;
            };
            match current {
                Outgoing::Publication {
                    channel,
                    offset,
                    epoch,
                    frame,
                } => {
                    if let Some(sub) = connected.subscriptions.get_mut(&channel) {
                        // Subscriptions are positioned: the next publication is exactly
                        // the one after the client's. Another epoch (the stream was lost
                        // and restarted) or a gap (a push was dropped) means its
                        // position is wrong: it reconnects and recovers, or learns it
                        // cannot (3010).
                        if *epoch != *sub.epoch || offset > sub.offset.saturating_add(1) {
                            tracing::info!(%channel, client = %connected.handle.id, offset, expected = sub.offset + 1, "stream position lost; disconnecting (3010)");
                            connected.handle.end(DisconnectCode::InsufficientState);
                            break;
                        }
                        if offset > sub.offset {
                            sub.offset = offset;
                            ws.feed_shared(&frame).await?;
                        }
                    }
                }
                Outgoing::Unsubscribe { channel } => {
                    if connected.subscriptions.contains_key(&channel) {
                        unsubscribed.push(channel);
                    }
                }
                Outgoing::Subscribe { channel } => {
                    if !connected.subscriptions.contains_key(&channel) {
                        subscribed.push(channel);
                    }
                }
                Outgoing::Push { channel, frame } => {
                    if connected
                        .subscriptions
                        .get(&channel)
                        .is_some_and(|s| s.join_leave)
                    {
                        ws.feed_shared(&frame).await?;
                    }
                }
            }
            taken += 1;
            if taken < QUEUE_BATCH {
                item = connected.queue.try_recv();
            }
        }
        for channel in unsubscribed {
            Box::pin(self.leave(&channel)).await;
            let push = self.format.unsubscribe(&channel, UnsubscribeCode::Server);
            ws.feed(self.format.message(push)).await?;
        }
        for channel in subscribed {
            Box::pin(self.subscribe_from_server(ws, &channel)).await?;
        }
        ws.flush().await
    }
}

/// The instant `expired_close_delay` after `exp` (Unix seconds), clamped so that a
/// far-future `exp` cannot overflow the clock.
fn close_deadline(exp: Option<u64>, delay: Duration) -> Option<TokioInstant> {
    const TEN_YEARS: u64 = 10 * 365 * 24 * 3600;
    let left = exp?.saturating_sub(unix_now()).min(TEN_YEARS);
    Some(TokioInstant::now() + Duration::from_secs(left) + delay)
}

/// Bounds a write: a peer that stops reading must not hold the session (and its timers)
/// forever, so a write that cannot finish within `limit` ends the connection as slow,
/// and an end or shutdown request interrupts it.
struct WriteGuard<'a> {
    limit: Duration,
    handle: Option<&'a ClientHandle>,
    shutdown: &'a tokio_util::sync::CancellationToken,
}

impl WriteGuard<'_> {
    /// `Err(None)`: the connection failed; `Err(Some(code))`: disconnect with `code`.
    /// The write is borrowed, not moved in: moved, it would be stored twice in the
    /// session's future (as the argument and inside the select).
    async fn run(
        &self,
        write: std::pin::Pin<&mut impl std::future::Future<Output = Result<(), duplex::Error>>>,
    ) -> Result<(), Option<DisconnectCode>> {
        let ended = async {
            match self.handle {
                Some(handle) => handle.ended().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = write => result.map_err(|e| {
                tracing::debug!(error = %e, "write failed");
                None
            }),
            () = tokio::time::sleep(self.limit) => {
                tracing::info!(limit = ?self.limit, "client read nothing within write_timeout; disconnecting (3008)");
                self.handle.inspect(|h| h.end(DisconnectCode::Slow));
                Err(Some(DisconnectCode::Slow))
            }
            code = ended => Err(Some(code)),
            () = self.shutdown.cancelled() => Err(Some(DisconnectCode::Shutdown)),
        }
    }
}

/// Client and distinct user counts of a presence map.
pub fn stats(presence: &crate::engine::PresenceMap) -> PresenceStatsResult {
    let users: std::collections::HashSet<&str> =
        presence.values().map(|i| i.user.as_str()).collect();
    PresenceStatsResult {
        num_clients: u32::try_from(presence.len()).unwrap_or(u32::MAX),
        num_users: u32::try_from(users.len()).unwrap_or(u32::MAX),
    }
}

/// A command's failure: an error reply, or the end of the connection.
enum Failure {
    Error(ErrorCode),
    Disconnect(DisconnectCode),
    /// The backend's own error for the client.
    Backend(crate::backend::BackendError),
    /// The backend ends the connection.
    BackendDisconnect(u16, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session lives as long as its connection, and its future is allocated at the
    /// size of its largest state: rarely taken paths are boxed and timers are one, so
    /// that an idle subscribed connection costs about 4 KiB in all (BENCHMARKS.md). This
    /// keeps the future from growing back unnoticed.
    #[tokio::test]
    async fn a_session_future_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::config::Config::default();
        config.engine = crate::config::EngineKind::Memory;
        config.data_dir = dir.path().to_owned();
        let node = Node::new(config).await.unwrap();
        let (io, _peer) = tokio::io::duplex(64);
        let ws = WebSocket::from_parts(
            io,
            duplex::Role::Server,
            duplex::Config::default(),
            bytes::BytesMut::new(),
        );
        let session = run(node, ws, Format::Json, http::HeaderMap::new());
        let size = std::mem::size_of_val(&session);
        eprintln!("session future: {size} B");
        assert!(size <= 2048, "the session future grew to {size} B");
    }
}
