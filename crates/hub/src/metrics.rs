//! The hub's metrics, served at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A value that only grows.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Default, Debug)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Subtracts one.
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters by one label value.
#[derive(Default, Debug)]
pub struct LabelledCounter(Mutex<BTreeMap<String, u64>>);

impl LabelledCounter {
    /// Adds one for `label`.
    pub fn inc(&self, label: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(label.to_owned()).or_default() += 1;
    }
    /// The value for `label`.
    pub fn get(&self, label: &str) -> u64 {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(label).copied().unwrap_or(0)
    }
}

/// Upper bounds of the acknowledgement latency buckets, in seconds (the memory engine
/// acks in tens of microseconds, a SQLite commit in about a millisecond).
pub const ACK_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0,
];

/// A latency histogram with fixed buckets.
#[derive(Default, Debug)]
pub struct Histogram {
    buckets: [AtomicU64; ACK_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        for (bound, bucket) in ACK_BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(value.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// The values the admin dashboard follows, read at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// [`Metrics::connections`].
    pub connections: i64,
    /// [`Metrics::subscriptions`].
    pub subscriptions: i64,
    /// [`Metrics::publications`].
    pub publications: u64,
    /// [`Metrics::deliveries`].
    pub deliveries: u64,
    /// [`Metrics::slow_disconnects`].
    pub slow_disconnects: u64,
    /// Acknowledgements at most each of [`ACK_BUCKETS`] (cumulative, as in Prometheus).
    pub ack_buckets: [u64; ACK_BUCKETS.len()],
    /// Acknowledgements in all.
    pub ack_count: u64,
}

/// Everything `/metrics` reports.
#[derive(Default, Debug)]
pub struct Metrics {
    /// Connected clients (after `connect`).
    pub connections: Gauge,
    /// Channel subscriptions on this node.
    pub subscriptions: Gauge,
    /// Commands received, by method.
    pub commands: LabelledCounter,
    /// Publications stored (client and API).
    pub publications: Counter,
    /// Publications queued to subscribers.
    pub deliveries: Counter,
    /// Time from receiving a publish to its acknowledgement.
    pub ack_latency: Histogram,
    /// Clients disconnected for falling behind.
    pub slow_disconnects: Counter,
    /// Disconnects, by reason.
    pub disconnects: LabelledCounter,
    /// Refused WebSocket handshakes, by reason.
    pub handshake_failures: LabelledCounter,
    /// Refused credentials, by reason.
    pub auth_failures: LabelledCounter,
    /// Requests refused by a limit, by the limit's key.
    pub limits: LabelledCounter,
    /// Backend proxy calls without a usable answer, by event.
    pub proxy_errors: LabelledCounter,
}

impl Metrics {
    /// The values the admin dashboard follows.
    pub fn snapshot(&self) -> Snapshot {
        let h = &self.ack_latency;
        Snapshot {
            connections: self.connections.get(),
            subscriptions: self.subscriptions.get(),
            publications: self.publications.get(),
            deliveries: self.deliveries.get(),
            slow_disconnects: self.slow_disconnects.get(),
            ack_buckets: std::array::from_fn(|i| h.buckets[i].load(Ordering::Relaxed)),
            ack_count: h.count.load(Ordering::Relaxed),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, value: i64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        let labelled =
            |out: &mut String, name: &str, help: &str, label: &str, c: &LabelledCounter| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                let map = c.0.lock().unwrap_or_else(|e| e.into_inner());
                for (value, n) in map.iter() {
                    let value = value.replace('\\', "\\\\").replace('"', "\\\"");
                    let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
                }
            };
        gauge(
            &mut out,
            "duplex_hub_connections",
            "Connected clients.",
            self.connections.get(),
        );
        gauge(
            &mut out,
            "duplex_hub_subscriptions",
            "Channel subscriptions.",
            self.subscriptions.get(),
        );
        labelled(
            &mut out,
            "duplex_hub_commands_total",
            "Client commands by method.",
            "method",
            &self.commands,
        );
        counter(
            &mut out,
            "duplex_hub_publications_total",
            "Publications stored and acknowledged.",
            self.publications.get(),
        );
        counter(
            &mut out,
            "duplex_hub_deliveries_total",
            "Publications queued to subscribers.",
            self.deliveries.get(),
        );
        counter(
            &mut out,
            "duplex_hub_slow_consumer_disconnects_total",
            "Clients disconnected for reading too slowly.",
            self.slow_disconnects.get(),
        );
        labelled(
            &mut out,
            "duplex_hub_disconnects_total",
            "Disconnects by reason.",
            "reason",
            &self.disconnects,
        );
        labelled(
            &mut out,
            "duplex_hub_handshake_failures_total",
            "Refused WebSocket handshakes by reason.",
            "reason",
            &self.handshake_failures,
        );
        labelled(
            &mut out,
            "duplex_hub_auth_failures_total",
            "Refused credentials by reason.",
            "reason",
            &self.auth_failures,
        );
        labelled(
            &mut out,
            "duplex_hub_limit_refusals_total",
            "Requests refused by a configured limit.",
            "limit",
            &self.limits,
        );
        labelled(
            &mut out,
            "duplex_hub_proxy_errors_total",
            "Backend proxy calls without a usable answer (down, slow, garbage) by event.",
            "event",
            &self.proxy_errors,
        );
        let name = "duplex_hub_publish_ack_seconds";
        let _ = writeln!(out, "# HELP {name} Time from a publish to its acknowledgement (after the commit).\n# TYPE {name} histogram");
        for (bound, bucket) in ACK_BUCKETS.iter().zip(&self.ack_latency.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.ack_latency.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.ack_latency.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.connections.inc();
        m.commands.inc("publish");
        m.commands.inc("publish");
        m.ack_latency.observe(Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("duplex_hub_connections 1\n"), "{text}");
        assert!(
            text.contains("duplex_hub_commands_total{method=\"publish\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("duplex_hub_publish_ack_seconds_bucket{le=\"0.002\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("duplex_hub_publish_ack_seconds_bucket{le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("duplex_hub_publish_ack_seconds_count 1\n"),
            "{text}"
        );
    }
}
