//! A node's live feeds: subscribed to the live channel of every hub channel that has
//! subscribers on this node, handing what arrives to the [`Delivery`] sink. On one
//! Redis that is one pub/sub connection; in a Cluster, sharded subscriptions on the
//! Cluster client's connections (one per master), whose messages arrive as RESP3 pushes.
//!
//! One task owns the [`Link`] and does one thing at a time, in the order asked: a
//! subscribe is answered only once Redis confirmed it, so a session that then reads
//! history misses nothing in between. A lost pub/sub connection is reopened with backoff
//! and every channel subscribed again (the Cluster client does that itself, and each
//! resubscription is seen), and what was stored meanwhile is delivered from the
//! streams. Every pub/sub command is bounded in time, and the connections are probed
//! with a ping every few seconds: a silent connection is replaced, not waited on.

mod catch_up;
mod link;

use super::conn::{Conn, Source};
use super::{parse_data, parse_info, Keys};
use crate::engine::{ControlSink, Delivery};
use crate::error::Error;
use crate::protocol::reply::Publication;
use catch_up::Streams;
use futures_util::future::{BoxFuture, FutureExt};
use link::{Event, Link};
use redis::PushInfo;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Where what arrives goes.
struct Sinks {
    delivery: Delivery,
    /// Only on the Redis that carries the control channel.
    control: Option<ControlSink>,
}

enum Op {
    Subscribe(String, oneshot::Sender<Result<(), Error>>),
    Unsubscribe(String),
    Check(oneshot::Sender<Result<(), Error>>),
    Stop,
}

/// The handle the engine keeps.
#[derive(Clone)]
pub(super) struct Feed {
    ops: mpsc::UnboundedSender<Op>,
}

pub(super) fn down(e: impl std::fmt::Display) -> Error {
    Error::Storage(format!("redis pub/sub: {e}"))
}

impl Feed {
    /// Opens the pub/sub connection and starts the task.
    pub(super) async fn start(
        source: Source,
        keys: Keys,
        delivery: Delivery,
        control: Option<ControlSink>,
        conn: Conn,
    ) -> Result<Feed, Error> {
        let mut pubsub = source
            .client()
            .await
            .map_err(down)?
            .get_async_pubsub()
            .await
            .map_err(down)?;
        if control.is_some() {
            pubsub.subscribe(keys.control()).await.map_err(down)?;
        }
        let (sink, stream) = pubsub.split();
        let link = Link::Single {
            source,
            sink,
            stream,
        };
        let (ops, queue) = mpsc::unbounded_channel();
        let sinks = Sinks { delivery, control };
        tokio::spawn(run(link, keys, sinks, queue, conn));
        Ok(Feed { ops })
    }

    /// Starts on a Cluster connection whose pushes arrive on `pushes`; it carries the
    /// control channel.
    pub(super) async fn start_cluster(
        conn: Conn,
        pushes: mpsc::UnboundedReceiver<PushInfo>,
        keys: Keys,
        delivery: Delivery,
        control: ControlSink,
    ) -> Result<Feed, Error> {
        let mut link = Link::Cluster {
            conn: conn.clone(),
            pushes,
            confirmations: HashMap::new(),
        };
        link.subscribe(&keys.control()).await?;
        let (ops, queue) = mpsc::unbounded_channel();
        let sinks = Sinks {
            delivery,
            control: Some(control),
        };
        tokio::spawn(run(link, keys, sinks, queue, conn));
        Ok(Feed { ops })
    }

    /// Resolves once `live` is subscribed (at once when it already was).
    pub(super) fn subscribe(&self, live: String) -> BoxFuture<'static, Result<(), Error>> {
        let (reply, answer) = oneshot::channel();
        let sent = self.ops.send(Op::Subscribe(live, reply));
        async move {
            sent.map_err(|_| Error::Stopped)?;
            answer.await.map_err(|_| Error::Stopped)?
        }
        .boxed()
    }

    /// One subscriber fewer; the last one unsubscribes.
    pub(super) fn unsubscribe(&self, live: String) {
        let _ = self.ops.send(Op::Unsubscribe(live));
    }

    /// Ok when the pub/sub connection answers a ping now.
    pub(super) async fn check(&self) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.ops
            .send(Op::Check(reply))
            .map_err(|_| Error::Stopped)?;
        answer.await.map_err(|_| Error::Stopped)?
    }

    /// Ends the task.
    pub(super) fn stop(&self) {
        let _ = self.ops.send(Op::Stop);
    }
}

/// `OFFSET\nEPOCH\nINFO\nDATA`, as the publish script sends it.
fn parse(payload: &[u8]) -> Result<(Publication, String), Error> {
    let mut parts = payload.splitn(4, |b| *b == b'\n');
    let (Some(offset), Some(epoch), Some(info), Some(data)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(down("a live message without its four parts"));
    };
    let offset = std::str::from_utf8(offset)
        .ok()
        .and_then(|o| o.parse().ok())
        .ok_or_else(|| down("a live message without an offset"))?;
    let epoch = String::from_utf8(epoch.to_vec()).map_err(|_| down("an epoch not UTF-8"))?;
    Ok((
        Publication {
            data: parse_data(data)?,
            info: parse_info(info)?,
            offset,
        },
        epoch,
    ))
}

/// How long one pub/sub command may take before the connection counts as broken.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the connection is probed with a ping.
const PROBE_EVERY: Duration = Duration::from_secs(5);

async fn run(
    mut link: Link,
    keys: Keys,
    sinks: Sinks,
    mut ops: mpsc::UnboundedReceiver<Op>,
    conn: Conn,
) {
    // Live channel to the number of subscriptions that asked for it.
    let mut wanted: HashMap<String, usize> = HashMap::new();
    // Where each fed channel is, to catch up after an outage.
    let mut streams = Streams {
        conn,
        keys: keys.clone(),
        delivery: sinks.delivery.clone(),
        last: HashMap::new(),
        behind: HashSet::new(),
    };
    let control_channel = keys.control();
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A Cluster connection was lost: its subscriptions must be made again (the client's
    // own resubscription is not relied on: it was seen to restore only some).
    let mut stale = false;
    loop {
        // Why the connection must be replaced, if it must.
        let broken: Option<Error> = tokio::select! {
            op = ops.recv() => match op {
                None | Some(Op::Stop) => return,
                Some(Op::Subscribe(live, reply)) => {
                    let count = wanted.entry(live.clone()).or_default();
                    *count += 1;
                    let result = if *count == 1 {
                        link.subscribe(&live).await
                    } else {
                        Ok(())
                    };
                    let broken = result.as_ref().err().map(down);
                    if result.is_err() {
                        // Not live: the caller gives up its subscription.
                        release(&mut wanted, &live);
                    }
                    let _ = reply.send(result);
                    broken
                }
                Some(Op::Unsubscribe(live)) => {
                    if release(&mut wanted, &live) {
                        streams.forget(&live);
                        link.unsubscribe(&live).await.err()
                    } else {
                        None
                    }
                }
                Some(Op::Check(reply)) => {
                    let result = if stale {
                        Err(down("subscribing again after a lost connection"))
                    } else {
                        link.ping().await
                    };
                    let broken = result.as_ref().err().map(down);
                    let _ = reply.send(result);
                    broken
                }
            },
            _ = probe.tick() => {
                streams.catch_up_behind().await;
                link.ping().await.err()
            }
            event = link.next() => match event {
                Event::Message { live, payload } => {
                    if let (true, Some(sink)) = (live == control_channel, &sinks.control) {
                        match crate::control::Control::decode(&payload) {
                            Ok(control) => sink(control),
                            Err(e) => tracing::error!(error = %e, "undeliverable control message"),
                        }
                    } else if let Some(channel) = keys.channel_of_live(&live) {
                        match parse(&payload) {
                            Ok((publication, epoch)) => {
                                (sinks.delivery)(channel, &publication, &epoch);
                                // After a catch-up the feed may repeat older offsets.
                                match streams.last.get_mut(&live) {
                                    Some((o, e)) if *e == epoch => *o = (*o).max(publication.offset),
                                    _ => {
                                        streams.last.insert(live, (publication.offset, epoch));
                                    }
                                }
                            }
                            Err(e) => tracing::error!(%channel, error = %e, "undeliverable live message"),
                        }
                    }
                    None
                }
                Event::Resubscribed(live) => {
                    tracing::info!(%live, "redis cluster resubscribed a live feed; catching up");
                    streams.catch_up(|l| l == live).await;
                    None
                }
                Event::Dropped(live) if wanted.contains_key(&live) || live == control_channel => {
                    tracing::info!(%live, "redis ended a live feed's subscription (slot moved); subscribing again");
                    let result = link.subscribe(&live).await;
                    streams.catch_up(|l| l == live).await;
                    result.err()
                }
                Event::Dropped(_) => None,
                Event::Disconnected => {
                    tracing::warn!("a redis cluster connection was lost; subscribing again");
                    stale = true;
                    None
                }
                Event::Lost(reason) => Some(reason),
            },
        };
        if stale {
            let mut all: Vec<&str> = wanted.keys().map(String::as_str).collect();
            all.extend(sinks.control.is_some().then_some(control_channel.as_str()));
            let mut result = Ok(());
            for live in all {
                result = link.subscribe(live).await;
                if result.is_err() {
                    break;
                }
            }
            match result {
                Ok(()) => {
                    stale = false;
                    tracing::info!(
                        channels = wanted.len(),
                        "redis cluster subscriptions restored"
                    );
                    streams.catch_up(|_| true).await;
                }
                // Tried again at the next event (the probe ticks every few seconds).
                Err(e) => tracing::warn!(error = %e, "subscribing again failed"),
            }
        }
        let Some(reason) = broken else { continue };
        if !link.replaceable() {
            // The Cluster client reconnects by itself; checks fail meanwhile.
            tracing::warn!(error = %reason, "redis cluster pub/sub unhealthy");
            continue;
        }
        tracing::warn!(error = %reason, "redis pub/sub connection lost; reconnecting");
        let Link::Single { source, .. } = &link else {
            continue;
        };
        let source = source.clone();
        let control = sinks.control.is_some().then_some(control_channel.as_str());
        let Some(pubsub) = reconnect(&source, control, &mut wanted, &mut ops).await else {
            return;
        };
        let (sink, stream) = pubsub.split();
        link = Link::Single {
            source,
            sink,
            stream,
        };
        streams.catch_up(|_| true).await;
    }
}

/// One subscription fewer; true when it was the last.
fn release(wanted: &mut HashMap<String, usize>, live: &str) -> bool {
    match wanted.get_mut(live) {
        Some(count) if *count > 1 => {
            *count -= 1;
            false
        }
        Some(_) => {
            wanted.remove(live);
            true
        }
        None => false,
    }
}

/// Opens a new pub/sub connection subscribed to every wanted channel, retrying with
/// backoff; answers checks with the outage meanwhile. None: the engine stopped.
async fn reconnect(
    source: &Source,
    control_channel: Option<&str>,
    wanted: &mut HashMap<String, usize>,
    ops: &mut mpsc::UnboundedReceiver<Op>,
) -> Option<redis::aio::PubSub> {
    let mut backoff = Duration::from_millis(50);
    loop {
        let attempt = async {
            let mut pubsub = source.client().await?.get_async_pubsub().await?;
            let mut channels: Vec<&str> = wanted.keys().map(String::as_str).collect();
            channels.extend(control_channel);
            if !channels.is_empty() {
                pubsub.subscribe(channels).await?;
            }
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(COMMAND_TIMEOUT, attempt).await {
            Ok(Ok(pubsub)) => {
                tracing::info!(channels = wanted.len(), "redis pub/sub connection restored");
                return Some(pubsub);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "redis pub/sub reconnect failed; retrying in {backoff:?}")
            }
            Err(_) => tracing::warn!("redis pub/sub reconnect timed out; retrying in {backoff:?}"),
        }
        let deadline = tokio::time::sleep(backoff);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => break,
                op = ops.recv() => match op {
                    None | Some(Op::Stop) => return None,
                    Some(Op::Check(reply)) => {
                        let _ = reply.send(Err(down("the connection to Redis is down")));
                    }
                    Some(Op::Subscribe(_, reply)) => {
                        let _ = reply.send(Err(down("the connection to Redis is down")));
                    }
                    // The new connection subscribes only what is still wanted.
                    Some(Op::Unsubscribe(live)) => {
                        release(wanted, &live);
                    }
                },
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
