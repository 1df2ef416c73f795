//! Micro-benchmarks of the protocol core: frame encode/decode, masking, UTF-8 validation
//! and handshake parsing. `cargo bench -p duplex-proto --bench core`.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use duplex_proto::frame::apply_mask;
use duplex_proto::handshake::server::UpgradeRequest;
use duplex_proto::{Connection, Limits, Message, Role, Utf8Bytes, Utf8Validator};
use std::hint::black_box;

/// The plain byte loop `apply_mask` is measured against: one byte and one key lookup at
/// a time.
#[inline(never)]
fn mask_bytewise(data: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= mask[(i + offset) % 4];
    }
}

fn masking(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in [16usize, 1024, 1 << 20] {
        let mut data = vec![0x5Au8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("{size}"), |b| {
            b.iter(|| apply_mask(black_box(&mut data), [1, 2, 3, 4], 0))
        });
        group.bench_function(format!("{size}-bytewise"), |b| {
            // The offset is opaque to the compiler, as a frame's position is in practice.
            b.iter(|| mask_bytewise(black_box(&mut data), [1, 2, 3, 4], black_box(1)))
        });
    }
    group.finish();
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    let ascii = "hello world, ".repeat(80_000);
    let mixed = "héllo wörld € 𝄞 ".repeat(50_000);
    for (name, text) in [("ascii", &ascii), ("mixed", &mixed)] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut v = Utf8Validator::default();
                v.feed(black_box(text.as_bytes())).unwrap();
                v.is_complete()
            })
        });
    }
    group.finish();
}

/// `Utf8Bytes::as_str` (O(1): the type holds validity) beside what it did before, a
/// validation per call (`std::str::from_utf8`, which is what the checked version ran).
fn text_access(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8bytes_as_str");
    for size in [16usize, 1024, 16 << 10] {
        let text = Utf8Bytes::from("héllo wörld € ".repeat(size / 20 + 1).as_str());
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("{size}"), |b| {
            b.iter(|| black_box(&text).as_str().len())
        });
        group.bench_function(format!("{size}-validating"), |b| {
            b.iter(|| std::str::from_utf8(black_box(&text).as_bytes()).map_or(0, str::len))
        });
    }
    group.finish();
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frames");
    for size in [16usize, 1024, 64 << 10] {
        let message = Message::binary(vec![7u8; size]);
        let batch = 100;
        group.throughput(Throughput::Bytes((size * batch) as u64));
        // Encoding as the server (no mask) and as the client (masked).
        for role in [Role::Server, Role::Client] {
            let mut conn = Connection::new(role, Limits::default());
            let mut out = BytesMut::with_capacity((size + 14) * batch);
            group.bench_function(format!("encode/{role:?}/{size}"), |b| {
                b.iter(|| {
                    out.clear();
                    for _ in 0..batch {
                        conn.send(&message, &mut out).unwrap();
                    }
                })
            });
        }
        // Decoding what a client sent (masked: unmasking included).
        let mut client = Connection::new(Role::Client, Limits::default());
        let mut wire = BytesMut::new();
        for _ in 0..batch {
            client.send(&message, &mut wire).unwrap();
        }
        group.bench_function(format!("decode/Server/{size}"), |b| {
            b.iter_batched(
                || {
                    (
                        Connection::new(Role::Server, Limits::default()),
                        wire.clone(),
                    )
                },
                |(mut server, mut input)| {
                    let mut out = BytesMut::new();
                    let mut n = 0;
                    while let Some(m) = server.receive(&mut input, &mut out).unwrap() {
                        n += m.len();
                    }
                    n
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn handshake(c: &mut Criterion) {
    let request = "GET /chat?room=lobby HTTP/1.1\r\nHost: example.com:9001\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n\
                   Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\nOrigin: https://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
                   Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nCookie: session=abc123\r\n\r\n";
    c.bench_function("handshake/parse_and_accept", |b| {
        b.iter(|| {
            let mut input = BytesMut::from(request);
            let req = UpgradeRequest::parse(&mut input, &Limits::default())
                .unwrap()
                .unwrap();
            let mut out = BytesMut::new();
            req.accept(Some("chat"), &Default::default(), &mut out);
            out.len()
        })
    });
}

criterion_group!(benches, masking, utf8, text_access, frames, handshake);
criterion_main!(benches);
