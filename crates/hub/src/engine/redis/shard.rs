//! One Redis of the engine, or the whole of a Redis Cluster: its connection, its
//! publish writer and its live feeds. Channels are spread over the Redis instances in
//! `redis` by [`pick`]; a Cluster spreads them itself, by the slot of their hash tag.

use super::conn::{Conn, SentinelMaster, Source};
use super::{feed, position, storage, Keys};
use crate::engine::{ControlSink, Delivery, Position};
use crate::error::Error;
use futures_util::future::join_all;
use redis::cluster_routing::Slot;
use redis::{RedisResult, RetryMethod, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A publish waiting for the writer.
pub(super) struct PublishOp {
    pub(super) cmd: redis::Cmd,
    /// The Cluster slot of the channel's keys (a pipeline in a Cluster is one slot's).
    pub(super) slot: Slot,
    pub(super) reply: oneshot::Sender<Result<Position, Error>>,
}

/// One Redis, or a Cluster.
pub(super) struct Shard {
    pub(super) conn: Conn,
    pub(super) writer: mpsc::UnboundedSender<PublishOp>,
    pub(super) feed: feed::Feed,
}

/// How long connecting and each command may take.
const TIMEOUT: Duration = Duration::from_secs(5);

fn bad_url(url: &str, e: impl std::fmt::Display) -> Error {
    Error::Config(crate::ConfigError::Key {
        key: "redis".into(),
        message: format!("{url:?} is not a Redis URL ({e}); use redis://HOST:PORT"),
    })
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
        let client = redis::Client::open(url).map_err(|e| bad_url(url, e))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let conn = Conn::Single(
            client
                .get_connection_manager_with_config(config)
                .await
                .map_err(storage("connect"))?,
        );
        Self::start(conn, Source::Client(client), keys, delivery, control, wait).await
    }

    /// Connects to the master that the Sentinels at `sentinels` name `master`; asks them
    /// again whenever the connection to it fails.
    pub(super) async fn connect_sentinel(
        sentinels: &[String],
        master: &str,
        keys: &Keys,
        delivery: Delivery,
        control: ControlSink,
        wait: Option<(u32, Duration)>,
    ) -> Result<Shard, Error> {
        let master = std::sync::Arc::new(
            SentinelMaster::new(sentinels, master, TIMEOUT)
                .map_err(|e| bad_url(&sentinels.join(" "), e))?,
        );
        let mut conn = Conn::Sentinel(master.clone());
        conn.ping()
            .await
            .map_err(storage("connect to the master the Sentinels name"))?;
        let source = Source::Sentinel(master);
        Self::start(conn, source, keys, delivery, Some(control), wait).await
    }

    async fn start(
        conn: Conn,
        source: Source,
        keys: &Keys,
        delivery: Delivery,
        control: Option<ControlSink>,
        wait: Option<(u32, Duration)>,
    ) -> Result<Shard, Error> {
        let (writer, queue) = mpsc::unbounded_channel();
        tokio::spawn(write(conn.clone(), queue, wait));
        let feed = feed::Feed::start(source, keys.clone(), delivery, control, conn.clone()).await?;
        Ok(Shard { conn, writer, feed })
    }

    /// Connects to the Redis Cluster `seeds` belong to (RESP3: its sharded pub/sub
    /// messages come on the command connections, one per master); it carries the
    /// control channel.
    pub(super) async fn connect_cluster(
        seeds: &[String],
        keys: &Keys,
        delivery: Delivery,
        control: ControlSink,
        wait: Option<(u32, Duration)>,
    ) -> Result<Shard, Error> {
        for url in seeds {
            redis::Client::open(url.as_str()).map_err(|e| bad_url(url, e))?;
        }
        let (pushes, arrived) = mpsc::unbounded_channel();
        let builder = || {
            redis::cluster::ClusterClientBuilder::new(seeds.to_vec())
                .use_protocol(redis::ProtocolVersion::RESP3)
                .connection_timeout(TIMEOUT)
                .response_timeout(TIMEOUT)
        };
        let connect = |builder: redis::cluster::ClusterClientBuilder| async move {
            let client = builder.build().map_err(|e| bad_url(&seeds.join(" "), e))?;
            let conn = client
                .get_async_connection()
                .await
                .map_err(storage("connect to the cluster"))?;
            Ok::<_, Error>(Conn::Cluster(conn))
        };
        let conn = connect(builder().push_sender(pushes)).await?;
        // Publishes have connections of their own that never retry: the Cluster client
        // sends a request again when its connection drops, and a publish that ran
        // before the drop would be stored twice. `send` retries what is known not to
        // have run.
        let publishing = connect(builder().retries(0)).await?;
        let (writer, queue) = mpsc::unbounded_channel();
        tokio::spawn(write(publishing, queue, wait));
        let feed =
            feed::Feed::start_cluster(conn.clone(), arrived, keys.clone(), delivery, control)
                .await?;
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

/// The writer: sends what is queued as pipelines (one per Cluster slot; one in all on a
/// single Redis), each in queue order, and answers each publish with its own result.
async fn write(
    conn: Conn,
    mut queue: mpsc::UnboundedReceiver<PublishOp>,
    wait: Option<(u32, Duration)>,
) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, 1024).await > 0 {
        if conn.is_cluster() {
            let mut by_slot: HashMap<Slot, Vec<PublishOp>> = HashMap::new();
            for op in batch.drain(..) {
                by_slot.entry(op.slot).or_default().push(op);
            }
            join_all(
                by_slot
                    .into_values()
                    .map(|ops| send(conn.clone(), ops, wait)),
            )
            .await;
        } else {
            send(conn.clone(), std::mem::take(&mut batch), wait).await;
        }
    }
}

/// Sends `ops` as one pipeline and answers each.
async fn send(mut conn: Conn, ops: Vec<PublishOp>, wait: Option<(u32, Duration)>) {
    let mut pipe = redis::pipe();
    for op in &ops {
        pipe.add_command(op.cmd.clone());
    }
    if let Some((replicas, timeout)) = wait {
        // One WAIT for the whole pipeline: it covers every write before it.
        pipe.cmd("WAIT")
            .arg(replicas)
            .arg(timeout.as_millis() as u64);
    }
    // Per-command results: one refused publish does not fail the others.
    pipe.ignore_errors();
    let results = query(&mut conn, &pipe).await;
    let results = match (results, wait) {
        (Ok(mut results), Some((replicas, timeout))) if results.len() == ops.len() + 1 => {
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
        Ok(results) if results.len() == ops.len() => {
            for (op, result) in ops.into_iter().zip(results) {
                let position = result
                    .map_err(storage("publish"))
                    .and_then(|v| position(&v));
                let _ = op.reply.send(position);
            }
        }
        Ok(results) => {
            let message = format!("redis publish: {} replies for {}", results.len(), ops.len());
            for op in ops {
                let _ = op.reply.send(Err(Error::Storage(message.clone())));
            }
        }
        Err(message) => {
            // Not known to be stored (or not replicated as required): never
            // acknowledged.
            for op in ops {
                let _ = op.reply.send(Err(Error::Storage(message.clone())));
            }
        }
    }
}

/// Times a pipeline refused with MOVED is sent again.
const MOVED_RETRIES: u32 = 3;

/// Runs a publish pipeline. The one failure sent again is MOVED: the channel's slot
/// belongs to another master now (a failover or a resharding), so the node ran none of
/// the pipeline (one slot's), and the Cluster client, told so, refreshes its slot map
/// meanwhile. Any other failure may come after the publishes ran: never sent again.
/// (Left open: a slot that changes owner while the node is part way through a pipeline
/// answers MOVED to the rest of it, and the part that ran is sent again.)
async fn query(conn: &mut Conn, pipe: &redis::Pipeline) -> RedisResult<Vec<RedisResult<Value>>> {
    let mut retries = 0;
    loop {
        match pipe.query_async(conn).await {
            Err(e)
                if matches!(e.retry_method(), RetryMethod::MovedRedirect)
                    && retries < MOVED_RETRIES =>
            {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(50) * retries).await;
            }
            result => return result,
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
