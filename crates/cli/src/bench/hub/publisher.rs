//! Publishers: over WebSocket connections or through the HTTP API, paced at the rate
//! asked (or as fast as acknowledgements allow), each acknowledged publication counted
//! with the deliveries it owes.

use super::codec::{Event, Protocol};
use super::connection::{answer_pings, next_reply, open, read_events, send};
use super::{pusher, BenchError, Run, HELD_BACK, IN_FLIGHT};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How one publisher paces itself and when it stops, and where it is.
pub(super) struct Pace {
    /// Time between publishes (zero: as fast as acknowledgements allow).
    interval: Duration,
    until: Instant,
    quota: u64,
    /// When the next publish is due.
    next: Instant,
    /// Publishes sent so far.
    sent: u64,
}

impl Pace {
    pub(super) fn new(interval: Duration, until: Instant, quota: u64) -> Pace {
        Pace {
            interval,
            until,
            quota,
            next: Instant::now(),
            sent: 0,
        }
    }

    /// Whether there is time and quota left to publish.
    fn more(&self) -> bool {
        Instant::now() < self.until && self.sent < self.quota
    }

    /// The wait until the next publish is due.
    fn wait(&self) -> Duration {
        self.next.saturating_duration_since(Instant::now())
    }

    /// The channel of the next publish (round robin), counting it as sent.
    fn take<'a>(&mut self, channels: &'a [(usize, String)]) -> &'a (usize, String) {
        let channel = &channels[(self.sent % channels.len() as u64) as usize];
        self.sent += 1;
        self.next += self.interval;
        channel
    }
}

impl Run {
    /// Counts publication to channel `index` as acknowledged.
    fn acknowledged(&self, index: usize) {
        self.acked[index].fetch_add(1, Relaxed);
        self.owed
            .fetch_add(self.subscribers[index].load(Relaxed), Relaxed);
    }

    /// Whether the subscribers have kept up: fewer than [`IN_FLIGHT`] deliveries per
    /// subscriber are owed and not yet received. At `--max-rate` this keeps the hub's
    /// per-connection queues from filling when the generator reads more slowly than the
    /// hub sends (it would end them as slow consumers, 3008).
    fn subscribers_keep_up(&self) -> bool {
        let subscribers: u64 = self.subscribers.iter().map(|s| s.load(Relaxed)).sum();
        let behind = self
            .owed
            .load(Relaxed)
            .saturating_sub(self.delivered.load(Relaxed));
        behind < IN_FLIGHT as u64 * subscribers.max(1)
    }
}

/// Waits `wait`; at once when it is zero (a zero-length `sleep` still waits for the
/// timer wheel's next millisecond tick, which would cap `--max-rate` at about 1,000
/// publishes a second).
pub(super) async fn pace_until(wait: Duration) {
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

/// The data of a generator publication: its send time (µs since the run's origin) and
/// the padding.
pub(super) fn publication_data(run: &Run, pad: &str) -> Value {
    json!({"t": run.origin.elapsed().as_micros() as u64, "pad": pad})
}

/// Publishes to `channels` in turn over a WebSocket connection, keeping up to
/// [`IN_FLIGHT`] publishes unacknowledged; counts the acknowledged ones per channel.
pub(super) async fn publisher(
    run: Arc<Run>,
    channels: Vec<(usize, String)>,
    mut pace: Pace,
    pad: String,
) {
    let protocol = run.protocol;
    let mut ws = match open(&run, 0).await {
        Ok(ws) => ws,
        Err(e) => return run.errors.record(format!("publisher: {e}")),
    };
    // Subscribing lets it publish where only subscribers may (`chat:`); its own
    // deliveries are not counted.
    for (i, (_, name)) in channels.iter().enumerate() {
        let id = 10 + i as u32;
        let subscribed = async {
            send(&mut ws, protocol.subscribe(id, name)).await?;
            next_reply(protocol, &mut ws, id).await?
        };
        if let Err(e) = subscribed.await {
            return run.errors.record(format!("publisher: {e}"));
        }
    }
    // The schedule starts once its subscriptions are in.
    pace.next = Instant::now();
    let mut id = 1_000_000u32;
    let mut pending: HashMap<u32, (usize, Instant)> = HashMap::new();
    // Its own publications that came back to it (it is subscribed to its channels):
    // at most IN_FLIGHT may be on their way, so that at --max-rate the publisher goes
    // at the pace of fan-out, not only of storage (acks come before deliveries).
    let mut returned = 0u64;
    let mut acks = run.ack.batch();
    loop {
        let more = pace.more();
        let can_send = more
            && pending.len() < IN_FLIGHT
            && pace.sent - returned < IN_FLIGHT as u64
            && run.subscribers_keep_up();
        if !more && pending.is_empty() {
            return;
        }
        tokio::select! {
            () = pace_until(pace.wait()), if can_send => {
                let (index, name) = pace.take(&channels);
                id += 1;
                let publish = protocol.publish(id, name, &publication_data(&run, &pad));
                if let Err(e) = send(&mut ws, publish).await {
                    return run.errors.record(format!("publisher: {e}"));
                }
                pending.insert(id, (*index, Instant::now()));
            }
            // Held back by the subscribers (nothing else may wake it): look again soon.
            () = tokio::time::sleep(HELD_BACK), if more && !can_send => {}
            events = read_events(protocol, &mut ws) => {
                let events = match events {
                    Ok(events) => events,
                    Err(e) => return run.errors.record(format!("publisher: {e}")),
                };
                if let Err(e) = answer_pings(protocol, &mut ws, &events).await {
                    return run.errors.record(format!("publisher: {e}"));
                }
                for event in events {
                    let (id, outcome) = match event {
                        Event::Reply { id, outcome } => (id, outcome),
                        Event::Publication { .. } => {
                            returned = (returned + 1).min(pace.sent);
                            continue;
                        }
                        _ => continue,
                    };
                    let Some((index, sent)) = pending.remove(&id) else { continue };
                    match outcome {
                        Ok(_) => {
                            run.acknowledged(index);
                            acks.record(sent.elapsed());
                        }
                        Err(e) => run.errors.record(format!("publish refused: {e}")),
                    }
                }
            }
        }
    }
}

/// Publishes to `channels` in turn through the hub's HTTP API (`POST /api/publish`),
/// keeping up to [`IN_FLIGHT`] requests open (a connection each, kept alive); counts the
/// acknowledged (stored) ones per channel.
pub(super) async fn api_publisher(
    run: Arc<Run>,
    api: Arc<Api>,
    channels: Vec<(usize, String)>,
    mut pace: Pace,
    pad: String,
) {
    let mut pending = futures_util::stream::FuturesUnordered::new();
    let mut acks = run.ack.batch();
    // Each channel's publications numbered from 1 (Pusher's stand-in for offsets).
    let mut numbers: HashMap<usize, u64> = HashMap::new();
    loop {
        let more = pace.more();
        let can_send = more && pending.len() < IN_FLIGHT && run.subscribers_keep_up();
        if !more && pending.is_empty() {
            return;
        }
        tokio::select! {
            () = pace_until(pace.wait()), if can_send => {
                let (index, name) = pace.take(&channels);
                let mut data = publication_data(&run, &pad);
                if !run.protocol.ordered() {
                    let n = numbers.entry(*index).or_default();
                    *n += 1;
                    data["n"] = json!(*n);
                }
                let body = api.body(name, &data);
                let (api, index) = (api.clone(), *index);
                pending.push(async move {
                    let started = Instant::now();
                    (index, started, api.publish(body).await)
                });
            }
            () = tokio::time::sleep(HELD_BACK), if more && !can_send => {}
            Some((index, started, outcome)) = futures_util::StreamExt::next(&mut pending), if !pending.is_empty() => {
                match outcome {
                    Ok(()) => {
                        run.acknowledged(index);
                        acks.record(started.elapsed());
                    }
                    Err(e) => run.errors.record(format!("API publish: {e}")),
                }
            }
        }
    }
}

/// The hub's HTTP API, for publishers that publish like a backend (or a Pusher app's).
pub(super) struct Api {
    client: duplex_hub::backend::HttpClient,
    uri: http::Uri,
    headers: http::HeaderMap,
    /// Set for a Pusher app: requests are signed, a `200` is the acknowledgement.
    pusher: Option<pusher::App>,
}

impl Api {
    pub(super) fn new(protocol: Protocol, url: &str, key: &str) -> Result<Api, BenchError> {
        let client = duplex_hub::backend::HttpClient::new(Duration::from_secs(10));
        if protocol == Protocol::Pusher {
            let app = pusher::App::new(url, key).map_err(BenchError::Usage)?;
            return Ok(Api {
                client,
                uri: app.uri.clone(),
                headers: http::HeaderMap::new(),
                pusher: Some(app),
            });
        }
        let uri = crate::publish::endpoint(url).map_err(|e| BenchError::Usage(e.to_string()))?;
        let mut headers = http::HeaderMap::new();
        let key = http::HeaderValue::from_str(key)
            .map_err(|_| BenchError::Usage("--api-key is not a valid header value".into()))?;
        headers.insert("x-api-key", key);
        Ok(Api {
            client,
            uri,
            headers,
            pusher: None,
        })
    }

    /// The request body publishing `data` to `channel`.
    fn body(&self, channel: &str, data: &Value) -> String {
        match self.pusher {
            Some(_) => pusher::App::body(channel, data),
            None => json!({"channel": channel, "data": data}).to_string(),
        }
    }

    /// Publishes; Ok once the hub answered with the stored offset (a Pusher app: once
    /// it answered 200).
    async fn publish(&self, body: String) -> Result<(), String> {
        if let Some(app) = &self.pusher {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let path = app.signed_path(&body, now);
            let mut parts = self.uri.clone().into_parts();
            parts.path_and_query = Some(path.parse().map_err(|e| format!("{path}: {e}"))?);
            let uri = http::Uri::from_parts(parts).map_err(|e| e.to_string())?;
            return self
                .client
                .post(&uri, &self.headers, body.into_bytes())
                .await
                .map(drop)
                .map_err(|e| e.to_string());
        }
        let answer = self
            .client
            .post(&self.uri, &self.headers, body.into_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let answer: Value =
            serde_json::from_slice(&answer).map_err(|e| format!("answer is not JSON: {e}"))?;
        match answer["result"]["offset"].as_u64() {
            Some(_) => Ok(()),
            None => Err(format!("not stored: {}", answer["error"])),
        }
    }
}
