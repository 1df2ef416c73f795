//! The Redis engine: several hub nodes share channels through one Redis.
//!
//! Each publish is one Lua script ([`scripts::PUBLISH`]) that stores the publication in
//! the channel's stream and `PUBLISH`es it to the channel's live feed in the same atomic
//! step, so offsets are contiguous across nodes and the feed carries them in order. A
//! node reads the feeds of the channels it has subscribers for ([`feed`]) and hands the
//! publications to its [`Delivery`] sink. Publishes go through one writer task that
//! sends whatever is queued as one pipeline: call order is channel order, and a burst
//! costs one round trip. An acknowledgement means Redis ran the script (see
//! `docs/configuration.md` on what survives which Redis failure).

mod conn;
mod feed;
mod scripts;
mod shard;

use super::{
    new_epoch, now_ms, ControlSink, Delivery, Engine, History, HistoryQuery, Position, PresenceMap,
};
use crate::config::Channels;
use crate::error::Error;
use crate::protocol::reply::{ClientInfo, Publication};
use crate::protocol::Payload;
use conn::Conn;
use futures_util::future::{BoxFuture, FutureExt};
use redis::Value;
use std::time::Duration;
use tokio::sync::oneshot;

fn storage(context: &str) -> impl FnOnce(redis::RedisError) -> Error + '_ {
    move |e| Error::Storage(format!("redis {context}: {e}"))
}

/// Key and pub/sub channel names for one prefix. A channel's keys and its live feed
/// share a Cluster hash tag (`{CH}`), so one script touches one slot; names outside
/// channels never start with `P:{`, so no channel name can alias them.
#[derive(Clone, Debug)]
struct Keys {
    prefix: String,
    /// Sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, a Cluster) or plain.
    sharded: bool,
}

impl Keys {
    fn key(&self, channel: &str, kind: &str) -> String {
        format!("{}:{{{channel}}}:{kind}", self.prefix)
    }
    fn meta(&self, channel: &str) -> String {
        self.key(channel, "m")
    }
    fn stream(&self, channel: &str) -> String {
        self.key(channel, "s")
    }
    /// Hex-encoded: a key cannot contain `}` and alias another channel's keys.
    fn idempotency(&self, channel: &str, key: &str) -> String {
        let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
        self.key(channel, &format!("i:{hex}"))
    }
    fn presence(&self, channel: &str) -> (String, String) {
        (self.key(channel, "p"), self.key(channel, "z"))
    }
    /// The pub/sub channel of `channel`'s live feed.
    fn live(&self, channel: &str) -> String {
        self.key(channel, "l")
    }
    /// The nodes' info (a hash) and when each entry expires (a sorted set): kept like
    /// presence.
    fn nodes(&self) -> (String, String) {
        (
            format!("{}:nodes:{{n}}", self.prefix),
            format!("{}:nodes:{{n}}:z", self.prefix),
        )
    }
    /// The pub/sub channel every node's control messages go through.
    fn control(&self) -> String {
        format!("{}:control", self.prefix)
    }
    /// The hub channel a live feed name belongs to.
    fn channel_of_live<'a>(&self, live: &'a str) -> Option<&'a str> {
        live.strip_prefix(&self.prefix)?
            .strip_prefix(":{")?
            .strip_suffix("}:l")
    }
    /// The command that publishes to a live feed or the control channel.
    fn publish(&self) -> &'static str {
        if self.sharded {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }
}

/// How the Redis engine connects and acknowledges.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// `redis://[:PASSWORD@]HOST:PORT[/DB]`, one per shard: channels are spread over
    /// them (by a hash of the channel name). With `cluster`, seed nodes of one Redis Cluster.
    pub urls: Vec<String>,
    /// The URLs are nodes of a Redis Cluster (7.0 or newer: sharded pub/sub).
    pub cluster: bool,
    /// The URLs are Sentinels, and this is the name of the master they watch.
    pub sentinel_master: Option<String>,
    /// Prefix of every key and pub/sub channel.
    pub prefix: String,
    /// How long a presence entry lives unless refreshed (sessions refresh theirs).
    pub presence_ttl: Duration,
    /// Replicas that must confirm a publish (Redis `WAIT`) before it is acknowledged,
    /// and how long to wait for them.
    pub wait: Option<(u32, Duration)>,
}

/// Channels in Redis, shared by every node with the same `redis` and `redis_prefix`.
pub struct RedisEngine {
    channels: Channels,
    keys: Keys,
    /// One per Redis in `redis`; a channel lives on [`shard::pick`]'s. A Cluster is
    /// one.
    shards: Vec<shard::Shard>,
    /// How long a presence entry lives unless refreshed (sessions refresh theirs).
    presence_ttl: Duration,
    /// Set by `shutdown`: later publishes fail instead of being stored.
    stopped: std::sync::atomic::AtomicBool,
}

impl RedisEngine {
    /// Connects to `options.url`; publications of the channels this node subscribes to
    /// go to `delivery`, every node's control messages to `control`.
    pub async fn connect(
        options: &RedisOptions,
        channels: Channels,
        delivery: Delivery,
        control: ControlSink,
    ) -> Result<RedisEngine, Error> {
        let keys = Keys {
            prefix: options.prefix.clone(),
            sharded: options.cluster,
        };
        let mut shards = Vec::with_capacity(options.urls.len());
        if let (Some(master), false) = (&options.sentinel_master, options.urls.is_empty()) {
            shards.push(
                shard::Shard::connect_sentinel(
                    &options.urls,
                    master,
                    &keys,
                    delivery.clone(),
                    control.clone(),
                    options.wait,
                )
                .await?,
            );
        } else if options.cluster && !options.urls.is_empty() {
            shards.push(
                shard::Shard::connect_cluster(
                    &options.urls,
                    &keys,
                    delivery.clone(),
                    control.clone(),
                    options.wait,
                )
                .await?,
            );
        }
        let single = if options.cluster || options.sentinel_master.is_some() {
            &[][..]
        } else {
            &options.urls[..]
        };
        for (i, url) in single.iter().enumerate() {
            // Control messages and node info go through the first Redis.
            let control = (i == 0).then(|| control.clone());
            shards.push(
                shard::Shard::connect(url, &keys, delivery.clone(), control, options.wait).await?,
            );
        }
        if shards.is_empty() {
            return Err(Error::Config(crate::ConfigError::Key {
                key: "redis".into(),
                message: "the redis engine needs a Redis URL".into(),
            }));
        }
        Ok(RedisEngine {
            channels,
            keys,
            shards,
            presence_ttl: options.presence_ttl,
            stopped: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The Redis that keeps `channel`.
    fn shard(&self, channel: &str) -> &shard::Shard {
        &self.shards[shard::pick(channel, self.shards.len())]
    }

    /// The Redis of what belongs to no channel (control messages, node info).
    fn first(&self) -> &shard::Shard {
        &self.shards[0]
    }

    fn publish_cmd(
        &self,
        channel: &str,
        data: &Payload,
        info: Option<&ClientInfo>,
        idempotency_key: Option<&str>,
    ) -> Result<redis::Cmd, Error> {
        let options = self
            .channels
            .options(channel)
            .ok_or_else(|| Error::UnknownChannel(channel.into()))?;
        // Compact (no newline): the live message separates its parts by newlines, and
        // a token's or a backend's info is kept as it was written.
        let info = info
            .map(|i| {
                serde_json::to_value(i)
                    .map(|v| v.to_string())
                    .expect("client info serializes")
            })
            .unwrap_or_default();
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(scripts::PUBLISH)
            .arg(if idempotency_key.is_some() { 3 } else { 2 })
            .arg(self.keys.meta(channel))
            .arg(self.keys.stream(channel));
        if let Some(key) = idempotency_key {
            cmd.arg(self.keys.idempotency(channel, key));
        }
        cmd.arg(&*data.to_stored())
            .arg(info)
            .arg(now_ms())
            .arg(options.history_size)
            .arg(options.history_ttl.as_millis().max(1) as u64)
            .arg(new_epoch())
            .arg(self.keys.live(channel))
            .arg(super::IDEMPOTENCY_WINDOW.as_secs())
            .arg(self.keys.publish());
        Ok(cmd)
    }

    fn queue(
        &self,
        channel: &str,
        cmd: Result<redis::Cmd, Error>,
    ) -> BoxFuture<'static, Result<Position, Error>> {
        let (reply, answer) = oneshot::channel();
        let cmd = if self.stopped.load(std::sync::atomic::Ordering::Acquire) {
            Err(Error::Stopped)
        } else {
            cmd
        };
        let slot = redis::cluster_routing::Slot::for_key(self.keys.meta(channel));
        let queued = cmd.and_then(|cmd| {
            self.shard(channel)
                .writer
                .send(shard::PublishOp { cmd, slot, reply })
                .map_err(|_| Error::Stopped)
        });
        async move {
            queued?;
            answer.await.map_err(|_| Error::Stopped)?
        }
        .boxed()
    }
}

/// `cmd`'s reply on `conn`; `what` names it in errors.
fn query(
    mut conn: Conn,
    cmd: redis::Cmd,
    what: &'static str,
) -> BoxFuture<'static, Result<Value, Error>> {
    async move { cmd.query_async(&mut conn).await.map_err(storage(what)) }.boxed()
}

/// Done once `reply` is, whatever Redis answered.
fn done(reply: BoxFuture<'static, Result<Value, Error>>) -> BoxFuture<'static, Result<(), Error>> {
    async move { reply.await.map(|_| ()) }.boxed()
}

/// Adds or refreshes `member` with `value` in an expiring hash (presence, node info):
/// it goes `ttl` from now unless added again.
fn add_expiring(
    conn: Conn,
    (hash, expiry): (String, String),
    member: &str,
    value: String,
    ttl: Duration,
    what: &'static str,
) -> BoxFuture<'static, Result<(), Error>> {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(scripts::ADD_PRESENCE)
        .arg(2)
        .arg(hash)
        .arg(expiry)
        .arg(member)
        .arg(value)
        .arg(now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)))
        .arg(ttl.as_secs().max(1));
    done(query(conn, cmd, what))
}

/// A member of an expiring hash and its value.
type Member = (String, Vec<u8>);

/// The live members of an expiring hash and their values (expired ones are removed).
fn read_expiring(
    conn: Conn,
    (hash, expiry): (String, String),
    what: &'static str,
) -> BoxFuture<'static, Result<Vec<Member>, Error>> {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(scripts::PRESENCE)
        .arg(2)
        .arg(hash)
        .arg(expiry)
        .arg(now_ms());
    let reply = query(conn, cmd, what);
    async move {
        let value = reply.await?;
        let Value::Array(items) = &value else {
            return Err(bad_reply(what, &value));
        };
        items
            .chunks(2)
            .map(|pair| match pair {
                [member, Value::BulkString(v)] => text(member)
                    .map(|m| (m, v.clone()))
                    .ok_or_else(|| bad_reply(what, &value)),
                _ => Err(bad_reply(what, &value)),
            })
            .collect()
    }
    .boxed()
}

fn bad_reply(what: &str, value: &Value) -> Error {
    Error::Storage(format!("redis {what}: unexpected reply {value:?}"))
}

fn int(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// `{offset, epoch}` from the publish script.
fn position(value: &Value) -> Result<Position, Error> {
    match value {
        Value::Array(items) if items.len() == 2 => Ok(Position {
            offset: int(&items[0]).ok_or_else(|| bad_reply("publish", value))?,
            epoch: text(&items[1]).ok_or_else(|| bad_reply("publish", value))?,
        }),
        _ => Err(bad_reply("publish", value)),
    }
}

/// The publisher info stored with a publication (`""`: none).
pub(crate) fn parse_info(info: &[u8]) -> Result<Option<ClientInfo>, Error> {
    if info.is_empty() {
        return Ok(None);
    }
    ClientInfo::from_json(info)
        .map(Some)
        .map_err(|e| Error::Storage(format!("redis: stored publisher info is not JSON: {e}")))
}

/// A payload as stored ([`Payload::to_stored`]).
pub(crate) fn parse_data(data: &[u8]) -> Result<Payload, Error> {
    Payload::from_stored(data)
        .map_err(|e| Error::Storage(format!("redis: stored data is corrupt: {e}")))
}

/// One stream entry: `[id, [field, value, ...]]`, with its time in ms.
fn entry(value: &Value) -> Result<(i64, Publication), Error> {
    let bad = || bad_reply("history entry", value);
    let Value::Array(parts) = value else {
        return Err(bad());
    };
    let [id, Value::Array(fields)] = parts.as_slice() else {
        return Err(bad());
    };
    let id = text(id).ok_or_else(bad)?;
    let offset = id
        .split_once('-')
        .and_then(|(o, _)| o.parse().ok())
        .ok_or_else(bad)?;
    let (mut data, mut info, mut at) = (None, None, 0);
    for pair in fields.chunks(2) {
        let [name, Value::BulkString(bytes)] = pair else {
            return Err(bad());
        };
        match text(name).as_deref() {
            Some("d") => data = Some(parse_data(bytes)?),
            Some("i") => info = parse_info(bytes)?,
            Some("t") => {
                at = std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0)
            }
            _ => {}
        }
    }
    let data = data.ok_or_else(bad)?;
    Ok((at, Publication { data, info, offset }))
}

impl Engine for RedisEngine {
    fn publish(
        &self,
        channel: &str,
        data: Payload,
        info: Option<ClientInfo>,
    ) -> BoxFuture<'static, Result<Position, Error>> {
        self.queue(
            channel,
            self.publish_cmd(channel, &data, info.as_ref(), None),
        )
    }

    fn publish_once(
        &self,
        channel: &str,
        data: Payload,
        info: Option<ClientInfo>,
        idempotency_key: String,
    ) -> BoxFuture<'static, Result<Position, Error>> {
        self.queue(
            channel,
            self.publish_cmd(channel, &data, info.as_ref(), Some(&idempotency_key)),
        )
    }

    fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
    ) -> BoxFuture<'static, Result<History, Error>> {
        let Some(options) = self.channels.options(channel) else {
            let channel = channel.to_owned();
            return async move { Err(Error::UnknownChannel(channel)) }.boxed();
        };
        let ttl = options.history_ttl;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(scripts::HISTORY)
            .arg(2)
            .arg(self.keys.meta(channel))
            .arg(self.keys.stream(channel))
            .arg(new_epoch())
            .arg(ttl.as_millis().max(1) as u64)
            // As text: Lua would print a large number as 1e+14.
            .arg(query.since.map_or("-1".to_owned(), |s| s.to_string()))
            .arg(
                query
                    .limit
                    .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX)),
            )
            .arg(if query.reverse { 1 } else { 0 });
        let mut conn = self.shard(channel).conn.clone();
        async move {
            let value: Value = cmd
                .query_async(&mut conn)
                .await
                .map_err(storage("history"))?;
            let bad = || bad_reply("history", &value);
            let Value::Array(parts) = &value else {
                return Err(bad());
            };
            let [epoch, top, oldest, Value::Array(entries)] = parts.as_slice() else {
                return Err(bad());
            };
            // Publications older than the TTL are not history any more, even while
            // newer ones keep the stream alive.
            let cutoff =
                now_ms().saturating_sub(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
            let mut publications = Vec::with_capacity(entries.len());
            for e in entries {
                let (at, publication) = entry(e)?;
                if at >= cutoff {
                    publications.push(publication);
                }
            }
            Ok(History {
                position: Position {
                    offset: int(top).ok_or_else(bad)?,
                    epoch: text(epoch).ok_or_else(bad)?,
                },
                oldest: int(oldest).ok_or_else(bad)?,
                publications,
            })
        }
        .boxed()
    }

    fn add_presence(
        &self,
        channel: &str,
        client: &str,
        info: ClientInfo,
    ) -> BoxFuture<'static, Result<(), Error>> {
        let info = serde_json::to_string(&info).expect("client info serializes");
        add_expiring(
            self.shard(channel).conn.clone(),
            self.keys.presence(channel),
            client,
            info,
            self.presence_ttl,
            "presence",
        )
    }

    fn remove_presence(
        &self,
        channel: &str,
        client: &str,
    ) -> BoxFuture<'static, Result<(), Error>> {
        let (hash, expiry) = self.keys.presence(channel);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hdel(&hash, client)
            .ignore()
            .zrem(&expiry, client)
            .ignore();
        let mut conn = self.shard(channel).conn.clone();
        async move {
            let _: Value = pipe
                .query_async(&mut conn)
                .await
                .map_err(storage("presence"))?;
            Ok(())
        }
        .boxed()
    }

    fn presence(&self, channel: &str) -> BoxFuture<'static, Result<PresenceMap, Error>> {
        let read = read_expiring(
            self.shard(channel).conn.clone(),
            self.keys.presence(channel),
            "presence",
        );
        async move {
            let mut map = PresenceMap::new();
            for (client, info) in read.await? {
                if let Some(info) = parse_info(&info)? {
                    map.insert(client, info);
                }
            }
            Ok(map)
        }
        .boxed()
    }

    fn check_writable(&self) -> BoxFuture<'static, Result<(), Error>> {
        // Every Redis, both connections: a channel on any of them may be published to.
        let shards: Vec<(Conn, feed::Feed)> = self
            .shards
            .iter()
            .map(|s| (s.conn.clone(), s.feed.clone()))
            .collect();
        async move {
            for (mut conn, feed) in shards {
                conn.ping().await.map_err(storage("ping"))?;
                feed.check().await?;
            }
            Ok(())
        }
        .boxed()
    }

    fn remove_history(&self, channel: &str) -> BoxFuture<'static, Result<(), Error>> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(scripts::REMOVE_HISTORY)
            .arg(2)
            .arg(self.keys.meta(channel))
            .arg(self.keys.stream(channel));
        done(query(
            self.shard(channel).conn.clone(),
            cmd,
            "history_remove",
        ))
    }

    fn expire(&self) -> BoxFuture<'static, Result<(), Error>> {
        // Redis expires the keys itself (EXPIRE on every publish and new stream).
        async { Ok(()) }.boxed()
    }

    fn subscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), Error>> {
        self.shard(channel).feed.subscribe(self.keys.live(channel))
    }

    fn unsubscribe(&self, channel: &str) {
        self.shard(channel)
            .feed
            .unsubscribe(self.keys.live(channel));
    }

    fn control(
        &self,
        control: &crate::control::Control,
    ) -> Option<BoxFuture<'static, Result<(), Error>>> {
        let mut cmd = redis::cmd(self.keys.publish());
        cmd.arg(self.keys.control()).arg(control.encode());
        Some(done(query(self.first().conn.clone(), cmd, "control")))
    }

    fn report_node(
        &self,
        uid: &str,
        info: String,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<(), Error>> {
        add_expiring(
            self.first().conn.clone(),
            self.keys.nodes(),
            uid,
            info,
            ttl,
            "node info",
        )
    }

    fn nodes(&self) -> BoxFuture<'static, Result<Vec<String>, Error>> {
        let read = read_expiring(self.first().conn.clone(), self.keys.nodes(), "node info");
        async move {
            Ok(read
                .await?
                .into_iter()
                .filter_map(|(_, info)| String::from_utf8(info).ok())
                .collect())
        }
        .boxed()
    }

    fn presence_ttl(&self) -> Option<Duration> {
        Some(self.presence_ttl)
    }

    fn shutdown(&self) -> BoxFuture<'static, ()> {
        // Publishes already queued are sent (the writer runs until the engine is
        // dropped); new ones fail.
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        for shard in &self.shards {
            shard.feed.stop();
        }
        async {}.boxed()
    }
}

/// The integration tests' `redis-server` helper, shared with the unit tests.
#[cfg(test)]
#[path = "../../../tests/common/redis_server.rs"]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;
