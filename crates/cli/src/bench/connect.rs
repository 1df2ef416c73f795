//! `duplex bench connect`: full connection cycles per second.

use super::report::{self, CpuMeter, Errors, Latencies, Progress};
use super::{check_url, ensure_fds, BenchError, CommonArgs};
use duplex::{ClientBuilder, Config};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct ConnectArgs {
    /// The server, e.g. ws://127.0.0.1:9001/
    url: String,
    /// Connection cycles in total: TCP connect, opening handshake, closing handshake.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    count: u64,
    /// Cycles in progress at once.
    #[arg(long, value_name = "C", default_value_t = 10)]
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
    check_url(&args.url)?;
    if args.count == 0 || args.concurrency == 0 {
        return Err(BenchError::Usage(
            "--count and --concurrency must be at least 1".into(),
        ));
    }
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
    let secs = elapsed.as_secs_f64();
    let per_sec = completed as f64 / secs;
    let latency = run.latencies.summary();
    if args.common.json {
        report::print_json(&json!({
            "scenario": "connect",
            "url": args.url,
            "count": args.count,
            "concurrency": concurrency,
            "deflate": args.common.deflate,
            "threads": threads,
            "completed": completed,
            "elapsed_s": report::round_to(secs, 6),
            "handshakes_per_sec": report::round_to(per_sec, 1),
            "latency_us": latency.json(),
            "errors": run.errors.count(),
            "error_messages": run.errors.json(),
            "client_cpu_percent": cpu_percent.map(|p| report::round_to(p, 1)),
        }));
    } else {
        let deflate = if args.common.deflate { "on" } else { "off" };
        let mut rows = vec![
            (
                "cycles".into(),
                format!(
                    "{} of {} completed in {secs:.3} s, {concurrency} at once, deflate {deflate}",
                    report::group(completed),
                    report::group(args.count),
                ),
            ),
            (
                "handshakes/s".into(),
                format!(
                    "{} (TCP connect + opening + closing handshake)",
                    report::round(per_sec)
                ),
            ),
            (
                "latency (µs)".into(),
                format!("{} (TCP connect + opening handshake)", latency.row()),
            ),
        ];
        run.errors.rows(&mut rows);
        rows.push(("client CPU".into(), report::cpu_row(cpu_percent, threads)));
        report::print_table(&format!("duplex bench connect {}", args.url), &rows);
    }
    Ok(())
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
