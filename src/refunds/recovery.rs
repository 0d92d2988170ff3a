//! The worker that finishes what a crash or a timeout left unfinished, in every instance
//! at once: refunds still waiting for an outside processor's first answer are asked again
//! (with the same idempotency key) or, once the processor has forgotten the key, looked up;
//! and, when the sandbox is told to, its pending refunds succeed after a delay. Every move
//! goes through `service::move_refund`, as a processor's events do.

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::repo;
use super::service::{RefundMove, move_refund, record_processor_answer};
use crate::domain::{Error, RefundFailureReason, RefundStatus, Result};
use crate::payments::{IDEMPOTENCY_KEY_WINDOW, ProcessorError, ProcessorRefund, SANDBOX};
use crate::state::AppState;

/// How many refunds one look takes up at most.
const BATCH: i64 = 50;

#[derive(Debug, Clone, Copy)]
pub struct RecoverySettings {
    /// How often the worker looks.
    pub interval: Duration,
    /// When set, pending sandbox refunds succeed by themselves after this delay.
    pub sandbox_settle_after: Option<Duration>,
}

/// Runs for as long as the process does.
pub async fn run(state: AppState, settings: RecoverySettings) {
    let period = match settings.sandbox_settle_after {
        Some(after) => settings.interval.min(after.max(Duration::from_millis(10))),
        None => settings.interval,
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match recover_unanswered(&state).await {
            Ok(0) => {}
            Ok(recovered) => tracing::info!(recovered, "refunds recovered from the processor"),
            Err(error) => tracing::warn!(%error, "recovering refunds failed"),
        }
        if let Some(after) = settings.sandbox_settle_after
            && let Err(error) = settle_sandbox_refunds(&state, after).await
        {
            tracing::warn!(%error, "settling pending sandbox refunds failed");
        }
    }
}

/// One look: takes up the refunds whose first answer is overdue (a lease keeps other
/// instances off them) and asks the processor about each, outside any transaction. Returns
/// how many got an answer.
pub async fn recover_unanswered(state: &AppState) -> Result<usize> {
    let lease_ms = state.recovery_after.as_millis() as i64;
    // Only the configured processor can answer for its refunds.
    let processor = state.processor.name();
    let taken = repo::take_unanswered(&state.pool, processor, lease_ms, BATCH).await?;
    let mut recovered = 0;
    for refund in taken {
        match recover_one(state, refund).await {
            Ok(true) => recovered += 1,
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "recovering a refund failed"),
        }
    }
    Ok(recovered)
}

#[tracing::instrument(name = "refunds.recover", skip_all, fields(refund_id = %refund.id))]
async fn recover_one(state: &AppState, refund: repo::Unanswered) -> Result<bool> {
    let request: ProcessorRefund = serde_json::from_value(refund.processor_request)
        .map_err(|error| Error::Corrupt(format!("stored processor request: {error}")))?;
    let key_alive = Utc::now() - refund.created_at
        < chrono::Duration::from_std(IDEMPOTENCY_KEY_WINDOW).expect("a day fits");
    let answer = if key_alive {
        state.processor.refund(&request).await.map(Some)
    } else {
        state.processor.find_refund(&request).await
    };
    let change = match answer {
        Ok(Some(outcome)) => {
            let mut tx = state.pool.begin().await?;
            let refund = record_processor_answer(&mut tx, request.refund_id, &outcome).await?;
            tx.commit().await?;
            tracing::info!(status = refund.status.as_str(), "refund recovered");
            return Ok(true);
        }
        Err(ProcessorError::Unavailable(cause)) => {
            tracing::warn!(%cause, "still no answer from the processor");
            return Ok(false);
        }
        // The key is gone and the processor holds no such refund: it was never made.
        Ok(None) => RefundMove {
            failure_reason: Some(RefundFailureReason::Unknown),
            ..RefundMove::to(RefundStatus::Failed)
        },
        Err(refused) => {
            tracing::warn!(%refused, "the processor refused the refund");
            RefundMove {
                failure_reason: Some(RefundFailureReason::Declined),
                ..RefundMove::to(RefundStatus::Failed)
            }
        }
    };
    settle_without_processor_id(state, request.refund_id, change).await?;
    Ok(true)
}

async fn settle_without_processor_id(
    state: &AppState,
    refund_id: Uuid,
    change: RefundMove,
) -> Result<()> {
    let mut tx = state.pool.begin().await?;
    let refund = move_refund(&mut tx, refund_id, change).await?;
    super::service::complete_cut_off_key(&mut tx, &refund).await?;
    tx.commit().await?;
    Ok(())
}

/// Pending sandbox refunds older than `after` succeed, as if the processor had said so.
/// Several instances may try the same refund: the second finds it succeeded already.
pub async fn settle_sandbox_refunds(state: &AppState, after: Duration) -> Result<usize> {
    let due =
        repo::pending_older_than(&state.pool, SANDBOX, after.as_millis() as i64, BATCH).await?;
    for refund_id in &due {
        let mut tx = state.pool.begin().await?;
        match move_refund(&mut tx, *refund_id, RefundMove::to(RefundStatus::Succeeded)).await {
            Ok(_) => tx.commit().await?,
            // Moved elsewhere meanwhile (failed or canceled through the admin API).
            Err(Error::InvalidRefundMove { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(due.len())
}
