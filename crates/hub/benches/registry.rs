//! The registry's fan-out and its bookkeeping, on one channel with many subscribers:
//! `deliver` (one publication queued for each of them) and the unsubscribes of a mass
//! disconnect (every subscriber leaves, in the order they came).

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use duplex_hub::metrics::Metrics;
use duplex_hub::protocol::reply::Publication;
use duplex_hub::protocol::{Format, Payload};
use duplex_hub::queue::Receiver;
use duplex_hub::registry::{ClientHandle, Registry};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SUBSCRIBERS: [usize; 2] = [1_000, 10_000];

/// A registry with `n` clients subscribed to `channel`, and their queues.
fn subscribed(n: usize, channel: &str) -> (Registry, Vec<Arc<ClientHandle>>, Vec<Receiver>) {
    let registry = Registry::new(Arc::new(Metrics::default()));
    let (mut clients, mut queues) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        // Client ids are UUIDs in the hub: 36 characters.
        let id = format!("{i:08x}-0000-4000-8000-000000000000");
        let (client, queue) = ClientHandle::new(id, "user".into(), Format::Json, 16);
        registry.subscribe(channel, &client, false);
        clients.push(client);
        queues.push(queue);
    }
    (registry, clients, queues)
}

fn deliver(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry/deliver");
    let publication = Publication {
        data: Payload::from_json_text(br#"{"symbol":"DPLX","price":101.25}"#).unwrap(),
        info: None,
        offset: 1,
    };
    for n in SUBSCRIBERS {
        let (registry, _clients, mut queues) = subscribed(n, "ticker");
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            // Only `deliver` is timed; the queues are emptied between calls.
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    registry.deliver("ticker", black_box(&publication), "epoch");
                    timed += start.elapsed();
                    for queue in &mut queues {
                        assert!(queue.try_recv().is_some());
                    }
                }
                timed
            });
        });
    }
    group.finish();
}

fn unsubscribe_all(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry/unsubscribe_all");
    group.sample_size(20);
    for n in SUBSCRIBERS {
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_batched(
                || subscribed(n, "room"),
                |(registry, clients, queues)| {
                    for client in &clients {
                        registry.unsubscribe("room", &client.id);
                    }
                    assert_eq!(registry.channel_count(), 0);
                    (registry, clients, queues)
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, deliver, unsubscribe_all);
criterion_main!(benches);
