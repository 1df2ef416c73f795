//! Runs duplex's client against a real echo server (Python `websockets`, Node `ws`):
//! messages of the edge-case sizes in both types, a fragmented message, ping/pong, and a
//! close with every legal close code. Prints `PASS`/`FAIL` lines and a summary line.
//!
//! Usage: `interop_client URL [--deflate | --no-deflate] [--no-context-takeover]`
//!
//! - `--deflate`: offer permessage-deflate and fail every check whose connection did not
//!   negotiate it.
//! - `--no-deflate`: offer nothing, and fail if compression is in use.
//! - `--no-context-takeover`: ask for no context takeover in both directions.
//!
//! Without a flag the library default applies (deflate offered, not required).

use bytes::Bytes;
use duplex::{ClientBuilder, CloseCode, CloseFrame, DeflateConfig, Message, OpCode};
use std::sync::OnceLock;
use std::time::Duration;

const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

type Ws = duplex::WebSocket<duplex::ClientStream>;

/// What to offer and what to require, from the command line.
struct Options {
    deflate: Option<DeflateConfig>,
    require: Option<bool>,
}

static OPTIONS: OnceLock<Options> = OnceLock::new();

fn parse_options(args: &[String]) -> Options {
    let mut deflate = Some(DeflateConfig::default());
    let mut require = None;
    for arg in args {
        match arg.as_str() {
            "--deflate" => require = Some(true),
            "--no-deflate" => {
                deflate = None;
                require = Some(false);
            }
            "--no-context-takeover" => {
                if let Some(d) = &mut deflate {
                    d.client_no_context_takeover = true;
                    d.server_no_context_takeover = true;
                }
            }
            other => panic!("unknown option {other}"),
        }
    }
    Options { deflate, require }
}

/// Connects with the options, checking compression was (or was not) negotiated.
async fn open(url: &str) -> Result<Ws, String> {
    let options = OPTIONS.get().expect("set in main");
    let (ws, response) = ClientBuilder::new(url)
        .deflate(options.deflate.clone())
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    match options.require {
        Some(want) if want != ws.is_compressing() => Err(format!(
            "permessage-deflate expected {want}, negotiated {:?}",
            response.deflate
        )),
        _ => Ok(ws),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .first()
        .expect("usage: interop_client URL [options]")
        .clone();
    let _ = OPTIONS.set(parse_options(&args[1..]));
    let (mut passed, mut failed) = (0, 0);
    let mut report = |name: String, outcome: Result<(), String>| match outcome {
        Ok(()) => {
            passed += 1;
            println!("PASS {name}");
        }
        Err(e) => {
            failed += 1;
            println!("FAIL {name}: {e}");
        }
    };

    let mut ws = None;
    for size in [0usize, 125, 126, 65535, 65536, 16 << 20] {
        for text in [true, false] {
            let name = format!("{} {size} B", if text { "text" } else { "binary" });
            let outcome = with_connection(&url, &mut ws, async move |ws: &mut Ws| {
                echo_check(ws, text, size).await
            })
            .await;
            report(name, outcome);
        }
    }
    report(
        "fragmented text message".into(),
        with_connection(&url, &mut ws, fragmented_check).await,
    );
    report(
        "ping answered with the same payload".into(),
        with_connection(&url, &mut ws, ping_check).await,
    );
    if let Some(mut ws) = ws.take() {
        let _ = ws.close(None).await;
    }

    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        let outcome = tokio::time::timeout(CHECK_TIMEOUT, close_check(&url, code))
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
        report(format!("close code {code} echoed"), outcome);
    }
    println!("interop: {passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// Runs a check on a shared connection, opening one if needed and dropping it after a
/// failure so the next check starts clean.
async fn with_connection<F>(url: &str, slot: &mut Option<Ws>, check: F) -> Result<(), String>
where
    F: AsyncFnOnce(&mut Ws) -> Result<(), String>,
{
    if slot.is_none() {
        *slot = Some(open(url).await?);
    }
    let ws = slot.as_mut().expect("just set");
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, check(ws))
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
    if outcome.is_err() {
        *slot = None;
    }
    outcome
}

fn payload(text: bool, size: usize) -> Message {
    if text {
        // Multi-byte characters where they fit, padded with ASCII to the exact size.
        let unit = "héllo wörld €𝄞 ";
        let mut s = unit.repeat(size / unit.len());
        s.push_str(&"x".repeat(size - s.len()));
        Message::text(s)
    } else {
        Message::binary((0..size).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>())
    }
}

async fn next_data(ws: &mut Ws) -> Result<Message, String> {
    loop {
        match ws.recv().await {
            Some(Ok(m @ (Message::Text(_) | Message::Binary(_) | Message::Pong(_)))) => {
                return Ok(m)
            }
            Some(Ok(Message::Ping(_))) => continue,
            Some(Ok(other)) => return Err(format!("unexpected {other:?}")),
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection closed".into()),
        }
    }
}

async fn echo_check(ws: &mut Ws, text: bool, size: usize) -> Result<(), String> {
    let sent = payload(text, size);
    ws.send(sent.clone()).await.map_err(|e| e.to_string())?;
    let got = next_data(ws).await?;
    if got == sent {
        Ok(())
    } else {
        Err(format!(
            "echo differs: sent {} B, got {:?} of {} B",
            sent.len(),
            kind(&got),
            got.len()
        ))
    }
}

async fn fragmented_check(ws: &mut Ws) -> Result<(), String> {
    let whole = "fragmented 𝄞 message";
    let bytes = whole.as_bytes();
    // Split inside the 4-byte character, with an empty fragment in the middle.
    let (a, rest) = bytes.split_at(12);
    let (b, c) = rest.split_at(2);
    let send = async {
        ws.send_frame(OpCode::Text, a, false).await?;
        ws.send_frame(OpCode::Continuation, &[], false).await?;
        ws.send_frame(OpCode::Continuation, b, false).await?;
        ws.send_frame(OpCode::Continuation, c, true).await
    };
    send.await.map_err(|e| e.to_string())?;
    match next_data(ws).await? {
        Message::Text(t) if t.as_str() == whole => Ok(()),
        other => Err(format!("got {other:?}")),
    }
}

async fn ping_check(ws: &mut Ws) -> Result<(), String> {
    let body = Bytes::from_static(b"duplex ping \x00\xff");
    ws.send(Message::Ping(body.clone()))
        .await
        .map_err(|e| e.to_string())?;
    match next_data(ws).await? {
        Message::Pong(p) if p == body => Ok(()),
        other => Err(format!("expected the pong, got {other:?}")),
    }
}

async fn close_check(url: &str, code: u16) -> Result<(), String> {
    let mut ws = open(url).await?;
    ws.send(Message::Close(Some(CloseFrame::new(code, "bye"))))
        .await
        .map_err(|e| e.to_string())?;
    let mut echoed = None;
    while let Some(m) = ws.recv().await {
        if let Message::Close(frame) = m.map_err(|e| e.to_string())? {
            echoed = Some(frame);
        }
    }
    match echoed {
        Some(Some(f)) if f.code == CloseCode::from(code) => Ok(()),
        other => Err(format!("expected close {code} back, got {other:?}")),
    }
}

fn kind(m: &Message) -> &'static str {
    match m {
        Message::Text(_) => "text",
        Message::Binary(_) => "binary",
        _ => "control",
    }
}
