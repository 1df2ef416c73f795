//! `duplex serve` as a child process, for the tests that run the hub binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// A running `duplex serve`, killed on drop; its log lines are kept.
pub struct Serve {
    pub child: Child,
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    /// Starts `duplex serve` in `dir` with `args`; waits for its listening line.
    pub fn start(dir: &Path, args: &[&str]) -> Serve {
        Self::start_limited(dir, args, None)
    }

    /// Like [`start`](Self::start), with at most `max_files` open files (`ulimit -n`)
    /// when given.
    pub fn start_limited(dir: &Path, args: &[&str], max_files: Option<u32>) -> Serve {
        // `exec`, so the shell's PID is the server's.
        let ulimit = max_files.map_or(String::new(), |n| format!("ulimit -n {n} && "));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("{ulimit}exec \"$0\" \"$@\""))
            .arg(crate::BIN)
            .arg("serve")
            .args(if args.contains(&"--port") {
                &[][..]
            } else {
                &["--port", "0"][..]
            })
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("duplex serve starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                    let port: u16 = rest.split('/').next().unwrap().parse().unwrap();
                    let _ = port_tx.send(port);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no listening line; log: {:?}", log.lock().unwrap()));
        Serve { child, port, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
