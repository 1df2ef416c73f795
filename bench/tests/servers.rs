//! Each comparison server echoes text and binary messages, answers a ping and closes
//! cleanly (tokio-tungstenite as the client); `tcp_ceiling` carries a bounded amount of
//! data in both modes. Every exchange is count-bounded and under a timeout.

use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A server process, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(binary: &str, args: &[&str]) -> Server {
    let mut child = Command::new(binary)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the listening line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{binary} printed {line:?}"))
        .to_string();
    Server { child, url }
}

async fn exchange(url: &str) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    for text in ["hello", "", "héllo wörld"] {
        ws.send(Message::text(text)).await.expect("send text");
        assert_eq!(
            ws.next().await.expect("reply").expect("ok"),
            Message::text(text)
        );
    }
    // Larger than one 64 KiB read, so it arrives in several pieces.
    let binary: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(binary.clone()))
        .await
        .expect("send binary");
    assert_eq!(
        ws.next().await.expect("reply").expect("ok"),
        Message::binary(binary)
    );
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("send ping");
    assert_eq!(
        ws.next().await.expect("pong").expect("ok"),
        Message::Pong(b"are you there".to_vec().into())
    );
    ws.close(None).await.expect("close");
    while let Some(message) = ws.next().await {
        match message {
            Ok(Message::Close(_)) => {}
            other => panic!("after close: {other:?}"),
        }
    }
}

async fn echo_test(binary: &str) {
    let server = start(binary, &["--port", "0"]);
    assert!(server.url.starts_with("ws://127.0.0.1:"), "{}", server.url);
    tokio::time::timeout(Duration::from_secs(20), exchange(&server.url))
        .await
        .expect("the exchange finished in time");
}

#[tokio::test]
async fn tungstenite_echo_echoes() {
    echo_test(env!("CARGO_BIN_EXE_tungstenite_echo")).await;
}

#[tokio::test]
async fn fastwebsockets_echo_echoes() {
    echo_test(env!("CARGO_BIN_EXE_fastwebsockets_echo")).await;
}

#[test]
fn tcp_ceiling_reports_throughput() {
    let binary = env!("CARGO_BIN_EXE_tcp_ceiling");
    let server = start(binary, &["server", "--port", "0"]);
    let addr = server.url.clone();
    assert!(addr.starts_with("tcp://127.0.0.1:"), "{addr}");
    // 3,000,000 bytes is 46 chunks of 64 KiB in one connection, 3 x 16 chunks in three.
    for (mode, connections, sent) in [
        ("echo", "1", 46 * 65536),
        ("sink", "1", 46 * 65536),
        ("echo", "3", 48 * 65536),
    ] {
        let output = Command::new(binary)
            .args([
                "client",
                &addr,
                "--mode",
                mode,
                "--connections",
                connections,
                "--bytes",
                "3000000",
                "--json",
            ])
            .output()
            .expect("run the client");
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8(output.stdout).expect("utf-8");
        assert!(
            stdout.contains(&format!("\"mode\":\"{mode}\""))
                && stdout.contains(&format!("\"bytes_sent\":{sent},"))
                && stdout.contains("\"mb_per_sec\":"),
            "{stdout}"
        );
    }
}
