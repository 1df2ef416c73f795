//! What the `duplex` binary's tests share: a `duplex echo` child process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

pub const BIN: &str = env!("CARGO_BIN_EXE_duplex");

/// `duplex echo --port 0` (logging at warn), killed on drop.
pub struct Echo {
    child: Child,
    pub url: String,
    /// The server's log lines, when started with [`Echo::start_logged`].
    #[allow(dead_code)] // used by some of the test crates only
    pub log: Option<mpsc::Receiver<String>>,
}

#[allow(dead_code)] // used by some of the test crates only
impl Echo {
    pub fn start() -> Self {
        Self::start_with(&[], "ws")
    }

    /// `duplex echo --port 0` with `extra` arguments; checks the printed URL's scheme.
    pub fn start_with(extra: &[&str], scheme: &str) -> Self {
        let mut command = Command::new(BIN);
        command
            .args(["echo", "--host", "127.0.0.1", "--port", "0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null());
        Self::spawn(command, scheme)
    }

    /// Like [`start_with`](Self::start_with) with `RUST_LOG=filter`, the log lines sent to
    /// [`log`](Self::log), and at most `max_files` open files (`ulimit -n`) when given.
    #[allow(dead_code)] // used by some of the test crates only
    pub fn start_logged(extra: &[&str], filter: &str, max_files: Option<u32>) -> Self {
        // `exec`, so the shell's PID is the server's.
        let ulimit = max_files.map_or(String::new(), |n| format!("ulimit -n {n} && "));
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "{ulimit}exec \"$0\" echo --host 127.0.0.1 --port 0 \"$@\""
            ))
            .arg(BIN)
            .args(extra)
            .env("RUST_LOG", filter)
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped());
        let mut echo = Self::spawn(command, "ws");
        let stderr = echo.child.stderr.take().unwrap();
        let (lines, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        echo.log = Some(log);
        echo
    }

    fn spawn(mut command: Command, scheme: &str) -> Self {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.split_whitespace().last().unwrap().to_owned();
        assert!(url.starts_with(&format!("{scheme}://127.0.0.1:")), "{line}");
        Self {
            child,
            url,
            log: None,
        }
    }

    #[allow(dead_code)] // used by some of the test crates only
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Echo {
    /// A client of this server without compression or proxies, as the relay tests use.
    #[allow(dead_code)] // used by some of the test crates only
    pub async fn plain_client(&self) -> duplex::WebSocket<duplex::ClientStream> {
        duplex::ClientBuilder::new(&self.url)
            .deflate(None)
            .no_proxy()
            .connect()
            .await
            .unwrap()
            .0
    }
}
