//! The demo ticker (`demo_ticker`, `duplex serve --demo-ticker`): a few made-up symbols
//! whose prices take a random walk, published to `ticker:SYMBOL` through the engine's
//! publish, the path every backend publication takes (stored, with offsets, recoverable).

use crate::node::Node;
use rand::Rng;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;

/// The symbols and their starting prices.
pub const SYMBOLS: [(&str, f64); 4] = [
    ("DPLX", 120.0),
    ("WSKT", 48.5),
    ("HUBB", 310.25),
    ("SQLT", 9.8),
];

/// Time between two ticks of one symbol.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// Publishes a tick per symbol every [`INTERVAL`] until the hub shuts down. A tick the
/// engine could not store is logged and the walk goes on.
pub async fn run_ticker(node: Arc<Node>) {
    let mut prices: Vec<f64> = SYMBOLS.iter().map(|(_, p)| *p).collect();
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            () = node.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for ((symbol, _), price) in SYMBOLS.iter().zip(prices.iter_mut()) {
            // A step of at most half a percent, never below a cent.
            let step: f64 = rand::rng().random_range(-0.005..0.005);
            *price = (*price * (1.0 + step)).max(0.01);
            let data = format!(
                "{{\"symbol\":\"{symbol}\",\"price\":{:.2},\"t\":{}}}",
                price,
                crate::auth::unix_now_ms()
            );
            let Ok(data) = RawValue::from_string(data) else {
                continue;
            };
            let data = crate::protocol::Payload::from(data);
            let channel = format!("ticker:{symbol}");
            let started = std::time::Instant::now();
            match node.engine.publish(&channel, data, None).await {
                // Counted as any publication is, so the dashboard shows the ticker.
                Ok(_) => {
                    node.metrics.publications.inc();
                    node.metrics.ack_latency.observe(started.elapsed());
                }
                Err(e) => {
                    tracing::warn!(%channel, error = %e, "demo ticker publication not stored")
                }
            }
        }
    }
}
