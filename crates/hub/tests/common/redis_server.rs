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

/// A port of 127.0.0.1 that was free a moment ago (redis-server cannot report one it
/// chose).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Runs `redis-server` on `port`; None if it exits (the port was taken) or never listens.
fn spawn(port: u16, dir: &std::path::Path, extra: &[String]) -> Option<Child> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs (scripts/setup-deps installs it)");
    listening(child, port)
}

/// `child` once it accepts connections on `port`; None if it exits (the port was taken)
/// or never listens.
fn listening(mut child: Child, port: u16) -> Option<Child> {
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
            let port = free_port();
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

/// A Redis Cluster of `masters` `redis-server`s (no replicas), created with
/// `redis-cli --cluster create` and ready (every node reports `cluster_state:ok`).
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start(masters: usize) -> RedisCluster {
        Self::start_with_replicas(masters, 0)
    }

    /// `masters` masters with `replicas` replicas each (`redis-cli` picks which node is
    /// which); a failed master's replica takes over after about the 5 s node timeout.
    pub fn start_with_replicas(masters: usize, replicas: usize) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..masters * (1 + replicas))
            .map(|_| {
                // The cluster bus port defaults to port + 10000, which may not exist:
                // take a free one.
                let bus = free_port().to_string();
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                    "--cluster-port",
                    &bus,
                ])
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli runs (scripts/setup-deps installs redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes };
        for node in &cluster.nodes {
            cluster.wait_until_ok(node.port);
        }
        cluster
    }

    /// Polls `CLUSTER INFO` on `port` until the node sees every slot served.
    fn wait_until_ok(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "cluster", "info"])
                .output()
                .expect("redis-cli runs");
            let info = String::from_utf8_lossy(&out.stdout);
            if info.contains("cluster_state:ok") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster node on {port} never reached cluster_state:ok: {info}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Seed URLs (every node).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url.clone()).collect()
    }
}

/// A Redis Sentinel on a free port watching `master` under `name`, alone (quorum 1) and
/// quick to act: the master counts as down after 1 s without an answer.
pub struct RedisSentinel {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl RedisSentinel {
    pub fn start(master: &RedisServer, name: &str) -> RedisSentinel {
        for _ in 0..5 {
            let port = free_port();
            let dir = tempfile::tempdir().expect("a temp dir");
            // Sentinel rewrites its configuration file: it must be its own.
            let conf = dir.path().join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\n\
                     sentinel monitor {name} 127.0.0.1 {} 1\n\
                     sentinel down-after-milliseconds {name} 1000\n\
                     sentinel failover-timeout {name} 5000\n",
                    dir.path().display(),
                    master.port
                ),
            )
            .expect("sentinel.conf written");
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server runs (scripts/setup-deps installs it)");
            if let Some(child) = listening(child, port) {
                return RedisSentinel {
                    child,
                    url: format!("redis://127.0.0.1:{port}/"),
                    _dir: dir,
                };
            }
        }
        panic!("redis-server --sentinel did not start listening in 5 attempts");
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls the primary at `url` until a replica has finished its first sync.
pub async fn wait_for_replica(url: &str) {
    let mut probe = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut probe)
            .await
            .unwrap();
        if info.contains("connected_slaves:1") && info.contains("state=online") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never synced: {info}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
