//! What the scenarios share: latency histograms, error counts, the generator's CPU use,
//! the progress bar and the output table.

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Largest latency recorded exactly enough: one hour, in microseconds. Longer ones are
/// recorded as one hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Samples a task collects before it takes the shared histogram's lock.
const BATCH: usize = 1024;

/// Latencies of a run in microseconds, in one histogram (3 significant digits) that the
/// connection tasks add to in batches.
pub struct Latencies {
    hist: Mutex<Histogram<u64>>,
}

impl Latencies {
    pub fn new() -> Self {
        let hist =
            Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds");
        Self {
            hist: Mutex::new(hist),
        }
    }

    /// A per-task buffer of samples, added to the histogram when full and when dropped.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            samples: Vec::with_capacity(BATCH),
            into: self,
        }
    }

    fn add(&self, samples: &[u64]) {
        let mut hist = self.hist.lock().unwrap_or_else(|e| e.into_inner());
        for &us in samples {
            hist.saturating_record(us.max(1));
        }
    }

    pub fn summary(&self) -> LatencySummary {
        let hist = self.hist.lock().unwrap_or_else(|e| e.into_inner());
        if hist.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            samples: hist.len(),
            min: hist.min(),
            p50: hist.value_at_quantile(0.50),
            p90: hist.value_at_quantile(0.90),
            p99: hist.value_at_quantile(0.99),
            p999: hist.value_at_quantile(0.999),
            max: hist.max(),
        }
    }
}

/// See [`Latencies::batch`].
pub struct Batch<'a> {
    samples: Vec<u64>,
    into: &'a Latencies,
}

impl Batch<'_> {
    pub fn record(&mut self, latency: Duration) {
        self.samples
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        if self.samples.len() == BATCH {
            self.into.add(&self.samples);
            self.samples.clear();
        }
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if !self.samples.is_empty() {
            self.into.add(&self.samples);
        }
    }
}

/// Percentiles in whole microseconds (0 when nothing was recorded).
#[derive(Clone, Copy, Debug, Default)]
pub struct LatencySummary {
    pub samples: u64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl LatencySummary {
    pub fn json(&self) -> Value {
        json!({
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "p999": self.p999,
            "max": self.max,
            "min": self.min,
        })
    }

    pub fn row(&self) -> String {
        if self.samples == 0 {
            return "none measured".to_owned();
        }
        format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            group(self.p50),
            group(self.p90),
            group(self.p99),
            group(self.p999),
            group(self.max)
        )
    }
}

/// Failures of single connections: counted, with the first few distinct messages kept
/// for the report.
pub struct Errors {
    count: AtomicU64,
    kinds: Mutex<Vec<(String, u64)>>,
}

/// Distinct error messages kept.
const ERROR_KINDS: usize = 5;

impl Errors {
    pub fn new() -> Self {
        Self {
            count: AtomicU64::new(0),
            kinds: Mutex::new(Vec::new()),
        }
    }

    pub fn record(&self, message: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kind) = kinds.iter_mut().find(|(m, _)| *m == message) {
            kind.1 += 1;
        } else if kinds.len() < ERROR_KINDS {
            kinds.push((message, 1));
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The most frequent message, for the one-line failure of a run.
    pub fn main_message(&self) -> String {
        let kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        kinds
            .iter()
            .max_by_key(|(_, n)| *n)
            .map(|(m, _)| m.clone())
            .unwrap_or_else(|| "no reason recorded".to_owned())
    }

    pub fn json(&self) -> Value {
        let kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        kinds
            .iter()
            .map(|(m, n)| json!({"message": m, "count": n}))
            .collect()
    }

    /// Table rows: the count, then one row per kept message.
    pub fn rows(&self, rows: &mut Vec<(String, String)>) {
        rows.push(("errors".into(), group(self.count())));
        let kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        for (message, n) in kinds.iter() {
            rows.push((String::new(), format!("{} x {message}", group(*n))));
        }
    }
}

/// A process's CPU time (user + system, all threads) over an interval, from
/// `/proc/PID/stat`: the generator's own, or a server's.
pub struct CpuMeter {
    wall: Instant,
    pid: Option<u32>,
    ticks: Option<u64>,
}

/// Linux reports process times in USER_HZ, 100 per second on every architecture.
const TICKS_PER_SECOND: f64 = 100.0;

impl CpuMeter {
    /// This process's.
    pub fn start() -> Self {
        Self::of(None)
    }

    /// Process `pid`'s.
    pub fn of_process(pid: u32) -> Self {
        Self::of(Some(pid))
    }

    fn of(pid: Option<u32>) -> Self {
        Self {
            wall: Instant::now(),
            pid,
            ticks: process_cpu_ticks(pid),
        }
    }

    /// CPU seconds used since the start.
    pub fn seconds(&self) -> Option<f64> {
        let used = process_cpu_ticks(self.pid)?.checked_sub(self.ticks?)?;
        Some(used as f64 / TICKS_PER_SECOND)
    }

    /// CPU time since the start as a percentage of one core (200 = two cores busy).
    pub fn percent(&self) -> Option<f64> {
        let wall = self.wall.elapsed().as_secs_f64();
        let used = self.seconds()?;
        (wall > 0.0).then(|| used / wall * 100.0)
    }
}

/// utime + stime of process `pid` (None: this one) in clock ticks.
fn process_cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces; the fields after it start with the
    // state (field 3). utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// What the server under test (`--server-pid`) used: its memory per connection
/// once the subscribers are in, and its CPU time over the measured publishing.
pub struct ServerUse {
    pub rss_before: Option<u64>,
    pub rss_subscribed: Option<u64>,
    /// Subscriber connections (publishers connect after the memory is read).
    pub connections: u64,
    pub cpu_seconds: Option<f64>,
    pub cpu_percent: Option<f64>,
    pub deliveries: u64,
}

impl ServerUse {
    fn kib_per_connection(&self) -> Option<f64> {
        let (before, after) = (self.rss_before?, self.rss_subscribed?);
        Some((after as f64 - before as f64) / self.connections.max(1) as f64)
    }

    fn deliveries_per_cpu_second(&self) -> Option<f64> {
        let seconds = self.cpu_seconds.filter(|s| *s > 0.0)?;
        Some(self.deliveries as f64 / seconds)
    }

    pub fn json(&self, pid: Option<u32>) -> Value {
        if pid.is_none() {
            return Value::Null;
        }
        json!({
            "pid": pid,
            "rss_kib_before": self.rss_before,
            "rss_kib_subscribed": self.rss_subscribed,
            "kib_per_connection": self.kib_per_connection().map(|k| round_to(k, 2)),
            "cpu_seconds": self.cpu_seconds.map(|s| round_to(s, 2)),
            "cpu_percent": self.cpu_percent.map(|p| round_to(p, 1)),
            "deliveries_per_cpu_second": self.deliveries_per_cpu_second().map(|d| round_to(d, 0)),
        })
    }

    pub fn rows(&self, rows: &mut Vec<(String, String)>) {
        if let Some(kib) = self.kib_per_connection() {
            rows.push((
                "server memory".into(),
                format!("{kib:.2} KiB per subscribed connection"),
            ));
        }
        if let (Some(seconds), Some(percent)) = (self.cpu_seconds, self.cpu_percent) {
            let per = self
                .deliveries_per_cpu_second()
                .map_or_else(|| "-".to_owned(), round);
            rows.push((
                "server CPU".into(),
                format!(
                    "{seconds:.2} s ({percent:.0}% of one core): {per} deliveries per CPU-second"
                ),
            ));
        }
    }
}

/// VmRSS of a process in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("no VmRSS line in /proc/{pid}/status"),
            )
        })
}

/// The progress bar on stderr, or a hidden one.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `len` steps; hidden unless `show`.
    pub fn new(show: bool, len: u64, prefix: &str) -> Self {
        let bar = if show {
            let bar = ProgressBar::new(len);
            let style = ProgressStyle::with_template("{prefix:>10} [{bar:25}] {msg}")
                .expect("valid template")
                .progress_chars("=> ");
            bar.set_style(style);
            bar
        } else {
            ProgressBar::hidden()
        };
        bar.set_prefix(prefix.to_owned());
        Self { bar }
    }

    pub fn update(&self, position: u64, message: String) {
        self.bar.set_position(position);
        self.bar.set_message(message);
    }

    /// Starts the next stage: a new length, label and no message.
    pub fn set_length(&self, len: u64, prefix: &str) {
        self.bar.set_length(len);
        self.bar.set_position(0);
        self.bar.set_prefix(prefix.to_owned());
        self.bar.set_message("");
    }

    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// A scenario's results, gathered once and printed either as the table or, with
/// `--json`, as one JSON object. Each fact is given once: its JSON field and, when a
/// reader of the table needs it, its row.
pub struct Report {
    title: String,
    fields: serde_json::Map<String, Value>,
    rows: Vec<(String, String)>,
}

impl Report {
    /// A report of `scenario` (its JSON `"scenario"`) under the table's `title`.
    pub fn new(scenario: &str, title: impl Into<String>) -> Self {
        let mut fields = serde_json::Map::new();
        fields.insert("scenario".into(), scenario.into());
        Self {
            title: title.into(),
            fields,
            rows: Vec::new(),
        }
    }

    /// A field of the JSON object.
    pub fn field(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// A row of the table.
    pub fn row(&mut self, label: &str, text: impl Into<String>) -> &mut Self {
        self.rows.push((label.into(), text.into()));
        self
    }

    /// A latency distribution: `key` in the JSON object, `label` in the table.
    pub fn latency(&mut self, key: &str, label: &str, latency: &LatencySummary) -> &mut Self {
        self.field(key, latency.json()).row(label, latency.row())
    }

    /// The failures of single connections.
    pub fn errors(&mut self, errors: &Errors) -> &mut Self {
        self.field("errors", errors.count())
            .field("error_messages", errors.json());
        errors.rows(&mut self.rows);
        self
    }

    /// The generator's own CPU use over the measured time.
    pub fn generator_cpu(
        &mut self,
        key: &str,
        label: &str,
        percent: Option<f64>,
        threads: usize,
    ) -> &mut Self {
        self.field(key, percent.map(|p| round_to(p, 1)))
            .row(label, cpu_row(percent, threads))
    }

    /// What the server under test (`--server-pid`) used.
    pub fn server(&mut self, server: &ServerUse, pid: Option<u32>) -> &mut Self {
        self.field("server", server.json(pid));
        server.rows(&mut self.rows);
        self
    }

    /// Prints the JSON object (one line) or the table on stdout.
    pub fn print(&self, json: bool) {
        print!("{}", self.render(json));
    }

    fn render(&self, json: bool) -> String {
        if json {
            format!("{}\n", Value::Object(self.fields.clone()))
        } else {
            table(&self.title, &self.rows)
        }
    }
}

/// How often the progress bar is refreshed.
pub const TICK: Duration = Duration::from_millis(100);

/// A two-column table: a title line, then `name  value` rows.
fn table(title: &str, rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = format!("{title}\n");
    for (key, value) in rows {
        let pad = width - key.chars().count();
        out.push_str(&format!("  {key}{}  {value}\n", " ".repeat(pad)));
    }
    out
}

/// 1234567 -> "1,234,567".
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate or amount rounded for reading: no decimals from 100 up, else two significant
/// decimals.
pub fn round(x: f64) -> String {
    if x >= 100.0 {
        group(x.round() as u64)
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Rounds to `decimals` places for JSON, so reports do not carry float noise.
pub fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// The CPU row of the table.
fn cpu_row(percent: Option<f64>, threads: usize) -> String {
    match percent {
        Some(p) => format!(
            "{p:.0}% of one core (user + sys, {threads} worker thread{})",
            if threads == 1 { "" } else { "s" }
        ),
        None => "unknown (no /proc/self/stat)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_gives_each_fact_to_the_json_or_the_table() {
        let errors = Errors::new();
        errors.record("refused".into());
        let mut report = Report::new("demo", "duplex bench demo");
        report
            .field("messages", 1234u64)
            .row("messages/s", "1,234")
            .latency("latency_us", "latency (µs)", &LatencySummary::default())
            .errors(&errors)
            .generator_cpu("client_cpu_percent", "client CPU", Some(12.345), 2);
        let json: Value = serde_json::from_str(&report.render(true)).unwrap();
        assert_eq!(json["scenario"], "demo");
        assert_eq!(json["messages"], 1234);
        assert_eq!(json["latency_us"]["p99"], 0);
        assert_eq!(json["errors"], 1);
        assert_eq!(json["error_messages"][0]["message"], "refused");
        assert_eq!(json["client_cpu_percent"], 12.3);
        assert!(
            json.get("messages/s").is_none(),
            "table rows stay out of the JSON"
        );
        let table = report.render(false);
        assert_eq!(
            table,
            "duplex bench demo\n\
             \x20 messages/s    1,234\n\
             \x20 latency (µs)  none measured\n\
             \x20 errors        1\n\
             \x20               1 x refused\n\
             \x20 client CPU    12% of one core (user + sys, 2 worker threads)\n"
        );
    }

    #[test]
    fn grouping() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }

    #[test]
    fn percentiles_are_ordered() {
        let l = Latencies::new();
        {
            let mut b = l.batch();
            for us in 1..=10_000u64 {
                b.record(Duration::from_micros(us));
            }
        }
        let s = l.summary();
        assert_eq!(s.samples, 10_000);
        assert!(s.min <= s.p50 && s.p50 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max);
        assert!((4990..=5010).contains(&s.p50), "{s:?}");
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(process_cpu_ticks(None).is_some());
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn another_process_cpu_time_is_counted() {
        // A child that burns CPU for a while: its meter sees the time, ours does not.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])
            .spawn()
            .unwrap();
        let meter = CpuMeter::of_process(child.id());
        let mut used = 0.0;
        while child.try_wait().unwrap().is_none() {
            used = meter.seconds().unwrap_or(used);
            std::thread::yield_now();
        }
        assert!(used > 0.0, "the child's CPU time was not seen");
        assert!(
            CpuMeter::of_process(u32::MAX).seconds().is_none(),
            "no such process"
        );
    }
}
