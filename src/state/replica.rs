//! An optional read replica, and the one place that decides which database a read-only
//! request reads: the replica while it answers and has replayed the primary's changes to
//! within the allowed lag, the primary otherwise (and whenever the caller asks for it).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sqlx::Transaction;
use sqlx::postgres::{PgPool, Postgres};

use super::AppState;
use crate::domain::{Error, Result};

/// A streaming replica of the primary, with what the last probe found.
pub struct ReadReplica {
    pool: PgPool,
    max_lag: Duration,
    health: Mutex<Health>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Health {
    /// Not probed yet.
    Unknown,
    /// It answered, and has replayed everything the primary had written `lag` ago.
    Replaying { lag: Duration },
    /// It answered, but has not replayed any primary position seen in the last `at_least`.
    Behind { at_least: Duration },
    /// It did not answer the last probe, or a read on it failed since.
    Unreachable,
}

/// What `/readyz` says about the replica.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ReplicaStatus {
    /// Whether read-only requests read from the replica now.
    pub in_use: bool,
    /// Replication lag measured by the last probe, in milliseconds (null when unknown).
    pub lag_ms: Option<u64>,
    /// Why the replica is bypassed (null while in use): `not_checked_yet`, `unreachable` or
    /// `lagging`.
    pub bypassed_because: Option<&'static str>,
}

impl ReadReplica {
    pub fn new(pool: PgPool, max_lag: Duration) -> Arc<Self> {
        Arc::new(Self {
            pool,
            max_lag,
            health: Mutex::new(Health::Unknown),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn health(&self) -> Health {
        *self.health.lock().expect("replica health lock")
    }

    /// Whether reads go to the replica now.
    pub fn in_use(&self) -> bool {
        matches!(self.health(), Health::Replaying { lag } if lag <= self.max_lag)
    }

    pub fn status(&self) -> ReplicaStatus {
        let health = self.health();
        let (lag, bypassed_because) = match health {
            Health::Unknown => (None, Some("not_checked_yet")),
            Health::Unreachable => (None, Some("unreachable")),
            Health::Behind { at_least } => (Some(at_least), Some("lagging")),
            Health::Replaying { lag } if lag > self.max_lag => (Some(lag), Some("lagging")),
            Health::Replaying { lag } => (Some(lag), None),
        };
        ReplicaStatus {
            in_use: bypassed_because.is_none(),
            lag_ms: lag.map(|lag| lag.as_millis() as u64),
            bypassed_because,
        }
    }

    fn set_health(&self, health: Health) {
        let was_in_use = self.in_use();
        let previous = std::mem::replace(
            &mut *self.health.lock().expect("replica health lock"),
            health,
        );
        let in_use = self.in_use();
        metrics::gauge!("refunds_db_replica_in_use").set(f64::from(u8::from(in_use)));
        metrics::gauge!("refunds_db_replica_up")
            .set(f64::from(u8::from(health != Health::Unreachable)));
        match health {
            Health::Replaying { lag } => {
                metrics::gauge!("refunds_db_replica_lag_seconds").set(lag.as_secs_f64())
            }
            Health::Behind { at_least } => {
                metrics::gauge!("refunds_db_replica_lag_seconds").set(at_least.as_secs_f64())
            }
            Health::Unknown | Health::Unreachable => {}
        }
        if was_in_use != in_use || previous == Health::Unknown {
            let status = self.status();
            if in_use {
                tracing::info!(lag_ms = status.lag_ms, "reading from the replica");
            } else {
                tracing::warn!(
                    reason = status.bypassed_because,
                    lag_ms = status.lag_ms,
                    max_lag_ms = self.max_lag.as_millis() as u64,
                    "replica bypassed: reading from the primary"
                );
            }
        }
    }

    /// Probes the replica for ever: its replay position against positions of the primary
    /// sampled over time. Run in a task of its own.
    pub async fn monitor(self: Arc<Self>, primary: PgPool) {
        let interval = (self.max_lag / 4).clamp(Duration::from_millis(50), PROBE_INTERVAL);
        // Positions older than this cannot make the lag acceptable again.
        let mut history = PrimaryPositions::new(self.max_lag + 2 * interval);
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // The primary first: whatever it had written then, the replica must have now.
            if let Ok(Ok(position)) = tokio::time::timeout(
                PROBE_TIMEOUT,
                sqlx::query_scalar::<_, i64>(
                    "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint",
                )
                .fetch_one(&primary),
            )
            .await
            {
                history.record(Instant::now(), position);
            }
            let replayed = tokio::time::timeout(
                PROBE_TIMEOUT,
                sqlx::query_as::<_, (bool, Option<i64>)>(
                    "SELECT pg_is_in_recovery(), \
                     (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint",
                )
                .fetch_one(&self.pool),
            )
            .await;
            let health = match replayed {
                Ok(Ok((false, _))) => Health::Replaying {
                    // Not a standby (the primary itself, say): nothing to wait for.
                    lag: Duration::ZERO,
                },
                Ok(Ok((true, Some(replayed)))) => match history.lag(replayed, Instant::now()) {
                    Some(lag) => Health::Replaying { lag },
                    None => Health::Behind {
                        at_least: history.span(Instant::now()),
                    },
                },
                Ok(Ok((true, None))) => Health::Behind {
                    at_least: Duration::ZERO,
                },
                Ok(Err(_)) | Err(_) => Health::Unreachable,
            };
            self.set_health(health);
        }
    }

    /// A read on the replica failed: bypass it until the next probe finds it well.
    fn read_failed(&self) {
        self.set_health(Health::Unreachable);
    }
}

/// Longest wait between two probes of the replica.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// A probe that takes longer than this counts as a failure.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Write positions of the primary (bytes of WAL) and when they were seen, oldest first.
struct PrimaryPositions {
    samples: VecDeque<(Instant, i64)>,
    keep: Duration,
}

impl PrimaryPositions {
    fn new(keep: Duration) -> Self {
        Self {
            samples: VecDeque::new(),
            keep,
        }
    }

    fn record(&mut self, at: Instant, position: i64) {
        self.samples.push_back((at, position));
        while self.samples.len() > 1
            && self
                .samples
                .front()
                .is_some_and(|(seen, _)| at.duration_since(*seen) > self.keep)
        {
            self.samples.pop_front();
        }
    }

    /// How far behind a replica that has replayed up to `replayed` is: the age of the newest
    /// sampled primary position it has reached (so an idle primary means no lag at all).
    /// `None` when it has reached none of them.
    fn lag(&self, replayed: i64, now: Instant) -> Option<Duration> {
        self.samples
            .iter()
            .rev()
            .find(|(_, position)| *position <= replayed)
            .map(|(seen, _)| now.saturating_duration_since(*seen))
    }

    /// Age of the oldest sample kept.
    fn span(&self, now: Instant) -> Duration {
        self.samples
            .front()
            .map(|(seen, _)| now.saturating_duration_since(*seen))
            .unwrap_or_default()
    }
}

/// The database a read-only request reads from. Extracted from a request, it is the
/// replica when one is configured and in use, unless the request carries
/// `Cache-Control: no-cache` (a client reading its own write); otherwise the primary.
/// Every write, and every read inside a write, uses `AppState::pool` instead.
pub struct Reader {
    primary: PgPool,
    /// Set only when the replica was chosen.
    replica: Option<Arc<ReadReplica>>,
}

impl Reader {
    /// Runs `read` on the chosen database. A read that fails on the replica runs again on
    /// the primary (reads can be repeated), and the replica is bypassed until it is found
    /// well again.
    pub async fn read<T, F, Fut>(&self, read: F) -> Result<T>
    where
        F: Fn(PgPool) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if let Some(replica) = &self.replica {
            match read(replica.pool.clone()).await {
                Ok(value) => {
                    metrics::counter!("refunds_db_reads_total", "database" => "replica")
                        .increment(1);
                    return Ok(value);
                }
                Err(error) => {
                    tracing::warn!(%error, "a read failed on the replica: reading the primary");
                    metrics::counter!("refunds_db_replica_fallbacks_total").increment(1);
                    if matches!(error, Error::DatabaseUnavailable(_)) {
                        replica.read_failed();
                    }
                }
            }
        }
        metrics::counter!("refunds_db_reads_total", "database" => "primary").increment(1);
        read(self.primary.clone()).await
    }
}

/// A read-only transaction in which every statement sees the same snapshot, so that a page
/// and the count beside it agree even while rows are being written. Read-only
/// repeatable-read transactions run on a hot standby too.
pub async fn snapshot(pool: &PgPool) -> sqlx::Result<Transaction<'static, Postgres>> {
    pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
}

impl AppState {
    /// The reader of a read-only request; `fresh` asks for the primary.
    pub fn reader(&self, fresh: bool) -> Reader {
        let replica = self
            .replica
            .as_ref()
            .filter(|replica| !fresh && replica.in_use())
            .cloned();
        Reader {
            primary: self.pool.clone(),
            replica,
        }
    }
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        Ok(state.reader(asks_for_fresh_data(parts)))
    }
}

/// `Cache-Control: no-cache`: the client wants what the primary holds, not a copy.
fn asks_for_fresh_data(parts: &Parts) -> bool {
    parts
        .headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|directive| directive.trim().eq_ignore_ascii_case("no-cache"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_age_of_the_newest_primary_position_replayed() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut history = PrimaryPositions::new(Duration::from_secs(10));
        history.record(at(0), 100);
        history.record(at(500), 200);
        history.record(at(1_000), 300);
        // Replayed everything: only the probe period separates it from the primary.
        assert_eq!(
            history.lag(300, at(1_100)),
            Some(Duration::from_millis(100))
        );
        // Replayed what the primary had at 500 ms but not at 1,000 ms.
        assert_eq!(
            history.lag(250, at(1_100)),
            Some(Duration::from_millis(600))
        );
        // An idle primary (same position for a long time) means no lag, however old the
        // last change.
        history.record(at(9_000), 300);
        assert_eq!(history.lag(300, at(9_000)), Some(Duration::ZERO));
        // Behind every position kept: unknown, at least as old as the oldest kept.
        assert_eq!(history.lag(50, at(9_000)), None);
        assert_eq!(history.span(at(9_000)), Duration::from_secs(9));
    }

    #[test]
    fn keeps_positions_for_its_window_and_at_least_the_newest() {
        let start = Instant::now();
        let mut history = PrimaryPositions::new(Duration::from_secs(1));
        history.record(start, 100);
        history.record(start + Duration::from_secs(5), 200);
        assert_eq!(history.samples.len(), 1);
        assert_eq!(history.lag(100, start + Duration::from_secs(5)), None);
    }

    fn parts(cache_control: &[&str]) -> Parts {
        let mut request = axum::http::Request::builder();
        for value in cache_control {
            request = request.header(header::CACHE_CONTROL, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn no_cache_in_any_cache_control_asks_for_fresh_data() {
        assert!(!asks_for_fresh_data(&parts(&[])));
        assert!(!asks_for_fresh_data(&parts(&["max-age=60"])));
        assert!(asks_for_fresh_data(&parts(&["No-Cache"])));
        assert!(asks_for_fresh_data(&parts(&["max-age=0, no-cache"])));
        assert!(asks_for_fresh_data(&parts(&["private", "no-cache"])));
        assert!(!asks_for_fresh_data(&parts(&["no-cache-please"])));
    }
}
