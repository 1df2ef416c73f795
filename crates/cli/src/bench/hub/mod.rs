//! `duplex bench hub`: subscribers and publishers speaking the hub's protocol (the
//! Centrifugo client protocol, JSON or Protobuf: `codec.rs`) to `duplex serve`.
//!
//! `--subscribers` connections spread over `--channels` channels; `--publishers`
//! publishers (WebSocket connections, or HTTP API clients with `--api-key`) publish at
//! `--rate` in all, round robin over the channels, each publish acknowledged by the hub
//! once stored. Every subscriber checks
//! that the offsets it receives follow each other exactly; the run counts the
//! deliveries that every acknowledged publication owes its subscribers, so a lost,
//! duplicated or reordered publication is reported, not guessed. Against a Pusher server
//! (`--protocol pusher`, `pusher.rs`), which has no offsets, the generator numbers each
//! channel's publications itself and counts losses and duplicates, not order.

mod codec;
mod pusher;

use super::report::{self, CpuMeter, Errors, Latencies, Progress};
use super::{
    check_url, ensure_fds, seconds, server_rss_kib, BenchError, CommonArgs, CONNECT_CONCURRENCY,
};
use codec::{Event, Protocol};
use duplex::{ClientBuilder, ClientStream, Config, Message, WebSocket};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

#[derive(clap::Args)]
pub struct HubArgs {
    /// The hub's WebSocket endpoint, e.g. ws://127.0.0.1:8080/connection/websocket;
    /// with several (nodes of one hub on Redis), subscribers are spread over them round
    /// robin and publishers use the first.
    #[arg(required = true, num_args = 1..)]
    urls: Vec<String>,
    /// Subscriber connections.
    #[arg(long, value_name = "N", default_value_t = 100)]
    subscribers: usize,
    /// Channels the subscribers are spread over (one channel each).
    #[arg(long, value_name = "C", default_value_t = 1)]
    channels: usize,
    /// Channel names are this prefix and a number; its namespace must let the
    /// connections subscribe and publish (the development mode's `chat:` does).
    #[arg(long, value_name = "PREFIX", default_value = "chat:bench-")]
    channel_prefix: String,
    /// Publisher connections (each publishes to its share of the channels).
    #[arg(long, value_name = "P", default_value_t = 1)]
    publishers: usize,
    /// Publications per second, in all.
    #[arg(long, value_name = "PUBS", default_value_t = 100)]
    rate: u32,
    /// Publish as fast as the hub acknowledges and delivers instead of at --rate (each
    /// publisher keeps up to 64 publishes unacknowledged, and over WebSocket up to 64
    /// not yet delivered back to itself; all hold back while the subscribers are, on
    /// average, 64 deliveries behind).
    #[arg(long, conflicts_with = "rate")]
    max_rate: bool,
    /// Bytes of padding in each publication's data.
    #[arg(long, value_name = "BYTES", default_value_t = 16)]
    size: usize,
    /// Seconds of publishing.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many publications in all instead of after --duration.
    #[arg(long, value_name = "TOTAL", conflicts_with = "duration")]
    publications: Option<u64>,
    /// Seconds to wait for the last deliveries once publishing stopped.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    drain: f64,
    /// Connection token for every connection (empty: anonymous).
    #[arg(long, value_name = "JWT", default_value = "")]
    token: String,
    /// The protocol format every connection speaks.
    #[arg(long, value_enum, default_value_t = Protocol::Json)]
    protocol: Protocol,
    /// The server's PID: reports its RSS per connection once every subscriber is in
    /// (before publishing) and its CPU time while publishing (and draining), per delivery.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Publish through the hub's HTTP API (`POST /api/publish` on the first endpoint's
    /// host) with this key, as a backend does, instead of over WebSocket connections.
    /// With --protocol pusher: APP_ID:SECRET for the app's HTTP API.
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// How soon a publisher held back by slow subscribers looks again.
const HELD_BACK: Duration = Duration::from_millis(1);

/// Publishes one publisher keeps awaiting their acknowledgement at most.
const IN_FLIGHT: usize = 64;

struct Run {
    /// One per endpoint.
    builders: Vec<ClientBuilder>,
    protocol: Protocol,
    token: String,
    origin: Instant,
    /// Set when publishing has stopped and the drain is over: subscribers finish.
    done: tokio::sync::watch::Sender<bool>,
    /// Acknowledged publications per channel.
    acked: Vec<AtomicU64>,
    /// Subscribers per channel (counted as they subscribe).
    subscribers: Vec<AtomicU64>,
    /// Deliveries the acknowledged publications owe (their channels' subscribers).
    owed: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    gaps: AtomicU64,
    disconnects: AtomicU64,
    delivery: Latencies,
    ack: Latencies,
    errors: Errors,
}

/// What one subscriber received in its channel.
struct Received {
    channel: usize,
    /// Publications received after the subscribe, in order.
    count: u64,
    opened: bool,
}

pub async fn run(args: HubArgs, threads: usize) -> Result<(), BenchError> {
    for url in &args.urls {
        check_url(url)?;
    }
    if args.subscribers == 0 || args.channels == 0 || args.publishers == 0 || args.rate == 0 {
        return Err(BenchError::Usage(
            "--subscribers, --channels, --publishers and --rate must be at least 1".into(),
        ));
    }
    if args.publishers > args.channels {
        return Err(BenchError::Usage(
            "--publishers must be at most --channels (each publishes to its own channels)".into(),
        ));
    }
    let duration = match args.publications {
        // Bounded by the count; the time limit only guards against a stalled hub.
        Some(_) => Duration::from_secs(24 * 3600),
        None => seconds(args.duration, "--duration", false)?,
    };
    let drain = seconds(args.drain, "--drain", true)?;
    if args.protocol == Protocol::Pusher && args.api_key.is_none() {
        return Err(BenchError::Usage(
            "--protocol pusher publishes through the HTTP API: give --api-key APP_ID:SECRET".into(),
        ));
    }
    let api = match &args.api_key {
        Some(key) => Some(Arc::new(Api::new(args.protocol, &args.urls[0], key)?)),
        None => None,
    };
    ensure_fds(
        (args.subscribers + args.publishers) as u64,
        &format!("--subscribers {}", args.subscribers),
    )?;
    // The hub pings in its protocol; the WebSocket layer need not.
    let config = Config::default().ping_interval(None);
    let run = Arc::new(Run {
        builders: args
            .urls
            .iter()
            .map(|url| {
                let builder = args.common.builder(&args.protocol.url(url), config.clone());
                match args.protocol.subprotocol() {
                    Some(p) => builder.protocol(p),
                    None => builder,
                }
            })
            .collect(),
        protocol: args.protocol,
        token: args.token.clone(),
        origin: Instant::now(),
        done: tokio::sync::watch::Sender::new(false),
        acked: (0..args.channels).map(|_| AtomicU64::new(0)).collect(),
        subscribers: (0..args.channels).map(|_| AtomicU64::new(0)).collect(),
        owed: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        gaps: AtomicU64::new(0),
        disconnects: AtomicU64::new(0),
        delivery: Latencies::new(),
        ack: Latencies::new(),
        errors: Errors::new(),
    });
    let channel = |i: usize| format!("{}{i}", args.channel_prefix);
    let rss_before = args.server_pid.map(server_rss_kib).transpose()?;

    // Subscribers first, all subscribed before the first publish.
    let progress = Progress::new(
        args.common.progress(),
        args.subscribers as u64,
        "subscribing",
    );
    let limit = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let subscribers: Vec<_> = (0..args.subscribers)
        .map(|i| {
            let (run, limit, ready) = (run.clone(), limit.clone(), ready_tx.clone());
            let index = i % args.channels;
            let name = channel(index);
            tokio::spawn(async move { subscriber(run, limit, i, index, name, ready).await })
        })
        .collect();
    drop(ready_tx);
    let mut ready = 0u64;
    while ready_rx.recv().await.is_some() {
        ready += 1;
        progress.update(ready, format!("{ready} subscribed"));
    }
    let subscribed = ready;
    if subscribed == 0 {
        return Err(BenchError::NoConnection(format!(
            "no subscriber could subscribe: {}",
            run.errors.main_message()
        )));
    }

    // Every subscriber (and no publisher yet) is connected: the server's memory now is
    // what idle subscribed connections cost.
    let rss_subscribed = args.server_pid.map(server_rss_kib).transpose()?;
    let server_cpu = args.server_pid.map(CpuMeter::of_process);
    let cpu = CpuMeter::start();
    let started = Instant::now();
    progress.set_length(duration.as_millis() as u64, "publishing");
    // Zero: as fast as acknowledgements allow.
    let interval = if args.max_rate {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(args.publishers as f64 / f64::from(args.rate))
    };
    let publishers: Vec<_> = (0..args.publishers)
        .map(|p| {
            let channels: Vec<(usize, String)> = (p..args.channels)
                .step_by(args.publishers)
                .map(|i| (i, channel(i)))
                .collect();
            let run = run.clone();
            let pad = "x".repeat(args.size);
            // Each publisher's share of --publications (the first ones take the rest).
            let quota = args.publications.map_or(u64::MAX, |total| {
                let (p, n) = (p as u64, args.publishers as u64);
                total / n + u64::from(p < total % n)
            });
            let pace = Pace::new(interval, started + duration, quota);
            match &api {
                Some(api) => tokio::spawn(api_publisher(run, api.clone(), channels, pace, pad)),
                None => tokio::spawn(publisher(run, channels, pace, pad)),
            }
        })
        .collect();
    let mut tick = tokio::time::interval(report::TICK);
    let mut publishers = futures_util::future::join_all(publishers);
    loop {
        tokio::select! {
            _ = &mut publishers => break,
            _ = tick.tick() => progress.update(
                started.elapsed().as_millis() as u64,
                format!("{} delivered", report::group(run.delivered.load(Relaxed))),
            ),
        }
    }
    let published = started.elapsed();
    tokio::time::sleep(drain).await;
    run.done.send_replace(true);
    let mut owed = 0u64;
    let mut received = 0u64;
    for s in subscribers {
        if let Ok(r) = s.await {
            if r.opened {
                owed += run.acked[r.channel].load(Relaxed);
                received += r.count;
            }
        }
    }
    progress.clear();
    let acked: u64 = run.acked.iter().map(|a| a.load(Relaxed)).sum();
    let lost = owed.saturating_sub(received);
    let delivery = run.delivery.summary();
    let ack = run.ack.summary();
    let rate = |n: u64| n as f64 / published.as_secs_f64();
    let server = report::ServerUse {
        rss_before,
        rss_subscribed,
        connections: subscribed,
        cpu_seconds: server_cpu.as_ref().and_then(CpuMeter::seconds),
        // Over the publishing time: the drain after it is mostly idle.
        cpu_percent: server_cpu
            .as_ref()
            .and_then(CpuMeter::seconds)
            .map(|s| s / published.as_secs_f64() * 100.0),
        deliveries: received,
    };
    if args.common.json {
        report::print_json(&json!({
            "scenario": "hub",
            "subscribers": subscribed,
            "channels": args.channels,
            "publishers": args.publishers,
            "max_rate": args.max_rate,
            "protocol": args.protocol.name(),
            "publish_via": if args.api_key.is_some() { "http-api" } else { "websocket" },
            "seconds": report::round_to(published.as_secs_f64(), 3),
            "publications_acked": acked,
            "deliveries": received,
            "deliveries_owed": owed,
            "deliveries_per_second": report::round_to(rate(received), 1),
            "lost": lost,
            "duplicates": run.duplicates.load(Relaxed),
            "gaps": run.gaps.load(Relaxed),
            "order_checked": args.protocol.ordered(),
            "disconnects": run.disconnects.load(Relaxed),
            "delivery_latency_us": delivery.json(),
            "ack_latency_us": ack.json(),
            "cpu_percent": cpu.percent().map(|p| report::round_to(p, 1)),
            "server": server.json(args.server_pid),
            "errors": run.errors.count(),
            "error_messages": run.errors.json(),
        }));
    } else {
        let mut rows = vec![
            (
                "subscribers".into(),
                format!("{subscribed} on {} channels", args.channels),
            ),
            (
                "protocol, publishers".into(),
                format!(
                    "{}, {} via {}",
                    args.protocol.name(),
                    args.publishers,
                    if args.api_key.is_some() {
                        "the HTTP API"
                    } else {
                        "WebSocket"
                    }
                ),
            ),
            (
                "publications acked".into(),
                format!(
                    "{} ({}/s)",
                    report::group(acked),
                    report::round(rate(acked))
                ),
            ),
            (
                "deliveries".into(),
                format!(
                    "{} of {} owed ({}/s)",
                    report::group(received),
                    report::group(owed),
                    report::round(rate(received))
                ),
            ),
            (
                "lost / duplicated / gaps".into(),
                format!(
                    "{lost} / {} / {}{}",
                    run.duplicates.load(Relaxed),
                    run.gaps.load(Relaxed),
                    if args.protocol.ordered() {
                        ""
                    } else {
                        " (order not checked: numbered by the generator)"
                    }
                ),
            ),
            (
                "disconnects".into(),
                run.disconnects.load(Relaxed).to_string(),
            ),
            ("delivery latency (µs)".into(), delivery.row()),
            ("ack latency (µs)".into(), ack.row()),
            (
                "generator CPU".into(),
                report::cpu_row(cpu.percent(), threads),
            ),
        ];
        server.rows(&mut rows);
        run.errors.rows(&mut rows);
        report::print_table("duplex bench hub", &rows);
    }
    if acked == 0 {
        return Err(BenchError::AllFailed(format!(
            "no publication was acknowledged: {}",
            run.errors.main_message()
        )));
    }
    if lost > 0 || run.duplicates.load(Relaxed) > 0 || run.gaps.load(Relaxed) > 0 {
        return Err(BenchError::AllFailed(format!(
            "{lost} deliveries lost, {} duplicated, {} gaps",
            run.duplicates.load(Relaxed),
            run.gaps.load(Relaxed)
        )));
    }
    Ok(())
}

/// Opens a connection to endpoint `endpoint` (round robin) and sends `connect`; the
/// socket once the hub accepted it.
async fn open(run: &Run, endpoint: usize) -> Result<WebSocket<ClientStream>, String> {
    let (mut ws, _) = run.builders[endpoint % run.builders.len()]
        .clone()
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    if let Some(connect) = run.protocol.connect(&run.token) {
        send(&mut ws, connect).await?;
    }
    next_reply(run.protocol, &mut ws, 1)
        .await?
        .map_err(|e| format!("connect refused: {e}"))?;
    Ok(ws)
}

async fn send(ws: &mut WebSocket<ClientStream>, message: Message) -> Result<(), String> {
    ws.send(message).await.map_err(|e| e.to_string())
}

/// Reads until the reply to command `id` (the stream's top offset for a subscribe, or
/// the hub's refusal), answering the hub's pings.
async fn next_reply(
    protocol: Protocol,
    ws: &mut WebSocket<ClientStream>,
    id: u32,
) -> Result<Result<u64, String>, String> {
    loop {
        let events = read_events(protocol, ws).await?;
        answer_pings(protocol, ws, &events).await?;
        for event in events {
            if let Event::Reply { id: got, outcome } = event {
                if got == id {
                    return Ok(outcome);
                }
            }
        }
    }
}

/// The hub disconnects a client that does not answer its pings.
async fn answer_pings(
    protocol: Protocol,
    ws: &mut WebSocket<ClientStream>,
    events: &[Event],
) -> Result<(), String> {
    if events.contains(&Event::Ping) {
        send(ws, protocol.pong()).await?;
    }
    Ok(())
}

/// Reads one message's events. Cancel safe (it awaits only `recv`), so it can race a
/// timer in `select!` without losing what arrived.
async fn read_events(
    protocol: Protocol,
    ws: &mut WebSocket<ClientStream>,
) -> Result<Vec<Event>, String> {
    loop {
        return match ws.recv().await {
            Some(Ok(Message::Text(t))) => protocol.decode(t.as_str().as_bytes()),
            Some(Ok(Message::Binary(b))) => protocol.decode(&b),
            Some(Ok(Message::Close(frame))) => Err(format!("closed by the hub: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => Err(e.to_string()),
            None => Err("connection ended".into()),
        };
    }
}

async fn subscriber(
    run: Arc<Run>,
    limit: Arc<Semaphore>,
    endpoint: usize,
    channel: usize,
    name: String,
    ready: tokio::sync::mpsc::UnboundedSender<()>,
) -> Received {
    let mut received = Received {
        channel,
        count: 0,
        opened: false,
    };
    let protocol = run.protocol;
    let opened = {
        let _permit = limit.acquire().await;
        async {
            let mut ws = open(&run, endpoint).await?;
            send(&mut ws, protocol.subscribe(2, &name)).await?;
            let offset = next_reply(protocol, &mut ws, 2)
                .await?
                .map_err(|e| format!("subscribe refused: {e}"))?;
            Ok::<_, String>((ws, offset))
        }
        .await
    };
    let (mut ws, mut last) = match opened {
        Ok(pair) => pair,
        Err(e) => {
            run.errors.record(e);
            return received;
        }
    };
    received.opened = true;
    // Without server offsets (Pusher): the publications' own numbers, in any order.
    let mut window = (!protocol.ordered()).then(pusher::Window::default);
    run.subscribers[channel].fetch_add(1, Relaxed);
    let _ = ready.send(());
    drop(ready);
    let mut latencies = run.delivery.batch();
    let mut done = run.done.subscribe();
    loop {
        let events = tokio::select! {
            events = read_events(protocol, &mut ws) => events,
            _ = done.wait_for(|d| *d) => return received,
        };
        let read = match events {
            Ok(events) => answer_pings(protocol, &mut ws, &events)
                .await
                .map(|()| events),
            Err(e) => Err(e),
        };
        let events = match read {
            Ok(events) => events,
            Err(e) => {
                run.disconnects.fetch_add(1, Relaxed);
                run.errors.record(e);
                return received;
            }
        };
        for event in events {
            let Event::Publication { offset, sent_us } = event else {
                continue;
            };
            if let Some(window) = &mut window {
                match window.receive(offset) {
                    pusher::Arrival::New => {}
                    pusher::Arrival::Duplicate => {
                        run.duplicates.fetch_add(1, Relaxed);
                        continue;
                    }
                    pusher::Arrival::NewPastGaps(n) => {
                        run.gaps.fetch_add(n, Relaxed);
                    }
                }
            } else {
                if offset <= last {
                    run.duplicates.fetch_add(1, Relaxed);
                    continue;
                }
                if offset > last + 1 {
                    run.gaps.fetch_add(1, Relaxed);
                }
                last = offset;
            }
            received.count += 1;
            run.delivered.fetch_add(1, Relaxed);
            if let Some(sent) = sent_us {
                let now = run.origin.elapsed().as_micros() as u64;
                latencies.record(Duration::from_micros(now.saturating_sub(sent)));
            }
        }
    }
}

/// How one publisher paces itself and when it stops, and where it is.
struct Pace {
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
    fn new(interval: Duration, until: Instant, quota: u64) -> Pace {
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
async fn pace_until(wait: Duration) {
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

/// The data of a generator publication: its send time (µs since the run's origin) and
/// the padding.
fn publication_data(run: &Run, pad: &str) -> Value {
    json!({"t": run.origin.elapsed().as_micros() as u64, "pad": pad})
}

/// Publishes to `channels` in turn over a WebSocket connection, keeping up to
/// [`IN_FLIGHT`] publishes unacknowledged; counts the acknowledged ones per channel.
async fn publisher(run: Arc<Run>, channels: Vec<(usize, String)>, mut pace: Pace, pad: String) {
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
async fn api_publisher(
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
pub struct Api {
    client: duplex_hub::backend::HttpClient,
    uri: http::Uri,
    headers: http::HeaderMap,
    /// Set for a Pusher app: requests are signed, a `200` is the acknowledgement.
    pusher: Option<pusher::App>,
}

impl Api {
    fn new(protocol: Protocol, url: &str, key: &str) -> Result<Api, BenchError> {
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
