//! `duplex bench echo`: closed-loop message round trips against an echo server.

mod task;

use super::report::{self, CpuMeter, Errors, Latencies, Progress, Report};
use super::{at_least_one, check_url, ensure_fds, seconds, BenchError, CommonArgs};
use super::{CONNECT_CONCURRENCY, MEASURING, STOPPING, WARMUP};
use duplex::{ClientBuilder, Config, Message};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};

#[derive(clap::Args)]
pub struct EchoArgs {
    /// The echo server, e.g. ws://127.0.0.1:9001/
    url: String,
    /// Connections, each a task of its own.
    #[arg(long, short = 'c', value_name = "N", default_value_t = 1, value_parser = at_least_one::<usize>)]
    connections: usize,
    /// Payload bytes per message.
    #[arg(long, value_name = "BYTES", default_value_t = 16)]
    size: usize,
    /// Messages each connection keeps in flight: it sends this many, then one more for
    /// every echo.
    #[arg(long, value_name = "D", default_value_t = 1, value_parser = at_least_one::<usize>)]
    depth: usize,
    /// Seconds to measure, after the warm-up.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many echoes in total instead of after --duration.
    #[arg(long, value_name = "TOTAL", conflicts_with = "duration", value_parser = at_least_one::<u64>)]
    messages: Option<u64>,
    /// Send binary messages (text by default).
    #[arg(long)]
    binary: bool,
    /// Seconds of traffic before measuring starts [default: 1, or 0 with --messages].
    #[arg(long, value_name = "SECS")]
    warmup: Option<f64>,
    /// Messages per second sent at most, all connections together (each paces itself at
    /// its share) [default: as fast as the echoes come back].
    #[arg(long, value_name = "MSGS", value_parser = at_least_one::<u32>)]
    rate: Option<u32>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Echoes a task counts before it adds them to the shared progress counter.
const PROGRESS_EVERY: u64 = 64;

/// What every connection task shares.
struct Run {
    builder: ClientBuilder,
    /// The payload, built once; each send clones a reference to it.
    message: Message,
    size: usize,
    depth: usize,
    binary: bool,
    phase: AtomicU8,
    /// With `--messages`: sends left to hand out (a send past zero is not made).
    tickets: Option<AtomicI64>,
    /// With `--rate`: the time between two sends of one connection.
    period: Option<Duration>,
    connections: usize,
    /// Echoes counted so far, for the progress bar (tasks add in steps).
    progress: AtomicU64,
    /// Connections on which permessage-deflate was negotiated.
    deflated: AtomicU64,
    latencies: Latencies,
    errors: Errors,
}

enum Event {
    /// A connection finished opening, or failed to.
    Opened(bool),
    /// A connection has no more messages in flight (or failed).
    Drained,
}

/// What one connection task did.
#[derive(Default)]
struct Outcome {
    counted: u64,
    opened: bool,
    failed: bool,
}

pub async fn run(args: EchoArgs, threads: usize) -> Result<(), BenchError> {
    let plan = configure(&args)?;
    let measured = measure(&args, plan).await?;
    report(&args, threads, &measured).print(args.common.json);
    measured.verdict(&args)
}

/// The checked settings of a run and the state its connection tasks share.
struct Plan {
    run: Arc<Run>,
    duration: Duration,
    warmup: Duration,
}

/// What the measured part of a run produced.
struct Measured {
    run: Arc<Run>,
    warmup: Duration,
    opened: usize,
    /// Connections that opened and then failed.
    failed: usize,
    /// Echoes counted while measuring.
    counted: u64,
    elapsed: Duration,
    cpu_percent: Option<f64>,
}

impl Measured {
    /// Whether every connection failed.
    fn all_failed(&self) -> bool {
        self.failed == self.opened
    }

    fn failure(&self, args: &EchoArgs) -> BenchError {
        BenchError::AllFailed(format!(
            "all {} connections to {} failed during the run: {}",
            self.opened,
            args.url,
            self.run.errors.main_message()
        ))
    }

    /// The run's exit: an error, after the report, when every connection failed.
    fn verdict(&self, args: &EchoArgs) -> Result<(), BenchError> {
        if self.all_failed() {
            return Err(self.failure(args));
        }
        Ok(())
    }
}

/// Checks the command line and builds what the connection tasks share.
fn configure(args: &EchoArgs) -> Result<Plan, BenchError> {
    check_url(&args.url)?;
    let duration = seconds(args.duration, "--duration", false)?;
    let default_warmup = if args.messages.is_some() { 0.0 } else { 1.0 };
    let warmup = seconds(args.warmup.unwrap_or(default_warmup), "--warmup", true)?;
    ensure_fds(
        args.connections as u64,
        &format!("--connections {}", args.connections),
    )?;

    let payload: Vec<u8> = b"0123456789abcdefghijklmnopqrstuvwxyz"
        .iter()
        .copied()
        .cycle()
        .take(args.size)
        .collect();
    let message = if args.binary {
        Message::binary(payload)
    } else {
        Message::text(String::from_utf8(payload).expect("ASCII"))
    };
    let mut config = Config::default();
    // A closed loop never has more than `depth` messages queued: let them all be queued
    // without waiting, so a sender never blocks while its echoes are unread.
    let frame = args.size + 14;
    config.write_buffer_limit = config
        .write_buffer_limit
        .max(frame.saturating_mul(args.depth).saturating_mul(2));
    config.limits.max_frame_size = config.limits.max_frame_size.max(args.size);
    config.limits.max_message_size = config.limits.max_message_size.max(args.size);

    let run = Arc::new(Run {
        builder: args.common.builder(&args.url, config),
        message,
        size: args.size,
        depth: args.depth,
        binary: args.binary,
        phase: AtomicU8::new(WARMUP),
        tickets: args
            .messages
            .map(|m| AtomicI64::new(i64::try_from(m).unwrap_or(i64::MAX))),
        period: args
            .rate
            .map(|r| Duration::from_secs_f64(args.connections as f64 / f64::from(r))),
        connections: args.connections,
        progress: AtomicU64::new(0),
        deflated: AtomicU64::new(0),
        latencies: Latencies::new(),
        errors: Errors::new(),
    });
    Ok(Plan {
        run,
        duration,
        warmup,
    })
}

/// Opens every connection, warms up, measures, and closes; `Err` when nothing could be
/// measured.
async fn measure(args: &EchoArgs, plan: Plan) -> Result<Measured, BenchError> {
    let (run, duration, warmup) = (plan.run, plan.duration, plan.warmup);
    let n = args.connections;
    let progress = Progress::new(args.common.progress(), n as u64, "connecting");
    let (events, mut event_rx) = mpsc::unbounded_channel();
    let (start, start_rx) = watch::channel(false);
    // Wakes connections waiting for their next --rate slot when the run ends.
    let (stop, stop_rx) = watch::channel(false);
    let limit = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let tasks: Vec<_> = (0..n)
        .map(|index| {
            tokio::spawn(task::connection(
                run.clone(),
                index,
                limit.clone(),
                events.clone(),
                start_rx.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    drop(events);

    // Open every connection before any traffic.
    let mut opened = 0usize;
    let mut reported = 0usize;
    let mut tick = tokio::time::interval(report::TICK);
    while reported < n {
        tokio::select! {
            event = event_rx.recv() => match event {
                Some(Event::Opened(ok)) => {
                    reported += 1;
                    opened += usize::from(ok);
                }
                Some(Event::Drained) => {}
                None => break,
            },
            _ = tick.tick() => progress.update(reported as u64, format!("{opened}/{n} open")),
        }
    }
    if opened == 0 {
        progress.clear();
        drop(start);
        for t in tasks {
            let _ = t.await;
        }
        return Err(BenchError::NoConnection(format!(
            "all {n} connections to {} failed: {}",
            args.url,
            run.errors.main_message()
        )));
    }

    // Warm up, then measure.
    let mut drained = 0usize;
    let total_len = args.messages.unwrap_or(duration.as_millis() as u64);
    let started = Instant::now();
    if warmup.is_zero() {
        run.phase.store(MEASURING, Relaxed);
    } else {
        progress.set_length(warmup.as_millis() as u64, "warm-up");
    }
    let _ = start.send(true);
    if !warmup.is_zero() {
        let until = started + warmup;
        while drained < opened {
            tokio::select! {
                event = event_rx.recv() => match event {
                    Some(Event::Drained) => drained += 1,
                    Some(Event::Opened(_)) => {}
                    None => break,
                },
                _ = tokio::time::sleep_until(until.into()) => break,
                _ = tick.tick() => progress.update(
                    started.elapsed().as_millis() as u64,
                    format!("{:.1}/{:.1} s", started.elapsed().as_secs_f64(), warmup.as_secs_f64()),
                ),
            }
        }
        run.phase.store(MEASURING, Relaxed);
    }
    let measure_start = Instant::now();
    let counted_before = run.progress.load(Relaxed);
    let cpu = CpuMeter::start();
    progress.set_length(
        total_len,
        if args.messages.is_some() {
            "messages"
        } else {
            "measuring"
        },
    );
    let deadline = measure_start + duration;
    let mut last_count = 0u64;
    let mut last_tick = measure_start;
    while drained < opened {
        tokio::select! {
            event = event_rx.recv() => match event {
                Some(Event::Drained) => drained += 1,
                Some(Event::Opened(_)) => {}
                None => break,
            },
            _ = tokio::time::sleep_until(deadline.into()), if args.messages.is_none() => break,
            _ = tick.tick() => {
                let now = Instant::now();
                let count = run.progress.load(Relaxed).saturating_sub(counted_before);
                let rate = count.saturating_sub(last_count) as f64
                    / (now - last_tick).as_secs_f64().max(1e-9);
                (last_count, last_tick) = (count, now);
                let position = if args.messages.is_some() {
                    count
                } else {
                    (now - measure_start).as_millis() as u64
                };
                progress.update(position, format!(
                    "{} msgs, {}/s, {} errors",
                    report::group(count),
                    report::group(rate as u64),
                    run.errors.count()
                ));
            }
        }
    }
    // In duration mode this is the deadline (or the moment every connection failed);
    // with --messages, the last echo.
    run.phase.store(STOPPING, Relaxed);
    let _ = stop.send(true);
    let elapsed = measure_start.elapsed();
    let cpu_percent = cpu.percent();
    progress.set_length(opened as u64, "closing");

    let mut counted = 0u64;
    let mut failed = 0usize;
    for task in tasks {
        match task.await {
            Ok(outcome) => {
                counted += outcome.counted;
                failed += usize::from(outcome.opened && outcome.failed);
            }
            Err(e) => run.errors.record(format!("connection task failed: {e}")),
        }
    }
    progress.clear();
    let measured = Measured {
        run,
        warmup,
        opened,
        failed,
        counted,
        elapsed,
        cpu_percent,
    };
    // Every connection failed before anything was measured: no report, only the error.
    if measured.all_failed() && counted == 0 {
        return Err(measured.failure(args));
    }
    Ok(measured)
}

/// The results, for the table or the JSON object.
fn report(args: &EchoArgs, threads: usize, m: &Measured) -> Report {
    let secs = m.elapsed.as_secs_f64();
    let per_sec = m.counted as f64 / secs;
    let bytes = m.counted * args.size as u64 * 2;
    let mb_per_sec = bytes as f64 / 1e6 / secs;
    let kind = if args.binary { "binary" } else { "text" };
    let deflated = m.run.deflated.load(Relaxed);
    let deflate = match (args.common.deflate, deflated) {
        (false, _) => "off".to_owned(),
        (true, d) => format!("offered, negotiated on {d}"),
    };
    let mut report = Report::new("echo", format!("duplex bench echo {}", args.url));
    report
        .field("url", args.url.as_str())
        .field("connections", args.connections)
        .field("connected", m.opened)
        .field("size", args.size)
        .field("depth", args.depth)
        .field("rate", args.rate)
        .field("binary", args.binary)
        .field("deflate", args.common.deflate)
        .field("deflate_negotiated", deflated)
        .field("threads", threads)
        .field("warmup_s", m.warmup.as_secs_f64())
        .field("messages", m.counted)
        .field("elapsed_s", report::round_to(secs, 6))
        .field("messages_per_sec", report::round_to(per_sec, 1))
        .field("bytes", bytes)
        .field("mb_per_sec", report::round_to(mb_per_sec, 3))
        .row(
            "connections",
            format!(
                "{} open of {}, depth {}, {} B {kind} messages, deflate {deflate}{}",
                report::group(m.opened as u64),
                args.connections,
                args.depth,
                report::group(args.size as u64),
                args.rate
                    .map(|r| format!(", at most {} msgs/s", report::group(u64::from(r))))
                    .unwrap_or_default(),
            ),
        )
        .row(
            "measured",
            format!(
                "{} messages in {secs:.3} s (after {} s warm-up)",
                report::group(m.counted),
                m.warmup.as_secs_f64()
            ),
        )
        .row("messages/s", report::round(per_sec))
        .row(
            "MB/s",
            format!(
                "{} (payload bytes sent + received, 1 MB = 10^6 B)",
                report::round(mb_per_sec)
            ),
        )
        .latency("latency_us", "latency (µs)", &m.run.latencies.summary())
        .errors(&m.run.errors)
        .generator_cpu("client_cpu_percent", "client CPU", m.cpu_percent, threads);
    report
}
