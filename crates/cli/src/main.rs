//! The `duplex` command: `duplex serve` (the hub), `duplex echo` (an echo server),
//! `duplex connect` (an interactive or piped client), `duplex bench` (a load
//! generator) and the hub's tools: `duplex token`, `duplex pub`, `duplex sub`.

mod bench;
mod connect;
mod echo;
mod error;
mod publish;
mod serve;
mod subscribe;
mod token;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "duplex", version, about = "WebSocket server, client and tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub: channels, acknowledged publishes and recovery, for the Centrifugo
    /// SDKs (WebSocket at /connection/websocket, start page at /).
    Serve(serve::ServeArgs),
    /// Run a WebSocket echo server: every text and binary message is sent back.
    Echo(echo::EchoArgs),
    /// Connect to a WebSocket server: lines typed (or piped) become messages.
    Connect(connect::ConnectArgs),
    /// Load generator: message throughput and latency, handshakes per second, memory per
    /// idle connection.
    Bench(bench::BenchArgs),
    /// Publish to a hub's channel through its HTTP API; prints each stored offset.
    Pub(publish::PubArgs),
    /// Print a hub's publications as they arrive; reconnects and recovers.
    Sub(subscribe::SubArgs),
    /// Mint a connection or subscription token (HS256) for the hub, for development.
    Token(token::TokenArgs),
}

/// Colour log lines only on a terminal, and never when `NO_COLOR` is set to anything
/// but the empty string (no-color.org): escape codes in a log file are noise.
fn log_colours() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(log_colours())
        .init();
    let command = match cli.command {
        // The benchmark builds a runtime of its own, with --threads workers.
        Command::Bench(args) => return bench::main(args),
        Command::Token(args) => {
            return token::run(args).unwrap_or_else(|e| {
                eprintln!("duplex: {e}");
                ExitCode::from(e.exit_code())
            })
        }
        other => other,
    };
    // `echo --threads 1` runs on the current thread: one core without cross-thread
    // wake-ups, as the single-core servers it is compared with.
    let threads = match &command {
        Command::Echo(args) => args.threads,
        _ => None,
    };
    let runtime = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(usize::from(n));
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("duplex: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Serve(args) => serve::run(args).await.map(|()| ExitCode::SUCCESS),
            Command::Echo(args) => echo::run(args).await.map(|()| ExitCode::SUCCESS),
            Command::Connect(args) => connect::run(args).await,
            Command::Pub(args) => publish::run(args).await,
            Command::Sub(args) => subscribe::run(args).await,
            Command::Bench(_) | Command::Token(_) => unreachable!("handled above"),
        }
    });
    // A blocking stdin read may still be parked on a runtime thread; don't wait for it.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("duplex: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
