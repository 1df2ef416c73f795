//! tokio-tungstenite echo server for `scripts/compare`, written like the library's own
//! `echo-server` example: `accept_async` with the default configuration, then a
//! `next`/`send` loop that returns every text and binary message. Single-threaded
//! (tokio `current_thread`), so pinning the process to one core is a fair comparison.
//!
//! Usage: `tungstenite_echo [--host 127.0.0.1] [--port 0]`; prints
//! `listening on ws://127.0.0.1:PORT` once it accepts connections.

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use std::io::Write;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite;

#[derive(Parser)]
#[command(about = "tokio-tungstenite echo server (benchmark comparison)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 9002)]
    port: u16,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind((args.host.as_str(), args.port)).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                tokio::spawn(async move {
                    // Errors end one connection (a client that drops its socket without
                    // a close frame is normal under load); stay quiet like the example.
                    let _ = echo(tcp).await;
                });
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Err(e) => {
                eprintln!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn echo(tcp: TcpStream) -> Result<(), tungstenite::Error> {
    // Every server in the comparison disables Nagle, as `duplex echo` does.
    tcp.set_nodelay(true)?;
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    while let Some(message) = ws.next().await {
        let message = message?;
        // Pings are answered and close frames echoed by tungstenite itself.
        if message.is_text() || message.is_binary() {
            ws.send(message).await?;
        }
    }
    Ok(())
}
