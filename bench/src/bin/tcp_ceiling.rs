//! Loopback TCP throughput, the ceiling for the bandwidth scenario of `scripts/compare`:
//! the same closed-loop echo as `duplex bench echo`, but over plain TCP (no WebSocket
//! framing, masking or UTF-8 checks). Each connection keeps `--depth` chunks of
//! `--write-size` bytes (64 KiB by default) in flight and sends one more for every chunk
//! that comes back; the server echoes (default) or discards (`--mode sink`) what it reads.
//! Both sides run a tokio `current_thread` runtime, like the comparison's echo servers,
//! so a WebSocket server doing the same copies can at best approach this figure.
//!
//! `tcp_ceiling server [--port 0]` prints `listening on tcp://127.0.0.1:PORT`;
//! `tcp_ceiling client 127.0.0.1:PORT [--mode echo|sink] [--connections N] [--depth D]
//! [--duration SECS | --bytes N] [--json]` reports MB/s: 10^6 bytes per second counted in
//! both directions for echo (sent plus echoed back, the way `duplex bench echo` counts its
//! `mb_per_sec`), in one direction for the sink.

use clap::{Parser, Subcommand, ValueEnum};
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

#[derive(Parser)]
#[command(about = "Loopback TCP throughput ceiling (benchmark comparison)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Accept connections and echo or discard what they send (the client chooses).
    Server {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on (0 picks a free one; the address is printed).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Pump data to a `tcp_ceiling server` and report MB/s.
    Client(ClientArgs),
}

#[derive(clap::Args, Clone)]
struct ClientArgs {
    /// Server address, `HOST:PORT` or `tcp://HOST:PORT`.
    addr: String,
    /// `echo`: the server sends everything back (both directions, like the WebSocket echo
    /// scenarios); `sink`: the server discards it (one direction, no flow limit).
    #[arg(long, value_enum, default_value_t = Mode::Echo)]
    mode: Mode,
    /// Connections, each a task of its own.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Chunks each connection keeps in flight in echo mode.
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// Bytes per chunk (one write call).
    #[arg(long, default_value_t = 65536)]
    write_size: usize,
    /// Seconds to send for.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Send this many bytes in total (split over the connections, rounded up to whole
    /// chunks) instead of sending for --duration.
    #[arg(long)]
    bytes: Option<u64>,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Echo,
    Sink,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Echo => "echo",
            Mode::Sink => "sink",
        }
    }
}

/// Read buffer of both sides: larger than one chunk, so a read takes what is queued.
const BUFFER: usize = 256 * 1024;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(async {
        match Cli::parse().command {
            Command::Server { host, port } => server(&host, port).await,
            Command::Client(args) => client(args).await,
        }
    });
    if let Err(e) = result {
        eprintln!("tcp_ceiling: {e}");
        std::process::exit(1);
    }
}

async fn server(host: &str, port: u16) -> io::Result<()> {
    let listener = TcpListener::bind((host, port)).await?;
    println!("listening on tcp://{}", listener.local_addr()?);
    io::stdout().flush()?;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(async move {
                    let _ = serve(stream).await;
                });
            }
            Err(e) => {
                eprintln!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// The first byte names the mode (`e` or `s`); then echo or discard until end of file,
/// and shut the sending side so the client sees the end too.
async fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let echo = stream.read_u8().await? == b'e';
    let mut buffer = vec![0u8; BUFFER];
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        if echo {
            stream.write_all(&buffer[..n]).await?;
        }
    }
    stream.shutdown().await
}

async fn client(args: ClientArgs) -> io::Result<()> {
    let addr = args.addr.strip_prefix("tcp://").unwrap_or(&args.addr);
    let connections = args.connections.max(1);
    let write_size = args.write_size.max(1);
    let mut streams = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        stream
            .write_u8(match args.mode {
                Mode::Echo => b'e',
                Mode::Sink => b's',
            })
            .await?;
        streams.push(stream);
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration.max(0.0));
    // Whole chunks per connection when the total is bounded.
    let chunks = args.bytes.map(|total| {
        let per_connection = total.div_ceil(connections as u64);
        per_connection.div_ceil(write_size as u64)
    });
    let pumps: Vec<_> = streams
        .into_iter()
        .map(|stream| {
            tokio::spawn(pump(
                stream,
                args.mode,
                write_size,
                args.depth.max(1),
                deadline,
                chunks,
            ))
        })
        .collect();
    let (mut sent, mut received) = (0u64, 0u64);
    for pump in pumps {
        let (s, r) = pump.await.map_err(io::Error::other)??;
        sent += s;
        received += r;
    }
    let elapsed = start.elapsed().as_secs_f64();
    if args.mode == Mode::Echo && received != sent {
        return Err(io::Error::other(format!(
            "sent {sent} bytes but {received} came back"
        )));
    }
    // Echo: both directions, like `duplex bench echo`; sink: what was sent.
    let carried = match args.mode {
        Mode::Echo => sent + received,
        Mode::Sink => sent,
    };
    let mb_per_sec = carried as f64 / elapsed / 1e6;
    let mode = args.mode.name();
    let depth = args.depth.max(1);
    if args.json {
        println!(
            "{{\"scenario\":\"tcp_ceiling\",\"mode\":\"{mode}\",\"connections\":{connections},\"depth\":{depth},\"write_size\":{write_size},\"bytes_sent\":{sent},\"bytes_received\":{received},\"elapsed_s\":{elapsed:.6},\"mb_per_sec\":{mb_per_sec:.3}}}"
        );
    } else {
        println!(
            "tcp {mode}, {connections} connection(s), depth {depth}, {write_size}-byte chunks: {sent} bytes sent, {received} received in {elapsed:.3} s = {mb_per_sec:.1} MB/s"
        );
    }
    Ok(())
}

/// One connection: a writer keeping `depth` chunks in flight (echo) or writing freely
/// (sink) until the deadline or the chunk budget, then shutting its side; a reader counting
/// what comes back until the server shuts its side, after everything was read (and, for
/// echo, written back).
async fn pump(
    stream: TcpStream,
    mode: Mode,
    write_size: usize,
    depth: usize,
    deadline: Instant,
    chunks: Option<u64>,
) -> io::Result<(u64, u64)> {
    let (mut reader, mut writer) = stream.into_split();
    let in_flight = Arc::new(Semaphore::new(depth));
    let returned = in_flight.clone();
    let receiving = tokio::spawn(async move {
        let mut buffer = vec![0u8; BUFFER];
        let (mut total, mut partial) = (0u64, 0usize);
        loop {
            let n = reader.read(&mut buffer).await?;
            if n == 0 {
                return Ok::<u64, io::Error>(total);
            }
            total += n as u64;
            partial += n;
            // One more chunk may go out for every chunk that came back.
            returned.add_permits(partial / write_size);
            partial %= write_size;
        }
    });
    let chunk = vec![0x5au8; write_size];
    let mut sent = 0u64;
    let mut count = 0u64;
    loop {
        match chunks {
            Some(limit) if count >= limit => break,
            None if Instant::now() >= deadline => break,
            _ => {}
        }
        if mode == Mode::Echo {
            in_flight
                .acquire()
                .await
                .map_err(io::Error::other)?
                .forget();
        }
        writer.write_all(&chunk).await?;
        sent += write_size as u64;
        count += 1;
    }
    writer.shutdown().await?;
    let received = receiving.await.map_err(io::Error::other)??;
    Ok((sent, received))
}
