//! `duplex bench` against a `duplex echo` child process. Every run is bounded by a count
//! of messages or connections, not by time.

mod common;

use common::{Echo, BIN};
use serde_json::Value;
use std::process::{Command, Output, Stdio};

fn bench(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs a scenario with `--json`, checks it succeeded and parses its one JSON object.
fn bench_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = bench(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stdout}\n{stderr}");
    assert_eq!(stdout.lines().count(), 1, "one line of JSON: {stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count: {v}"))
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {v}"))
}

fn assert_sane_latency(v: &Value) {
    let l = &v["latency_us"];
    let (p50, p99, p999, max) = (u(l, "p50"), u(l, "p99"), u(l, "p999"), u(l, "max"));
    assert!(p50 > 0 && p50 <= p99 && p99 <= p999 && p999 <= max, "{l}");
    assert!(
        max < 60_000_000,
        "a minute for a round trip on loopback: {l}"
    );
}

#[test]
fn echo_counts_messages_and_latencies() {
    let echo = Echo::start();
    let v = bench_json(&[
        "echo",
        &echo.url,
        "--messages",
        "2000",
        "--connections",
        "4",
        "--depth",
        "4",
    ]);
    assert_eq!(v["scenario"], "echo");
    assert_eq!(u(&v, "connections"), 4);
    assert_eq!(u(&v, "size"), 16);
    assert_eq!(u(&v, "depth"), 4);
    assert!(u(&v, "messages") >= 2000, "{v}");
    assert_eq!(u(&v, "errors"), 0, "{v}");
    assert_sane_latency(&v);
    let elapsed = f(&v, "elapsed_s");
    assert!(elapsed > 0.0);
    let rate = f(&v, "messages_per_sec");
    assert!(
        (rate - u(&v, "messages") as f64 / elapsed).abs() / rate < 0.01,
        "{v}"
    );
    // Payload bytes in both directions.
    let mb = f(&v, "mb_per_sec");
    assert!((mb - rate * 16.0 * 2.0 / 1e6).abs() / mb < 0.01, "{v}");
    assert!(f(&v, "client_cpu_percent") >= 0.0, "{v}");
}

#[test]
fn echo_binary_with_large_messages() {
    let echo = Echo::start();
    let v = bench_json(&[
        "echo",
        &echo.url,
        "--messages",
        "200",
        "--size",
        "100000",
        "--depth",
        "8",
        "--binary",
        "--threads",
        "1",
    ]);
    assert_eq!(u(&v, "messages"), 200, "{v}");
    assert_eq!(u(&v, "errors"), 0, "{v}");
    assert_eq!(v["binary"], true);
    assert_eq!(u(&v, "threads"), 1);
    assert_sane_latency(&v);
}

#[test]
fn echo_rate_paces_the_sends() {
    let echo = Echo::start();
    // 4 connections at 200/s in all: each sends every 20 ms, the four 5 ms apart, so the
    // 100th message cannot go out before 495 ms, however fast the echoes are.
    let v = bench_json(&[
        "echo",
        &echo.url,
        "--messages",
        "100",
        "--connections",
        "4",
        "--depth",
        "4",
        "--rate",
        "200",
    ]);
    assert_eq!(u(&v, "messages"), 100, "{v}");
    assert_eq!(u(&v, "rate"), 200, "{v}");
    assert_eq!(u(&v, "errors"), 0, "{v}");
    assert!(f(&v, "elapsed_s") >= 0.49, "{v}");
    assert!(f(&v, "messages_per_sec") <= 205.0, "{v}");
    assert_sane_latency(&v);

    let out = bench(&["echo", &echo.url, "--rate", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rate"));
}

#[test]
fn echo_prints_a_table_without_json() {
    let echo = Echo::start();
    let out = bench(&["echo", &echo.url, "--messages", "300", "--deflate"]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    for row in [
        "messages/s",
        "MB/s",
        "payload bytes sent + received",
        "p50",
        "p99.9",
        "errors",
        "client CPU",
        "deflate offered, negotiated on 1",
    ] {
        assert!(table.contains(row), "no {row:?} in\n{table}");
    }
}

#[test]
fn connect_counts_full_cycles() {
    let echo = Echo::start();
    let v = bench_json(&["connect", &echo.url, "--count", "50", "--concurrency", "5"]);
    assert_eq!(v["scenario"], "connect");
    assert_eq!(u(&v, "count"), 50);
    assert_eq!(u(&v, "concurrency"), 5);
    assert_eq!(u(&v, "completed"), 50);
    assert_eq!(u(&v, "errors"), 0, "{v}");
    assert!(f(&v, "handshakes_per_sec") > 0.0);
    assert!(f(&v, "elapsed_s") > 0.0);
    assert_sane_latency(&v);
}

#[test]
fn idle_measures_server_memory_per_connection() {
    let echo = Echo::start();
    let pid = echo.pid();
    let v = bench_json(&[
        "idle",
        &echo.url,
        "--connections",
        "200",
        "--server-pid",
        &pid,
    ]);
    assert_eq!(v["scenario"], "idle");
    assert_eq!(u(&v, "connections"), 200);
    assert_eq!(u(&v, "opened"), 200);
    assert_eq!(u(&v, "errors"), 0, "{v}");
    assert!(u(&v, "rss_after_kib") > u(&v, "rss_before_kib"), "{v}");
    assert!(f(&v, "rss_per_connection_kib") > 0.0, "{v}");
}

#[test]
fn idle_without_a_pid_reports_no_memory() {
    let echo = Echo::start();
    let v = bench_json(&["idle", &echo.url, "--connections", "10"]);
    assert_eq!(u(&v, "opened"), 10);
    for key in ["rss_before_kib", "rss_after_kib", "rss_per_connection_kib"] {
        assert!(v[key].is_null(), "{key}: {v}");
    }
}

#[test]
fn idle_spreads_connections_over_source_addresses() {
    let echo = Echo::start();
    // Pretend one address has 40 ports: 100 connections need 127.0.0.1 to 127.0.0.3.
    let v = bench_json(&[
        "idle",
        &echo.url,
        "--connections",
        "100",
        "--ports-per-address",
        "40",
    ]);
    assert_eq!(u(&v, "source_addresses"), 3, "{v}");
    assert_eq!(u(&v, "opened"), 100, "{v}");
    assert_eq!(u(&v, "errors"), 0, "{v}");
}

#[test]
fn bad_urls_fail_with_a_message() {
    for url in ["ftp://127.0.0.1/", "not a url"] {
        for args in [
            ["echo", url, "--messages", "1"],
            ["connect", url, "--count", "1"],
            ["idle", url, "--connections", "1"],
        ] {
            let out = bench(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("invalid URL"), "{args:?}: {err}");
            assert!(out.stdout.is_empty());
        }
    }
}

#[test]
fn unreachable_server_fails_every_connection_with_the_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/");
    for args in [
        vec!["echo", &url, "--connections", "3", "--messages", "10"],
        vec!["connect", &url, "--count", "5"],
        vec!["idle", &url, "--connections", "3"],
    ] {
        let out = bench(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("failed") && err.contains("refused"), "{err}");
    }
}

#[test]
fn usage_errors_are_named() {
    let out = bench(&["echo", "ws://127.0.0.1:9/", "--depth", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--depth"));
    // Every count that must be at least 1 is refused by name, in every scenario.
    for (scenario, option) in [
        ("echo", "--rate"),
        ("connect", "--concurrency"),
        ("idle", "--connections"),
        ("broadcast", "--messages"),
        ("hub", "--publications"),
        ("echo", "--threads"),
    ] {
        let out = bench(&[scenario, "ws://127.0.0.1:9/", option, "0"]);
        assert_eq!(out.status.code(), Some(2), "{scenario} {option}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(option) && stderr.contains("at least 1"),
            "{scenario} {option}: {stderr}"
        );
    }
    let out = bench(&[
        "echo",
        "ws://127.0.0.1:9/",
        "--messages",
        "5",
        "--duration",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = bench(&[
        "idle",
        "ws://127.0.0.1:9/",
        "--connections",
        "1",
        "--server-pid",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--server-pid"));
}

#[test]
fn broadcast_delivers_every_message_to_every_subscriber() {
    let relay = Echo::start_with(&["--broadcast"], "ws");
    let v = bench_json(&[
        "broadcast",
        &relay.url,
        "--subscribers",
        "20",
        "--rate",
        "500",
        "--messages",
        "300",
        "--warmup",
        "0.2",
        "--size",
        "100",
    ]);
    assert_eq!(v["scenario"], "broadcast");
    assert_eq!(u(&v, "subscribed"), 20, "{v}");
    assert_eq!(u(&v, "published"), 300, "{v}");
    assert_eq!(u(&v, "deliveries_expected"), 20 * 300, "{v}");
    assert_eq!(u(&v, "deliveries"), 20 * 300, "{v}");
    assert_eq!(u(&v, "missed"), 0, "{v}");
    assert_eq!(u(&v, "errors"), 0, "{v}");
    assert_sane_latency(&v);
    assert!(
        v["server"].is_null(),
        "no --server-pid, no server figures: {v}"
    );
}

/// `--server-pid`: the relay's memory per subscriber and CPU per delivery.
#[test]
fn broadcast_measures_the_servers_memory_and_cpu() {
    let relay = Echo::start_with(&["--broadcast"], "ws");
    let pid = relay.pid();
    let v = bench_json(&[
        "broadcast",
        &relay.url,
        "--subscribers",
        "200",
        "--rate",
        "500",
        "--messages",
        "500",
        "--warmup",
        "0.2",
        "--server-pid",
        &pid,
    ]);
    assert_eq!(u(&v, "deliveries"), 200 * 500, "{v}");
    let server = &v["server"];
    assert_eq!(server["pid"].to_string(), pid, "{v}");
    let per_connection = server["kib_per_connection"].as_f64().unwrap();
    assert!((0.1..200.0).contains(&per_connection), "{v}");
    assert!(server["cpu_seconds"].as_f64().is_some(), "{v}");
}

#[test]
fn broadcast_without_a_relay_reports_the_losses_and_fails() {
    // An echo server sends each message back to its publisher only: no subscriber gets
    // anything, which the run reports as a failure.
    let echo = Echo::start();
    let out = bench(&[
        "broadcast",
        &echo.url,
        "--subscribers",
        "3",
        "--messages",
        "20",
        "--warmup",
        "0",
        "--drain",
        "0.5",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no message reached a subscriber"),
        "{out:?}"
    );
    let out = bench(&["broadcast", &echo.url, "--size", "8"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--size 8 is too small"));
}

#[path = "common/serve.rs"]
mod serve;

/// Runs `bench hub ARGS` against a fresh `duplex serve` (development mode, memory
/// engine, and `serve_args`) and checks the run lost, duplicated and reordered nothing.
fn hub_bench(serve_args: &[&str], args: &[&str]) -> Value {
    hub_bench_measuring(serve_args, args, false)
}

/// [`hub_bench`], with `--server-pid` of the hub when `measure_server`.
fn hub_bench_measuring(serve_args: &[&str], args: &[&str], measure_server: bool) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let hub = serve::Serve::start(dir.path(), &[&["--engine", "memory"], serve_args].concat());
    let url = format!("ws://127.0.0.1:{}/connection/websocket", hub.port);
    let pid = hub.child.id().to_string();
    let server: &[&str] = if measure_server {
        &["--server-pid", &pid]
    } else {
        &[]
    };
    let v = bench_json(&[&["hub", &url], args, server].concat());
    for key in ["lost", "duplicates", "gaps", "disconnects", "errors"] {
        assert_eq!(u(&v, key), 0, "{key}: {v}");
    }
    v
}

/// Forty subscribers on four channels, two publishers, 200 publications.
const FOUR_CHANNELS: [&str; 12] = [
    "--subscribers",
    "40",
    "--channels",
    "4",
    "--publishers",
    "2",
    "--rate",
    "400",
    "--publications",
    "200",
    "--drain",
    "1",
];

/// Every acknowledged publication reached each subscriber of its channel exactly once.
fn assert_four_channels_delivered(v: &Value) {
    assert_eq!(u(v, "subscribers"), 40);
    assert_eq!(u(v, "publications_acked"), 200);
    // Ten subscribers per channel, 50 publications per channel.
    assert_eq!(u(v, "deliveries_owed"), 2000);
    assert_eq!(u(v, "deliveries"), 2000);
    assert!(v["delivery_latency_us"]["p50"].as_u64().unwrap() > 0, "{v}");
}

/// `bench hub` through a real `duplex serve`: every acknowledged publication reaches
/// each subscriber of its channel exactly once.
#[test]
fn hub_counts_every_delivery_each_acknowledged_publication_owes() {
    let v = hub_bench(&[], &FOUR_CHANNELS);
    assert_eq!(
        (v["protocol"].as_str(), v["publish_via"].as_str()),
        (Some("json"), Some("websocket"))
    );
    assert_four_channels_delivered(&v);
}

/// `--protocol protobuf`: the same run in the Protobuf format.
#[test]
fn hub_in_the_protobuf_format_counts_the_same() {
    let v = hub_bench(
        &[],
        &[&FOUR_CHANNELS[..], &["--protocol", "protobuf"]].concat(),
    );
    assert_eq!(v["protocol"], "protobuf", "{v}");
    assert_four_channels_delivered(&v);
    assert!(v["ack_latency_us"]["p50"].as_u64().unwrap() > 0, "{v}");
}

/// `--server-pid`: the hub's memory per subscribed connection and CPU per delivery.
#[test]
fn hub_measures_the_servers_memory_and_cpu() {
    let v = hub_bench_measuring(&[], &FOUR_CHANNELS, true);
    assert_four_channels_delivered(&v);
    let server = &v["server"];
    let per_connection = server["kib_per_connection"].as_f64().unwrap();
    // A subscribed connection costs the hub kilobytes, not bytes or megabytes.
    assert!((0.5..200.0).contains(&per_connection), "{v}");
    assert!(
        server["rss_kib_subscribed"].as_u64().unwrap() > server["rss_kib_before"].as_u64().unwrap(),
        "{v}"
    );
    assert!(server["cpu_seconds"].as_f64().is_some(), "{v}");
    // Without --server-pid there is nothing to report.
    assert!(hub_bench(&[], &FOUR_CHANNELS)["server"].is_null());
}

/// `--api-key`: publishers publish through the HTTP API, as a backend does.
#[test]
fn hub_with_http_api_publishers_counts_the_same() {
    let key = "bench-api-key-0123456789";
    let v = hub_bench(
        &["--api-key", key],
        &[&FOUR_CHANNELS[..], &["--api-key", key]].concat(),
    );
    assert_eq!(v["publish_via"], "http-api", "{v}");
    assert_four_channels_delivered(&v);
    assert!(v["ack_latency_us"]["p50"].as_u64().unwrap() > 0, "{v}");
}

/// A wrong API key: every publish is refused, and the run says so and fails.
#[test]
fn hub_with_a_wrong_api_key_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let hub = serve::Serve::start(
        dir.path(),
        &["--engine", "memory", "--api-key", "right-key-0123456789"],
    );
    let url = format!("ws://127.0.0.1:{}/connection/websocket", hub.port);
    let out = bench(&[
        "hub",
        &url,
        "--subscribers",
        "2",
        "--publications",
        "3",
        "--drain",
        "0",
        "--api-key",
        "wrong",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("no publication was acknowledged"), "{text}");
    assert!(text.contains("API publish"), "{text}");
    assert!(text.contains("401") || text.contains("403"), "{text}");
}

/// `--max-rate`: publishers send as fast as acknowledgements come back, and still every
/// acknowledged publication is delivered exactly once to each subscriber.
#[test]
fn hub_at_max_rate_publishes_as_fast_as_acknowledged_and_loses_nothing() {
    let v = hub_bench(
        &[],
        &[
            "--subscribers",
            "20",
            "--channels",
            "2",
            "--publishers",
            "2",
            "--max-rate",
            "--publications",
            "2000",
            "--drain",
            "1",
        ],
    );
    assert_eq!(v["max_rate"], true, "{v}");
    assert_eq!(u(&v, "publications_acked"), 2000);
    // Ten subscribers per channel, 1,000 publications per channel.
    assert_eq!(u(&v, "deliveries_owed"), 20000);
    assert_eq!(u(&v, "deliveries"), 20000);
    // Past what --rate's default (100/s) could have done in the time it took.
    assert!(
        v["seconds"].as_f64().unwrap() < 10.0,
        "2,000 publications took {v}"
    );
}
