//! permessage-deflate throughput and ratio on realistic JSON traffic: chat messages and
//! ticker updates, sent by a server `Connection` and received by a client one, with
//! context takeover on and off, against the same traffic uncompressed.
//!
//! `cargo bench -p duplex-proto --bench deflate`; the ratios are printed before the runs.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use duplex_proto::deflate::{DeflateConfig, DeflateParams};
use duplex_proto::{Connection, Limits, Message, Role};

const MESSAGES: usize = 1000;

/// A small deterministic generator, so every run measures the same bytes.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

const WORDS: &[&str] = &[
    "hello",
    "everyone",
    "the",
    "build",
    "is",
    "green",
    "again",
    "who",
    "broke",
    "main",
    "lunch",
    "at",
    "noon",
    "shipping",
    "release",
    "tonight",
    "thanks",
    "review",
    "please",
    "looks",
    "good",
    "to",
    "me",
    "merged",
    "deploy",
    "rollback",
    "latency",
    "dashboard",
    "coffee",
    "meeting",
];

fn chat(rng: &mut Lcg, i: usize) -> String {
    let rooms = ["general", "random", "ops", "dev"];
    let users = ["alice", "bob", "carol", "dave", "erin", "frank"];
    let text: Vec<&str> = (0..3 + rng.next(12))
        .map(|_| WORDS[rng.next(WORDS.len())])
        .collect();
    format!(
        r#"{{"type":"message","id":{},"room":"{}","user":"{}","ts":{},"text":"{}"}}"#,
        100_000 + i,
        rooms[rng.next(rooms.len())],
        users[rng.next(users.len())],
        1_763_769_600_000u64 + i as u64 * 137,
        text.join(" ")
    )
}

fn ticker(rng: &mut Lcg, i: usize) -> String {
    let symbols = ["BTC-USD", "ETH-USD", "SOL-USD", "EUR-USD", "AAPL", "MSFT"];
    format!(
        r#"{{"s":"{}","p":"{}.{:02}","q":"{}.{:04}","side":"{}","t":{}}}"#,
        symbols[rng.next(symbols.len())],
        100 + rng.next(50_000),
        rng.next(100),
        rng.next(10),
        rng.next(10_000),
        if rng.next(2) == 0 { "buy" } else { "sell" },
        1_763_769_600_000u64 + i as u64 * 7
    )
}

fn traffic(make: fn(&mut Lcg, usize) -> String) -> Vec<Message> {
    let mut rng = Lcg(42);
    (0..MESSAGES)
        .map(|i| Message::text(make(&mut rng, i)))
        .collect()
}

fn connection(role: Role, mode: Mode) -> Connection {
    let Mode {
        takeover,
        deflate,
        level,
        ..
    } = mode;
    let conn = Connection::new(role, Limits::default());
    if !deflate {
        return conn;
    }
    let params = DeflateParams {
        server_no_context_takeover: !takeover,
        client_no_context_takeover: !takeover,
        ..DeflateParams::default()
    };
    let config = DeflateConfig::default().threshold(0).level(level);
    conn.with_deflate(params, &config)
}

/// One way of sending the traffic.
#[derive(Clone, Copy)]
struct Mode {
    name: &'static str,
    takeover: bool,
    deflate: bool,
    level: u32,
}

const MODES: [Mode; 5] = [
    Mode {
        name: "uncompressed",
        takeover: true,
        deflate: false,
        level: 6,
    },
    Mode {
        name: "context-takeover",
        takeover: true,
        deflate: true,
        level: 6,
    },
    Mode {
        name: "context-takeover-level1",
        takeover: true,
        deflate: true,
        level: 1,
    },
    Mode {
        name: "no-context-takeover",
        takeover: false,
        deflate: true,
        level: 6,
    },
    Mode {
        name: "no-context-takeover-level1",
        takeover: false,
        deflate: true,
        level: 1,
    },
];

fn encode(messages: &[Message], mode: Mode) -> BytesMut {
    let mut server = connection(Role::Server, mode);
    let mut wire = BytesMut::new();
    for m in messages {
        server.send(m, &mut wire).unwrap();
    }
    wire
}

fn decode(mut wire: BytesMut, mode: Mode) -> usize {
    let mut client = connection(Role::Client, mode);
    let mut out = BytesMut::new();
    let mut n = 0;
    while let Some(m) = client.receive(&mut wire, &mut out).unwrap() {
        n += m.len();
    }
    n
}

fn bench(c: &mut Criterion) {
    for (name, make) in [
        ("chat", chat as fn(&mut Lcg, usize) -> String),
        ("ticker", ticker),
    ] {
        let messages = traffic(make);
        let raw: usize = messages.iter().map(Message::len).sum();
        for mode in MODES {
            let wire = encode(&messages, mode);
            let (mode_name, wire_len) = (mode.name, wire.len());
            let percent = 100.0 * wire_len as f64 / raw as f64;
            eprintln!(
                "ratio {name}/{mode_name}: {raw} B of JSON in {MESSAGES} messages -> \
                 {wire_len} B on the wire ({percent:.1}%)"
            );
            let mut group = c.benchmark_group(format!("{name}/{}", mode.name));
            group.throughput(Throughput::Bytes(raw as u64));
            group.bench_function("send", |b| b.iter(|| encode(&messages, mode)));
            group.bench_function("receive", |b| {
                b.iter_batched(|| wire.clone(), |w| decode(w, mode), BatchSize::SmallInput)
            });
            group.finish();
        }
    }
}

/// Broadcast of one 2 KiB JSON message to 100 server connections with permessage-deflate
/// (context takeover, level 1): compressed per connection with `send`, against a
/// `SharedFrame` compressed once and handed to each connection with `send_shared`.
fn broadcast(c: &mut Criterion) {
    const SUBSCRIBERS: usize = 100;
    // Distinct messages in turn, as a feed publishes them: a connection with context
    // takeover would compress a repeated message to a few bytes of back-reference.
    let mut rng = Lcg(7);
    let messages: Vec<Message> = (0..64)
        .map(|i| {
            let mut json = String::from("[");
            while json.len() < 2048 {
                json.push_str(&chat(&mut rng, i * 1000 + json.len()));
                json.push(',');
            }
            json.pop();
            json.push(']');
            Message::text(json)
        })
        .collect();
    let size = messages[0].len();
    let mode = MODES[2];
    let mut group = c.benchmark_group(format!("broadcast-{SUBSCRIBERS}-deflate"));
    group.throughput(Throughput::Bytes((size * SUBSCRIBERS) as u64));
    let mut servers: Vec<Connection> = (0..SUBSCRIBERS)
        .map(|_| connection(Role::Server, mode))
        .collect();
    let mut wire = BytesMut::new();
    let mut next = messages.iter().cycle();
    group.bench_function("send-per-connection", |b| {
        b.iter(|| {
            let message = next.next().unwrap();
            for server in &mut servers {
                wire.clear();
                server.send(message, &mut wire).unwrap();
            }
        })
    });
    group.bench_function("send-shared", |b| {
        b.iter(|| {
            let frame = duplex_proto::frame::SharedFrame::new(next.next().unwrap()).unwrap();
            let mut total = 0;
            for server in &mut servers {
                total += server.send_shared(&frame).unwrap().len();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench, broadcast);
criterion_main!(benches);
