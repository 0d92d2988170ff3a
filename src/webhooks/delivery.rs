//! The delivery worker that runs in every instance. It leases work with `FOR UPDATE SKIP
//! LOCKED`, commits the lease, calls the endpoint with no transaction open, then records the
//! attempt: several instances share the queue without sending an event twice while they are
//! healthy, and a crash only delays what it held until its lease runs out.
//!
//! First attempts go out per endpoint in creation order: a worker leases an endpoint's first
//! attempts as a whole and sends them one after another, stopping at the first failure (the
//! failed event moves to the retries; the rest stay first in line). Retries are leased one
//! event at a time and go out as they fall due, with Polar's backoff.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::Rng;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::address::{check_delivery_url, resolver};
use super::repo::{self, Attempt, Leased};
use super::signing::signature_header;

/// The channel on which a transaction that wrote events wakes the workers as it commits.
pub const WAKE_CHANNEL: &str = "webhook_events";
/// Attempts of an event before it fails for good (Polar's `WEBHOOK_MAX_RETRIES`).
pub const MAX_ATTEMPTS: i32 = 10;
/// Events failed in a row after which an endpoint is disabled.
pub const FAILED_EVENTS_TO_DISABLE: i32 = 10;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(20 * 60);
/// How much of an answer's body is kept.
const MAX_RESPONSE_CHARS: usize = 2048;
/// Events whose payload is dropped after this long.
const ARCHIVE_AFTER: chrono::Duration = chrono::Duration::days(90);

/// How many endpoints' first attempts, and how many retries, one worker sends at once.
const CONCURRENT_ENDPOINTS: usize = 16;
const CONCURRENT_RETRIES: usize = 32;
/// First attempts of one endpoint taken in one lease.
const FIRST_ATTEMPTS_PER_LEASE: i64 = 100;
/// How far below the last first attempt an endpoint was sent a lease looks for waiting
/// ones, in events of the whole table: far enough for any event whose transaction commits
/// a moment after later ones.
const FIRST_ATTEMPTS_LOOKBACK: i64 = 1000;
/// How often a lease looks through the whole queue of first attempts, for an event
/// committed long after later ones.
const FULL_LOOK_INTERVAL: Duration = Duration::from_secs(5);
/// How long a worker keeps sending one lease's first attempts before giving the rest back.
const SENDING_BUDGET: Duration = Duration::from_secs(5);
/// Slack added to every lease beyond the longest it may take.
const LEASE_MARGIN: Duration = Duration::from_secs(10);
/// How often an idle worker looks for due retries and expired leases.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How often the queue's depth is measured for the metrics.
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Longest an endpoint may take to answer.
    pub timeout: Duration,
    /// The first retry comes after about this long, each later one after twice as long.
    pub retry_base: Duration,
    /// Deliver to `http` and private addresses too (sandboxes).
    pub allow_private_urls: bool,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(2),
            allow_private_urls: false,
        }
    }
}

/// Polar's backoff before attempt `attempts + 1`: `min(base·2ⁿ, 20 min)`, jittered to
/// between half and all of it.
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let exponent = attempts.clamp(0, 32) as u32;
    let full = base
        .checked_mul(2u32.saturating_pow(exponent))
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF);
    let half = full / 2;
    half + full
        .saturating_sub(half)
        .mul_f64(rand::rng().random::<f64>())
}

struct Worker {
    pool: PgPool,
    client: reqwest::Client,
    settings: DeliverySettings,
    /// This worker's name on the endpoints whose first attempts it holds.
    lease: Uuid,
}

/// What one call came to.
struct Outcome {
    succeeded: bool,
    http_code: Option<i32>,
    response: Option<String>,
}

pub fn http_client(settings: &DeliverySettings) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .dns_resolver(resolver(settings.allow_private_urls))
        .build()
        .expect("the TLS backend initializes")
}

/// Delivers until `stop` turns true, then lets the attempts in flight finish and records
/// them; whatever is left is picked up by any instance once its lease runs out.
///
/// The queue is looked at only when there may be something this worker can take: when a
/// notification names an endpoint it is not sending to already, when a slot frees up, and
/// every `POLL_INTERVAL` (due retries, expired leases, other instances' endpoints). A
/// busy server commits events far more often than a lease takes, and a lease that finds
/// nothing still costs PostgreSQL its planning.
pub async fn run(pool: PgPool, settings: DeliverySettings, mut stop: watch::Receiver<bool>) {
    let worker = Arc::new(Worker {
        client: http_client(&settings),
        pool,
        settings,
        lease: Uuid::new_v4(),
    });
    let mut listener = match PgListener::connect_with(&worker.pool).await {
        Ok(mut listener) => match listener.listen(WAKE_CHANNEL).await {
            Ok(()) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "webhooks: cannot listen for new events; polling");
                None
            }
        },
        Err(error) => {
            tracing::warn!(%error, "webhooks: cannot listen for new events; polling");
            None
        }
    };
    let mut sending = Sending::default();
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    let mut gauges = tokio::time::interval(GAUGE_INTERVAL);
    let mut archive = tokio::time::interval(Duration::from_secs(3600));
    let mut last_full_look: Option<Instant> = None;
    let mut look = Look {
        first_attempts: true,
        retries: true,
    };
    while !*stop.borrow() {
        if look.first_attempts {
            worker
                .clone()
                .lease_and_spawn_first_attempts(&mut sending, &mut last_full_look)
                .await;
        }
        if look.retries {
            worker.clone().lease_and_spawn_retries(&mut sending).await;
        }
        look = tokio::select! {
            Some(finished) = sending.endpoints.join_next_with_id() => {
                let task = match &finished {
                    Ok((task, ())) => *task,
                    Err(error) => error.id(),
                };
                sending.held.remove(&task);
                Look { first_attempts: true, retries: false }
            }
            Some(_) = sending.retries.join_next() => Look { first_attempts: false, retries: true },
            woken = wake(&mut listener) => match woken {
                Some(endpoint_ids) => Look {
                    first_attempts: endpoint_ids.iter().any(|id| !sending.holds(id)),
                    retries: false,
                },
                None => {
                    listener = None;
                    Look::NOTHING
                }
            },
            _ = poll.tick() => Look { first_attempts: true, retries: true },
            _ = gauges.tick() => {
                worker.measure_queue().await;
                Look::NOTHING
            }
            _ = archive.tick() => {
                worker.archive().await;
                Look::NOTHING
            }
            _ = stop.changed() => Look::NOTHING,
        };
    }
    while sending.endpoints.join_next().await.is_some() {}
    while sending.retries.join_next().await.is_some() {}
    tracing::info!("webhooks: delivery worker stopped");
}

/// Which queues the next pass leases from.
struct Look {
    first_attempts: bool,
    retries: bool,
}

impl Look {
    const NOTHING: Look = Look {
        first_attempts: false,
        retries: false,
    };
}

/// What this worker is sending.
#[derive(Default)]
struct Sending {
    /// One task per endpoint whose first attempts it holds.
    endpoints: JoinSet<()>,
    /// Which endpoint each of those tasks sends to.
    held: HashMap<tokio::task::Id, Uuid>,
    retries: JoinSet<()>,
}

impl Sending {
    /// `None` (a notification that names no endpoint) is never held.
    fn holds(&self, endpoint_id: &Option<Uuid>) -> bool {
        endpoint_id.is_some_and(|id| self.held.values().any(|held| *held == id))
    }
}

/// Waits for a notification and takes every other one already received: the endpoints
/// they name (`None` for one that names none). `None` when the listener broke (the worker
/// then polls).
async fn wake(listener: &mut Option<PgListener>) -> Option<Vec<Option<Uuid>>> {
    let Some(listener) = listener else {
        return std::future::pending().await;
    };
    let endpoint_of =
        |notification: sqlx::postgres::PgNotification| Uuid::parse_str(notification.payload()).ok();
    match listener.recv().await {
        Ok(first) => {
            let mut endpoint_ids = vec![endpoint_of(first)];
            while let Some(next) = listener.next_buffered() {
                endpoint_ids.push(endpoint_of(next));
            }
            Some(endpoint_ids)
        }
        Err(error) => {
            tracing::warn!(%error, "webhooks: lost the notification channel; polling");
            None
        }
    }
}

impl Worker {
    /// Leases the first attempts of as many endpoints as there are free slots and starts
    /// sending them, looking through the whole queue when `last_full_look` is
    /// `FULL_LOOK_INTERVAL` ago.
    async fn lease_and_spawn_first_attempts(
        self: Arc<Self>,
        sending: &mut Sending,
        last_full_look: &mut Option<Instant>,
    ) {
        let free = CONCURRENT_ENDPOINTS.saturating_sub(sending.endpoints.len());
        if free == 0 {
            return;
        }
        let full_look = last_full_look.is_none_or(|at| at.elapsed() >= FULL_LOOK_INTERVAL);
        let lookback = if full_look {
            *last_full_look = Some(Instant::now());
            i64::MAX
        } else {
            FIRST_ATTEMPTS_LOOKBACK
        };
        match self.lease_first_attempts(free as i64, lookback).await {
            Ok(groups) => {
                for group in groups {
                    let endpoint_id = group[0].endpoint_id;
                    let task = sending
                        .endpoints
                        .spawn(self.clone().send_first_attempts(group));
                    sending.held.insert(task.id(), endpoint_id);
                }
            }
            Err(error) => tracing::warn!(%error, "webhooks: leasing first attempts failed"),
        }
    }

    /// Leases as many due retries as there are free slots and starts sending them.
    async fn lease_and_spawn_retries(self: Arc<Self>, sending: &mut Sending) {
        let free = CONCURRENT_RETRIES.saturating_sub(sending.retries.len());
        if free == 0 {
            return;
        }
        match self.lease_retries(free as i64).await {
            Ok(due) => {
                for event in due {
                    sending.retries.spawn(self.clone().send_retry(event));
                }
            }
            Err(error) => tracing::warn!(%error, "webhooks: leasing retries failed"),
        }
    }

    fn first_attempts_lease(&self) -> Duration {
        SENDING_BUDGET + self.settings.timeout + LEASE_MARGIN
    }

    async fn lease_first_attempts(
        &self,
        endpoints: i64,
        lookback: i64,
    ) -> sqlx::Result<Vec<Vec<Leased>>> {
        let mut tx = self.pool.begin().await?;
        let events = repo::lease_first_attempts(
            &mut tx,
            self.lease,
            self.first_attempts_lease(),
            endpoints,
            FIRST_ATTEMPTS_PER_LEASE,
            lookback,
        )
        .await?;
        tx.commit().await?;
        let mut groups: Vec<Vec<Leased>> = Vec::new();
        for event in events {
            match groups.last_mut() {
                Some(group) if group[0].endpoint_id == event.endpoint_id => group.push(event),
                _ => groups.push(vec![event]),
            }
        }
        Ok(groups)
    }

    async fn lease_retries(&self, limit: i64) -> sqlx::Result<Vec<Leased>> {
        let mut tx = self.pool.begin().await?;
        let due = repo::lease_retries(&mut tx, self.settings.timeout + LEASE_MARGIN, limit).await?;
        tx.commit().await?;
        Ok(due)
    }

    /// Sends one endpoint's first attempts in order until one fails or the budget is spent,
    /// then records them and gives the endpoint back.
    async fn send_first_attempts(self: Arc<Self>, group: Vec<Leased>) {
        let endpoint_id = group[0].endpoint_id;
        let organization_id = group[0].organization_id;
        let started = Instant::now();
        let mut attempts = Vec::new();
        let mut sent_seq = 0;
        for event in &group {
            let outcome = self.send(event).await;
            let failed = !outcome.succeeded;
            attempts.push(self.attempt(event, outcome));
            sent_seq = event.seq;
            if failed || started.elapsed() > SENDING_BUDGET {
                break;
            }
        }
        if let Err(error) = self
            .record(&attempts, Some((endpoint_id, organization_id, sent_seq)))
            .await
        {
            tracing::warn!(%error, %endpoint_id, "webhooks: recording deliveries failed; they will be sent again");
        }
    }

    async fn send_retry(self: Arc<Self>, event: Leased) {
        let outcome = self.send(&event).await;
        let attempt = self.attempt(&event, outcome);
        if let Err(error) = self.record(&[attempt], None).await {
            tracing::warn!(%error, event_id = %event.id, "webhooks: recording a delivery failed; it will be sent again");
        }
    }

    fn attempt(&self, event: &Leased, outcome: Outcome) -> Attempt {
        let attempts = event.attempts + 1;
        let retry_at = match outcome.succeeded || attempts >= event.attempts_allowed {
            true => None,
            false => chrono::Duration::from_std(backoff(self.settings.retry_base, attempts))
                .ok()
                .map(|delay| Utc::now() + delay),
        };
        metrics::counter!(
            "webhook_deliveries_total",
            "outcome" => if outcome.succeeded { "succeeded" } else { "failed" }
        )
        .increment(1);
        Attempt {
            event_id: event.id,
            organization_id: event.organization_id,
            endpoint_id: event.endpoint_id,
            succeeded: outcome.succeeded,
            http_code: outcome.http_code,
            response: outcome.response,
            retry_at,
        }
    }

    /// Records attempts, counts failure streaks (disabling endpoints that reach the limit)
    /// and gives back the endpoint's first attempts (with the highest `seq` sent), in one
    /// transaction.
    async fn record(
        &self,
        attempts: &[Attempt],
        release: Option<(Uuid, Uuid, i64)>,
    ) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        repo::record_attempts(&mut tx, attempts).await?;
        let mut failed: HashMap<(Uuid, Uuid), i32> = HashMap::new();
        let mut succeeded = Vec::new();
        for attempt in attempts {
            let key = (attempt.endpoint_id, attempt.organization_id);
            if attempt.succeeded {
                succeeded.push(key);
            } else if attempt.retry_at.is_none() {
                *failed.entry(key).or_default() += 1;
            }
        }
        let failed: Vec<(Uuid, Uuid, i32)> = failed
            .into_iter()
            .map(|((id, org), n)| (id, org, n))
            .collect();
        let disabled =
            repo::update_failure_streaks(&mut tx, &failed, &succeeded, FAILED_EVENTS_TO_DISABLE)
                .await?;
        for endpoint_id in disabled {
            tracing::warn!(%endpoint_id, "webhooks: endpoint disabled after {FAILED_EVENTS_TO_DISABLE} failed events in a row");
        }
        if let Some((endpoint_id, organization_id, sent_seq)) = release {
            repo::release_first_attempts(
                &mut *tx,
                self.lease,
                endpoint_id,
                organization_id,
                sent_seq,
            )
            .await?;
        }
        tx.commit().await
    }

    /// One attempt: a signed `POST` of the stored payload.
    async fn send(&self, event: &Leased) -> Outcome {
        let refused = |reason: String| Outcome {
            succeeded: false,
            http_code: None,
            response: Some(reason),
        };
        let url = match url::Url::parse(&event.url) {
            Ok(url) => url,
            Err(error) => return refused(format!("invalid URL: {error}")),
        };
        if let Err(reason) = check_delivery_url(&url, self.settings.allow_private_urls) {
            return refused(reason);
        }
        let id = event.id.to_string();
        let timestamp = Utc::now().timestamp();
        let signature = signature_header(&event.secret, &id, timestamp, event.payload.as_bytes());
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::USER_AGENT, "polar.sh webhooks")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(event.payload.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                Outcome {
                    succeeded: status.is_success(),
                    http_code: Some(i32::from(status.as_u16())),
                    response: read_response(response).await,
                }
            }
            Err(error) => refused(error_text(&error)),
        }
    }

    async fn measure_queue(&self) {
        match repo::queue_depth(&self.pool).await {
            Ok((depth, oldest)) => {
                metrics::gauge!("webhook_queue_depth").set(depth as f64);
                metrics::gauge!("webhook_oldest_pending_seconds").set(oldest);
            }
            Err(error) => tracing::debug!(%error, "webhooks: measuring the queue failed"),
        }
    }

    async fn archive(&self) {
        const BATCH: i64 = 5000;
        let before = Utc::now() - ARCHIVE_AFTER;
        loop {
            match repo::archive_events(&self.pool, before, BATCH).await {
                Ok(archived) => {
                    if archived > 0 {
                        tracing::info!(archived, "webhooks: old events archived");
                    }
                    if archived < BATCH as u64 {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "webhooks: archiving old events failed");
                    return;
                }
            }
        }
    }
}

/// The start of an answer's body, without NUL (which PostgreSQL text cannot hold); no more
/// than that is read.
async fn read_response(mut response: reqwest::Response) -> Option<String> {
    let mut bytes = Vec::new();
    // Four bytes per character at most.
    while bytes.len() < MAX_RESPONSE_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .filter(|character| *character != '\0')
        .take(MAX_RESPONSE_CHARS)
        .collect();
    (!text.is_empty()).then_some(text)
}

/// An error with its causes, as the delivery's `response`.
fn error_text(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(MAX_RESPONSE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps_at_twenty_minutes() {
        let base = Duration::from_secs(2);
        for attempts in 1..12 {
            let full = (base * 2u32.pow(attempts as u32)).min(MAX_BACKOFF);
            let delay = backoff(base, attempts);
            assert!(delay >= full / 2 && delay <= full, "{attempts}: {delay:?}");
        }
        assert!(backoff(base, 40) <= MAX_BACKOFF);
    }
}
