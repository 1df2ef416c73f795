//! `duplex bench idle`: many open connections at once, and what they cost the server.

use super::report::{self, CpuMeter, Errors, Progress, Report};
use super::{at_least_one, check_url, ensure_fds, seconds, server_rss_kib, BenchError, CommonArgs};
use duplex::{ClientBuilder, ClientStream, Config, WebSocket};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio::sync::{mpsc, watch, Semaphore};

#[derive(clap::Args)]
pub struct IdleArgs {
    /// The server, e.g. ws://127.0.0.1:9001/
    url: String,
    /// Connections to open and hold.
    #[arg(long, short = 'c', value_name = "N", value_parser = at_least_one::<usize>)]
    connections: usize,
    /// Process id of the server: its resident memory (VmRSS) is read before the
    /// connections open and once all are open.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Seconds to hold the connections once all are open.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    hold: f64,
    /// Handshakes in progress at once while opening.
    #[arg(long, value_name = "C", default_value_t = 64, value_parser = at_least_one::<usize>)]
    concurrency: usize,
    /// Connections per source address before the next one is used [default: the
    /// ephemeral port range less 1000]. For testing the spreading with few connections.
    #[arg(long, value_name = "N", hide = true, value_parser = at_least_one::<u64>)]
    ports_per_address: Option<u64>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Ephemeral ports of one source address left to other programs.
const PORT_MARGIN: u64 = 1000;

struct Run {
    url: String,
    builder: ClientBuilder,
    /// Where to connect when the sockets are made here (`ws://`); `None` for `wss://`,
    /// which goes through [`ClientBuilder::connect`].
    server: Option<SocketAddr>,
    /// Connections per source address when they are spread over several.
    per_source: Option<u64>,
    opened: AtomicU64,
    errors: Errors,
}

pub async fn run(args: IdleArgs, threads: usize) -> Result<(), BenchError> {
    let plan = configure(&args).await?;
    let measured = measure(&args, plan).await?;
    report(&args, threads, &measured).print(args.common.json);
    Ok(())
}

/// The checked settings of a run and the state its connection tasks share.
struct Plan {
    run: Arc<Run>,
    hold: Duration,
    /// Source addresses the connections come from.
    sources: u64,
}

/// What holding the connections showed.
struct Measured {
    plan: Plan,
    opened: u64,
    /// Connections still open at the end of the hold.
    held: u64,
    open_time: Duration,
    rss_before: Option<u64>,
    rss_after: Option<u64>,
    cpu_percent: Option<f64>,
}

/// Checks the command line, resolves the server and picks the source addresses.
async fn configure(args: &IdleArgs) -> Result<Plan, BenchError> {
    let url = check_url(&args.url)?;
    let hold = seconds(args.hold, "--hold", true)?;
    let n = args.connections as u64;
    ensure_fds(n, &format!("--connections {n}"))?;
    if let Some(pid) = args.server_pid {
        server_rss_kib(pid)?;
    }

    // Sources: one address while the ephemeral ports allow, else 127.0.0.1, .2, ...
    let per_address = args.ports_per_address.unwrap_or_else(ports_per_address);
    let sources = n.div_ceil(per_address);
    let tls = url.scheme() == "wss";
    let server = if tls {
        None
    } else {
        Some(resolve(&url, sources > 1).await?)
    };
    let per_source = if sources > 1 {
        match server {
            Some(SocketAddr::V4(a)) if a.ip().is_loopback() => Some(per_address),
            _ => {
                return Err(BenchError::Usage(format!(
                    "{n} connections need {sources} source addresses (about {per_address} \
                     ephemeral ports each, see /proc/sys/net/ipv4/ip_local_port_range), which \
                     only works against a ws:// server on an IPv4 loopback address such as \
                     127.0.0.1: use at most {per_address} connections here"
                )))
            }
        }
    } else {
        None
    };
    let run = Arc::new(Run {
        url: args.url.clone(),
        builder: args.common.builder(&args.url, Config::default()),
        server,
        per_source,
        opened: AtomicU64::new(0),
        errors: Errors::new(),
    });
    Ok(Plan { run, hold, sources })
}

/// Opens every connection, reads the server's memory, holds them, and closes them;
/// `Err` when none opened.
async fn measure(args: &IdleArgs, plan: Plan) -> Result<Measured, BenchError> {
    let (run, hold) = (plan.run.clone(), plan.hold);
    let n = args.connections as u64;
    let rss_before = args.server_pid.map(server_rss_kib).transpose()?;
    let progress = Progress::new(args.common.progress(), n, "opening");
    let cpu = CpuMeter::start();
    let started = Instant::now();
    let (events, mut event_rx) = mpsc::unbounded_channel();
    let (close, close_rx) = watch::channel(false);
    let limit = Arc::new(Semaphore::new(args.concurrency));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            tokio::spawn(connection(
                run.clone(),
                i,
                limit.clone(),
                events.clone(),
                close_rx.clone(),
            ))
        })
        .collect();
    drop(events);
    let mut reported = 0u64;
    let mut tick = tokio::time::interval(report::TICK);
    while reported < n {
        tokio::select! {
            event = event_rx.recv() => match event {
                Some(()) => reported += 1,
                None => break,
            },
            _ = tick.tick() => {
                let opened = run.opened.load(Relaxed);
                progress.update(reported, format!(
                    "{}/{} open, {} errors",
                    report::group(opened),
                    report::group(n),
                    run.errors.count()
                ));
            }
        }
    }
    let open_time = started.elapsed();
    let opened = run.opened.load(Relaxed);
    let rss_after = match args.server_pid {
        Some(pid) if opened > 0 => Some(server_rss_kib(pid)?),
        _ => None,
    };
    if opened > 0 && !hold.is_zero() {
        progress.set_length(hold.as_millis() as u64, "holding");
        let until = Instant::now() + hold;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => break,
                _ = tick.tick() => {
                    let left = until.saturating_duration_since(Instant::now());
                    progress.update(
                        (hold - left).as_millis() as u64,
                        format!(
                            "{} open, {} errors",
                            report::group(run.opened.load(Relaxed)),
                            run.errors.count()
                        ),
                    );
                }
            }
        }
    }
    let held = run.opened.load(Relaxed);
    let cpu_percent = cpu.percent();
    progress.set_length(n, "closing");
    let _ = close.send(true);
    for task in tasks {
        if let Err(e) = task.await {
            run.errors.record(format!("connection task failed: {e}"));
        }
    }
    progress.clear();
    if opened == 0 {
        return Err(BenchError::NoConnection(format!(
            "all {n} connections to {} failed: {}",
            args.url,
            run.errors.main_message()
        )));
    }

    Ok(Measured {
        plan,
        opened,
        held,
        open_time,
        rss_before,
        rss_after,
        cpu_percent,
    })
}

/// The results, for the table or the JSON object.
fn report(args: &IdleArgs, threads: usize, m: &Measured) -> Report {
    let (opened, sources) = (m.opened, m.plan.sources);
    let per_connection = match (m.rss_before, m.rss_after) {
        (Some(b), Some(a)) => Some((a as f64 - b as f64) / opened as f64),
        _ => None,
    };
    let secs = m.open_time.as_secs_f64();
    let deflate = if args.common.deflate { "on" } else { "off" };
    let mut report = Report::new("idle", format!("duplex bench idle {}", args.url));
    report
        .field("url", args.url.as_str())
        .field("connections", args.connections)
        .field("opened", opened)
        .field("held", m.held)
        .field("source_addresses", sources)
        .field("deflate", args.common.deflate)
        .field("threads", threads)
        .field("elapsed_s", report::round_to(secs, 6))
        .field(
            "connections_per_sec",
            report::round_to(opened as f64 / secs, 1),
        )
        .field("hold_s", m.plan.hold.as_secs_f64())
        .field("server_pid", args.server_pid)
        .field("rss_before_kib", m.rss_before)
        .field("rss_after_kib", m.rss_after)
        .field(
            "rss_per_connection_kib",
            per_connection.map(|k| report::round_to(k, 3)),
        )
        .row(
            "connections",
            format!(
                "{} open of {}, from {sources} source address{}, deflate {deflate}",
                report::group(opened),
                report::group(args.connections as u64),
                if sources == 1 { "" } else { "es" }
            ),
        )
        .row(
            "opened in",
            format!(
                "{secs:.3} s ({} connections/s, {} at once)",
                report::round(opened as f64 / secs),
                args.concurrency
            ),
        )
        .row(
            "held",
            format!(
                "{} s, {} still open at the end",
                m.plan.hold.as_secs_f64(),
                report::group(m.held)
            ),
        );
    match (m.rss_before, m.rss_after, per_connection) {
        (Some(b), Some(a), Some(k)) => report.row(
            "server RSS",
            format!(
                "{} KiB before, {} KiB with all open: {k:.2} KiB per connection",
                report::group(b),
                report::group(a)
            ),
        ),
        _ => report.row("server RSS", "not measured (give --server-pid)"),
    };
    report.errors(&m.plan.run.errors).generator_cpu(
        "client_cpu_percent",
        "client CPU",
        m.cpu_percent,
        threads,
    );
    report
}

/// One connection: open, report, hold until told to close (noticing if the server drops
/// it meanwhile), close.
async fn connection(
    run: Arc<Run>,
    index: u64,
    limit: Arc<Semaphore>,
    events: mpsc::UnboundedSender<()>,
    mut close: watch::Receiver<bool>,
) {
    let opened = {
        let _permit = limit.acquire().await;
        open(&run, index).await
    };
    let mut ws = match opened {
        Ok(ws) => {
            run.opened.fetch_add(1, Relaxed);
            let _ = events.send(());
            ws
        }
        Err(e) => {
            run.errors.record(e);
            let _ = events.send(());
            return;
        }
    };
    drop(events);
    loop {
        tokio::select! {
            _ = close.wait_for(|c| *c) => break,
            message = ws.recv() => match message {
                Some(Ok(duplex::Message::Close(_))) | None => {
                    run.opened.fetch_sub(1, Relaxed);
                    run.errors.record("the server closed an idle connection".to_owned());
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    run.opened.fetch_sub(1, Relaxed);
                    run.errors.record(format!("an idle connection failed: {e}"));
                    return;
                }
            },
        }
    }
    if let Err(e) = ws.close(None).await {
        run.errors.record(format!("closing handshake failed: {e}"));
    }
}

/// Opens connection number `index`: from its source address for `ws://`, through the
/// builder for `wss://`.
async fn open(run: &Run, index: u64) -> Result<WebSocket<ClientStream>, String> {
    let Some(server) = run.server else {
        return match run.builder.clone().connect().await {
            Ok((ws, _)) => Ok(ws),
            Err(e) => Err(format!("cannot connect: {e}")),
        };
    };
    let source = run.per_source.map(|per| {
        let base = u32::from(Ipv4Addr::new(127, 0, 0, 1));
        let k = u32::try_from(index / per).unwrap_or(u32::MAX - base);
        IpAddr::V4(Ipv4Addr::from(base.saturating_add(k)))
    });
    let timeout = Duration::from_secs(10);
    let tcp = tokio::time::timeout(timeout, async {
        let socket = match server {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if let Some(ip) = source {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let tcp = socket.connect(server).await?;
        tcp.set_nodelay(true)?;
        Ok::<_, std::io::Error>(tcp)
    })
    .await
    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))
    .and_then(|r| r);
    let from = source.map(|s| format!(" from {s}")).unwrap_or_default();
    let tcp = tcp.map_err(|e| format!("cannot open a TCP connection to {server}{from}: {e}"))?;
    match run.builder.clone().handshake(ClientStream::new(tcp)).await {
        Ok((ws, _)) => Ok(ws),
        Err(e) => Err(format!("handshake with {} failed: {e}", run.url)),
    }
}

/// The server's socket address: the first the host resolves to, or the first IPv4 one
/// when `v4` (only IPv4 has more than one loopback source address).
async fn resolve(url: &url::Url, v4: bool) -> Result<SocketAddr, BenchError> {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| BenchError::NoConnection(format!("cannot resolve host {host:?}: {e}")))?
        .collect();
    addrs
        .iter()
        .find(|a| !v4 || a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| BenchError::NoConnection(format!("host {host:?} has no address")))
}

/// Connections one source address can open to one server: the ephemeral port range
/// less a margin for other programs.
fn ports_per_address() -> u64 {
    let (low, high) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u64>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    let range = high.saturating_sub(low) + 1;
    let margin = PORT_MARGIN.min(range / 2);
    (range - margin).max(1)
}
