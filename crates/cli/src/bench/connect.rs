//! `duplex bench connect`: full connection cycles per second.

use super::report::{self, CpuMeter, Errors, Latencies, Progress, Report};
use super::{at_least_one, check_url, ensure_fds, BenchError, CommonArgs};
use duplex::{ClientBuilder, Config};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct ConnectArgs {
    /// The server, e.g. ws://127.0.0.1:9001/
    url: String,
    /// Connection cycles in total: TCP connect, opening handshake, closing handshake.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = at_least_one::<u64>)]
    count: u64,
    /// Cycles in progress at once.
    #[arg(long, value_name = "C", default_value_t = 10, value_parser = at_least_one::<usize>)]
    concurrency: usize,
    #[command(flatten)]
    pub common: CommonArgs,
}

struct Run {
    builder: ClientBuilder,
    count: u64,
    /// Cycles handed out so far.
    next: AtomicU64,
    /// Cycles finished (either way), for the progress bar.
    finished: AtomicU64,
    /// Cycles that completed both handshakes.
    completed: AtomicU64,
    latencies: Latencies,
    errors: Errors,
}

pub async fn run(args: ConnectArgs, threads: usize) -> Result<(), BenchError> {
    let (run, concurrency) = configure(&args)?;
    let measured = measure(&args, run, concurrency).await?;
    report(&args, threads, &measured).print(args.common.json);
    Ok(())
}

/// What the cycles produced.
struct Measured {
    run: Arc<Run>,
    concurrency: usize,
    completed: u64,
    elapsed: std::time::Duration,
    cpu_percent: Option<f64>,
}

/// Checks the command line; the state the workers share and how many run at once.
fn configure(args: &ConnectArgs) -> Result<(Arc<Run>, usize), BenchError> {
    check_url(&args.url)?;
    let concurrency = args
        .concurrency
        .min(usize::try_from(args.count).unwrap_or(usize::MAX));
    ensure_fds(concurrency as u64, &format!("--concurrency {concurrency}"))?;
    let run = Arc::new(Run {
        builder: args.common.builder(&args.url, Config::default()),
        count: args.count,
        next: AtomicU64::new(0),
        finished: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        latencies: Latencies::new(),
        errors: Errors::new(),
    });
    Ok((run, concurrency))
}

/// Runs every cycle; `Err` when none completed.
async fn measure(
    args: &ConnectArgs,
    run: Arc<Run>,
    concurrency: usize,
) -> Result<Measured, BenchError> {
    let progress = Progress::new(args.common.progress(), args.count, "connections");
    let started = Instant::now();
    let cpu = CpuMeter::start();
    let mut tasks: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(worker(run.clone())))
        .collect();
    let mut tick = tokio::time::interval(report::TICK);
    while let Some(task) = tasks.last_mut() {
        tokio::select! {
            joined = task => {
                if let Err(e) = joined {
                    run.errors.record(format!("connection task failed: {e}"));
                }
                tasks.pop();
            }
            _ = tick.tick() => {
                let finished = run.finished.load(Relaxed);
                let rate = run.completed.load(Relaxed) as f64 / started.elapsed().as_secs_f64();
                progress.update(finished, format!(
                    "{}/{}, {}/s, {} errors",
                    report::group(finished),
                    report::group(args.count),
                    report::group(rate as u64),
                    run.errors.count()
                ));
            }
        }
    }
    let elapsed = started.elapsed();
    let cpu_percent = cpu.percent();
    progress.clear();
    let completed = run.completed.load(Relaxed);
    if completed == 0 {
        return Err(BenchError::NoConnection(format!(
            "all {} connection cycles to {} failed: {}",
            args.count,
            args.url,
            run.errors.main_message()
        )));
    }
    Ok(Measured {
        run,
        concurrency,
        completed,
        elapsed,
        cpu_percent,
    })
}

/// The results, for the table or the JSON object.
fn report(args: &ConnectArgs, threads: usize, m: &Measured) -> Report {
    let secs = m.elapsed.as_secs_f64();
    let per_sec = m.completed as f64 / secs;
    let latency = m.run.latencies.summary();
    let deflate = if args.common.deflate { "on" } else { "off" };
    let mut report = Report::new("connect", format!("duplex bench connect {}", args.url));
    report
        .field("url", args.url.as_str())
        .field("count", args.count)
        .field("concurrency", m.concurrency)
        .field("deflate", args.common.deflate)
        .field("threads", threads)
        .field("completed", m.completed)
        .field("elapsed_s", report::round_to(secs, 6))
        .field("handshakes_per_sec", report::round_to(per_sec, 1))
        .field("latency_us", latency.json())
        .row(
            "cycles",
            format!(
                "{} of {} completed in {secs:.3} s, {} at once, deflate {deflate}",
                report::group(m.completed),
                report::group(args.count),
                m.concurrency,
            ),
        )
        .row(
            "handshakes/s",
            format!(
                "{} (TCP connect + opening + closing handshake)",
                report::round(per_sec)
            ),
        )
        .row(
            "latency (µs)",
            format!("{} (TCP connect + opening handshake)", latency.row()),
        )
        .errors(&m.run.errors)
        .generator_cpu("client_cpu_percent", "client CPU", m.cpu_percent, threads);
    report
}

/// Runs cycles until all `count` are handed out.
async fn worker(run: Arc<Run>) {
    let mut batch = run.latencies.batch();
    while run.next.fetch_add(1, Relaxed) < run.count {
        let began = Instant::now();
        match run.builder.clone().connect().await {
            Ok((mut ws, _)) => {
                batch.record(began.elapsed());
                match ws.close(None).await {
                    Ok(()) => {
                        run.completed.fetch_add(1, Relaxed);
                    }
                    Err(e) => run.errors.record(format!("closing handshake failed: {e}")),
                }
            }
            Err(e) => run.errors.record(format!("cannot connect: {e}")),
        }
        run.finished.fetch_add(1, Relaxed);
    }
}
