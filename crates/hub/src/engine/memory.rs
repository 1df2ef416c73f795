//! The in-memory engine: streams in a map under one lock. Publishing stores and delivers
//! under the lock, so deliveries follow offset order. Everything is lost on restart, and
//! a restarted hub gives every channel a new epoch.

use super::{
    new_epoch, now_ms, Delivery, Engine, History, HistoryQuery, LocalPresence, Position,
    PresenceMap,
};
use crate::config::Channels;
use crate::error::Error;
use crate::protocol::reply::{ClientInfo, Publication};
use crate::protocol::Payload;
use futures_util::future::{BoxFuture, FutureExt};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

struct Stream {
    epoch: String,
    /// When the stream was created, in ms (never-published streams expire by it).
    created_ms: i64,
    /// When it was last published to, in ms (the stream is lost once its whole history
    /// has expired by time, not when its history was removed).
    last_ms: i64,
    top: u64,
    /// (publish time in ms, publication), oldest first.
    publications: VecDeque<(i64, Publication)>,
}

impl Stream {
    /// A new stream: a new epoch, nothing published.
    fn new() -> Self {
        Stream {
            epoch: new_epoch(),
            created_ms: now_ms(),
            last_ms: 0,
            top: 0,
            publications: VecDeque::new(),
        }
    }

    /// Drops the publications older than `ttl_ms` at `now_ms`.
    fn drop_expired(&mut self, now_ms: i64, ttl_ms: i64) {
        while self
            .publications
            .front()
            .is_some_and(|(at, _)| *at < now_ms.saturating_sub(ttl_ms))
        {
            self.publications.pop_front();
        }
    }
}

/// Publications in process memory.
pub struct MemoryEngine {
    channels: Channels,
    streams: Mutex<HashMap<String, Stream>>,
    /// (channel, idempotency key) to the first position and when it is forgotten (ms).
    idempotency: Mutex<HashMap<(String, String), (Position, i64)>>,
    delivery: Delivery,
    presence: LocalPresence,
    stopped: AtomicBool,
}

impl MemoryEngine {
    /// An empty engine delivering to `delivery`.
    pub fn new(channels: Channels, delivery: Delivery) -> Self {
        MemoryEngine {
            channels,
            streams: Mutex::new(HashMap::new()),
            idempotency: Mutex::new(HashMap::new()),
            delivery,
            presence: LocalPresence::default(),
            stopped: AtomicBool::new(false),
        }
    }

    fn check_running(&self) -> Result<(), Error> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(Error::Stopped);
        }
        Ok(())
    }

    fn publish_now(
        &self,
        channel: &str,
        data: Payload,
        info: Option<ClientInfo>,
    ) -> Result<Position, Error> {
        self.check_running()?;
        let options = self
            .channels
            .options(channel)
            .ok_or_else(|| Error::UnknownChannel(channel.into()))?;
        let now = now_ms();
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let stream = streams
            .entry(channel.to_owned())
            .or_insert_with(Stream::new);
        stream.top += 1;
        stream.last_ms = now;
        let publication = Publication {
            data,
            info,
            offset: stream.top,
        };
        stream.publications.push_back((now, publication.clone()));
        while stream.publications.len() > options.history_size {
            stream.publications.pop_front();
        }
        let ttl = i64::try_from(options.history_ttl.as_millis()).unwrap_or(i64::MAX);
        stream.drop_expired(now, ttl);
        let position = Position {
            offset: stream.top,
            epoch: stream.epoch.clone(),
        };
        (self.delivery)(channel, &publication, &position.epoch);
        Ok(position)
    }

    fn publish_once_now(
        &self,
        channel: &str,
        data: Payload,
        info: Option<ClientInfo>,
        key: String,
    ) -> Result<Position, Error> {
        self.check_running()?;
        let now = now_ms();
        // Held across the publish, so that two publishes with one key cannot both store.
        let mut seen = self.idempotency.lock().unwrap_or_else(|e| e.into_inner());
        let entry = (channel.to_owned(), key);
        if let Some((position, until)) = seen.get(&entry) {
            if *until > now {
                return Ok(position.clone());
            }
        }
        let position = self.publish_now(channel, data, info)?;
        let window = i64::try_from(super::IDEMPOTENCY_WINDOW.as_millis()).unwrap_or(i64::MAX);
        seen.insert(entry, (position.clone(), now.saturating_add(window)));
        Ok(position)
    }

    fn history_now(&self, channel: &str, query: HistoryQuery) -> Result<History, Error> {
        self.check_running()?;
        let options = self
            .channels
            .options(channel)
            .ok_or_else(|| Error::UnknownChannel(channel.into()))?;
        let ttl = i64::try_from(options.history_ttl.as_millis()).unwrap_or(i64::MAX);
        let oldest_time = now_ms().saturating_sub(ttl);
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let stream = streams
            .entry(channel.to_owned())
            .or_insert_with(Stream::new);
        let kept = stream
            .publications
            .iter()
            .filter(|(at, _)| *at >= oldest_time)
            .map(|(_, p)| p);
        let oldest = kept.clone().next().map_or(0, |p| p.offset);
        let limit = query.limit.unwrap_or(usize::MAX);
        let publications: Vec<Publication> = match (query.reverse, query.since) {
            (false, since) => kept
                .filter(|p| since.is_none_or(|s| p.offset > s))
                .take(limit)
                .cloned()
                .collect(),
            (true, since) => kept
                .rev()
                .filter(|p| since.is_none_or(|s| p.offset < s))
                .take(limit)
                .cloned()
                .collect(),
        };
        Ok(History {
            position: Position {
                offset: stream.top,
                epoch: stream.epoch.clone(),
            },
            publications,
            oldest,
        })
    }

    fn expire_now(&self) {
        let now = now_ms();
        self.idempotency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (_, until)| *until > now);
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.retain(|channel, stream| {
            let Some(options) = self.channels.options(channel) else {
                return false;
            };
            let ttl = i64::try_from(options.history_ttl.as_millis()).unwrap_or(i64::MAX);
            stream.drop_expired(now, ttl);
            // A stream whose history expired entirely is lost: dropping it frees the
            // memory, and its next use starts a new epoch. A never-published one goes
            // once it is as old as the time-to-live.
            let cutoff = now.saturating_sub(ttl);
            let lost = if stream.top > 0 {
                stream.last_ms < cutoff
            } else {
                stream.created_ms < cutoff
            };
            !(stream.publications.is_empty() && lost)
        });
    }
}

impl Engine for MemoryEngine {
    fn publish(
        &self,
        channel: &str,
        data: Payload,
        info: Option<ClientInfo>,
    ) -> BoxFuture<'static, Result<Position, Error>> {
        std::future::ready(self.publish_now(channel, data, info)).boxed()
    }

    fn publish_once(
        &self,
        channel: &str,
        data: Payload,
        info: Option<ClientInfo>,
        idempotency_key: String,
    ) -> BoxFuture<'static, Result<Position, Error>> {
        std::future::ready(self.publish_once_now(channel, data, info, idempotency_key)).boxed()
    }

    fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
    ) -> BoxFuture<'static, Result<History, Error>> {
        std::future::ready(self.history_now(channel, query)).boxed()
    }

    fn add_presence(
        &self,
        channel: &str,
        client: &str,
        info: ClientInfo,
    ) -> BoxFuture<'static, Result<(), Error>> {
        self.presence.add(channel, client, info);
        std::future::ready(Ok(())).boxed()
    }

    fn remove_presence(
        &self,
        channel: &str,
        client: &str,
    ) -> BoxFuture<'static, Result<(), Error>> {
        self.presence.remove(channel, client);
        std::future::ready(Ok(())).boxed()
    }

    fn presence(&self, channel: &str) -> BoxFuture<'static, Result<PresenceMap, Error>> {
        std::future::ready(Ok(self.presence.get(channel))).boxed()
    }

    fn check_writable(&self) -> BoxFuture<'static, Result<(), Error>> {
        std::future::ready(self.check_running()).boxed()
    }

    fn remove_history(&self, channel: &str) -> BoxFuture<'static, Result<(), Error>> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(stream) = streams.get_mut(channel) {
            stream.publications.clear();
        }
        std::future::ready(self.check_running()).boxed()
    }

    fn expire(&self) -> BoxFuture<'static, Result<(), Error>> {
        self.expire_now();
        std::future::ready(Ok(())).boxed()
    }

    fn shutdown(&self) -> BoxFuture<'static, ()> {
        self.stopped.store(true, Ordering::Release);
        std::future::ready(()).boxed()
    }
}
