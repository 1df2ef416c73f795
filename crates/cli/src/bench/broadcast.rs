//! `duplex bench broadcast`: one publisher, many subscribers, against a server that
//! relays every message to its other connections (`duplex echo --broadcast`).
//!
//! The publisher sends `--rate` messages per second, each stamped with a sequence number
//! and its send time; every subscriber measures the delay of each delivery and counts the
//! messages it never got. The run reports publish and delivery rates, delivery latency
//! and losses.

use super::report::{self, CpuMeter, Errors, Latencies, Progress, Report};
use super::{at_least_one, check_url, ensure_fds, seconds, server_rss_kib, BenchError, CommonArgs};
use super::{CONNECT_CONCURRENCY, MEASURING, STOPPING, WARMUP};
use duplex::{ClientBuilder, ClientStream, Config, Message, WebSocket};
use futures_util::StreamExt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};

#[derive(clap::Args)]
pub struct BroadcastArgs {
    /// The relay server, e.g. ws://127.0.0.1:9001/ (`duplex echo --broadcast`).
    url: String,
    /// Subscriber connections (the publisher is one more).
    #[arg(long, short = 'c', value_name = "N", default_value_t = 100, value_parser = at_least_one::<usize>)]
    subscribers: usize,
    /// Messages the publisher sends per second.
    #[arg(long, value_name = "MSGS", default_value_t = 1000, value_parser = at_least_one::<u32>)]
    rate: u32,
    /// Payload bytes per message (at least 32: the stamp).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    size: usize,
    /// Seconds to measure, after the warm-up.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    duration: f64,
    /// Stop after publishing this many measured messages instead of after --duration.
    #[arg(long, value_name = "TOTAL", conflicts_with = "duration", value_parser = at_least_one::<u64>)]
    messages: Option<u64>,
    /// Seconds of traffic before measuring starts.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    warmup: f64,
    /// Seconds subscribers wait for the last messages once publishing stopped.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    drain: f64,
    /// The server's PID: reports its RSS per subscriber once they are in and its CPU
    /// time over the measured publishing (and the drain), per delivery.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The stamp at the start of each payload: sequence number and send time (µs since the
/// run's origin), each as 16 hex digits, so text messages stay ASCII.
const STAMP: usize = 32;

struct Run {
    builder: ClientBuilder,
    origin: Instant,
    size: usize,
    phase: AtomicU8,
    /// Sequence numbers below this were sent during the warm-up; from it on they count.
    first_counted: AtomicU64,
    /// One past the last sequence number sent.
    end: AtomicU64,
    /// Deliveries counted (measured messages), for the progress bar.
    delivered: AtomicU64,
    latencies: Latencies,
    errors: Errors,
}

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    delivered: u64,
    missed: u64,
    opened: bool,
}

pub async fn run(args: BroadcastArgs, threads: usize) -> Result<(), BenchError> {
    let plan = configure(&args)?;
    let measured = measure(&args, plan).await?;
    report(&args, threads, &measured).print(args.common.json);
    measured.verdict()
}

/// The checked settings of a run and the state its tasks share.
struct Plan {
    run: Arc<Run>,
    duration: Duration,
    warmup: Duration,
    drain: Duration,
}

/// What publishing and delivering produced.
struct Measured {
    run: Arc<Run>,
    warmup: Duration,
    subscribed: usize,
    /// Messages published while measuring.
    published: u64,
    delivered: u64,
    missed: u64,
    elapsed: Duration,
    cpu_percent: Option<f64>,
    server: report::ServerUse,
}

impl Measured {
    /// The run's exit: an error, after the report, when nothing was delivered.
    fn verdict(&self) -> Result<(), BenchError> {
        if self.delivered == 0 {
            return Err(BenchError::AllFailed(format!(
                "no message reached a subscriber: {}",
                self.run.errors.main_message()
            )));
        }
        Ok(())
    }
}

/// Checks the command line and builds what the tasks share.
fn configure(args: &BroadcastArgs) -> Result<Plan, BenchError> {
    check_url(&args.url)?;
    if args.size < STAMP {
        return Err(BenchError::Usage(format!(
            "--size {} is too small: each message carries a {STAMP}-byte stamp",
            args.size
        )));
    }
    let duration = seconds(args.duration, "--duration", false)?;
    let warmup = seconds(args.warmup, "--warmup", true)?;
    let drain = seconds(args.drain, "--drain", true)?;
    let n = args.subscribers;
    ensure_fds(n as u64 + 1, &format!("--subscribers {n}"))?;
    if let Some(pid) = args.server_pid {
        server_rss_kib(pid)?;
    }

    let mut config = Config::default();
    config.limits.max_frame_size = config.limits.max_frame_size.max(args.size);
    config.limits.max_message_size = config.limits.max_message_size.max(args.size);
    let run = Arc::new(Run {
        builder: args.common.builder(&args.url, config),
        origin: Instant::now(),
        size: args.size,
        phase: AtomicU8::new(WARMUP),
        first_counted: AtomicU64::new(u64::MAX),
        end: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        latencies: Latencies::new(),
        errors: Errors::new(),
    });
    Ok(Plan {
        run,
        duration,
        warmup,
        drain,
    })
}

/// Subscribes, publishes (warm-up, then measured), and drains; `Err` when the
/// subscribers or the publisher could not start.
async fn measure(args: &BroadcastArgs, plan: Plan) -> Result<Measured, BenchError> {
    let (run, duration, warmup, drain) = (plan.run, plan.duration, plan.warmup, plan.drain);
    let n = args.subscribers;
    let rss_before = args.server_pid.map(server_rss_kib).transpose()?;

    // Subscribers first, so none misses the start.
    let progress = Progress::new(args.common.progress(), n as u64, "connecting");
    let limit = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel();
    let (stop, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            tokio::spawn(subscriber(
                run.clone(),
                limit.clone(),
                opened_tx.clone(),
                stop_rx.clone(),
                drain,
            ))
        })
        .collect();
    drop(opened_tx);
    let mut opened = 0usize;
    let mut reported = 0usize;
    while let Some(ok) = opened_rx.recv().await {
        reported += 1;
        opened += usize::from(ok);
        progress.update(reported as u64, format!("{opened}/{n} subscribed"));
    }
    let publisher = match run.builder.clone().connect().await {
        Ok((ws, _)) => ws,
        Err(e) => {
            let _ = stop.send(true);
            progress.clear();
            return Err(BenchError::NoConnection(format!(
                "the publisher cannot connect to {}: {e}",
                args.url
            )));
        }
    };
    if opened == 0 {
        let _ = stop.send(true);
        progress.clear();
        return Err(BenchError::NoConnection(format!(
            "all {n} subscribers failed to connect to {}: {}",
            args.url,
            run.errors.main_message()
        )));
    }

    let rss_subscribed = args.server_pid.map(server_rss_kib).transpose()?;

    // Publish: warm-up, then the measured part.
    let payload_tail: String = "0123456789abcdefghijklmnopqrstuvwxyz"
        .chars()
        .cycle()
        .take(args.size - STAMP)
        .collect();
    let published = publish(
        &run,
        publisher,
        &payload_tail,
        args.rate,
        warmup,
        (duration, args.messages),
        (&progress, args.server_pid),
    )
    .await;
    let (sent_measured, elapsed, cpu_percent, server_cpu) = match published {
        Ok(p) => p,
        Err(e) => {
            let _ = stop.send(true);
            progress.clear();
            return Err(BenchError::AllFailed(format!("the publisher failed: {e}")));
        }
    };
    let _ = stop.send(true);
    progress.set_length(opened as u64, "draining");

    let mut delivered = 0u64;
    let mut missed = 0u64;
    for task in tasks {
        match task.await {
            Ok(seen) if seen.opened => {
                delivered += seen.delivered;
                missed += seen.missed;
            }
            Ok(_) => {}
            Err(e) => run.errors.record(format!("subscriber task failed: {e}")),
        }
    }
    progress.clear();

    let secs = elapsed.as_secs_f64();
    let server = report::ServerUse {
        rss_before,
        rss_subscribed,
        connections: opened as u64,
        cpu_seconds: server_cpu.as_ref().and_then(CpuMeter::seconds),
        // Over the measured publishing: the drain after it is mostly idle.
        cpu_percent: server_cpu
            .as_ref()
            .and_then(CpuMeter::seconds)
            .map(|s| s / secs * 100.0),
        deliveries: delivered,
    };
    Ok(Measured {
        run,
        warmup,
        subscribed: opened,
        published: sent_measured,
        delivered,
        missed,
        elapsed,
        cpu_percent,
        server,
    })
}

/// The results, for the table or the JSON object.
fn report(args: &BroadcastArgs, threads: usize, m: &Measured) -> Report {
    let secs = m.elapsed.as_secs_f64();
    let expected = m.published * m.subscribed as u64;
    let mut report = Report::new("broadcast", format!("duplex bench broadcast {}", args.url));
    report
        .field("url", args.url.as_str())
        .field("subscribers", args.subscribers)
        .field("subscribed", m.subscribed)
        .field("size", args.size)
        .field("rate", args.rate)
        .field("deflate", args.common.deflate)
        .field("threads", threads)
        .field("warmup_s", m.warmup.as_secs_f64())
        .field("elapsed_s", report::round_to(secs, 6))
        .field("published", m.published)
        .field(
            "published_per_sec",
            report::round_to(m.published as f64 / secs, 1),
        )
        .field("deliveries", m.delivered)
        .field("deliveries_expected", expected)
        .field(
            "deliveries_per_sec",
            report::round_to(m.delivered as f64 / secs, 1),
        )
        .field("missed", m.missed)
        .row(
            "subscribers",
            format!(
                "{} of {}, {} B messages, {} published/s asked",
                report::group(m.subscribed as u64),
                args.subscribers,
                report::group(args.size as u64),
                report::group(u64::from(args.rate)),
            ),
        )
        .row(
            "published",
            format!(
                "{} in {secs:.3} s ({}/s)",
                report::group(m.published),
                report::round(m.published as f64 / secs)
            ),
        )
        .row(
            "delivered",
            format!(
                "{} of {} ({}/s), {} missed",
                report::group(m.delivered),
                report::group(expected),
                report::round(m.delivered as f64 / secs),
                report::group(m.missed)
            ),
        )
        .latency("latency_us", "latency (µs)", &m.run.latencies.summary())
        .errors(&m.run.errors)
        .generator_cpu("client_cpu_percent", "client CPU", m.cpu_percent, threads)
        .server(&m.server, args.server_pid);
    report
}

/// Sends at `rate` until the warm-up and the measured time are over; returns the
/// messages sent while measuring, the measured time, the generator's CPU use and (with
/// `server_pid`) the server's CPU meter, started when measuring started.
async fn publish(
    run: &Run,
    mut ws: WebSocket<ClientStream>,
    tail: &str,
    rate: u32,
    warmup: Duration,
    (duration, messages): (Duration, Option<u64>),
    (progress, server_pid): (&Progress, Option<u32>),
) -> Result<(u64, Duration, Option<f64>, Option<CpuMeter>), duplex::Error> {
    let mut server_cpu = None;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut ticks = tokio::time::interval(period);
    // Behind schedule (a slow server pushing back), send what is due without bursting.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = Instant::now();
    let measure_from = start + warmup;
    let until = measure_from + duration;
    let mut seq = 0u64;
    let mut measuring: Option<(Instant, u64, CpuMeter)> = None;
    progress.set_length(duration.as_millis() as u64, "publishing");
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let now = Instant::now();
                let enough = match (&measuring, messages) {
                    (Some((_, first, _)), Some(total)) => seq - first >= total,
                    (_, Some(_)) => false,
                    (_, None) => now >= until,
                };
                if enough {
                    break;
                }
                if measuring.is_none() && now >= measure_from {
                    run.first_counted.store(seq, Relaxed);
                    run.phase.store(MEASURING, Relaxed);
                    measuring = Some((now, seq, CpuMeter::start()));
                    server_cpu = server_pid.map(CpuMeter::of_process);
                }
                let at = (now - run.origin).as_micros() as u64;
                let text = format!("{seq:016x}{at:016x}{tail}");
                seq += 1;
                run.end.store(seq, Relaxed);
                ws.send(Message::text(text)).await?;
                if let Some((since, _, _)) = &measuring {
                    progress.update(
                        since.elapsed().as_millis() as u64,
                        format!("{} delivered", report::group(run.delivered.load(Relaxed))),
                    );
                }
            }
            // The relay does not send a publisher its own messages; read whatever comes
            // (pings) so the connection stays healthy.
            received = ws.next() => match received {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Err(duplex::Error::ConnectionClosed),
            },
        }
    }
    run.phase.store(STOPPING, Relaxed);
    let (since, first, cpu) = measuring.unwrap_or_else(|| (Instant::now(), seq, CpuMeter::start()));
    let elapsed = since.elapsed();
    let cpu_percent = cpu.percent();
    let _ = ws.close(None).await;
    Ok((seq - first, elapsed, cpu_percent, server_cpu))
}

/// One subscriber: connects, then records every delivery until publishing stopped and
/// the last message arrived (or `drain` passed).
async fn subscriber(
    run: Arc<Run>,
    limit: Arc<Semaphore>,
    opened: mpsc::UnboundedSender<bool>,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) -> Seen {
    let connected = {
        let _permit = limit.acquire().await;
        run.builder.clone().connect().await
    };
    let mut ws = match connected {
        Ok((ws, _)) => {
            let _ = opened.send(true);
            ws
        }
        Err(e) => {
            run.errors.record(format!("cannot connect: {e}"));
            let _ = opened.send(false);
            return Seen::default();
        }
    };
    drop(opened);
    let mut seen = Seen {
        opened: true,
        ..Seen::default()
    };
    let mut batch = run.latencies.batch();
    // The next sequence number expected, once the first counted one arrived.
    let mut next: Option<u64> = None;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let received = tokio::select! {
            received = ws.next() => received,
            _ = stop.changed(), if deadline.is_none() => {
                deadline = Some(tokio::time::Instant::now() + drain);
                continue;
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => break,
        };
        let message = match received {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Binary(_))) => {
                run.errors.record("a binary message from the relay".into());
                continue;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                run.errors
                    .record(format!("subscriber connection failed: {e}"));
                break;
            }
            None => {
                run.errors
                    .record("the server closed a subscriber during the run".into());
                break;
            }
        };
        let now = (run.origin.elapsed()).as_micros() as u64;
        let Some((seq, at)) = parse_stamp(&message, run.size) else {
            run.errors.record(format!(
                "a message without a valid stamp ({} bytes)",
                message.len()
            ));
            continue;
        };
        if seq >= run.first_counted.load(Relaxed) && run.phase.load(Relaxed) != WARMUP {
            let expected = next.unwrap_or(run.first_counted.load(Relaxed));
            if seq < expected {
                run.errors
                    .record(format!("message {seq} arrived after {expected}"));
                continue;
            }
            seen.missed += seq - expected;
            next = Some(seq + 1);
            seen.delivered += 1;
            batch.record(Duration::from_micros(now.saturating_sub(at)));
            run.delivered.fetch_add(1, Relaxed);
        }
        if deadline.is_some() && next.is_some_and(|n| n >= run.end.load(Relaxed)) {
            break;
        }
    }
    // Messages published while measuring that never came.
    let end = run.end.load(Relaxed);
    let from = next.unwrap_or(run.first_counted.load(Relaxed).min(end));
    seen.missed += end.saturating_sub(from);
    let _ = ws.close(None).await;
    seen
}

/// (sequence, send time) from a payload, checking its length.
fn parse_stamp(text: &str, size: usize) -> Option<(u64, u64)> {
    if text.len() != size {
        return None;
    }
    let seq = u64::from_str_radix(text.get(..16)?, 16).ok()?;
    let at = u64::from_str_radix(text.get(16..STAMP)?, 16).ok()?;
    Some((seq, at))
}
