//! The last minutes of the hub's metrics, one sample a second, for the admin dashboard.
//!
//! The counters in [`Metrics`](crate::metrics::Metrics) only grow; a dashboard wants rates.
//! [`History::record`] takes a snapshot and the time it was taken (time is an argument,
//! so the tests need no clock) and keeps the difference from the previous one: per-second
//! rates and the acknowledgement latency quantiles of that interval alone.

use crate::metrics::{Snapshot, ACK_BUCKETS};
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many samples are kept (five minutes at one a second).
pub const CAPACITY: usize = 300;

/// One interval between two snapshots.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the hub started, at the end of the interval.
    pub t: f64,
    /// Connected clients at the end of the interval.
    pub connections: i64,
    /// Subscriptions at the end of the interval.
    pub subscriptions: i64,
    /// Publications stored per second.
    pub publications: f64,
    /// Publications queued to subscribers per second.
    pub deliveries: f64,
    /// Clients disconnected as slow, per second.
    pub slow_disconnects: f64,
    /// Median acknowledgement latency in the interval, in milliseconds (none: no acks).
    pub ack_p50_ms: Option<f64>,
    /// 99th percentile acknowledgement latency in the interval, in milliseconds.
    pub ack_p99_ms: Option<f64>,
}

/// Samples, oldest first, at most [`CAPACITY`].
#[derive(Debug)]
pub struct History {
    started: Instant,
    last: Option<(Instant, Snapshot)>,
    samples: VecDeque<Sample>,
}

impl History {
    /// An empty history; sample times count from `started`.
    pub fn new(started: Instant) -> History {
        History {
            started,
            last: None,
            samples: VecDeque::with_capacity(CAPACITY),
        }
    }

    /// Adds the interval from the previous snapshot to `snapshot`, taken at `now`. The
    /// first snapshot only sets the baseline; an interval of no time is skipped.
    pub fn record(&mut self, now: Instant, snapshot: Snapshot) {
        let Some((then, _)) = &self.last else {
            self.last = Some((now, snapshot));
            return;
        };
        let seconds = now.saturating_duration_since(*then).as_secs_f64();
        if seconds <= 0.0 {
            // Counted in the next interval instead.
            return;
        }
        let Some((_, before)) = self.last.replace((now, snapshot.clone())) else {
            return;
        };
        // Counters never go down; saturate anyway so a reset can't produce nonsense.
        let rate = |after: u64, before: u64| after.saturating_sub(before) as f64 / seconds;
        let buckets: Vec<u64> = snapshot
            .ack_buckets
            .iter()
            .zip(&before.ack_buckets)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let acks = snapshot.ack_count.saturating_sub(before.ack_count);
        if self.samples.len() == CAPACITY {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            t: now.saturating_duration_since(self.started).as_secs_f64(),
            connections: snapshot.connections,
            subscriptions: snapshot.subscriptions,
            publications: rate(snapshot.publications, before.publications),
            deliveries: rate(snapshot.deliveries, before.deliveries),
            slow_disconnects: rate(snapshot.slow_disconnects, before.slow_disconnects),
            ack_p50_ms: quantile(0.5, &buckets, acks).map(millis),
            ack_p99_ms: quantile(0.99, &buckets, acks).map(millis),
        });
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter()
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `q` quantile of `count` observations whose cumulative counts per bucket (at most
/// each of [`ACK_BUCKETS`]) are `cumulative`: linear within the bucket it falls in, as
/// Prometheus' `histogram_quantile` does; past the last bound, the last bound.
fn quantile(q: f64, cumulative: &[u64], count: u64) -> Option<Duration> {
    if count == 0 {
        return None;
    }
    let rank = q * count as f64;
    let mut lower = (0.0, 0u64);
    for (bound, &below) in ACK_BUCKETS.iter().zip(cumulative) {
        if below as f64 >= rank {
            let (low, before) = lower;
            let inside = (below - before) as f64;
            let fraction = if inside == 0.0 {
                1.0
            } else {
                (rank - before as f64) / inside
            };
            return Some(Duration::from_secs_f64(low + (bound - low) * fraction));
        }
        lower = (*bound, below);
    }
    Some(Duration::from_secs_f64(ACK_BUCKETS[ACK_BUCKETS.len() - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn first_snapshot_is_only_the_baseline() {
        let start = Instant::now();
        let mut history = History::new(start);
        history.record(start, Metrics::default().snapshot());
        assert_eq!(history.samples().count(), 0);
    }

    #[test]
    fn rates_are_per_second_of_the_interval() {
        let start = Instant::now();
        let metrics = Metrics::default();
        let mut history = History::new(start);
        history.record(start, metrics.snapshot());
        metrics.publications.add(10);
        metrics.deliveries.add(1000);
        metrics.slow_disconnects.inc();
        metrics.connections.inc();
        metrics.subscriptions.inc();
        metrics.subscriptions.inc();
        history.record(start + Duration::from_secs(2), metrics.snapshot());
        let sample = history.samples().next().unwrap();
        assert_eq!(sample.t, 2.0);
        assert_eq!(sample.publications, 5.0);
        assert_eq!(sample.deliveries, 500.0);
        assert_eq!(sample.slow_disconnects, 0.5);
        assert_eq!((sample.connections, sample.subscriptions), (1, 2));
        assert_eq!((sample.ack_p50_ms, sample.ack_p99_ms), (None, None));
        // The next interval counts only what happened in it.
        metrics.publications.add(3);
        history.record(start + Duration::from_secs(3), metrics.snapshot());
        let last = history.samples().last().unwrap();
        assert_eq!((last.publications, last.deliveries), (3.0, 0.0));
    }

    #[test]
    fn latency_quantiles_are_of_the_interval_alone() {
        let start = Instant::now();
        let metrics = Metrics::default();
        let mut history = History::new(start);
        // Slow acks before the baseline must not show in the interval.
        for _ in 0..100 {
            metrics.ack_latency.observe(Duration::from_secs(1));
        }
        history.record(start, metrics.snapshot());
        // 98 acks in (0.5 ms, 1 ms], 2 in (10 ms, 20 ms].
        for _ in 0..98 {
            metrics.ack_latency.observe(Duration::from_micros(800));
        }
        for _ in 0..2 {
            metrics.ack_latency.observe(Duration::from_millis(15));
        }
        history.record(start + Duration::from_secs(1), metrics.snapshot());
        let sample = history.samples().next().unwrap();
        let p50 = sample.ack_p50_ms.unwrap();
        let p99 = sample.ack_p99_ms.unwrap();
        assert!((0.5..=1.0).contains(&p50), "p50 {p50} ms");
        assert!((10.0..=20.0).contains(&p99), "p99 {p99} ms");
    }

    #[test]
    fn latency_past_the_last_bucket_is_the_last_bound() {
        // Four acks, all slower than every bound.
        let cumulative = vec![0; ACK_BUCKETS.len()];
        let q = quantile(0.5, &cumulative, 4).unwrap();
        assert_eq!(q.as_secs_f64(), ACK_BUCKETS[ACK_BUCKETS.len() - 1]);
    }

    #[test]
    fn keeps_the_last_capacity_samples() {
        let start = Instant::now();
        let metrics = Metrics::default();
        let mut history = History::new(start);
        for second in 0..=(CAPACITY as u64 + 10) {
            history.record(start + Duration::from_secs(second), metrics.snapshot());
        }
        assert_eq!(history.samples().count(), CAPACITY);
        assert_eq!(history.samples().next().unwrap().t, 11.0);
    }

    #[test]
    fn an_interval_of_no_time_is_skipped() {
        let start = Instant::now();
        let metrics = Metrics::default();
        let mut history = History::new(start);
        history.record(start, metrics.snapshot());
        metrics.publications.inc();
        history.record(start, metrics.snapshot());
        assert_eq!(history.samples().count(), 0);
        // ...and what happened in it counts in the next one.
        history.record(start + Duration::from_secs(1), metrics.snapshot());
        assert_eq!(history.samples().next().unwrap().publications, 1.0);
    }
}
