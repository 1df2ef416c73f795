//! `duplex echo`: an echo server for tests, demos and conformance runs.

mod relay;

use crate::error::CliError;
use duplex::tls::tokio_rustls::{server::TlsStream, TlsAcceptor};
use duplex::WebSocket;
use duplex::{Config, Limits, Message};
use futures_util::{Sink, StreamExt};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

#[derive(clap::Args)]
pub struct EchoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 9001)]
    port: u16,
    /// Largest message accepted, in bytes (bigger ones are closed with 1009).
    #[arg(long, default_value_t = Limits::default().max_message_size)]
    max_message: usize,
    /// Seconds a client has for its TLS handshake, and again for its WebSocket
    /// handshake; an upgrade request not complete in time is answered 408 and
    /// disconnected.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_secs)]
    handshake_timeout: f64,
    /// Decline permessage-deflate offers.
    #[arg(long)]
    no_deflate: bool,
    /// Accept permessage-deflate without context takeover in either direction: less
    /// memory per idle connection, a lower compression ratio.
    #[arg(long, conflicts_with = "no_deflate")]
    no_context_takeover: bool,
    /// Relay instead of echo: every message goes to every other connection (one room,
    /// each message encoded once for all; a connection that falls 4,096 messages behind
    /// is closed with 1008).
    #[arg(long)]
    broadcast: bool,
    /// Worker threads (default: one per core); 1 serves every connection on the main
    /// thread.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Serve wss:// with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

pub async fn run(args: EchoArgs) -> Result<(), CliError> {
    // Load the certificate before binding, so a bad file fails fast with its name.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            duplex::ServerTls::new(cert, key)
                .acceptor()
                .map_err(CliError::Tls)?,
        ),
        _ => None,
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let addr = format!("{}:{}", args.host, args.port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| CliError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener.local_addr()?;
    // Scripts read this line to learn the port when --port 0 is used.
    println!("duplex echo listening on {scheme}://{local}");
    std::io::stdout().flush()?;
    tracing::info!(%local, "listening");
    let mut config =
        Config::default().handshake_timeout(Duration::from_secs_f64(args.handshake_timeout));
    config.limits.max_message_size = args.max_message;
    config.limits.max_frame_size = config.limits.max_frame_size.min(args.max_message);
    if args.no_deflate {
        config.deflate = None;
    } else if let Some(d) = &mut config.deflate {
        d.server_no_context_takeover = args.no_context_takeover;
        d.client_no_context_takeover = args.no_context_takeover;
    }
    // One copy for all connections: each holds a pointer to it.
    let config = Arc::new(config);
    let room = args.broadcast.then(relay::Room::new);
    let mut accept_errors = AcceptErrors::default();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    accept_errors.recovered();
                    let config = config.clone();
                    if let Some(room) = &room {
                        tokio::spawn(relay_connection(tcp, peer, config, tls.clone(), room.join()));
                        continue;
                    }
                    match &tls {
                        Some(acceptor) => {
                            let opening = open_tls(acceptor.clone(), tcp, peer, config);
                            tokio::spawn(EchoConnection::Opening(Box::pin(opening)));
                        }
                        None => {
                            let opening = open(tcp, peer, config);
                            tokio::spawn(EchoConnection::Opening(Box::pin(opening)));
                        }
                    }
                }
                // Out of file descriptors and the like: log, keep serving the others.
                Err(e) => {
                    if accept_errors.failed(&e) {
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            },
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("interrupted, stopping");
                return Ok(());
            }
        }
    }
}

/// Pause after an accept error that is not about one connection (EMFILE, ENFILE,
/// ENOBUFS, ENOMEM): the connection waits in the backlog and an immediate retry would fail
/// the same way, spinning a core. Connections already open are served meanwhile.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Accept errors are logged at most this often, with the count of those in between.
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Accept errors, logged rate-limited: a server out of file descriptors fails every
/// accept until a connection ends, and each would otherwise be a log line.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    /// Records (and maybe logs) an accept error; `true` when the loop should back off.
    fn failed(&mut self, error: &std::io::Error) -> bool {
        use std::io::ErrorKind::*;
        // A client that reset before it was accepted concerns that client only: no
        // back-off, and only a debug line. The others (EMFILE and the like) last until
        // something is freed.
        if matches!(
            error.kind(),
            ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
        ) {
            tracing::debug!(%error, "accept failed for one connection");
            return false;
        }
        let now = Instant::now();
        if self
            .last_logged
            .is_some_and(|at| now.duration_since(at) < ACCEPT_LOG_INTERVAL)
        {
            self.unlogged += 1;
        } else {
            let unlogged = std::mem::take(&mut self.unlogged);
            tracing::warn!(%error, unlogged, "accept failed; retrying every {ACCEPT_BACKOFF:?}, logging at most every {ACCEPT_LOG_INTERVAL:?}");
            self.last_logged = Some(now);
        }
        true
    }

    /// A connection was accepted: says so once after failures that backed off.
    fn recovered(&mut self) {
        if self.last_logged.take().is_some() {
            let unlogged = std::mem::take(&mut self.unlogged);
            tracing::warn!(unlogged, "accepting connections again");
        }
    }
}

/// Parses a positive number of seconds.
fn parse_secs(arg: &str) -> Result<f64, String> {
    match arg.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() && secs < 1e9 => Ok(secs),
        _ => Err(format!("{arg:?} is not a positive number of seconds")),
    }
}

/// A connection of the broadcast room: handshakes, then the relay.
async fn relay_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    config: Arc<Config>,
    tls: Option<TlsAcceptor>,
    member: relay::Member,
) {
    match tls {
        Some(acceptor) => {
            if let Some(ws) = open_tls(acceptor, tcp, peer, config).await {
                member.serve(ws).await;
            }
        }
        None => {
            if let Some(ws) = open(tcp, peer, config).await {
                member.serve(ws).await;
            }
        }
    }
}

/// The opening handshake of a `ws://` connection; `None` when it failed (logged).
async fn open(
    tcp: TcpStream,
    peer: SocketAddr,
    config: Arc<Config>,
) -> Option<WebSocket<TcpStream>> {
    let opened = async {
        tcp.set_nodelay(true)?;
        accept(tcp, peer, config).await
    };
    opened.await.inspect_err(|e| log_failed_open(peer, e)).ok()
}

/// The TLS and opening handshakes of a `wss://` connection; `None` when one failed
/// (logged).
async fn open_tls(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    config: Arc<Config>,
) -> Option<WebSocket<TlsStream<TcpStream>>> {
    let opened = async {
        tcp.set_nodelay(true)?;
        let tls = duplex::tls::accept(&acceptor, tcp, config.handshake_timeout).await?;
        accept(tls, peer, config).await
    };
    opened.await.inspect_err(|e| log_failed_open(peer, e)).ok()
}

async fn accept<S>(
    stream: S,
    peer: SocketAddr,
    config: Arc<Config>,
) -> Result<WebSocket<S>, duplex::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    duplex::accept_with(stream, config, |request| {
        tracing::info!(%peer, path = request.path(), origin = ?request.origin(), "connection opened");
        Ok(duplex::Accept::default())
    })
    .await
}

fn log_failed_open(peer: SocketAddr, error: &duplex::Error) {
    tracing::info!(%peer, %error, "connection ended with an error");
}

/// The opening handshakes, boxed: large, and over once the connection is open.
type Opening<S> = Pin<Box<dyn Future<Output = Option<WebSocket<S>>> + Send>>;

/// One connection's task: its handshakes, then the echo, logged when it ends.
///
/// Written as a state machine by hand because every byte of it is kept per idle
/// connection: nested `async` functions keep their arguments in slots of their own
/// beside the futures they are moved into (rust-lang/rust#62958), which made this task
/// three times the size of the WebSocket it serves. For the same reason it does not keep
/// the peer's address: the end of the connection is logged with the address the socket
/// still reports.
// Not boxed: the open state is the one that lasts, and boxing it would add an allocation.
#[allow(clippy::large_enum_variant)]
enum EchoConnection<S> {
    Opening(Opening<S>),
    Open(WebSocket<S>),
}

impl<S> Future for EchoConnection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + PeerAddr,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            match this {
                EchoConnection::Opening(opening) => match ready!(opening.as_mut().poll(cx)) {
                    Some(ws) => *this = EchoConnection::Open(ws),
                    None => return Poll::Ready(()),
                },
                EchoConnection::Open(ws) => {
                    let result = ready!(poll_echo(ws, cx));
                    let peer = ws.get_ref().peer_addr();
                    let peer = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
                    match result {
                        Ok(()) => tracing::info!(%peer, "connection closed"),
                        Err(e) => {
                            tracing::info!(%peer, error = %e, "connection ended with an error")
                        }
                    }
                    return Poll::Ready(());
                }
            }
        }
    }
}

/// The peer's address as the socket reports it (`None` once the socket has lost it).
pub trait PeerAddr {
    fn peer_addr(&self) -> Option<SocketAddr>;
}

impl PeerAddr for TcpStream {
    fn peer_addr(&self) -> Option<SocketAddr> {
        TcpStream::peer_addr(self).ok()
    }
}

impl PeerAddr for TlsStream<TcpStream> {
    fn peer_addr(&self) -> Option<SocketAddr> {
        self.get_ref().0.peer_addr().ok()
    }
}

/// Echoes data messages until the peer closes; `Ready` when the connection ended.
///
/// Room in the write queue is awaited before each message is taken, so no message waits
/// in between. Replies are fed, not flushed one by one: receiving flushes them before it
/// waits for more, so the echoes of a burst of messages read at once leave in one write.
fn poll_echo<S>(ws: &mut WebSocket<S>, cx: &mut Context<'_>) -> Poll<Result<(), duplex::Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        ready!(Pin::new(&mut *ws).poll_ready(cx))?;
        match ready!(ws.poll_next_unpin(cx)) {
            Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                Pin::new(&mut *ws).start_send(m)?
            }
            Some(Ok(Message::Close(frame))) => tracing::debug!(?frame, "peer closed"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Poll::Ready(Err(e)),
            None => return Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle plain connection's task is its WebSocket and nothing more. Tokio allocates
    /// a task in 128-byte steps; with its own ~300 bytes, a future of up to 280 bytes
    /// (measured with tokio 1.54) stays in the step that keeps `duplex echo` near 1 KiB per
    /// idle connection (see BENCHMARKS.md), so this guards both sizes.
    #[test]
    fn an_idle_connection_task_is_its_websocket() {
        let task = std::mem::size_of::<EchoConnection<TcpStream>>();
        let ws = std::mem::size_of::<WebSocket<TcpStream>>();
        eprintln!("task {task} B, WebSocket {ws} B");
        assert_eq!(task, ws, "the task keeps state beside the WebSocket");
        assert!(ws <= 280, "WebSocket<TcpStream> grew to {ws} B");
    }
}
