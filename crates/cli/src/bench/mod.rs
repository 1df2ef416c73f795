//! `duplex bench`: a load generator for WebSocket servers.
//!
//! Five scenarios, driven from a multi-threaded tokio runtime with one task per
//! connection:
//! - `echo`: connections that keep a number of messages in flight against an echo server
//!   and measure the round trip of each;
//! - `connect`: full connection cycles (TCP, opening handshake, closing handshake);
//! - `idle`: many open connections at once, and the server's memory for each;
//! - `broadcast`: one publisher at a fixed rate and many subscribers of a relay server,
//!   with the delivery latency and the losses.
//! - `hub`: subscribers and acknowledged publishers through `duplex serve`, in the hub's
//!   protocol, with every delivery an acknowledged publication owes accounted for.
//!
//! Every scenario shows a progress bar on stderr (only on a terminal) and prints a table,
//! or with `--json` one JSON object, on stdout. Failures of single connections are counted
//! and reported; a run in which every connection fails exits non-zero.

mod broadcast;
mod connect;
mod echo;
mod hub;
mod idle;
mod report;

use duplex::ClientBuilder;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(clap::Subcommand)]
enum Scenario {
    /// Messages against an echo server: throughput and round-trip latency.
    ///
    /// Each connection sends --depth messages, then one more for every echo it gets back
    /// (a closed loop), and measures the time from each send to its echo.
    Echo(echo::EchoArgs),
    /// Connection cycles per second: TCP connect, opening handshake, closing handshake.
    Connect(connect::ConnectArgs),
    /// Opens many connections and holds them: the server's memory per idle connection.
    ///
    /// Past the ephemeral port range of one source address the connections are spread
    /// over 127.0.0.1, 127.0.0.2, ... (loopback servers only).
    Idle(idle::IdleArgs),
    /// One publisher, many subscribers: delivery rate, latency and losses through a
    /// server that relays each message to its other connections (such as
    /// `duplex echo --broadcast`).
    Broadcast(broadcast::BroadcastArgs),
    /// Subscribers and publishers through `duplex serve` (the hub's protocol): delivery
    /// rate and latency, acknowledged publishes, and every lost, duplicated or
    /// reordered delivery counted.
    Hub(hub::HubArgs),
}

/// Options every scenario takes.
#[derive(clap::Args, Clone, Debug)]
pub struct CommonArgs {
    /// Worker threads of the generator [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = at_least_one::<usize>)]
    threads: Option<usize>,
    /// Print one JSON object on stdout instead of the table, and no progress bar.
    #[arg(long)]
    json: bool,
    /// Offer permessage-deflate (off by default, so the protocol itself is measured).
    #[arg(long)]
    deflate: bool,
    /// Trust the CA certificates in this PEM file (wss://).
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// DANGEROUS: accept any server certificate (wss://). For testing only.
    #[arg(long)]
    insecure: bool,
}

impl CommonArgs {
    /// The client builder every connection of a run is cloned from: direct (no proxy
    /// from the environment), deflate only with `--deflate`.
    fn builder(&self, url: &str, mut config: duplex::Config) -> ClientBuilder {
        if !self.deflate {
            config.deflate = None;
        }
        let mut builder = ClientBuilder::new(url).config(config).no_proxy();
        if let Some(ca) = &self.ca {
            builder = builder.tls_ca_file(ca);
        }
        if self.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        builder
    }

    /// Whether to draw the progress bar: not with `--json`, only on a terminal.
    fn progress(&self) -> bool {
        use std::io::IsTerminal;
        !self.json && std::io::stderr().is_terminal()
    }
}

/// Why a benchmark could not run or produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A value on the command line is not usable (or the machine cannot do it).
    #[error("{0}")]
    Usage(String),
    /// No connection could be opened.
    #[error("{0}")]
    NoConnection(String),
    /// Connections opened, but every one of them failed.
    #[error("{0}")]
    AllFailed(String),
    /// Reading `/proc` or writing the report failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl BenchError {
    /// Exit codes as for `duplex connect`: 2 usage or could not connect, 3 failed later.
    fn exit_code(&self) -> u8 {
        match self {
            BenchError::Usage(_) | BenchError::NoConnection(_) => 2,
            BenchError::AllFailed(_) | BenchError::Io(_) => 3,
        }
    }
}

/// Runs `duplex bench ...` on a runtime of its own (the thread count is an option).
pub fn main(args: BenchArgs) -> ExitCode {
    let common = match &args.scenario {
        Scenario::Echo(a) => &a.common,
        Scenario::Connect(a) => &a.common,
        Scenario::Idle(a) => &a.common,
        Scenario::Broadcast(a) => &a.common,
        Scenario::Hub(a) => &a.common,
    };
    let threads = common.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    // Every connection is a file descriptor: allow as many as the hard limit does (the
    // scenarios check their own need against it and say how to raise it).
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("duplex: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match args.scenario {
            Scenario::Echo(a) => echo::run(a, threads).await,
            Scenario::Connect(a) => connect::run(a, threads).await,
            Scenario::Idle(a) => idle::run(a, threads).await,
            Scenario::Broadcast(a) => broadcast::run(a, threads).await,
            Scenario::Hub(a) => hub::run(a, threads).await,
        }
    });
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duplex: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Parses a count that must be at least 1 (clap's error names the option; exit code 2).
fn at_least_one<T: TryFrom<u64>>(text: &str) -> Result<T, String> {
    use std::num::IntErrorKind;
    let too_large = || format!("{text} is too large");
    match text.parse::<u64>() {
        Ok(0) => Err("expected a whole number, at least 1".into()),
        Ok(n) => T::try_from(n).map_err(|_| too_large()),
        Err(e) if *e.kind() == IntErrorKind::PosOverflow => Err(too_large()),
        Err(_) => Err("expected a whole number, at least 1".into()),
    }
}

/// Checks the URL before any connection is tried, so a typo is one clear error rather
/// than as many failed connections.
fn check_url(url: &str) -> Result<url::Url, BenchError> {
    let parsed =
        url::Url::parse(url).map_err(|e| BenchError::Usage(format!("invalid URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Err(BenchError::Usage(format!(
            "invalid URL {url:?}: scheme {:?} is not ws:// or wss://",
            parsed.scheme()
        )));
    }
    if !matches!(parsed.host_str(), Some(h) if !h.is_empty()) {
        return Err(BenchError::Usage(format!("invalid URL {url:?}: no host")));
    }
    Ok(parsed)
}

/// Phases of a timed run, shared by its tasks through an `AtomicU8`: traffic that does
/// not count yet, the measured part, and the end.
const WARMUP: u8 = 0;
const MEASURING: u8 = 1;
const STOPPING: u8 = 2;

/// Handshakes in progress at once while a scenario opens its connections.
const CONNECT_CONCURRENCY: usize = 128;

/// File descriptors kept free for the runtime, stdio and the like.
const SPARE_FDS: u64 = 64;

/// Fails with the fix when `sockets` connections would not fit under the limit on open
/// files (whose soft limit [`main`] raised to the hard limit).
fn ensure_fds(sockets: u64, what: &str) -> Result<(), BenchError> {
    let need = sockets + SPARE_FDS;
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    if need <= soft {
        return Ok(());
    }
    Err(BenchError::Usage(format!(
        "{what} needs about {need} open files, but this process may open at most {soft} \
         (hard limit {hard}, see `ulimit -Hn`): raise the hard limit (ulimit -Hn, \
         LimitNOFILE= or /etc/security/limits.conf) or use fewer connections"
    )))
}

/// The RSS in KiB of the process given as `--server-pid`, or a usage error naming it.
fn server_rss_kib(pid: u32) -> Result<u64, BenchError> {
    report::rss_kib(pid).map_err(|e| {
        BenchError::Usage(format!(
            "cannot read the memory of --server-pid {pid} (/proc/{pid}/status): {e}"
        ))
    })
}

/// Validates a number of seconds given on the command line.
fn seconds(value: f64, name: &str, allow_zero: bool) -> Result<std::time::Duration, BenchError> {
    let ok = value.is_finite() && (value > 0.0 || (allow_zero && value == 0.0));
    if !ok || value > 1e9 {
        let least = if allow_zero {
            "0 or more"
        } else {
            "more than 0"
        };
        return Err(BenchError::Usage(format!(
            "{name} {value} must be a number of seconds, {least}"
        )));
    }
    Ok(std::time::Duration::from_secs_f64(value))
}
