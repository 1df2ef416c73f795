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
//!
//! Here the run (configure, measure, report); a hub connection in `connection.rs`, the
//! subscribers in `subscriber.rs`, the publishers (WebSocket or HTTP API) in
//! `publisher.rs`.

mod codec;
mod connection;
mod publisher;
mod pusher;
mod subscriber;

use super::report::{self, CpuMeter, Errors, Latencies, Progress, Report};
use super::{
    at_least_one, check_url, ensure_fds, seconds, server_rss_kib, BenchError, CommonArgs,
    CONNECT_CONCURRENCY,
};
use codec::Protocol;
use duplex::{ClientBuilder, Config};
use publisher::{api_publisher, publisher, Api, Pace};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subscriber::subscriber;
use tokio::sync::Semaphore;

#[derive(clap::Args)]
pub struct HubArgs {
    /// The hub's WebSocket endpoint, e.g. ws://127.0.0.1:8080/connection/websocket;
    /// with several (nodes of one hub on Redis), subscribers are spread over them round
    /// robin and publishers use the first.
    #[arg(required = true, num_args = 1..)]
    urls: Vec<String>,
    /// Subscriber connections.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = at_least_one::<usize>)]
    subscribers: usize,
    /// Channels the subscribers are spread over (one channel each).
    #[arg(long, value_name = "C", default_value_t = 1, value_parser = at_least_one::<usize>)]
    channels: usize,
    /// Channel names are this prefix and a number; its namespace must let the
    /// connections subscribe and publish (the development mode's `chat:` does).
    #[arg(long, value_name = "PREFIX", default_value = "chat:bench-")]
    channel_prefix: String,
    /// Publisher connections (each publishes to its share of the channels).
    #[arg(long, value_name = "P", default_value_t = 1, value_parser = at_least_one::<usize>)]
    publishers: usize,
    /// Publications per second, in all.
    #[arg(long, value_name = "PUBS", default_value_t = 100, value_parser = at_least_one::<u32>)]
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
    #[arg(long, value_name = "TOTAL", conflicts_with = "duration", value_parser = at_least_one::<u64>)]
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

pub async fn run(args: HubArgs, threads: usize) -> Result<(), BenchError> {
    let plan = configure(&args)?;
    let measured = measure(&args, plan).await?;
    report(&args, threads, &measured).print(args.common.json);
    measured.verdict()
}

/// The checked settings of a run and the state its tasks share.
struct Plan {
    run: Arc<Run>,
    /// Publishing through the HTTP API (`--api-key`).
    api: Option<Arc<Api>>,
    duration: Duration,
    drain: Duration,
}

/// What publishing and delivering produced.
struct Measured {
    run: Arc<Run>,
    subscribed: u64,
    /// The time spent publishing.
    published: Duration,
    acked: u64,
    /// Deliveries the acknowledged publications owe every subscriber that subscribed
    /// (one that was disconnected meanwhile shows as lost deliveries).
    owed: u64,
    received: u64,
    generator_cpu: Option<f64>,
    server: report::ServerUse,
}

impl Measured {
    fn lost(&self) -> u64 {
        self.owed.saturating_sub(self.received)
    }

    /// The run's exit: an error, after the report, when nothing was acknowledged or a
    /// delivery went missing, came twice or out of order.
    fn verdict(&self) -> Result<(), BenchError> {
        if self.acked == 0 {
            return Err(BenchError::AllFailed(format!(
                "no publication was acknowledged: {}",
                self.run.errors.main_message()
            )));
        }
        let (duplicates, gaps) = (
            self.run.duplicates.load(Relaxed),
            self.run.gaps.load(Relaxed),
        );
        if self.lost() > 0 || duplicates > 0 || gaps > 0 {
            return Err(BenchError::AllFailed(format!(
                "{} deliveries lost, {duplicates} duplicated, {gaps} gaps",
                self.lost()
            )));
        }
        Ok(())
    }
}

/// Checks the command line and builds what the tasks share.
fn configure(args: &HubArgs) -> Result<Plan, BenchError> {
    for url in &args.urls {
        check_url(url)?;
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
    Ok(Plan {
        run,
        api,
        duration,
        drain,
    })
}

/// Subscribes, publishes, and drains; `Err` when no subscriber could subscribe.
async fn measure(args: &HubArgs, plan: Plan) -> Result<Measured, BenchError> {
    let (run, api, duration, drain) = (plan.run, plan.api, plan.duration, plan.drain);
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
    Ok(Measured {
        run,
        subscribed,
        published,
        acked,
        owed,
        received,
        generator_cpu: cpu.percent(),
        server,
    })
}

/// The results, for the table or the JSON object.
fn report(args: &HubArgs, threads: usize, m: &Measured) -> Report {
    let rate = |n: u64| n as f64 / m.published.as_secs_f64();
    let (duplicates, gaps) = (m.run.duplicates.load(Relaxed), m.run.gaps.load(Relaxed));
    let disconnects = m.run.disconnects.load(Relaxed);
    let via_api = args.api_key.is_some();
    let mut report = Report::new("hub", "duplex bench hub");
    report
        .field("subscribers", m.subscribed)
        .field("channels", args.channels)
        .field("publishers", args.publishers)
        .field("max_rate", args.max_rate)
        .field("protocol", args.protocol.name())
        .field(
            "publish_via",
            if via_api { "http-api" } else { "websocket" },
        )
        .field("seconds", report::round_to(m.published.as_secs_f64(), 3))
        .field("publications_acked", m.acked)
        .field("deliveries", m.received)
        .field("deliveries_owed", m.owed)
        .field(
            "deliveries_per_second",
            report::round_to(rate(m.received), 1),
        )
        .field("lost", m.lost())
        .field("duplicates", duplicates)
        .field("gaps", gaps)
        .field("order_checked", args.protocol.ordered())
        .field("disconnects", disconnects)
        .row(
            "subscribers",
            format!("{} on {} channels", m.subscribed, args.channels),
        )
        .row(
            "protocol, publishers",
            format!(
                "{}, {} via {}",
                args.protocol.name(),
                args.publishers,
                if via_api { "the HTTP API" } else { "WebSocket" }
            ),
        )
        .row(
            "publications acked",
            format!(
                "{} ({}/s)",
                report::group(m.acked),
                report::round(rate(m.acked))
            ),
        )
        .row(
            "deliveries",
            format!(
                "{} of {} owed ({}/s)",
                report::group(m.received),
                report::group(m.owed),
                report::round(rate(m.received))
            ),
        )
        .row(
            "lost / duplicated / gaps",
            format!(
                "{} / {duplicates} / {gaps}{}",
                m.lost(),
                if args.protocol.ordered() {
                    ""
                } else {
                    " (order not checked: numbered by the generator)"
                }
            ),
        )
        .row("disconnects", disconnects.to_string())
        .latency(
            "delivery_latency_us",
            "delivery latency (µs)",
            &m.run.delivery.summary(),
        )
        .latency("ack_latency_us", "ack latency (µs)", &m.run.ack.summary())
        .generator_cpu("cpu_percent", "generator CPU", m.generator_cpu, threads)
        .server(&m.server, args.server_pid)
        .errors(&m.run.errors);
    report
}
