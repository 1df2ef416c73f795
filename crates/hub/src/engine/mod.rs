//! Storage and delivery of publications: one interface, and an in-memory, a SQLite and a
//! Redis implementation (the last shared by several nodes).
//!
//! The interface is shaped for a remote store with pub/sub: every call is asynchronous
//! and may fail, a publish resolves only once the publication is stored (then it is
//! acknowledged), and stored publications reach subscribers through a [`Delivery`] sink
//! the engine calls in offset order per channel: for a local engine right after the
//! commit, for a remote one from its subscription feed. Presence lives behind the same
//! interface because it must be shared between nodes too.

mod memory;
mod presence;
mod redis;
mod sqlite;

pub use memory::MemoryEngine;
pub use presence::LocalPresence;
pub use redis::{RedisEngine, RedisOptions};
pub use sqlite::SqliteEngine;

use crate::error::Error;
use crate::protocol::reply::{ClientInfo, Publication};
use crate::protocol::Payload;
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A channel's stream position: the last offset and the epoch it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Position {
    /// The top offset (0: nothing published yet in this epoch).
    pub offset: u64,
    /// Changes whenever the stream was lost, so an old offset is never trusted.
    pub epoch: String,
}

/// Which publications a history read returns.
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryQuery {
    /// Only publications after this offset (before it, when `reverse`).
    pub since: Option<u64>,
    /// At most this many; `None` for all the channel keeps.
    pub limit: Option<usize>,
    /// Newest first.
    pub reverse: bool,
}

/// A history read: the publications and the stream's position at the same instant.
#[derive(Debug, Default)]
pub struct History {
    /// The position (top offset and epoch).
    pub position: Position,
    /// The publications selected, each with its offset.
    pub publications: Vec<Publication>,
    /// The oldest offset the channel still keeps (0 when it keeps none).
    pub oldest: u64,
}

/// Where an engine hands stored publications, in offset order per channel: the
/// channel, the publication and the epoch of its stream.
pub type Delivery = Arc<dyn Fn(&str, &Publication, &str) + Send + Sync>;

/// Where a shared engine hands the control messages of every node (see [`Engine::control`]).
pub type ControlSink = Arc<dyn Fn(crate::control::Control) + Send + Sync>;

/// A presence entry: one subscribed connection.
pub type PresenceMap = BTreeMap<String, ClientInfo>;

/// Storage, delivery and presence, as the hub needs them.
pub trait Engine: Send + Sync + 'static {
    /// Stores a publication in `channel` and resolves with its position once it is
    /// durable; the publication reaches the [`Delivery`] sink before that. The
    /// publication takes its place in the channel's order when `publish` is called, not
    /// when the future is polled: a session may call it for several commands in a row
    /// and await the acknowledgements together.
    fn publish(
        &self,
        channel: &str,
        data: Payload,
        info: Option<ClientInfo>,
    ) -> BoxFuture<'static, Result<Position, Error>>;

    /// Like [`publish`](Self::publish), but a second publish with the same
    /// `idempotency_key` in `channel` within [`IDEMPOTENCY_WINDOW`] (across restarts,
    /// where the engine keeps data) stores nothing and resolves with the first one's
    /// position.
    fn publish_once(
        &self,
        channel: &str,
        data: Payload,
        info: Option<ClientInfo>,
        idempotency_key: String,
    ) -> BoxFuture<'static, Result<Position, Error>>;

    /// Reads history; creates the stream (and its epoch) when the channel has none, so
    /// the position a subscriber gets stays valid for the publications that follow.
    fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
    ) -> BoxFuture<'static, Result<History, Error>>;

    /// Adds or replaces `client`'s presence in `channel`.
    fn add_presence(
        &self,
        channel: &str,
        client: &str,
        info: ClientInfo,
    ) -> BoxFuture<'static, Result<(), Error>>;

    /// Removes `client`'s presence from `channel`.
    fn remove_presence(&self, channel: &str, client: &str)
        -> BoxFuture<'static, Result<(), Error>>;

    /// Who is in `channel`.
    fn presence(&self, channel: &str) -> BoxFuture<'static, Result<PresenceMap, Error>>;

    /// Ok when a publish would be stored now (for `/healthz`).
    fn check_writable(&self) -> BoxFuture<'static, Result<(), Error>>;

    /// Removes `channel`'s publications; its position (offset and epoch) stays, so
    /// clients that missed any of them learn that they cannot recover.
    fn remove_history(&self, channel: &str) -> BoxFuture<'static, Result<(), Error>>;

    /// Drops streams whose whole history expired (their next use gets a new epoch).
    fn expire(&self) -> BoxFuture<'static, Result<(), Error>>;

    /// Starts delivering `channel`'s publications to the [`Delivery`] sink, for a
    /// subscription on this node; resolves once every publication stored from then on
    /// will be delivered (so a history read after it misses nothing). Each call is
    /// matched by one [`unsubscribe`](Self::unsubscribe). Local engines deliver every
    /// channel anyway.
    fn subscribe(&self, _channel: &str) -> BoxFuture<'static, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }

    /// Ends one [`subscribe`](Self::subscribe) of `channel`.
    fn unsubscribe(&self, _channel: &str) {}

    /// Sends `control` to every node that shares this engine, this one included, each
    /// to apply to its own clients; `None`: the engine is this node's alone, and the
    /// caller applies it here.
    fn control(
        &self,
        _control: &crate::control::Control,
    ) -> Option<BoxFuture<'static, Result<(), Error>>> {
        None
    }

    /// Records node `uid`'s info (JSON) for the other nodes, for `ttl` unless reported
    /// again. Local engines keep nothing: there are no other nodes.
    fn report_node(
        &self,
        _uid: &str,
        _info: String,
        _ttl: std::time::Duration,
    ) -> BoxFuture<'static, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }

    /// The info (JSON) of every node that reported recently, this one included.
    fn nodes(&self) -> BoxFuture<'static, Result<Vec<String>, Error>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// How long a presence entry lives unless added again: sessions refresh theirs at
    /// every ping when the engine's presence expires (shared presence, whose node may
    /// die); `None`: entries live until removed.
    fn presence_ttl(&self) -> Option<std::time::Duration> {
        None
    }

    /// Finishes pending writes and stops; later calls fail.
    fn shutdown(&self) -> BoxFuture<'static, ()>;
}

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

/// A new random epoch.
pub(crate) fn new_epoch() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
