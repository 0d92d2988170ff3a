//! Creating refunds in batches. Concurrent creates that need no lock held across a call out
//! (no idempotency key, a processor that answers in process) share two statements: one
//! reads their orders, the other creates the refunds and moves the orders' counters, and
//! commits by itself. That is what lets PostgreSQL keep up with many creates a second: the
//! cost of a round trip, a transaction and a commit is paid once per batch instead of once
//! per refund.
//!
//! The orders are read without a lock, and the rules are checked in Rust against what was
//! read, as the one-by-one create checks them; the write then creates a refund only where
//! its order is still as it was read. A refund that is not created here (a rule refuses it,
//! its order changed meanwhile, the batch failed) is declined: the caller creates it one by
//! one, under the order's lock, which gives every refusal its exact answer.
//!
//! There is no batching task: a create queues itself and, when a batch slot is free, takes
//! every create waiting (its own and others') as one batch, run in a task of its own so that
//! a client hanging up does not cut it short.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{SubsecRound, Utc};
use tokio::sync::{Semaphore, oneshot};
use uuid::Uuid;

use super::model::{Refund, RefundCreate};
use super::repo::{self, BatchedRefund, OrderRefundState};
use super::service::{self, RefundRecord};
use crate::domain::{Error, OrderAmounts, OrderStatus, RefundStatus, Result};
use crate::orders::repo::{self as orders_repo, LockedOrder};
use crate::state::AppState;
use crate::webhooks::{emit, model::REFUND_CREATED};

/// Batches of creates being written at once. Two keep both of PostgreSQL's cores busy
/// while the next batch gathers, without batches competing for the same rows.
const SLOTS: usize = 2;
/// The most creates in one batch.
const MAX_BATCH: usize = 64;

/// What became of a create handed to the batcher.
pub enum Batched {
    Created(Refund),
    /// Not created: the create is to be made one by one, with this input.
    Declined(RefundCreate),
}

pub struct CreateBatcher {
    waiting: Mutex<Vec<Waiting>>,
    slots: Arc<Semaphore>,
}

struct Waiting {
    refund_id: Uuid,
    organization_ids: Vec<Uuid>,
    input: RefundCreate,
    answer: oneshot::Sender<Batched>,
}

impl Waiting {
    fn decline(self) {
        metrics::counter!("refunds_batched_total", "outcome" => "declined").increment(1);
        // The create was abandoned (its client hung up) when nobody listens: nothing was
        // made for it, so nothing is lost.
        let _ = self.answer.send(Batched::Declined(self.input));
    }
}

impl Default for CreateBatcher {
    fn default() -> Self {
        Self {
            waiting: Mutex::default(),
            slots: Arc::new(Semaphore::new(SLOTS)),
        }
    }
}

impl CreateBatcher {
    /// Creates a refund with id `refund_id` in a batch, if it can be made there.
    pub async fn create(
        &self,
        state: &AppState,
        organization_ids: &[Uuid],
        refund_id: Uuid,
        input: RefundCreate,
    ) -> Result<Batched> {
        let (answer, mut answered) = oneshot::channel();
        self.lock_waiting().push(Waiting {
            refund_id,
            organization_ids: organization_ids.to_vec(),
            input,
            answer,
        });
        let lost = || Error::Corrupt("a batch of refunds ended without an answer".into());
        loop {
            tokio::select! {
                biased;
                batched = &mut answered => return batched.map_err(|_| lost()),
                slot = Arc::clone(&self.slots).acquire_owned() => {
                    let slot = slot.map_err(|_| lost())?;
                    let batch = self.take_batch();
                    if batch.is_empty() {
                        // Another create took this one's turn along with its own.
                        drop(slot);
                        return answered.await.map_err(|_| lost());
                    }
                    let state = state.clone();
                    tokio::spawn(async move {
                        run(&state, batch).await;
                        drop(slot);
                    });
                }
            }
        }
    }

    fn take_batch(&self) -> Vec<Waiting> {
        let mut waiting = self.lock_waiting();
        let size = waiting.len().min(MAX_BATCH);
        waiting.drain(..size).collect()
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        // The queue stays consistent whatever panicked while holding it: every change is a
        // single push or drain.
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A create the batch will write, and its answer once written.
struct Planned {
    waiting: Waiting,
    refund: Refund,
    processor_id: String,
    read: OrderRefundState,
    written: OrderRefundState,
}

async fn run(state: &AppState, batch: Vec<Waiting>) {
    // Two creates of one order would both be checked against the same counters: all but
    // the first go one by one.
    let mut orders_seen = HashSet::new();
    let (batch, repeated): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .partition(|waiting| orders_seen.insert(waiting.input.order_id));
    repeated.into_iter().for_each(Waiting::decline);

    let mut unwritten = Vec::new();
    let created = match write(state, batch, &mut unwritten).await {
        Ok(created) => created,
        Err(error) => {
            // A batch that failed may still have committed (the connection was lost after
            // the commit): every create goes one by one with the same refund id, which can
            // only be inserted once.
            tracing::warn!(%error, "a batch of refunds failed; creating them one by one");
            HashSet::new()
        }
    };
    metrics::counter!("refunds_batched_total", "outcome" => "created")
        .increment(created.len() as u64);
    for planned in unwritten {
        if created.contains(&planned.refund.id) {
            let _ = planned
                .waiting
                .answer
                .send(Batched::Created(planned.refund));
        } else {
            planned.waiting.decline();
        }
    }
}

/// Reads the orders, checks each create, and writes those that pass. Every create ends up
/// in `planned` or declined.
async fn write(
    state: &AppState,
    batch: Vec<Waiting>,
    planned: &mut Vec<Planned>,
) -> Result<HashSet<Uuid>> {
    let (order_ids, organization_ids): (Vec<Uuid>, Vec<Uuid>) = batch
        .iter()
        .flat_map(|waiting| {
            let order_id = waiting.input.order_id;
            waiting
                .organization_ids
                .iter()
                .map(move |org| (order_id, *org))
        })
        .unzip();
    let mut conn = match state.pool.acquire().await {
        Ok(conn) => conn,
        Err(error) => {
            batch.into_iter().for_each(Waiting::decline);
            return Err(error.into());
        }
    };
    let orders = match orders_repo::read_for_refunds(&mut conn, &order_ids, &organization_ids).await
    {
        Ok(orders) => orders,
        Err(error) => {
            batch.into_iter().for_each(Waiting::decline);
            return Err(error.into());
        }
    };
    let orders: HashMap<Uuid, LockedOrder> =
        orders.into_iter().map(|order| (order.id, order)).collect();

    let created_at = Utc::now().trunc_subsecs(6);
    for waiting in batch {
        match orders.get(&waiting.input.order_id) {
            Some(order) => match plan(state, order, waiting, created_at).await {
                Ok(ready) => planned.push(ready),
                Err(waiting) => waiting.decline(),
            },
            None => waiting.decline(),
        }
    }
    if planned.is_empty() {
        return Ok(HashSet::new());
    }
    let mut rows = Vec::with_capacity(planned.len());
    for ready in planned.iter() {
        let refund = &ready.refund;
        let data = serde_json::to_string(refund)
            .map_err(|error| Error::Corrupt(format!("refund as JSON: {error}")))?;
        rows.push(BatchedRefund {
            id: refund.id,
            organization_id: refund.organization_id,
            order_id: refund.order_id,
            customer_id: refund.customer_id,
            subscription_id: refund.subscription_id,
            payment_id: orders[&refund.order_id]
                .payment_id
                .ok_or_else(|| Error::Corrupt("a planned refund without a payment".into()))?,
            status: refund.status,
            reason: refund.reason,
            amount: refund.amount,
            tax_amount: refund.tax_amount,
            currency: &refund.currency,
            comment: ready.waiting.input.comment.as_deref(),
            processor_id: &ready.processor_id,
            revoke_benefits: refund.revoke_benefits,
            metadata: &refund.metadata,
            read: ready.read,
            written: ready.written,
            event_tail: emit::payload_tail(&data),
        });
    }
    let event_head = emit::payload_head(REFUND_CREATED, &created_at);
    let created = repo::insert_batch(
        &mut conn,
        state.processor.name(),
        created_at,
        &event_head,
        &rows,
    )
    .await?;
    Ok(created.into_iter().collect())
}

/// Checks a create against its order as read and asks the processor, as the one-by-one
/// create does. Gives the create back when it is to go one by one: a rule refuses it (the
/// refusal is then given under the lock), or the processor's answer leaves the order's
/// counters as they are (nothing for the write to check them by).
async fn plan(
    state: &AppState,
    order: &LockedOrder,
    waiting: Waiting,
    created_at: chrono::DateTime<Utc>,
) -> std::result::Result<Planned, Waiting> {
    let Ok((split, payment_id, charge_id)) = service::check_refundable(order, &waiting.input)
    else {
        return Err(waiting);
    };
    let request = service::processor_request(
        waiting.refund_id,
        order,
        &waiting.input,
        split,
        payment_id,
        charge_id,
    );
    let Ok(outcome) = state.processor.refund(&request).await else {
        return Err(waiting);
    };
    let status = service::status_of(outcome.state);
    if !matches!(status, RefundStatus::Succeeded | RefundStatus::Pending) {
        return Err(waiting);
    }
    let mut amounts = order.amounts;
    amounts.record(status, split);
    let order_status = amounts.status_after(&order.amounts, order.status);
    let record = RefundRecord {
        status,
        processor_id: Some(outcome.processor_id.clone()),
        failure_reason: outcome.failure_reason,
        ..service::new_record(
            waiting.refund_id,
            order,
            &waiting.input,
            split,
            payment_id,
            state.processor.name(),
        )
    };
    let refund = service::refund_of(order, &record, created_at);
    Ok(Planned {
        waiting,
        refund,
        processor_id: outcome.processor_id,
        read: refund_state(order.status, &order.amounts),
        written: refund_state(order_status, &amounts),
    })
}

fn refund_state(status: OrderStatus, amounts: &OrderAmounts) -> OrderRefundState {
    OrderRefundState {
        status,
        refunded_amount: amounts.refunded_amount,
        refunded_tax_amount: amounts.refunded_tax_amount,
        pending_amount: amounts.pending_amount,
        pending_tax_amount: amounts.pending_tax_amount,
    }
}
