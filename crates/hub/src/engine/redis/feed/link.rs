//! Where a feed's live messages come from: one pub/sub connection, or a Cluster
//! client's connections with sharded subscriptions and RESP3 pushes.

use super::{down, COMMAND_TIMEOUT};
use crate::engine::redis::conn::{Conn, Source};
use crate::error::Error;
use futures_util::StreamExt;
use redis::{PushInfo, PushKind, Value};
use std::collections::HashMap;
use tokio::sync::mpsc;

/// A ping through the pub/sub connection itself (a subscribed connection answers
/// `["pong", ""]`, not `PONG`: any answer will do).
async fn ping(sink: &mut redis::aio::PubSubSink) -> Result<(), Error> {
    match tokio::time::timeout(COMMAND_TIMEOUT, sink.ping::<redis::Value>()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(down(e)),
        Err(_) => Err(down(format!(
            "no answer to a ping within {COMMAND_TIMEOUT:?}"
        ))),
    }
}

/// `command` within [`COMMAND_TIMEOUT`].
async fn bounded(
    command: impl std::future::Future<Output = redis::RedisResult<()>>,
) -> Result<(), Error> {
    match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
        Ok(result) => result.map_err(down),
        Err(_) => Err(down(format!("no answer within {COMMAND_TIMEOUT:?}"))),
    }
}

/// Where the live messages come from.
pub(super) enum Link {
    /// One pub/sub connection to one Redis (or the master Sentinel names); the feed
    /// replaces it when it is lost.
    Single {
        source: Source,
        sink: redis::aio::PubSubSink,
        stream: redis::aio::PubSubStream,
    },
    /// A Cluster client's connections, with sharded subscriptions; the client
    /// reconnects and resubscribes by itself, and says so with pushes.
    Cluster {
        conn: Conn,
        pushes: mpsc::UnboundedReceiver<PushInfo>,
        /// Confirmations still due for the feed's own `SSUBSCRIBE`s, by live channel:
        /// any other confirmation is a resubscription after a reconnect.
        confirmations: HashMap<String, usize>,
    },
}

/// What the link saw.
pub(super) enum Event {
    Message {
        live: String,
        payload: Vec<u8>,
    },
    /// `live` was subscribed again after a reconnect: what was published meanwhile
    /// must be caught up.
    Resubscribed(String),
    /// Redis ended the subscription of `live` (its slot moved to another master).
    Dropped(String),
    /// One of the Cluster client's connections was lost, with the subscriptions on it.
    Disconnected,
    /// The link is broken and must be replaced.
    Lost(Error),
}

/// The channel name and the rest of a push's data.
fn push_channel(info: &PushInfo) -> Option<String> {
    match info.data.first() {
        Some(Value::BulkString(name)) => String::from_utf8(name.clone()).ok(),
        Some(Value::SimpleString(name)) => Some(name.clone()),
        _ => None,
    }
}

impl Link {
    pub(super) async fn subscribe(&mut self, live: &str) -> Result<(), Error> {
        match self {
            Link::Single { sink, .. } => bounded(sink.subscribe(live)).await,
            Link::Cluster {
                conn: Conn::Cluster(conn),
                confirmations,
                ..
            } => {
                *confirmations.entry(live.to_owned()).or_default() += 1;
                let result = bounded(conn.ssubscribe(live)).await;
                if result.is_err() {
                    // A late confirmation then counts as a resubscription: one
                    // harmless catch-up.
                    expected(confirmations, live);
                }
                result
            }
            Link::Cluster { .. } => Err(down("a Cluster feed without a Cluster connection")),
        }
    }

    pub(super) async fn unsubscribe(&mut self, live: &str) -> Result<(), Error> {
        match self {
            Link::Single { sink, .. } => bounded(sink.unsubscribe(live)).await,
            Link::Cluster {
                conn: Conn::Cluster(conn),
                ..
            } => bounded(conn.sunsubscribe(live)).await,
            Link::Cluster { .. } => Err(down("a Cluster feed without a Cluster connection")),
        }
    }

    /// A ping through the connections the messages come on.
    pub(super) async fn ping(&mut self) -> Result<(), Error> {
        match self {
            Link::Single { sink, .. } => ping(sink).await,
            Link::Cluster { conn, .. } => {
                match tokio::time::timeout(COMMAND_TIMEOUT, conn.ping()).await {
                    Ok(result) => result.map_err(down),
                    Err(_) => Err(down(format!(
                        "no answer to a ping within {COMMAND_TIMEOUT:?}"
                    ))),
                }
            }
        }
    }

    pub(super) async fn next(&mut self) -> Event {
        match self {
            Link::Single { stream, .. } => match stream.next().await {
                Some(message) => Event::Message {
                    live: message.get_channel_name().to_owned(),
                    payload: message.get_payload_bytes().to_vec(),
                },
                None => Event::Lost(down("the connection closed")),
            },
            Link::Cluster {
                pushes,
                confirmations,
                ..
            } => loop {
                let Some(mut push) = pushes.recv().await else {
                    return Event::Lost(down("the Cluster client stopped"));
                };
                if push.kind == PushKind::Disconnection {
                    return Event::Disconnected;
                }
                let Some(live) = push_channel(&push) else {
                    continue;
                };
                match push.kind {
                    PushKind::SMessage => {
                        let payload = match push.data.pop() {
                            Some(Value::BulkString(payload)) if push.data.len() == 1 => payload,
                            _ => continue,
                        };
                        return Event::Message { live, payload };
                    }
                    // A confirmation of the feed's own SSUBSCRIBE is not news.
                    PushKind::SSubscribe if !expected(confirmations, &live) => {
                        return Event::Resubscribed(live);
                    }
                    PushKind::SUnsubscribe => return Event::Dropped(live),
                    _ => {}
                }
            },
        }
    }

    /// True when the link is one the feed replaces itself when it breaks.
    pub(super) fn replaceable(&self) -> bool {
        matches!(self, Link::Single { .. })
    }
}

/// True when a confirmation of `live` was due (it no longer is).
pub(super) fn expected(confirmations: &mut HashMap<String, usize>, live: &str) -> bool {
    match confirmations.get_mut(live) {
        Some(count) if *count > 1 => *count -= 1,
        Some(_) => {
            confirmations.remove(live);
        }
        None => return false,
    }
    true
}
