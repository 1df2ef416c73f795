//! `duplex echo`: an echo server for tests, demos and conformance runs.

use crate::error::CliError;
use duplex::{Config, Limits, Message};
use futures_util::{FutureExt, StreamExt};
use std::io::Write;
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
    /// Decline permessage-deflate offers.
    #[arg(long)]
    no_deflate: bool,
    /// Accept permessage-deflate without context takeover in either direction: less
    /// memory per idle connection, a lower compression ratio.
    #[arg(long, conflicts_with = "no_deflate")]
    no_context_takeover: bool,
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
    let mut config = Config::default();
    config.limits.max_message_size = args.max_message;
    config.limits.max_frame_size = config.limits.max_frame_size.min(args.max_message);
    if args.no_deflate {
        config.deflate = None;
    } else if let Some(d) = &mut config.deflate {
        d.server_no_context_takeover = args.no_context_takeover;
        d.client_no_context_takeover = args.no_context_takeover;
    }
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let config = config.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        // Boxed: the TLS path's state is large, and a plain
                        // connection's task should not reserve room for it.
                        let served = match tls {
                            Some(acceptor) => Box::pin(serve_tls(&acceptor, tcp, config)).await,
                            None => serve(tcp, config).await,
                        };
                        match served {
                            Ok(()) => tracing::info!(%peer, "connection closed"),
                            Err(e) => tracing::info!(%peer, error = %e, "connection ended with an error"),
                        }
                    });
                }
                // Out of file descriptors and the like: log, keep serving the others.
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("interrupted, stopping");
                return Ok(());
            }
        }
    }
}

async fn serve_tls(
    acceptor: &duplex::tls::tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    config: Config,
) -> Result<(), duplex::Error> {
    tcp.set_nodelay(true)?;
    let tls = duplex::tls::accept(acceptor, tcp, config.handshake_timeout).await?;
    echo(tls, config).await
}

async fn serve(tcp: TcpStream, config: Config) -> Result<(), duplex::Error> {
    tcp.set_nodelay(true)?;
    echo(tcp, config).await
}

async fn echo<S>(stream: S, config: Config) -> Result<(), duplex::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut ws = duplex::accept_with(stream, config, |request| {
        tracing::info!(path = request.path(), origin = ?request.origin(), "connection opened");
        Ok(duplex::Accept::default())
    })
    .await?;
    while let Some(message) = ws.next().await {
        reply(&mut ws, message?).await?;
        // Echo everything already received before flushing once: one write for a burst
        // of small messages instead of one per message.
        while let Some(next) = ws.next().now_or_never() {
            match next {
                Some(message) => reply(&mut ws, message?).await?,
                None => return Ok(()),
            }
        }
        ws.flush().await?;
    }
    Ok(())
}

/// Queues the echo of a data message (flushed by the caller).
async fn reply<S>(ws: &mut duplex::WebSocket<S>, message: Message) -> Result<(), duplex::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match message {
        m @ (Message::Text(_) | Message::Binary(_)) => ws.feed(m).await,
        Message::Close(frame) => {
            tracing::debug!(?frame, "peer closed");
            Ok(())
        }
        _ => Ok(()),
    }
}
