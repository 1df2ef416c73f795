//! `duplex bench hub`: subscribers and publishers speaking the hub's protocol (the
//! Centrifugo client protocol, JSON) to `duplex serve`.
//!
//! `--subscribers` connections spread over `--channels` channels; one publisher
//! connection per `--publishers` publishes at `--rate` in all, round robin over the
//! channels, each publish acknowledged by the hub once stored. Every subscriber checks
//! that the offsets it receives follow each other exactly; the run counts the
//! deliveries that every acknowledged publication owes its subscribers, so a lost,
//! duplicated or reordered publication is reported, not guessed.

use super::report::{self, CpuMeter, Errors, Latencies, Progress};
use super::{check_url, ensure_fds, seconds, BenchError, CommonArgs, CONNECT_CONCURRENCY};
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
    /// Publish as fast as the hub acknowledges instead of at --rate (each publisher
    /// keeps up to 64 publishes unacknowledged).
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
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Publishes one publisher keeps awaiting their acknowledgement at most.
const IN_FLIGHT: usize = 64;

struct Run {
    /// One per endpoint.
    builders: Vec<ClientBuilder>,
    token: String,
    origin: Instant,
    /// Set when publishing has stopped and the drain is over: subscribers finish.
    done: tokio::sync::watch::Sender<bool>,
    /// Acknowledged publications per channel.
    acked: Vec<AtomicU64>,
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
    ensure_fds(
        (args.subscribers + args.publishers) as u64,
        &format!("--subscribers {}", args.subscribers),
    )?;
    // The hub pings in its protocol; the WebSocket layer need not.
    let config = Config {
        ping_interval: None,
        ..Config::default()
    };
    let run = Arc::new(Run {
        builders: args
            .urls
            .iter()
            .map(|url| args.common.builder(url, config.clone()))
            .collect(),
        token: args.token.clone(),
        origin: Instant::now(),
        done: tokio::sync::watch::Sender::new(false),
        acked: (0..args.channels).map(|_| AtomicU64::new(0)).collect(),
        delivered: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        gaps: AtomicU64::new(0),
        disconnects: AtomicU64::new(0),
        delivery: Latencies::new(),
        ack: Latencies::new(),
        errors: Errors::new(),
    });
    let channel = |i: usize| format!("{}{i}", args.channel_prefix);

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

    let cpu = CpuMeter::start();
    let started = Instant::now();
    progress.set_length(duration.as_millis() as u64, "publishing");
    // None: as fast as acknowledgements allow.
    let per_publisher = (!args.max_rate).then(|| f64::from(args.rate) / args.publishers as f64);
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
            let until = started + duration;
            tokio::spawn(publisher(run, channels, per_publisher, until, quota, pad))
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
    if args.common.json {
        report::print_json(&json!({
            "scenario": "hub",
            "subscribers": subscribed,
            "channels": args.channels,
            "publishers": args.publishers,
            "max_rate": args.max_rate,
            "seconds": report::round_to(published.as_secs_f64(), 3),
            "publications_acked": acked,
            "deliveries": received,
            "deliveries_owed": owed,
            "deliveries_per_second": report::round_to(rate(received), 1),
            "lost": lost,
            "duplicates": run.duplicates.load(Relaxed),
            "gaps": run.gaps.load(Relaxed),
            "disconnects": run.disconnects.load(Relaxed),
            "delivery_latency_us": delivery.json(),
            "ack_latency_us": ack.json(),
            "cpu_percent": cpu.percent().map(|p| report::round_to(p, 1)),
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
                    "{lost} / {} / {}",
                    run.duplicates.load(Relaxed),
                    run.gaps.load(Relaxed)
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
        run.errors.rows(&mut rows);
        report::print_table("duplex bench hub", &rows);
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
    let connect = json!({"id": 1, "connect": {"token": run.token, "name": "duplex-bench"}});
    send(&mut ws, &connect).await?;
    let reply = next_reply(&mut ws, 1).await?;
    if reply.get("connect").is_none() {
        return Err(format!("connect refused: {reply}"));
    }
    Ok(ws)
}

async fn send(ws: &mut WebSocket<ClientStream>, value: &Value) -> Result<(), String> {
    ws.send(Message::text(value.to_string()))
        .await
        .map_err(|e| e.to_string())
}

/// Reads until the reply to command `id`, answering the hub's pings.
async fn next_reply(ws: &mut WebSocket<ClientStream>, id: u64) -> Result<Value, String> {
    loop {
        let lines = read_lines(ws).await?;
        answer_pings(ws, &lines).await?;
        if let Some(line) = lines.lines.into_iter().find(|l| l["id"] == json!(id)) {
            return Ok(line);
        }
    }
}

/// The lines of one message from the hub (it batches replies and pushes, one JSON
/// object per line), and whether one was its ping (an empty object).
struct Lines {
    lines: Vec<Value>,
    pings: bool,
}

/// The hub disconnects a client that does not answer its pings.
async fn answer_pings(ws: &mut WebSocket<ClientStream>, lines: &Lines) -> Result<(), String> {
    if lines.pings {
        ws.send(Message::text("{}"))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Reads one message's lines. Cancel safe (it awaits only `recv`), so it can race a
/// timer in `select!` without losing what arrived.
async fn read_lines(ws: &mut WebSocket<ClientStream>) -> Result<Lines, String> {
    loop {
        let text = match ws.recv().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(frame))) => return Err(format!("closed by the hub: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection ended".into()),
        };
        let mut lines = Lines {
            lines: Vec::new(),
            pings: false,
        };
        for line in text.as_str().split('\n') {
            let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
            if value.as_object().is_some_and(|o| o.is_empty()) {
                lines.pings = true;
            } else {
                lines.lines.push(value);
            }
        }
        return Ok(lines);
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
    let opened = {
        let _permit = limit.acquire().await;
        async {
            let mut ws = open(&run, endpoint).await?;
            send(&mut ws, &json!({"id": 2, "subscribe": {"channel": name}})).await?;
            let reply = next_reply(&mut ws, 2).await?;
            let offset = reply["subscribe"]["offset"].as_u64().unwrap_or(0);
            if reply.get("subscribe").is_none() {
                return Err(format!("subscribe refused: {reply}"));
            }
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
    let _ = ready.send(());
    drop(ready);
    let mut latencies = run.delivery.batch();
    let mut done = run.done.subscribe();
    loop {
        let lines = tokio::select! {
            lines = read_lines(&mut ws) => lines,
            _ = done.wait_for(|d| *d) => return received,
        };
        let lines = match lines {
            Ok(lines) => lines,
            Err(e) => {
                run.disconnects.fetch_add(1, Relaxed);
                run.errors.record(e);
                return received;
            }
        };
        if let Err(e) = answer_pings(&mut ws, &lines).await {
            run.disconnects.fetch_add(1, Relaxed);
            run.errors.record(e);
            return received;
        }
        for line in lines.lines {
            let Some(publication) = line.get("push").and_then(|p| p.get("pub")) else {
                continue;
            };
            let offset = publication["offset"].as_u64().unwrap_or(0);
            if offset <= last {
                run.duplicates.fetch_add(1, Relaxed);
                continue;
            }
            if offset > last + 1 {
                run.gaps.fetch_add(1, Relaxed);
            }
            last = offset;
            received.count += 1;
            run.delivered.fetch_add(1, Relaxed);
            if let Some(sent) = publication["data"]["t"].as_u64() {
                let now = run.origin.elapsed().as_micros() as u64;
                latencies.record(Duration::from_micros(now.saturating_sub(sent)));
            }
        }
    }
}

/// Publishes to `channels` in turn at `rate` per second (None: as fast as the hub
/// acknowledges) until `until` or `quota` publications, keeping up to [`IN_FLIGHT`]
/// publishes unacknowledged; counts the acknowledged ones per channel.
async fn publisher(
    run: Arc<Run>,
    channels: Vec<(usize, String)>,
    rate: Option<f64>,
    until: Instant,
    quota: u64,
    pad: String,
) {
    let mut ws = match open(&run, 0).await {
        Ok(ws) => ws,
        Err(e) => return run.errors.record(format!("publisher: {e}")),
    };
    // Subscribing lets it publish where only subscribers may (`chat:`); its own
    // deliveries are not counted.
    for (i, (_, name)) in channels.iter().enumerate() {
        let id = 10 + i as u64;
        let subscribe = json!({"id": id, "subscribe": {"channel": name}});
        if let Err(e) = async {
            send(&mut ws, &subscribe).await?;
            next_reply(&mut ws, id).await
        }
        .await
        {
            return run.errors.record(format!("publisher: {e}"));
        }
    }
    let interval = rate.map_or(Duration::ZERO, |rate| Duration::from_secs_f64(1.0 / rate));
    let mut next = Instant::now();
    let mut id = 1_000_000u64;
    let mut pending: HashMap<u64, (usize, Instant)> = HashMap::new();
    let mut sent = 0u64;
    let mut acks = run.ack.batch();
    loop {
        let can_send = Instant::now() < until && sent < quota && pending.len() < IN_FLIGHT;
        if !can_send && pending.is_empty() {
            return;
        }
        let wait = next.saturating_duration_since(Instant::now());
        tokio::select! {
            () = tokio::time::sleep(wait), if can_send => {
                let (index, name) = &channels[(sent % channels.len() as u64) as usize];
                sent += 1;
                id += 1;
                let t = run.origin.elapsed().as_micros() as u64;
                let publish = json!({"id": id, "publish": {"channel": name, "data": {"t": t, "pad": pad}}});
                if let Err(e) = send(&mut ws, &publish).await {
                    return run.errors.record(format!("publisher: {e}"));
                }
                pending.insert(id, (*index, Instant::now()));
                next += interval;
            }
            lines = read_lines(&mut ws) => match lines {
                Ok(lines) => {
                    if let Err(e) = answer_pings(&mut ws, &lines).await {
                        return run.errors.record(format!("publisher: {e}"));
                    }
                    for line in lines.lines {
                    let Some(id) = line["id"].as_u64() else { continue };
                    let Some((index, sent)) = pending.remove(&id) else { continue };
                    if line.get("publish").is_some() {
                        run.acked[index].fetch_add(1, Relaxed);
                        acks.record(sent.elapsed());
                    } else {
                        run.errors.record(format!("publish refused: {line}"));
                    }
                    }
                }
                Err(e) => return run.errors.record(format!("publisher: {e}")),
            },
        }
    }
}
