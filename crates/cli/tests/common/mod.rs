//! What the `duplex` binary's tests share: a `duplex echo` child process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_duplex");

/// `duplex echo --port 0` (logging at warn), killed on drop.
pub struct Echo {
    child: Child,
    pub url: String,
}

impl Echo {
    pub fn start() -> Self {
        Self::start_with(&[], "ws")
    }

    /// `duplex echo --port 0` with `extra` arguments; checks the printed URL's scheme.
    pub fn start_with(extra: &[&str], scheme: &str) -> Self {
        let mut child = Command::new(BIN)
            .args(["echo", "--host", "127.0.0.1", "--port", "0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.split_whitespace().last().unwrap().to_owned();
        assert!(url.starts_with(&format!("{scheme}://127.0.0.1:")), "{line}");
        Self { child, url }
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
