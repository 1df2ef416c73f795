//! `duplex sub URL CHANNEL...`: prints a hub's publications as they arrive, one per line,
//! and keeps going across disconnects: it reconnects with backoff and recovers every
//! channel from the last offset it printed, or says on stderr that data was missed.

use crate::error::CliError;
use duplex::{ClientBuilder, ClientStream, Message, WebSocket};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
#[command(
    after_help = "Exit codes: 0 interrupted (Ctrl-C), 2 bad usage or the hub refused the \
credentials, 3 the hub ended the connection for good (a disconnect code that asks not to \
reconnect)."
)]
pub struct SubArgs {
    /// The hub: ws://HOST:PORT/connection/websocket (an http://HOST:PORT URL is taken to
    /// mean that).
    url: String,
    /// Channels to subscribe to.
    #[arg(required = true)]
    channels: Vec<String>,
    /// Connection token (without it: anonymous, where the hub allows that).
    #[arg(long, value_name = "JWT", default_value = "")]
    token: String,
    /// Start after this position (`OFFSET:EPOCH`, as printed with --json): the
    /// publications since then are printed first.
    #[arg(long, value_name = "OFFSET:EPOCH")]
    since: Option<String>,
    /// Print each publication as a JSON object with its channel, offset and epoch instead
    /// of its data alone.
    #[arg(long)]
    json: bool,
}

/// Where each channel's stream is: the last offset printed and its epoch.
#[derive(Clone, Debug, Default)]
struct Position {
    offset: u64,
    epoch: String,
}

/// How a connection ended.
enum End {
    /// Lost (network, restart, a disconnect that asks to reconnect): try again.
    Lost(String),
    /// The hub refused the credentials.
    Refused(String),
    /// The hub ended it for good.
    Final(String),
}

/// The WebSocket endpoint for `url`.
fn endpoint(url: &str) -> Result<String, CliError> {
    let parsed =
        url::Url::parse(url).map_err(|e| CliError::Usage(format!("invalid URL {url:?}: {e}")))?;
    let base = |scheme: &str| {
        let host = parsed.host_str().unwrap_or_default();
        let port = parsed.port().map_or(String::new(), |p| format!(":{p}"));
        format!("{scheme}://{host}{port}/connection/websocket")
    };
    match parsed.scheme() {
        "ws" | "wss" => Ok(url.to_owned()),
        "http" => Ok(base("ws")),
        "https" => Ok(base("wss")),
        other => Err(CliError::Usage(format!(
            "invalid URL {url:?}: scheme {other:?} is not ws, wss, http or https"
        ))),
    }
}

pub async fn run(args: SubArgs) -> Result<ExitCode, CliError> {
    let url = endpoint(&args.url)?;
    let start = match &args.since {
        None => None,
        Some(since) => {
            let (offset, epoch) = since
                .split_once(':')
                .and_then(|(o, e)| Some((o.parse::<u64>().ok()?, e)))
                .ok_or_else(|| CliError::Usage(format!("--since {since:?} is not OFFSET:EPOCH")))?;
            Some(Position {
                offset,
                epoch: epoch.to_owned(),
            })
        }
    };
    let mut positions: BTreeMap<String, Option<Position>> = args
        .channels
        .iter()
        .map(|c| (c.clone(), start.clone()))
        .collect();
    let mut backoff = Duration::from_millis(250);
    loop {
        let end = tokio::select! {
            end = session(&url, &args, &mut positions, &mut backoff) => end,
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        };
        match end {
            End::Refused(why) => return Err(CliError::Usage(format!("the hub refused: {why}"))),
            End::Final(why) => {
                return Err(CliError::Hub(format!(
                    "the hub ended the connection: {why}"
                )))
            }
            End::Lost(why) => {
                // Exponential backoff with full jitter, reset by a session that connected.
                let wait = backoff.mul_f64(rand::rng().random_range(0.5..1.0));
                eprintln!("duplex: {why}; reconnecting in {:.1} s", wait.as_secs_f64());
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// One connection: connect, subscribe (recovering each channel), print until it ends.
async fn session(
    url: &str,
    args: &SubArgs,
    positions: &mut BTreeMap<String, Option<Position>>,
    backoff: &mut Duration,
) -> End {
    let mut ws = match ClientBuilder::new(url).connect().await {
        Ok((ws, _)) => ws,
        Err(e) => return End::Lost(format!("cannot connect to {url}: {e}")),
    };
    let mut commands =
        vec![json!({"id": 1, "connect": {"token": args.token, "name": "duplex-sub"}})];
    for (i, (channel, position)) in positions.iter().enumerate() {
        let mut subscribe = json!({"channel": channel});
        if let Some(p) = position {
            subscribe["recover"] = json!(true);
            subscribe["offset"] = json!(p.offset);
            subscribe["epoch"] = json!(p.epoch);
        }
        commands.push(json!({"id": 2 + i, "subscribe": subscribe}));
    }
    let text: Vec<String> = commands.iter().map(Value::to_string).collect();
    if let Err(e) = ws.send(Message::text(text.join("\n"))).await {
        return End::Lost(format!("connection lost: {e}"));
    }
    let channels: Vec<String> = positions.keys().cloned().collect();
    loop {
        let text = match ws.recv().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) =
                    frame.map_or((1005, String::new()), |f| (f.code.as_u16(), f.reason));
                return ending(code, &reason);
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return End::Lost(format!("connection lost: {e}")),
            None => return End::Lost("connection lost".into()),
        };
        for line in text.as_str().split('\n') {
            let Ok(value) = serde_json::from_str::<Value>(line) else {
                return End::Final(format!("the hub sent something that is not JSON: {line}"));
            };
            if value.as_object().is_some_and(|o| o.is_empty()) {
                if let Err(e) = pong(&mut ws).await {
                    return End::Lost(format!("connection lost: {e}"));
                }
                continue;
            }
            if let Some(end) = handle(&value, &channels, positions, args.json, backoff) {
                return end;
            }
        }
    }
}

async fn pong(ws: &mut WebSocket<ClientStream>) -> Result<(), duplex::Error> {
    ws.send(Message::text("{}")).await
}

/// The end a close code means: 3500-3999 and 4500-4999 ask not to reconnect, and of
/// those 3500 (invalid token) is a refusal of the credentials.
fn ending(code: u16, reason: &str) -> End {
    let why = format!("{code} {reason}");
    match code {
        3500 => End::Refused(why),
        3500..=3999 | 4500..=4999 => End::Final(why),
        _ => End::Lost(format!("disconnected ({why})")),
    }
}

/// Handles one reply or push; `Some` when it ends the session.
fn handle(
    value: &Value,
    channels: &[String],
    positions: &mut BTreeMap<String, Option<Position>>,
    json: bool,
    backoff: &mut Duration,
) -> Option<End> {
    let id = value["id"].as_u64().unwrap_or(0);
    if let Some(error) = value.get("error") {
        let code = error["code"].as_u64().unwrap_or(0);
        let what = if id == 1 {
            "connect".to_owned()
        } else {
            format!(
                "subscribe to {}",
                channels.get(id as usize - 2).map_or("?", String::as_str)
            )
        };
        let why = format!(
            "{what}: error {code} {}",
            error["message"].as_str().unwrap_or("")
        );
        return Some(match code {
            // Unauthorized, permission denied, token expired: the credentials.
            101 | 103 | 109 => End::Refused(why),
            100 | 111 => End::Lost(why),
            _ => End::Final(why),
        });
    }
    if id == 1 && value.get("connect").is_some() {
        *backoff = Duration::from_millis(250);
        return None;
    }
    if id >= 2 {
        let channel = channels.get(id as usize - 2)?;
        let result = value.get("subscribe")?;
        let epoch = result["epoch"].as_str().unwrap_or_default().to_owned();
        let top = result["offset"].as_u64().unwrap_or(0);
        let asked = positions.get(channel).cloned().flatten();
        if result["was_recovering"].as_bool() == Some(true)
            && result["recovered"].as_bool() != Some(true)
        {
            let from = asked.map_or("?".into(), |p| format!("{}:{}", p.offset, p.epoch));
            eprintln!("duplex: {channel}: missed data: the hub could not recover from {from}; going on from {top}:{epoch}");
        }
        for publication in result["publications"].as_array().into_iter().flatten() {
            print(channel, &epoch, publication, json);
        }
        eprintln!("duplex: subscribed to {channel} at {top}:{epoch}");
        positions.insert(channel.clone(), Some(Position { offset: top, epoch }));
        return None;
    }
    if let Some(push) = value.get("push") {
        if let Some(disconnect) = push.get("disconnect") {
            let code = disconnect["code"].as_u64().unwrap_or(0) as u16;
            return Some(ending(code, disconnect["reason"].as_str().unwrap_or("")));
        }
        let channel = push["channel"].as_str()?;
        let publication = push.get("pub")?;
        let slot = positions.get_mut(channel)?;
        let position = slot.get_or_insert_with(Position::default);
        let offset = publication["offset"].as_u64().unwrap_or(0);
        if offset > position.offset {
            position.offset = offset;
            print(channel, &position.epoch.clone(), publication, json);
        }
    }
    None
}

fn print(channel: &str, epoch: &str, publication: &Value, json: bool) {
    let line = if json {
        let mut out = json!({"channel": channel, "offset": publication["offset"], "epoch": epoch, "data": publication["data"]});
        if let Some(info) = publication.get("info") {
            out["info"] = info.clone();
        }
        out.to_string()
    } else {
        publication["data"].to_string()
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}
