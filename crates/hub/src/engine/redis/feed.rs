//! A node's live feeds: one pub/sub connection to Redis, subscribed to the live channel
//! of every hub channel that has subscribers on this node, handing what arrives to the
//! [`Delivery`] sink.
//!
//! One task owns the connection and does one thing at a time, in the order asked: a
//! subscribe is answered only once Redis confirmed it, so a session that then reads
//! history misses nothing in between. A lost connection is reopened with backoff and
//! every channel subscribed again; a publication lost meanwhile shows as an offset gap
//! at the next one, and the session disconnects its client to recover (3010).

use super::{parse_data, parse_info, Keys};
use crate::engine::Delivery;
use crate::error::Error;
use crate::protocol::reply::Publication;
use futures_util::future::{BoxFuture, FutureExt};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

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

fn down(e: impl std::fmt::Display) -> Error {
    Error::Storage(format!("redis pub/sub: {e}"))
}

impl Feed {
    /// Opens the pub/sub connection and starts the task.
    pub(super) async fn start(
        client: redis::Client,
        keys: Keys,
        delivery: Delivery,
    ) -> Result<Feed, Error> {
        let pubsub = client.get_async_pubsub().await.map_err(down)?;
        let (ops, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(client, keys, delivery, pubsub, queue));
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

async fn run(
    client: redis::Client,
    keys: Keys,
    delivery: Delivery,
    pubsub: redis::aio::PubSub,
    mut ops: mpsc::UnboundedReceiver<Op>,
) {
    // Live channel to the number of subscriptions that asked for it.
    let mut wanted: HashMap<String, usize> = HashMap::new();
    let (mut sink, mut stream) = pubsub.split();
    loop {
        tokio::select! {
            op = ops.recv() => match op {
                None | Some(Op::Stop) => return,
                Some(Op::Subscribe(live, reply)) => {
                    let count = wanted.entry(live.clone()).or_default();
                    *count += 1;
                    let result = if *count == 1 {
                        sink.subscribe(&live).await.map_err(down)
                    } else {
                        Ok(())
                    };
                    if result.is_err() {
                        // Not live: the caller gives up its subscription.
                        release(&mut wanted, &live);
                    }
                    let _ = reply.send(result);
                }
                Some(Op::Unsubscribe(live)) => {
                    if release(&mut wanted, &live) {
                        if let Err(e) = sink.unsubscribe(&live).await {
                            tracing::debug!(channel = %live, error = %e, "redis unsubscribe failed");
                        }
                    }
                }
                Some(Op::Check(reply)) => {
                    let result = tokio::time::timeout(Duration::from_secs(2), sink.ping::<String>())
                        .await
                        .map_err(|_| down("no answer to a ping within 2 s"))
                        .and_then(|r| r.map(|_| ()).map_err(down));
                    let _ = reply.send(result);
                }
            },
            message = stream.next() => match message {
                Some(message) => {
                    let live = message.get_channel_name();
                    let Some(channel) = keys.channel_of_live(live) else {
                        continue;
                    };
                    match parse(message.get_payload_bytes()) {
                        Ok((publication, epoch)) => delivery(channel, &publication, &epoch),
                        Err(e) => tracing::error!(%channel, error = %e, "undeliverable live message"),
                    }
                }
                None => {
                    tracing::warn!("redis pub/sub connection lost; reconnecting");
                    let Some(pubsub) = reconnect(&client, &mut wanted, &mut ops).await else {
                        return;
                    };
                    (sink, stream) = pubsub.split();
                }
            },
        }
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
    client: &redis::Client,
    wanted: &mut HashMap<String, usize>,
    ops: &mut mpsc::UnboundedReceiver<Op>,
) -> Option<redis::aio::PubSub> {
    let mut backoff = Duration::from_millis(50);
    loop {
        let attempt = async {
            let mut pubsub = client.get_async_pubsub().await?;
            for live in wanted.keys() {
                pubsub.subscribe(live).await?;
            }
            Ok::<_, redis::RedisError>(pubsub)
        };
        match attempt.await {
            Ok(pubsub) => {
                tracing::info!(channels = wanted.len(), "redis pub/sub connection restored");
                return Some(pubsub);
            }
            Err(e) => {
                tracing::warn!(error = %e, "redis pub/sub reconnect failed; retrying in {backoff:?}")
            }
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
