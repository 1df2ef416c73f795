//! One Redis of the engine: its connection, its publish writer and its live feeds.
//! Channels are spread over the Redis instances in `redis` by [`pick`].

use super::{feed, position, storage, Keys};
use crate::engine::{ControlSink, Delivery, Position};
use crate::error::Error;
use redis::aio::ConnectionManager;
use redis::Value;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A publish waiting for the writer.
pub(super) struct PublishOp {
    pub(super) cmd: redis::Cmd,
    pub(super) reply: oneshot::Sender<Result<Position, Error>>,
}

/// One Redis.
pub(super) struct Shard {
    pub(super) conn: ConnectionManager,
    pub(super) writer: mpsc::UnboundedSender<PublishOp>,
    pub(super) feed: feed::Feed,
}

impl Shard {
    /// Connects to `url`; with `control`, this Redis carries the control channel.
    pub(super) async fn connect(
        url: &str,
        keys: &Keys,
        delivery: Delivery,
        control: Option<ControlSink>,
        wait: Option<(u32, Duration)>,
    ) -> Result<Shard, Error> {
        let client = redis::Client::open(url).map_err(|e| {
            Error::Config(crate::ConfigError::Key {
                key: "redis".into(),
                message: format!("{url:?} is not a Redis URL ({e}); use redis://HOST:PORT"),
            })
        })?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(storage("connect"))?;
        let (writer, queue) = mpsc::unbounded_channel();
        tokio::spawn(write(conn.clone(), queue, wait));
        let feed = feed::Feed::start(client, keys.clone(), delivery, control, conn.clone()).await?;
        Ok(Shard { conn, writer, feed })
    }
}

/// Which of `shards` Redis instances keeps `channel`: jump consistent hashing (Lamping
/// and Veach, 2014) of the channel's FNV-1a hash, the same on every node and every
/// version; adding a shard moves about 1/n of the channels (their streams start over
/// with a new epoch, so their clients learn they cannot recover).
pub(super) fn pick(channel: &str, shards: usize) -> usize {
    let mut key = channel.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let (mut b, mut j) = (-1_i64, 0_i64);
    while j < shards as i64 {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1_u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    usize::try_from(b.max(0)).unwrap_or(0)
}

/// The writer: sends every queued publish as one pipeline, in queue order, and answers
/// each with its own result.
async fn write(
    mut conn: ConnectionManager,
    mut queue: mpsc::UnboundedReceiver<PublishOp>,
    wait: Option<(u32, Duration)>,
) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, 1024).await > 0 {
        let mut pipe = redis::pipe();
        for op in &batch {
            pipe.add_command(op.cmd.clone());
        }
        if let Some((replicas, timeout)) = wait {
            // One WAIT for the whole batch: it covers every write before it.
            pipe.cmd("WAIT")
                .arg(replicas)
                .arg(timeout.as_millis() as u64);
        }
        // Per-command results: one refused publish does not fail the others.
        pipe.ignore_errors();
        let results: Result<Vec<redis::RedisResult<Value>>, _> = pipe.query_async(&mut conn).await;
        let results = match (results, wait) {
            (Ok(mut results), Some((replicas, timeout))) if results.len() == batch.len() + 1 => {
                match results.pop() {
                    Some(Ok(Value::Int(n))) if n >= i64::from(replicas) => Ok(results),
                    confirmed => Err(format!(
                        "redis publish: stored, but {confirmed:?} of {replicas} replicas confirmed within {timeout:?} (redis_wait_replicas): not acknowledged"
                    )),
                }
            }
            (results, _) => results.map_err(|e| format!("redis publish: {e}")),
        };
        match results {
            Ok(results) if results.len() == batch.len() => {
                for (op, result) in batch.drain(..).zip(results) {
                    let position = result
                        .map_err(storage("publish"))
                        .and_then(|v| position(&v));
                    let _ = op.reply.send(position);
                }
            }
            Ok(results) => {
                let message = format!(
                    "redis publish: {} replies for {}",
                    results.len(),
                    batch.len()
                );
                for op in batch.drain(..) {
                    let _ = op.reply.send(Err(Error::Storage(message.clone())));
                }
            }
            Err(message) => {
                // Not known to be stored (or not replicated as required): never
                // acknowledged.
                for op in batch.drain(..) {
                    let _ = op.reply.send(Err(Error::Storage(message.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pick;

    #[test]
    fn channels_spread_over_shards_and_stay_put_when_one_is_added() {
        let channels: Vec<String> = (0..3000).map(|i| format!("chat:{i}")).collect();
        let mut counts = [0usize; 3];
        for c in &channels {
            counts[pick(c, 3)] += 1;
        }
        assert!(
            counts.iter().all(|&n| (800..1200).contains(&n)),
            "{counts:?}"
        );
        // A fourth shard takes about a quarter; the rest stay where they were.
        let moved = channels.iter().filter(|c| pick(c, 3) != pick(c, 4)).count();
        assert!((600..900).contains(&moved), "{moved} moved");
        assert!(channels.iter().all(|c| pick(c, 1) == 0));
        // Nodes of different versions must agree: these were computed independently
        // (a Python transcription of FNV-1a and jump hash).
        let fixed: Vec<usize> = ["chat:lobby", "ticker:DPLX", "chat:shard-0", "news"]
            .iter()
            .flat_map(|c| [pick(c, 3), pick(c, 10)])
            .collect();
        assert_eq!(fixed, [2, 8, 0, 0, 2, 4, 2, 3]);
    }
}
