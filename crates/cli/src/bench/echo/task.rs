//! One connection task of `duplex bench echo`: the closed loop of sends and echoes.

use super::{Event, Outcome, Run, PROGRESS_EVERY};
use crate::bench::{MEASURING, STOPPING, WARMUP};
use duplex::{ClientStream, Message, WebSocket};
use futures_util::FutureExt;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};

/// One connection: open, wait for the start, exchange messages, close.
pub(super) async fn connection(
    run: Arc<Run>,
    index: usize,
    limit: Arc<Semaphore>,
    events: mpsc::UnboundedSender<Event>,
    mut start: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
) -> Outcome {
    let opened = {
        let _permit = limit.acquire().await;
        run.builder.clone().connect().await
    };
    let mut ws = match opened {
        Ok((ws, response)) => {
            if response.deflate.is_some() {
                run.deflated.fetch_add(1, Relaxed);
            }
            let _ = events.send(Event::Opened(true));
            ws
        }
        Err(e) => {
            run.errors.record(format!("cannot connect: {e}"));
            let _ = events.send(Event::Opened(false));
            return Outcome::default();
        }
    };
    let mut outcome = Outcome {
        opened: true,
        ..Outcome::default()
    };
    if start.wait_for(|go| *go).await.is_err() {
        return outcome;
    }
    let mut pacer = run.period.map(|period| Pacer {
        // Spread over one period, so the connections do not all send at the same moment.
        next: Instant::now() + period.mul_f64(index as f64 / run.connections as f64),
        period,
        stop,
    });
    let exchanged = exchange(&run, &mut ws, &mut pacer, &mut outcome.counted).await;
    let _ = events.send(Event::Drained);
    match exchanged {
        Ok(()) => {
            if let Err(e) = ws.close(None).await {
                run.errors.record(format!("closing handshake failed: {e}"));
            }
        }
        Err(e) => {
            run.errors.record(e);
            outcome.failed = true;
        }
    }
    outcome
}

/// Whether another message may be sent, and whether it is one of the `--messages` that
/// count.
fn next_send(run: &Run) -> Option<bool> {
    match run.phase.load(Relaxed) {
        WARMUP => Some(false),
        MEASURING => match &run.tickets {
            None => Some(false),
            Some(tickets) => (tickets.fetch_sub(1, Relaxed) > 0).then_some(true),
        },
        _ => None,
    }
}

/// With `--rate`: when one connection may send next.
struct Pacer {
    next: Instant,
    period: Duration,
    stop: watch::Receiver<bool>,
}

impl Pacer {
    /// Takes the current slot if it is due. Slots a connection missed entirely (its
    /// echoes came back late) are dropped rather than sent in a burst.
    fn take(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next += self.period;
        if self.next <= now {
            self.next = now + self.period;
        }
        true
    }
}

/// The closed loop: `depth` messages in flight, one new send per echo (and, with a
/// pacer, per slot), until the run stops and every echo is back. Adds the echoes that
/// count to `counted`.
///
/// Echoes that arrived together are all handled before the sends they allow are queued,
/// so those go out in one write (receiving flushes them): the generator makes about one
/// system call per batch rather than one per message.
async fn exchange(
    run: &Run,
    ws: &mut WebSocket<ClientStream>,
    pacer: &mut Option<Pacer>,
    counted: &mut u64,
) -> Result<(), String> {
    // Send time of each message in flight, and whether it holds a --messages ticket.
    let mut in_flight: VecDeque<(Instant, bool)> = VecDeque::with_capacity(run.depth);
    let mut batch = run.latencies.batch();
    let mut unreported = 0u64;
    // Sends due (one per echo) but not queued yet.
    let mut owed = run.depth;
    let result = loop {
        let next = match ws.recv().now_or_never() {
            Some(next) => next,
            None => {
                // Nothing more has arrived: queue what is owed (and due), then wait.
                match send_owed(run, ws, &mut in_flight, owed, pacer.as_mut()).await {
                    Ok(Some(sent)) => owed -= sent,
                    Ok(None) => owed = 0,
                    Err(e) => break Err(format!("send failed: {e}")),
                }
                if in_flight.is_empty() && owed == 0 {
                    break Ok(());
                }
                match pacer.as_mut() {
                    // Sends are owed but not due: wait for an echo, the slot or the end.
                    Some(p) if owed > 0 => {
                        let slot = p.next;
                        tokio::select! {
                            next = ws.recv() => next,
                            _ = tokio::time::sleep_until(slot.into()) => continue,
                            _ = p.stop.wait_for(|s| *s) => continue,
                        }
                    }
                    _ => ws.recv().await,
                }
            }
        };
        let message = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => break Err(format!("connection failed: {e}")),
            None => break Err("the server closed the connection during the run".to_owned()),
        };
        let len = match &message {
            Message::Text(t) if !run.binary => t.len(),
            Message::Binary(b) if run.binary => b.len(),
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(frame) => {
                let why = match frame {
                    Some(f) => format!("code {} {}", f.code, f.reason),
                    None => "no code".to_owned(),
                };
                break Err(format!(
                    "the server closed the connection during the run ({})",
                    why.trim_end()
                ));
            }
            Message::Text(_) => break Err("a text reply to a binary message".to_owned()),
            Message::Binary(_) => break Err("a binary reply to a text message".to_owned()),
        };
        if len != run.size {
            break Err(format!(
                "an echo of {len} bytes for a message of {}",
                run.size
            ));
        }
        let now = Instant::now();
        let Some((sent, ticket)) = in_flight.pop_front() else {
            break Err("a message from the server with nothing in flight".to_owned());
        };
        let counts = if run.tickets.is_some() {
            ticket
        } else {
            run.phase.load(Relaxed) == MEASURING
        };
        if counts {
            batch.record(now - sent);
            *counted += 1;
            unreported += 1;
            if unreported == PROGRESS_EVERY {
                run.progress.fetch_add(unreported, Relaxed);
                unreported = 0;
            }
        }
        owed += 1;
    };
    run.progress.fetch_add(unreported, Relaxed);
    result
}

/// Queues up to `owed` copies of the message (fewer when the pacer has no slot due),
/// without flushing. Returns how many, or `None` once the run stops or the `--messages`
/// are all handed out.
async fn send_owed(
    run: &Run,
    ws: &mut WebSocket<ClientStream>,
    in_flight: &mut VecDeque<(Instant, bool)>,
    owed: usize,
    mut pacer: Option<&mut Pacer>,
) -> Result<Option<usize>, duplex::Error> {
    // Checked first: after the stop, no slot may keep a connection waiting.
    if run.phase.load(Relaxed) == STOPPING {
        return Ok(None);
    }
    let now = Instant::now();
    for sent in 0..owed {
        if let Some(p) = pacer.as_deref_mut() {
            if !p.take(now) {
                return Ok(Some(sent));
            }
        }
        let Some(ticket) = next_send(run) else {
            return Ok(None);
        };
        in_flight.push_back((now, ticket));
        ws.feed(run.message.clone()).await?;
    }
    Ok(Some(owed))
}
