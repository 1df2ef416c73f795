//! `duplex serve` as a process: configuration errors, development mode, SIGTERM, and
//! durability across `kill -9`.

const BIN: &str = env!("CARGO_BIN_EXE_duplex");

#[path = "common/serve.rs"]
mod serve;

use serve::Serve;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "serve-test-secret-serve-test-secret!";
const KEY: &str = "serve-test-key";

/// One API call on a fresh connection: the HTTP status and the body, or an error when
/// the hub is gone.
fn api(port: u16, method: &str, body: &str) -> std::io::Result<(u16, serde_json::Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "POST /api/{method} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-API-Key: {KEY}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let json = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((
        status,
        serde_json::from_str(json).map_err(std::io::Error::other)?,
    ))
}

fn run_failing(args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .arg("serve")
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir.path())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn configuration_errors_name_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("duplex.toml");
    std::fs::write(&file, "[channels]\nhistroy_size = 5\n").unwrap();
    let (code, stderr) = run_failing(&["--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("channels.histroy_size") && stderr.contains("history_size"),
        "{stderr}"
    );
    let (code, stderr) = run_failing(&["--engine", "postgres"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`engine`") && stderr.contains("command-line flag"),
        "{stderr}"
    );
    let (code, stderr) = run_failing(&[], &[("DUPLEX_PROT", "1")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("DUPLEX_PROT"), "{stderr}");
    let (code, stderr) = run_failing(&["--token-secret", "short"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("token_hmac_secret"), "{stderr}");
    // --redis and DUPLEX_REDIS reach the `redis` key.
    let (code, stderr) = run_failing(&["--engine", "redis", "--redis", "http://x"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("\"http://x\" is not a Redis URL"),
        "{stderr}"
    );
    let (code, stderr) = run_failing(
        &["--engine", "redis"],
        &[("DUPLEX_REDIS", "redis://a:1,rediss://b:1")],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("rediss://"), "{stderr}");
}

#[test]
fn development_mode_generates_secrets_once_and_lets_the_demo_in() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Serve::start(dir.path(), &[]);
    let secrets = dir.path().join("data/dev-secrets.toml");
    let text = std::fs::read_to_string(&secrets).unwrap();
    assert!(text.contains("token_hmac_secret") && text.contains("api_key"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let first_log = hub.log();
    assert!(first_log.contains("development mode"), "{first_log}");
    let api_key = text
        .lines()
        .find(|l| l.starts_with("api_key"))
        .unwrap()
        .split('"')
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(
        first_log.contains(&api_key),
        "the generated key is printed on first start"
    );
    // An anonymous client subscribes to chat:lobby and publishes, as the start page does.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use duplex::Message;
        let url = format!("ws://127.0.0.1:{}/connection/websocket", hub.port);
        let (mut ws, _) = duplex::connect(&url).await.unwrap();
        ws.send(Message::text("{\"id\":1,\"connect\":{}}\n{\"id\":2,\"subscribe\":{\"channel\":\"chat:lobby\"}}\n{\"id\":3,\"publish\":{\"channel\":\"chat:lobby\",\"data\":\"hi\"}}\n{\"id\":4,\"subscribe\":{\"channel\":\"other\"}}")).await.unwrap();
        let mut lines = Vec::new();
        while lines.len() < 5 {
            match tokio::time::timeout(Duration::from_secs(10), ws.recv()).await.unwrap().unwrap().unwrap() {
                Message::Text(t) => lines.extend(t.as_str().split('\n').map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())),
                other => panic!("{other:?}"),
            }
        }
        let by_id = |id: u64| lines.iter().find(|l| l["id"] == id).cloned().unwrap();
        assert!(by_id(1).get("connect").is_some(), "{lines:?}");
        assert!(by_id(2).get("subscribe").is_some(), "{lines:?}");
        assert!(by_id(3).get("publish").is_some(), "{lines:?}");
        assert_eq!(by_id(4)["error"]["code"], 103, "anonymous clients only in chat and ticker");
        assert!(lines.iter().any(|l| l["push"]["pub"]["data"] == "hi"), "{lines:?}");
    });
    drop(hub);
    let again = Serve::start(dir.path(), &[]);
    assert!(
        !again.log().contains(&api_key),
        "secrets are printed only when generated"
    );
    assert_eq!(
        std::fs::read_to_string(&secrets).unwrap(),
        text,
        "the same secrets on the next start"
    );
}

#[test]
fn sigterm_disconnects_clients_with_3001_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = Serve::start(
        dir.path(),
        &[
            "--token-secret",
            SECRET,
            "--allow-anonymous",
            "--engine",
            "memory",
        ],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use duplex::Message;
        let url = format!("ws://127.0.0.1:{}/connection/websocket", hub.port);
        let (mut ws, _) = duplex::connect(&url).await.unwrap();
        ws.send(Message::text("{\"id\":1,\"connect\":{}}"))
            .await
            .unwrap();
        ws.recv().await.unwrap().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &hub.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // The disconnect push, then the close frame with the same code.
        let mut push = None;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.recv())
                .await
                .unwrap()
            {
                Some(Ok(Message::Text(text))) => push = Some(text.as_str().to_owned()),
                Some(Ok(Message::Close(Some(frame)))) => {
                    assert_eq!(
                        (frame.code.as_u16(), frame.reason.as_str()),
                        (3001, "shutdown")
                    );
                    break;
                }
                other => panic!("expected close 3001, got {other:?}"),
            }
        }
        let push: serde_json::Value =
            serde_json::from_str(&push.expect("a disconnect push")).unwrap();
        assert_eq!(push["push"]["disconnect"]["code"], 3001);
        assert_eq!(push["push"]["disconnect"]["reconnect"], true);
    });
    let status = hub.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", hub.log());
}

/// Many concurrent acknowledged publishes, `kill -9` at a random moment, restart: every
/// acknowledged publication is in history exactly once, offsets contiguous, in order.
#[test]
fn acknowledged_publications_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--token-secret", SECRET, "--api-key", KEY];
    let mut hub = Serve::start(dir.path(), &args);
    let port = hub.port;
    // A random moment: after 100 to 500 acknowledgements.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let kill_after = 100 + (nanos % 400) as usize;
    const WRITERS: usize = 8;
    let acked: Arc<Mutex<Vec<(usize, usize, u64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let acked = acked.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for seq in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let body =
                        format!("{{\"channel\":\"durable\",\"data\":{{\"w\":{w},\"s\":{seq}}}}}");
                    match api(port, "publish", &body) {
                        Ok((200, answer)) if answer["result"]["offset"].is_u64() => {
                            acked.lock().unwrap().push((
                                w,
                                seq,
                                answer["result"]["offset"].as_u64().unwrap(),
                            ));
                        }
                        Ok((status, answer)) => panic!("unexpected answer {status} {answer}"),
                        // The hub was killed: this publish was never acknowledged.
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < kill_after {
        std::thread::yield_now();
        assert!(
            hub.child.try_wait().unwrap().is_none(),
            "the hub died: {}",
            hub.log()
        );
    }
    hub.child.kill().unwrap(); // SIGKILL
    hub.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= kill_after);
    drop(hub);

    let restarted = Serve::start(dir.path(), &args);
    let (status, history) = api(
        restarted.port,
        "history",
        "{\"channel\":\"durable\",\"limit\":-1}",
    )
    .unwrap();
    assert_eq!(status, 200, "{history}");
    let publications = history["result"]["publications"].as_array().unwrap();
    let offsets: Vec<u64> = publications
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(
        offsets,
        (1..=offsets.len() as u64).collect::<Vec<_>>(),
        "offsets contiguous from 1, in order"
    );
    assert_eq!(history["result"]["offset"], offsets.len() as u64);
    eprintln!(
        "kill -9 after {} acknowledgements; {} stored",
        acked.len(),
        offsets.len()
    );
    let stored: Vec<(u64, u64)> = publications
        .iter()
        .map(|p| {
            (
                p["data"]["w"].as_u64().unwrap(),
                p["data"]["s"].as_u64().unwrap(),
            )
        })
        .collect();
    for (w, seq, offset) in &acked {
        let at = stored
            .iter()
            .position(|(sw, ss)| (*sw, *ss) == (*w as u64, *seq as u64));
        assert_eq!(
            at.map(|i| offsets[i]),
            Some(*offset),
            "acknowledged publication w{w} s{seq} (offset {offset}) must be stored at its offset"
        );
    }
    let mut unique = stored.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), stored.len(), "no publication stored twice");
    for w in 0..WRITERS as u64 {
        let seqs: Vec<u64> = stored
            .iter()
            .filter(|(sw, _)| *sw == w)
            .map(|(_, s)| *s)
            .collect();
        assert!(
            seqs.windows(2).all(|p| p[0] < p[1]),
            "writer {w}'s publications in its order: {seqs:?}"
        );
    }
    // The stream continues where it stopped, in the same epoch.
    let (_, next) = api(
        restarted.port,
        "publish",
        "{\"channel\":\"durable\",\"data\":0}",
    )
    .unwrap();
    assert_eq!(next["result"]["offset"], offsets.len() as u64 + 1);
    assert_eq!(next["result"]["epoch"], history["result"]["epoch"]);
}
