//! Who is subscribed where, and fan-out: each publication is encoded once per format
//! (JSON, and Protobuf when a subscriber speaks it), as one shared WebSocket frame, and
//! the same bytes are queued for every subscriber of that format.
//!
//! Every connection has a bounded queue. A subscriber whose queue is full is not waited
//! for: it is ended with the slow-consumer disconnect (it reconnects and recovers from
//! its offset), so one slow reader never holds up a channel or grows memory.

use crate::metrics::Metrics;
use crate::protocol::reply::{ClientInfo, Publication};
use crate::protocol::{DisconnectCode, Format};
use crate::queue::{Queue, Receiver, Refused};
use duplex::SharedFrame;
use indexmap::IndexSet;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What the hub queues for a connection.
#[derive(Debug)]
pub enum Outgoing {
    /// A publication in a channel; skipped when the connection already has its offset
    /// (recovery read it from history).
    Publication {
        /// The channel.
        channel: Arc<str>,
        /// Its offset.
        offset: u64,
        /// The epoch of the stream it belongs to.
        epoch: Arc<str>,
        /// The encoded push.
        frame: SharedFrame,
    },
    /// The hub ends the connection's subscription to the channel (server API).
    Unsubscribe {
        /// The channel.
        channel: Arc<str>,
    },
    /// The hub subscribes the connection to the channel (server API).
    Subscribe {
        /// The channel.
        channel: Arc<str>,
    },
    /// Any other push for a channel (join, leave), sent while subscribed.
    Push {
        /// The channel.
        channel: Arc<str>,
        /// The encoded push.
        frame: SharedFrame,
    },
}

/// The hub's side of one connection: its queue and how to end it.
#[derive(Debug)]
pub struct ClientHandle {
    /// The client id.
    pub id: String,
    /// The user id.
    pub user: String,
    /// How its pushes are encoded.
    pub format: Format,
    queue: Arc<Queue>,
    end: Mutex<Option<DisconnectCode>>,
    ended: Notify,
}

impl ClientHandle {
    /// A handle and the receiving end of its queue of `capacity` messages.
    pub fn new(id: String, user: String, format: Format, capacity: usize) -> (Arc<Self>, Receiver) {
        let (queue, receiver) = Queue::new(capacity);
        let handle = ClientHandle {
            id,
            user,
            format,
            queue,
            end: Mutex::new(None),
            ended: Notify::new(),
        };
        (Arc::new(handle), receiver)
    }

    /// Asks the session to disconnect with `code` (the first request wins).
    pub fn end(&self, code: DisconnectCode) {
        let mut end = self.end.lock().unwrap_or_else(|e| e.into_inner());
        if end.is_none() {
            *end = Some(code);
            self.ended.notify_one();
        }
    }

    /// Resolves with the disconnect code once [`end`](Self::end) was called.
    pub async fn ended(&self) -> DisconnectCode {
        loop {
            if let Some(code) = *self.end.lock().unwrap_or_else(|e| e.into_inner()) {
                return code;
            }
            self.ended.notified().await;
        }
    }

    /// Asks the session to subscribe to `channel` (a `subscribe` push).
    pub fn subscribe(&self, channel: &str) {
        self.offer(Outgoing::Subscribe {
            channel: Arc::from(channel),
        });
    }

    /// Asks the session to end its subscription to `channel` (an `unsubscribe` push).
    pub fn unsubscribe(&self, channel: &str) {
        self.offer(Outgoing::Unsubscribe {
            channel: Arc::from(channel),
        });
    }

    fn offer(&self, item: Outgoing) -> bool {
        match self.queue.try_send(item) {
            Ok(()) => true,
            Err(Refused::Full) => {
                tracing::info!(client = %self.id, "client too slow: its queue is full; disconnecting (3008)");
                self.end(DisconnectCode::Slow);
                false
            }
            Err(Refused::Closed) => false,
        }
    }
}

/// One client's subscription to a channel. A channel's subscribers are a set keyed by
/// client id (equality and hash are the id's, so the set is looked up by `&str`).
struct Subscriber {
    client: Arc<ClientHandle>,
    join_leave: bool,
}

impl PartialEq for Subscriber {
    fn eq(&self, other: &Self) -> bool {
        self.client.id == other.client.id
    }
}

impl Eq for Subscriber {}

impl Hash for Subscriber {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that lookups by `&str` find it (`Borrow`).
        self.client.id.as_str().hash(state);
    }
}

impl Borrow<str> for Subscriber {
    fn borrow(&self) -> &str {
        &self.client.id
    }
}

/// Which connection limit a connect would pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionLimit {
    /// `max_connections` on this node.
    Node,
    /// `max_connections_per_user`.
    User,
}

/// Channel subscriptions on this node.
pub struct Registry {
    channels: Mutex<HashMap<Arc<str>, IndexSet<Subscriber>>>,
    clients: Mutex<Clients>,
    metrics: Arc<Metrics>,
}

/// Connected clients by id, and how many each user has (so that a connect checks
/// `max_connections_per_user` without going through every client).
#[derive(Default)]
struct Clients {
    by_id: HashMap<String, Arc<ClientHandle>>,
    per_user: HashMap<String, usize>,
}

/// One push, encoded at most once per format, on first use.
struct Frames<F> {
    encode: F,
    json: Option<SharedFrame>,
    protobuf: Option<SharedFrame>,
}

impl<F: Fn(Format) -> Vec<u8>> Frames<F> {
    fn new(encode: F) -> Self {
        Frames {
            encode,
            json: None,
            protobuf: None,
        }
    }

    fn get(&mut self, format: Format) -> SharedFrame {
        let slot = match format {
            Format::Json => &mut self.json,
            Format::Protobuf => &mut self.protobuf,
        };
        slot.get_or_insert_with(|| {
            let message = format.message((self.encode)(format));
            SharedFrame::new(&message).expect("a data message can always be shared")
        })
        .clone()
    }
}

impl Registry {
    /// An empty registry counting into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Registry {
            channels: Mutex::new(HashMap::new()),
            clients: Mutex::new(Clients::default()),
            metrics,
        }
    }

    /// Adds a connected client unless that would pass `max_total` connections on this
    /// node or `max_per_user` for its user (0: no limit), checked and added under one
    /// lock so that concurrent connects cannot overshoot.
    pub fn add_client(
        &self,
        client: Arc<ClientHandle>,
        max_total: usize,
        max_per_user: usize,
    ) -> Result<(), ConnectionLimit> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if max_total > 0 && clients.by_id.len() >= max_total {
            return Err(ConnectionLimit::Node);
        }
        let mine = clients.per_user.get(&client.user).copied().unwrap_or(0);
        if max_per_user > 0 && !client.user.is_empty() && mine >= max_per_user {
            return Err(ConnectionLimit::User);
        }
        self.metrics.connections.inc();
        *clients.per_user.entry(client.user.clone()).or_default() += 1;
        clients.by_id.insert(client.id.clone(), client);
        Ok(())
    }

    /// Removes a client (its subscriptions are removed by the session).
    pub fn remove_client(&self, id: &str) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.by_id.remove(id) {
            self.metrics.connections.dec();
            if let Some(count) = clients.per_user.get_mut(&client.user) {
                *count -= 1;
                if *count == 0 {
                    clients.per_user.remove(&client.user);
                }
            }
        }
    }

    /// Every connected client (for shutdown).
    pub fn clients(&self) -> Vec<Arc<ClientHandle>> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.by_id.values().cloned().collect()
    }

    /// The connections of `user`, or only the one with id `client` when given.
    pub fn clients_of(&self, user: &str, client: Option<&str>) -> Vec<Arc<ClientHandle>> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .by_id
            .values()
            .filter(|c| c.user == user && client.is_none_or(|id| c.id == id))
            .cloned()
            .collect()
    }

    /// The number of distinct users among connected clients.
    pub fn user_count(&self) -> usize {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.per_user.len()
    }

    /// The number of channels with subscribers on this node.
    pub fn channel_count(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Channels with subscribers on this node, and how many each has.
    pub fn channel_counts(&self) -> Vec<(String, usize)> {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels
            .iter()
            .map(|(c, s)| (c.to_string(), s.len()))
            .collect()
    }

    /// The `n` channels with the most subscribers here (then by name), without copying
    /// every channel's name under the lock that fan-out takes.
    pub fn busiest_channels(&self, n: usize) -> Vec<(String, usize)> {
        let mut top: Vec<(usize, Arc<str>)> = {
            let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
            let mut counts: Vec<(usize, &Arc<str>)> =
                channels.iter().map(|(c, s)| (s.len(), c)).collect();
            let cmp = |(a, x): &(usize, &Arc<str>), (b, y): &(usize, &Arc<str>)| {
                b.cmp(a).then_with(|| x.cmp(y))
            };
            if counts.len() > n {
                counts.select_nth_unstable_by(n, cmp);
                counts.truncate(n);
            }
            counts.into_iter().map(|(k, c)| (k, c.clone())).collect()
        };
        top.sort_unstable_by(|(a, x), (b, y)| b.cmp(a).then_with(|| x.cmp(y)));
        top.into_iter().map(|(k, c)| (c.to_string(), k)).collect()
    }

    /// The number of connected clients.
    pub fn client_count(&self) -> usize {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_id
            .len()
    }

    /// Subscribes `client` to `channel`; from now on it gets the channel's publications.
    pub fn subscribe(
        &self,
        channel: &str,
        client: &Arc<ClientHandle>,
        join_leave: bool,
    ) -> Arc<str> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let key: Arc<str> = match channels.get_key_value(channel) {
            Some((key, _)) => key.clone(),
            None => Arc::from(channel),
        };
        let subscriber = Subscriber {
            client: client.clone(),
            join_leave,
        };
        // A client subscribed again (a server-side subscribe of a channel it is in)
        // stays one subscriber, with the newer settings.
        let (_, replaced) = channels
            .entry(key.clone())
            .or_default()
            .replace_full(subscriber);
        if replaced.is_none() {
            self.metrics.subscriptions.inc();
        }
        key
    }

    /// Removes `client`'s subscription to `channel`: O(1), so that a mass disconnect of
    /// one big channel is not quadratic. The last subscriber takes its place, so fan-out
    /// order changes (each subscriber has its own queue: nothing depends on it).
    pub fn unsubscribe(&self, channel: &str, client_id: &str) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(subscribers) = channels.get_mut(channel) {
            if subscribers.swap_remove(client_id) {
                self.metrics.subscriptions.dec();
            }
            if subscribers.is_empty() {
                channels.remove(channel);
            }
        }
    }

    /// Queues a stored publication for every subscriber of `channel`: one encoding, the
    /// same bytes for all.
    pub fn deliver(&self, channel: &str, publication: &Publication, epoch: &str) {
        let mut frames = Frames::new(|format: Format| format.publication(channel, publication));
        // Most subscribers speak JSON: encoded before the lock that fan-out holds.
        frames.get(Format::Json);
        let epoch: Arc<str> = Arc::from(epoch);
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let Some((key, subscribers)) = channels.get_key_value(channel) else {
            return;
        };
        let mut delivered = 0;
        for subscriber in subscribers {
            let item = Outgoing::Publication {
                channel: key.clone(),
                offset: publication.offset,
                epoch: epoch.clone(),
                frame: frames.get(subscriber.client.format),
            };
            if subscriber.client.offer(item) {
                delivered += 1;
            }
        }
        self.metrics.deliveries.add(delivered);
    }

    /// Sends a join (`joined`) or leave push to the subscribers of `channel` that asked
    /// for them, except the client it is about.
    pub fn announce(&self, channel: &str, info: &ClientInfo, joined: bool) {
        let mut frames =
            Frames::new(|format: Format| format.presence_change(channel, info, joined));
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let Some((key, subscribers)) = channels.get_key_value(channel) else {
            return;
        };
        for subscriber in subscribers
            .iter()
            .filter(|s| s.join_leave && s.client.id != info.client)
        {
            let item = Outgoing::Push {
                channel: key.clone(),
                frame: frames.get(subscriber.client.format),
            };
            subscriber.client.offer(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_per_user_are_counted_as_they_come_and_go() {
        let registry = Registry::new(Arc::new(Metrics::default()));
        let client =
            |id: &str, user: &str| ClientHandle::new(id.into(), user.into(), Format::Json, 8).0;
        let (a1, a2, b1) = (client("1", "a"), client("2", "a"), client("3", "b"));
        for c in [&a1, &a2, &b1] {
            registry.add_client(c.clone(), 0, 2).unwrap();
        }
        assert_eq!(
            registry.add_client(client("4", "a"), 0, 2),
            Err(ConnectionLimit::User)
        );
        assert_eq!(registry.user_count(), 2);
        registry.remove_client("1");
        registry.add_client(client("5", "a"), 0, 2).unwrap();
        registry.remove_client("3");
        assert_eq!(
            registry.user_count(),
            1,
            "a user with no connection left is gone"
        );
        // Anonymous connections (no user) are not limited per user.
        for i in 0..3 {
            registry
                .add_client(client(&format!("x{i}"), ""), 0, 2)
                .unwrap();
        }
        assert_eq!(registry.client_count(), 5);
        assert_eq!(
            registry.add_client(client("6", "b"), 5, 0),
            Err(ConnectionLimit::Node)
        );
    }

    #[test]
    fn busiest_channels_are_the_top_n_by_subscribers_then_name() {
        let registry = Registry::new(Arc::new(Metrics::default()));
        let mut receivers = Vec::new();
        for i in 0..6 {
            let (client, rx) = ClientHandle::new(format!("c{i}"), String::new(), Format::Json, 8);
            receivers.push(rx);
            // Channel "n{k}" gets k subscribers; "m2" ties with "n2".
            for k in 1..=5 {
                if i < k {
                    registry.subscribe(&format!("n{k}"), &client, false);
                }
            }
            if i < 2 {
                registry.subscribe("m2", &client, false);
            }
        }
        let names = |v: Vec<(String, usize)>| {
            v.into_iter()
                .map(|(c, n)| format!("{c}={n}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(registry.busiest_channels(2)), ["n5=5", "n4=4"]);
        assert_eq!(
            names(registry.busiest_channels(10)),
            ["n5=5", "n4=4", "n3=3", "m2=2", "n2=2", "n1=1"]
        );
        assert!(registry.busiest_channels(0).is_empty());
    }

    /// The offsets queued for a client, emptying its queue.
    fn queued(queue: &mut Receiver) -> Vec<u64> {
        std::iter::from_fn(|| queue.try_recv())
            .map(|item| match item {
                Outgoing::Publication { offset, .. } => offset,
                other => panic!("queued {other:?}"),
            })
            .collect()
    }

    fn publication(offset: u64) -> Publication {
        Publication {
            data: crate::protocol::Payload::from_json_text(b"{}").unwrap(),
            info: None,
            offset,
        }
    }

    #[test]
    fn an_unsubscribe_removes_that_client_only_and_counts_once() {
        let metrics = Arc::new(Metrics::default());
        let registry = Registry::new(metrics.clone());
        let mut queues = Vec::new();
        let mut clients = Vec::new();
        for id in ["a", "b", "c", "d"] {
            let (client, queue) = ClientHandle::new(id.into(), String::new(), Format::Json, 8);
            registry.subscribe("room", &client, false);
            clients.push(client);
            queues.push(queue);
        }
        assert_eq!(metrics.subscriptions.get(), 4);
        registry.unsubscribe("room", "b");
        registry.unsubscribe("room", "b");
        registry.unsubscribe("room", "nobody");
        registry.unsubscribe("elsewhere", "a");
        assert_eq!(metrics.subscriptions.get(), 3);
        registry.deliver("room", &publication(1), "e");
        let got: Vec<Vec<u64>> = queues.iter_mut().map(queued).collect();
        assert_eq!(got, [vec![1], vec![], vec![1], vec![1]]);
        // The first one out: the last one took its place, and everyone still gets
        // each publication once.
        registry.unsubscribe("room", "a");
        registry.deliver("room", &publication(2), "e");
        let got: Vec<Vec<u64>> = queues.iter_mut().map(queued).collect();
        assert_eq!(got, [vec![], vec![], vec![2], vec![2]]);
        for id in ["c", "d"] {
            registry.unsubscribe("room", id);
        }
        assert_eq!(metrics.subscriptions.get(), 0);
        assert_eq!(registry.channel_count(), 0, "an empty channel is gone");
    }

    #[test]
    fn a_client_subscribed_twice_is_one_subscriber_with_the_newer_settings() {
        let metrics = Arc::new(Metrics::default());
        let registry = Registry::new(metrics.clone());
        let (client, mut queue) = ClientHandle::new("a".into(), String::new(), Format::Json, 8);
        let (other, mut other_queue) =
            ClientHandle::new("b".into(), String::new(), Format::Json, 8);
        registry.subscribe("room", &client, false);
        registry.subscribe("room", &other, false);
        registry.subscribe("room", &client, true);
        assert_eq!(metrics.subscriptions.get(), 2);
        registry.deliver("room", &publication(1), "e");
        assert_eq!(queued(&mut queue), [1], "one copy");
        assert_eq!(queued(&mut other_queue), [1]);
        // Now with join/leave: it hears of the other client's leave.
        let info = ClientInfo {
            user: String::new(),
            client: "b".into(),
            conn_info: None,
            chan_info: None,
        };
        registry.announce("room", &info, false);
        assert!(matches!(queue.try_recv(), Some(Outgoing::Push { .. })));
        registry.unsubscribe("room", "a");
        assert_eq!(metrics.subscriptions.get(), 1);
    }
}
