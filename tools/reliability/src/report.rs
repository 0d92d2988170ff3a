//! What a scenario prints: its figures as they come, its failed checks, and a verdict.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The running account of one scenario. Figures and failures are printed as they are added
/// so that a long run shows its progress.
pub struct Report {
    pub name: &'static str,
    started: Instant,
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
    pub skipped: Option<String>,
    finished: Option<Duration>,
}

impl Report {
    pub fn new(name: &'static str) -> Self {
        println!("\n=== [{name}] ===");
        Self {
            name,
            started: Instant::now(),
            failures: Vec::new(),
            warnings: Vec::new(),
            skipped: None,
            finished: None,
        }
    }

    /// One figure of the scenario, printed at once.
    pub fn figure(&mut self, line: impl AsRef<str>) {
        println!("  {}", line.as_ref());
    }

    /// A check: records (and prints) a failure when `ok` is false.
    pub fn check(&mut self, ok: bool, what: impl Into<String>) -> bool {
        if !ok {
            self.fail(what);
        }
        ok
    }

    pub fn fail(&mut self, what: impl Into<String>) {
        let what = what.into();
        println!("  FAIL: {what}");
        self.failures.push(what);
    }

    /// A weakness that the scenario's stated checks do not cover: printed and listed in the
    /// summary, without failing the scenario.
    pub fn warn(&mut self, what: impl Into<String>) {
        let what = what.into();
        println!("  WARN: {what}");
        self.warnings.push(what);
    }

    pub fn skip(&mut self, why: impl Into<String>) {
        let why = why.into();
        println!("  SKIPPED: {why}");
        self.skipped = Some(why);
    }

    pub fn elapsed(&self) -> Duration {
        self.finished.unwrap_or_else(|| self.started.elapsed())
    }

    /// Freezes the scenario's duration.
    pub fn finish(&mut self) {
        self.finished = Some(self.started.elapsed());
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn verdict(&self) -> &'static str {
        match (&self.skipped, self.passed()) {
            (Some(_), true) => "SKIP",
            (_, true) => "PASS",
            (_, false) => "FAIL",
        }
    }
}

/// Latencies of a set of requests.
#[derive(Default, Clone)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn push(&mut self, latency: Duration) {
        self.0.push(latency);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn quantile(&self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.0.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted[index.min(sorted.len() - 1)]
    }

    pub fn max(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }

    /// "p50 1.2 ms, p99 8.0 ms, max 12.1 ms (n=500)"
    pub fn summary(&self) -> String {
        format!(
            "p50 {}, p99 {}, max {} (n={})",
            ms(self.quantile(0.5)),
            ms(self.quantile(0.99)),
            ms(self.max()),
            self.len()
        )
    }
}

pub fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// Counts of outcomes by label ("201", "422", "transport: connection refused", ...).
#[derive(Default, Clone, Debug)]
pub struct Counts(pub BTreeMap<String, usize>);

impl Counts {
    pub fn add(&mut self, label: impl Into<String>) {
        *self.0.entry(label.into()).or_default() += 1;
    }

    pub fn get(&self, label: &str) -> usize {
        self.0.get(label).copied().unwrap_or_default()
    }

    pub fn total(&self) -> usize {
        self.0.values().sum()
    }

    /// Everything but the listed labels.
    pub fn others(&self, known: &[&str]) -> usize {
        self.0
            .iter()
            .filter(|(label, _)| !known.contains(&label.as_str()))
            .map(|(_, count)| count)
            .sum()
    }

    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(label, count)| format!("{label}: {count}"))
            .collect();
        format!("{} [{}]", self.total(), parts.join(", "))
    }
}
