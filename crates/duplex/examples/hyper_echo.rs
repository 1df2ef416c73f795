//! A hyper 1.x server that speaks WebSocket and HTTP on one port: `/` upgrades to a
//! WebSocket echo, any other path (or a plain GET of `/`) gets a plain-text answer.
//!
//! Usage: `cargo run -p duplex --example hyper_echo [ADDR]` (default `127.0.0.1:9001`),
//! then `duplex connect ws://127.0.0.1:9001/` or `curl http://127.0.0.1:9001/status`.

use bytes::Bytes;
use duplex::{Accept, Config};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use tokio::net::TcpListener;

async fn handle(mut request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    if path != "/" || !duplex::hyper::is_upgrade_request(&request) {
        let (status, body) = match path.as_str() {
            "/" => (
                StatusCode::OK,
                "duplex hyper_echo: connect a WebSocket client to ws://this-host/\n".to_owned(),
            ),
            "/status" => (StatusCode::OK, "ok\n".to_owned()),
            _ => (StatusCode::NOT_FOUND, format!("nothing at {path}\n")),
        };
        let mut response = Response::new(Full::from(body));
        *response.status_mut() = status;
        return Ok(response);
    }
    // Offer the `echo` subprotocol to clients that ask for it; deflate and limits come
    // from the Config, as for `duplex::accept_with`.
    let upgraded = duplex::hyper::upgrade_with(&mut request, Config::default(), |req| {
        let accept = Accept::default();
        Ok(match req.protocols().any(|p| p == "echo") {
            true => accept.protocol("echo"),
            false => accept,
        })
    });
    match upgraded {
        Ok((response, pending)) => {
            tokio::spawn(async move {
                let result = async {
                    let mut ws = pending.await?;
                    tracing::info!(compressing = ws.is_compressing(), "WebSocket opened");
                    while let Some(message) = ws.recv().await {
                        let message = message?;
                        if message.is_data() {
                            ws.send(message).await?;
                        }
                    }
                    Ok::<_, duplex::Error>(())
                };
                match result.await {
                    Ok(()) => tracing::info!("WebSocket closed"),
                    Err(e) => tracing::info!(error = %e, "WebSocket ended with an error"),
                }
            });
            Ok(response)
        }
        Err(rejection) => Ok(rejection.into_response()),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr).await?;
    println!(
        "hyper_echo listening on http://{0} (WebSocket: ws://{0}/)",
        listener.local_addr()?
    );
    loop {
        let (tcp, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let served = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service_fn(handle))
                .with_upgrades()
                .await;
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "HTTP connection failed");
            }
        });
    }
}
