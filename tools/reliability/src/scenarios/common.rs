//! What several scenarios share: refund requests that carry a unique marker, and the check
//! that, after whatever happened, each of them took effect as its answers say.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;
use uuid::Uuid;

use crate::Ctx;
use crate::client::{self, Outcome};
use crate::db;
use crate::report::{Counts, Latencies, Report};

/// One attempt of a logical request.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub outcome: Outcome,
    pub started: Instant,
    pub latency: Duration,
}

/// A refund a client wants, identified by its marker; a client that retries sends the same
/// body (same marker) again.
#[derive(Debug, Clone)]
pub struct Logical {
    pub marker: String,
    pub order_id: Uuid,
    pub amount: i64,
    pub reason: &'static str,
    pub attempts: Vec<Attempt>,
}

impl Logical {
    pub fn new(order_id: Uuid, amount: i64, reason: &'static str) -> Self {
        Self {
            marker: Uuid::new_v4().simple().to_string(),
            order_id,
            amount,
            reason,
            attempts: Vec::new(),
        }
    }

    pub fn body(&self) -> Value {
        client::refund_body(self.order_id, self.amount, self.reason, &self.marker)
    }

    pub fn acknowledged(&self) -> Vec<Value> {
        self.attempts
            .iter()
            .filter(|attempt| attempt.outcome.status() == Some(201))
            .filter_map(|attempt| attempt.outcome.json())
            .collect()
    }

    /// An attempt whose effect the client cannot know: no answer, or a 5xx.
    pub fn had_ambiguous_attempt(&self) -> bool {
        self.attempts
            .iter()
            .any(|attempt| attempt.outcome.status().is_none_or(|status| status >= 500))
    }
}

/// Outcome labels of every attempt and the latencies of the answered ones.
pub fn tally(logicals: &[Logical]) -> (Counts, Latencies) {
    let mut counts = Counts::default();
    let mut latencies = Latencies::default();
    for attempt in logicals.iter().flat_map(|logical| &logical.attempts) {
        counts.add(attempt.outcome.label());
        if attempt.outcome.status().is_some() {
            latencies.push(attempt.latency);
        }
    }
    (counts, latencies)
}

/// Checks every logical request against the database and the API:
/// - a request acknowledged with 201 exists exactly once, and reads back through
///   `GET /v1/refunds/?id=` with exactly the body that was returned (every field);
/// - a request rejected (4xx) without an ambiguous attempt does not exist;
/// - a request with ambiguous attempts (cut off, 5xx) exists once or not at all, and when
///   it exists it is the refund that was asked for (order, amount, reason, metadata);
/// - no request took effect twice, and no refund carries a marker nobody sent.
pub async fn verify_logicals(
    ctx: &Ctx,
    http: &reqwest::Client,
    base: &str,
    org: Uuid,
    token: &str,
    logicals: &[Logical],
    report: &mut Report,
) -> Result<()> {
    let stored = db::refunds_by_marker(&ctx.pool, org).await?;
    let mut acknowledged = 0usize;
    let mut rejected = 0usize;
    let mut ambiguous = 0usize;
    let mut ambiguous_committed = 0usize;
    let mut amount_adjusted = 0usize;
    let mut problems: Vec<String> = Vec::new();
    let mut expected_bodies: Vec<(Uuid, Value)> = Vec::new();
    for logical in logicals {
        let rows = stored
            .get(&logical.marker)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let acks = logical.acknowledged();
        if rows.len() > 1 {
            problems.push(format!(
                "request {} took effect {} times ({} attempts: {})",
                logical.marker,
                rows.len(),
                logical.attempts.len(),
                labels(logical)
            ));
        }
        if let Some(row) = rows.first() {
            let sent = logical.body();
            if row.order_id != logical.order_id
                || row.reason != logical.reason
                || row.metadata != sent["metadata"]
            {
                problems.push(format!(
                    "request {} stored differently from what was sent: order {} reason {} metadata {}",
                    logical.marker, row.order_id, row.reason, row.metadata
                ));
            }
            if row.amount != logical.amount {
                amount_adjusted += 1;
            }
        }
        if !acks.is_empty() {
            acknowledged += 1;
            if acks.len() > 1 {
                problems.push(format!(
                    "request {} acknowledged {} times",
                    logical.marker,
                    acks.len()
                ));
            }
            let body = &acks[0];
            let id: Option<Uuid> = body["id"].as_str().and_then(|id| id.parse().ok());
            match (id, rows.first()) {
                (None, _) => problems.push(format!("201 without an id: {body}")),
                (Some(id), None) => problems.push(format!(
                    "refund {id} acknowledged with 201 is not in the database (marker {})",
                    logical.marker
                )),
                (Some(id), Some(row)) if row.id != id => problems.push(format!(
                    "refund acknowledged as {id} is stored as {}",
                    row.id
                )),
                (Some(id), Some(_)) => expected_bodies.push((id, body.clone())),
            }
        } else if logical.had_ambiguous_attempt() {
            ambiguous += 1;
            if !rows.is_empty() {
                ambiguous_committed += 1;
            }
        } else {
            rejected += 1;
            if !rows.is_empty() {
                problems.push(format!(
                    "request {} was answered {} but took effect",
                    logical.marker,
                    labels(logical)
                ));
            }
        }
    }
    let sent: HashSet<&str> = logicals.iter().map(|l| l.marker.as_str()).collect();
    let phantom = stored.keys().filter(|m| !sent.contains(m.as_str())).count();
    if phantom > 0 {
        problems.push(format!("{phantom} refunds carry a marker no client sent"));
    }

    // Read every acknowledged refund back through the API and compare every field.
    let ids: Vec<Uuid> = expected_bodies.iter().map(|(id, _)| *id).collect();
    let read_back = client::refunds_by_id(http, base, token, &ids).await?;
    let mut identical = 0usize;
    let mut reordered = 0usize;
    for (id, expected) in &expected_bodies {
        match read_back.get(id) {
            None => problems.push(format!("refund {id} acknowledged with 201 is not listed")),
            Some(item) => {
                let (a, b) = (
                    serde_json::to_string(item)?,
                    serde_json::to_string(expected)?,
                );
                // Every field equal; objects compare regardless of key order.
                if item == expected {
                    identical += 1;
                    if a != b {
                        reordered += 1;
                    }
                } else {
                    problems.push(format!(
                        "refund {id} reads back differently:\n      201: {b}\n      GET: {a}"
                    ));
                }
            }
        }
    }
    report.figure(format!(
        "requests: {} logical; {} acknowledged (201), {} read back identical; {} rejected (4xx); \
         {} without a definite answer (cut off or 5xx), of which {} committed and {} not",
        logicals.len(),
        acknowledged,
        identical,
        rejected,
        ambiguous,
        ambiguous_committed,
        ambiguous - ambiguous_committed
    ));
    if reordered > 0 {
        report.figure(format!(
            "note: {reordered} of {identical} refunds read back with their metadata keys in \
             another order than the 201 showed (jsonb reorders object keys; same content)"
        ));
    }
    if amount_adjusted > 0 {
        report.figure(format!(
            "{amount_adjusted} stored refunds have a net amount other than the one requested (tax split)"
        ));
    }
    report.check(
        problems.is_empty(),
        format!("{} marker/read-back problems", problems.len()),
    );
    for problem in problems.iter().take(10) {
        report.fail(problem.clone());
    }
    Ok(())
}

fn labels(logical: &Logical) -> String {
    logical
        .attempts
        .iter()
        .map(|attempt| attempt.outcome.label())
        .collect::<Vec<_>>()
        .join(" / ")
}

// ---------------------------------------------------------------------------------------
// Continuous load
// ---------------------------------------------------------------------------------------

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rand::Rng;
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

/// Where the load goes: `None` while no server is up (between a kill and a restart).
pub type Target = Arc<RwLock<Option<String>>>;

pub struct LoadConfig {
    pub workers: usize,
    /// Orders to refund, with the largest amount to ask of each.
    pub orders: Vec<(Uuid, i64)>,
    pub token: String,
    /// How often a request without a definite answer (no answer, 5xx) is sent again,
    /// with the same body and marker.
    pub retries: usize,
    pub retry_delay: Duration,
    /// Pause between requests of one worker.
    pub pause: Duration,
    /// No worker sends after this long, whatever happens.
    pub max_duration: Duration,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<Vec<Logical>>>,
}

impl Load {
    pub fn start(http: &reqwest::Client, target: &Target, config: LoadConfig, seed: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let config = Arc::new(config);
        let deadline = Instant::now() + config.max_duration;
        let handles = (0..config.workers)
            .map(|worker| {
                let (http, target, stop, config) =
                    (http.clone(), target.clone(), stop.clone(), config.clone());
                tokio::spawn(async move {
                    use rand::SeedableRng;
                    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ worker as u64);
                    let mut done = Vec::new();
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let (order, max) = config.orders[rng.random_range(0..config.orders.len())];
                        let amount = rng.random_range(1..=max.max(1));
                        let reason = client::REASONS[rng.random_range(0..client::REASONS.len())];
                        let mut logical = Logical::new(order, amount, reason);
                        let body = logical.body();
                        for attempt in 0..=config.retries {
                            let base = loop {
                                if let Some(base) = target.read().await.clone() {
                                    break Some(base);
                                }
                                if Instant::now() >= deadline
                                    || (attempt == 0 && stop.load(Ordering::Relaxed))
                                {
                                    break None;
                                }
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            };
                            let Some(base) = base else { break };
                            let started = Instant::now();
                            let (outcome, latency) = client::send(client::refund_request(
                                &http,
                                &base,
                                &config.token,
                                &body,
                            ))
                            .await;
                            let definite = outcome.status().is_some_and(|status| status < 500);
                            logical.attempts.push(Attempt {
                                outcome,
                                started,
                                latency,
                            });
                            if definite || attempt == config.retries {
                                break;
                            }
                            tokio::time::sleep(config.retry_delay).await;
                        }
                        let answered = logical
                            .attempts
                            .last()
                            .is_some_and(|attempt| attempt.outcome.status().is_some());
                        if !logical.attempts.is_empty() {
                            done.push(logical);
                        }
                        if !answered {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        } else if !config.pause.is_zero() {
                            tokio::time::sleep(config.pause).await;
                        }
                    }
                    done
                })
            })
            .collect();
        Load { stop, handles }
    }

    /// Stops the workers (a retry in progress finishes) and answers every logical request.
    pub async fn finish(mut self) -> Vec<Logical> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for handle in std::mem::take(&mut self.handles) {
            if let Ok(done) = handle.await {
                all.extend(done);
            }
        }
        all
    }
}

impl Drop for Load {
    /// A scenario that fails half-way stops its load too.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Sets a stop flag when dropped, so that helper tasks end even when a scenario returns
/// early with an error.
pub struct StopOnDrop(pub Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
