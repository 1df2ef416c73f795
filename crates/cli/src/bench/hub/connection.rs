//! One connection to the hub in its protocol: open it, send, and read its events while
//! answering the hub's pings.

use super::codec::{Event, Protocol};
use super::Run;
use duplex::{ClientStream, Message, WebSocket};

/// Opens a connection to endpoint `endpoint` (round robin) and sends `connect`; the
/// socket once the hub accepted it.
pub(super) async fn open(run: &Run, endpoint: usize) -> Result<WebSocket<ClientStream>, String> {
    let (mut ws, _) = run.builders[endpoint % run.builders.len()]
        .clone()
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    if let Some(connect) = run.protocol.connect(&run.token) {
        send(&mut ws, connect).await?;
    }
    next_reply(run.protocol, &mut ws, 1)
        .await?
        .map_err(|e| format!("connect refused: {e}"))?;
    Ok(ws)
}

pub(super) async fn send(ws: &mut WebSocket<ClientStream>, message: Message) -> Result<(), String> {
    ws.send(message).await.map_err(|e| e.to_string())
}

/// Reads until the reply to command `id` (the stream's top offset for a subscribe, or
/// the hub's refusal), answering the hub's pings.
pub(super) async fn next_reply(
    protocol: Protocol,
    ws: &mut WebSocket<ClientStream>,
    id: u32,
) -> Result<Result<u64, String>, String> {
    loop {
        let events = read_events(protocol, ws).await?;
        answer_pings(protocol, ws, &events).await?;
        for event in events {
            if let Event::Reply { id: got, outcome } = event {
                if got == id {
                    return Ok(outcome);
                }
            }
        }
    }
}

/// The hub disconnects a client that does not answer its pings.
pub(super) async fn answer_pings(
    protocol: Protocol,
    ws: &mut WebSocket<ClientStream>,
    events: &[Event],
) -> Result<(), String> {
    if events.contains(&Event::Ping) {
        send(ws, protocol.pong()).await?;
    }
    Ok(())
}

/// Reads one message's events. Cancel safe (it awaits only `recv`), so it can race a
/// timer in `select!` without losing what arrived.
pub(super) async fn read_events(
    protocol: Protocol,
    ws: &mut WebSocket<ClientStream>,
) -> Result<Vec<Event>, String> {
    loop {
        return match ws.recv().await {
            Some(Ok(Message::Text(t))) => protocol.decode(t.as_str().as_bytes()),
            Some(Ok(Message::Binary(b))) => protocol.decode(&b),
            Some(Ok(Message::Close(frame))) => Err(format!("closed by the hub: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => Err(e.to_string()),
            None => Err("connection ended".into()),
        };
    }
}
