//! A subscriber: one connection, one channel, every delivery checked against the
//! offsets (or the generator's numbering) and timed.

use super::codec::Event;
use super::connection::{answer_pings, next_reply, open, read_events, send};
use super::{pusher, Run};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// What one subscriber received in its channel.
pub(super) struct Received {
    pub(super) channel: usize,
    /// Publications received after the subscribe, in order.
    pub(super) count: u64,
    pub(super) opened: bool,
}

pub(super) async fn subscriber(
    run: Arc<Run>,
    limit: Arc<Semaphore>,
    endpoint: usize,
    channel: usize,
    name: String,
    ready: tokio::sync::mpsc::UnboundedSender<()>,
) -> Received {
    let mut received = Received {
        channel,
        count: 0,
        opened: false,
    };
    let protocol = run.protocol;
    let opened = {
        let _permit = limit.acquire().await;
        async {
            let mut ws = open(&run, endpoint).await?;
            send(&mut ws, protocol.subscribe(2, &name)).await?;
            let offset = next_reply(protocol, &mut ws, 2)
                .await?
                .map_err(|e| format!("subscribe refused: {e}"))?;
            Ok::<_, String>((ws, offset))
        }
        .await
    };
    let (mut ws, mut last) = match opened {
        Ok(pair) => pair,
        Err(e) => {
            run.errors.record(e);
            return received;
        }
    };
    received.opened = true;
    // Without server offsets (Pusher): the publications' own numbers, in any order.
    let mut window = (!protocol.ordered()).then(pusher::Window::default);
    run.subscribers[channel].fetch_add(1, Relaxed);
    let _ = ready.send(());
    drop(ready);
    let mut latencies = run.delivery.batch();
    let mut done = run.done.subscribe();
    loop {
        let events = tokio::select! {
            events = read_events(protocol, &mut ws) => events,
            _ = done.wait_for(|d| *d) => return received,
        };
        let read = match events {
            Ok(events) => answer_pings(protocol, &mut ws, &events)
                .await
                .map(|()| events),
            Err(e) => Err(e),
        };
        let events = match read {
            Ok(events) => events,
            Err(e) => {
                run.disconnects.fetch_add(1, Relaxed);
                run.errors.record(e);
                return received;
            }
        };
        for event in events {
            let Event::Publication { offset, sent_us } = event else {
                continue;
            };
            if let Some(window) = &mut window {
                match window.receive(offset) {
                    pusher::Arrival::New => {}
                    pusher::Arrival::Duplicate => {
                        run.duplicates.fetch_add(1, Relaxed);
                        continue;
                    }
                    pusher::Arrival::NewPastGaps(n) => {
                        run.gaps.fetch_add(n, Relaxed);
                    }
                }
            } else {
                if offset <= last {
                    run.duplicates.fetch_add(1, Relaxed);
                    continue;
                }
                if offset > last + 1 {
                    run.gaps.fetch_add(1, Relaxed);
                }
                last = offset;
            }
            received.count += 1;
            run.delivered.fetch_add(1, Relaxed);
            if let Some(sent) = sent_us {
                let now = run.origin.elapsed().as_micros() as u64;
                latencies.record(Duration::from_micros(now.saturating_sub(sent)));
            }
        }
    }
}
