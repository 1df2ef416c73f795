//! A `redis-server` for tests, on a free port of 127.0.0.1, without persistence,
//! stopped when dropped. Missing `redis-server` fails the test (scripts/setup-deps
//! installs it).
// Shared by the integration tests and the engine's unit tests: each uses a part.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Child,
    pub url: String,
    pub port: u16,
    extra: Vec<String>,
    dir: tempfile::TempDir,
}

/// Runs `redis-server` on `port`; None if it exits (the port was taken) or never listens.
fn spawn(port: u16, dir: &std::path::Path, extra: &[String]) -> Option<Child> {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs (scripts/setup-deps installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("redis-server status") {
            eprintln!("redis-server on port {port} exited ({status})");
            return None;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// With more `redis-server` arguments (e.g. `--replicaof 127.0.0.1 PORT`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        // redis-server cannot report a port it chose: take a free one, and try again
        // if another process took it first.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let dir = tempfile::tempdir().expect("a temp dir");
            if let Some(child) = spawn(port, dir.path(), &extra) {
                return RedisServer {
                    child,
                    url: format!("redis://127.0.0.1:{port}/"),
                    port,
                    extra,
                    dir,
                };
            }
        }
        panic!("redis-server did not start listening in 5 attempts");
    }

    /// Kills it (SIGKILL) and waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills it and starts a new one on the same port: without persistence, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.port, self.dir.path(), &self.extra)
            .expect("redis-server restarts on its port");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
