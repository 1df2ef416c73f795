//! fastwebsockets echo server for `scripts/compare`, written like the library's own
//! `echo_server` example: a hyper HTTP/1.1 connection upgraded with
//! `fastwebsockets::upgrade`, then a `FragmentCollector` loop (whole messages, UTF-8
//! checked) that writes every text and binary frame back. Automatic close and pong
//! replies are on. Single-threaded (tokio `current_thread`), so pinning the process to
//! one core is a fair comparison.
//!
//! Usage: `fastwebsockets_echo [--host 127.0.0.1] [--port 0]`; prints
//! `listening on ws://127.0.0.1:PORT` once it accepts connections.

use bytes::Bytes;
use clap::Parser;
use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::io::Write;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(about = "fastwebsockets echo server (benchmark comparison)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 9003)]
    port: u16,
}

async fn handle_client(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = fut.await?;
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn server_upgrade(
    mut request: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut request)?;
    tokio::spawn(async move {
        // A client that drops its socket without a close frame is normal under load.
        let _ = handle_client(fut).await;
    });
    Ok(response)
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
                // Every server in the comparison disables Nagle, as `duplex echo` does.
                if tcp.set_nodelay(true).is_err() {
                    continue;
                }
                tokio::spawn(async move {
                    let connection = http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service_fn(server_upgrade))
                        .with_upgrades();
                    let _ = connection.await;
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
