//! A chat room on axum: `GET /` serves a small HTML page, `GET /ws` upgrades with
//! `duplex::axum::WebSocketUpgrade`, and every text message is broadcast to all
//! connected clients through a `tokio::sync::broadcast` channel.
//!
//! Usage: `cargo run -p duplex --example axum_chat [ADDR]` (default `127.0.0.1:3000`),
//! then open `http://127.0.0.1:3000/` in two browser tabs, or
//! `duplex connect ws://127.0.0.1:3000/ws`.

use axum::extract::State;
use axum::response::{Html, Response};
use axum::routing::get;
use axum::Router;
use duplex::axum::{Upgraded, WebSocketUpgrade};
use duplex::{Config, Message, WebSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Shared by every connection.
struct Room {
    /// Every line said in the room, to all members.
    lines: broadcast::Sender<String>,
    /// For naming guests.
    next_guest: AtomicUsize,
    /// Per-connection settings: chat lines are short.
    config: Config,
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>duplex chat</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
  #log { border: 1px solid #ccc; height: 20em; overflow-y: auto; padding: .5em; }
  #log p { margin: .2em 0; }
  form { display: flex; gap: .5em; margin-top: .5em; }
  #text { flex: 1; }
</style>
<h1>duplex chat</h1>
<div id="log"></div>
<form id="form"><input id="text" autocomplete="off" autofocus><button>Send</button></form>
<script>
  const log = document.getElementById("log");
  const show = (line) => {
    const p = document.createElement("p");
    p.textContent = line;
    log.append(p);
    log.scrollTop = log.scrollHeight;
  };
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws`, ["chat"]);
  socket.onmessage = (event) => show(event.data);
  socket.onclose = (event) => show(`(disconnected: ${event.code} ${event.reason})`);
  document.getElementById("form").onsubmit = (event) => {
    event.preventDefault();
    const text = document.getElementById("text");
    if (text.value && socket.readyState === WebSocket.OPEN) socket.send(text.value);
    text.value = "";
  };
</script>
</html>
"#;

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn ws(State(room): State<Arc<Room>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .protocols(["chat"])
        .config(room.config.clone())
        .on_upgrade(move |socket| chat(socket, room))
}

/// One member: their lines go to the room, the room's lines come to them.
async fn chat(socket: WebSocket<Upgraded>, room: Arc<Room>) {
    let name = format!(
        "guest-{}",
        room.next_guest.fetch_add(1, Ordering::Relaxed) + 1
    );
    let mut lines = room.lines.subscribe();
    let (mut reader, mut writer) = socket.split();
    let welcome = format!("you are {name}");
    if writer.send(Message::text(welcome)).await.is_err() {
        return;
    }
    let _ = room.lines.send(format!("{name} joined"));
    let mut forward = tokio::spawn(async move {
        loop {
            let line = match lines.recv().await {
                Ok(line) => line,
                Err(broadcast::error::RecvError::Lagged(n)) => format!("({n} lines skipped)"),
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if writer.send(Message::text(line)).await.is_err() {
                break;
            }
        }
    });
    loop {
        tokio::select! {
            message = reader.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    let _ = room.lines.send(format!("{name}: {}", text.as_str()));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::info!(%name, error = %e, "connection failed");
                    break;
                }
                None => break,
            },
            // The writer failed: the peer is gone.
            _ = &mut forward => break,
        }
    }
    forward.abort();
    let _ = room.lines.send(format!("{name} left"));
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
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let mut config = Config::default();
    config.limits.max_message_size = 16 << 10;
    config.limits.max_frame_size = 16 << 10;
    let room = Arc::new(Room {
        lines: broadcast::channel(256).0,
        next_guest: AtomicUsize::new(0),
        config,
    });
    let app = Router::new()
        .route("/", get(page))
        .route("/ws", get(ws))
        .with_state(room);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("axum_chat listening on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await
}
