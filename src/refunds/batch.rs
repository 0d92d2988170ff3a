//! Creating refunds in batches. Concurrent creates that need no lock held across a call out
//! (a processor that answers in process) share a few statements: reads of their orders
//! (with the events their organizations' webhook endpoints want) and of their idempotency
//! keys, and one statement that creates the refunds, moves the orders' counters, keeps the
//! keys' answers and writes the webhook events, and commits by itself.
//! That is what lets PostgreSQL keep up with many creates a second: the cost of a round
//! trip, a transaction and a commit is paid once per batch instead of once per refund.
//!
//! The orders are read without a lock, and the rules are checked in Rust against what was
//! read, as the one-by-one create checks them; the write then creates a refund only where
//! its order is still as it was read. A refund that is not created here (a rule refuses it,
//! its order changed meanwhile or is locked by another transaction, its key was used before
//! or is in use, an endpoint of its organization subscribed since the read to an event the
//! batch did not build, the batch failed) is declined: the
//! caller creates it one by one, under the order's lock, which gives every refusal and
//! every replay its exact answer.
//!
//! There is no batching task: a create queues itself and, when a batch slot is free, takes
//! every create waiting (its own and others') as one batch, run in a task of its own so that
//! a client hanging up does not cut it short.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use sqlx::pool::PoolConnection;
use tokio::sync::{Semaphore, oneshot};
use uuid::Uuid;

use super::model::{Refund, RefundCreate};
use super::repo::{self, BatchedEvent, BatchedKey, BatchedRefund, OrderRefundState};
use super::service::{self, Keyed, RefundRecord};
use crate::domain::{Error, RefundStatus, Result};
use crate::idempotency::{self, KeyedRequest, StoredAnswer};
use crate::orders::{
    self,
    model::Order,
    repo::{self as orders_repo, LockedOrder},
    service::{OrdersRead, RefundStateChange},
};
use crate::state::AppState;
use crate::telemetry;
use crate::webhooks::{
    emit::{self, OrderState, RefundChange},
    model::{ORDER_REFUNDED, ORDER_UPDATED, REFUND_CREATED},
};

/// Batches of creates being written at once. Two keep both of PostgreSQL's cores busy
/// while the next batch gathers, without batches competing for the same rows.
const SLOTS: usize = 2;
/// The most creates in one batch.
const MAX_BATCH: usize = 64;
/// The events a create can send.
const CREATE_EVENTS: [&str; 3] = [REFUND_CREATED, ORDER_UPDATED, ORDER_REFUNDED];
/// Where a batch's time goes, by `stage`: `wait`, each create's from its queueing to the
/// start of its batch; `read`, the batch's read of its orders (with its keys, and the
/// `Order`s it foresaw it would send in order events); `order`, its read of Polar's `Order`
/// for order events after that, when it did not read them beside; `write`, its statement,
/// commit included.
pub const BATCH_STAGE_SECONDS: &str = "refunds_batch_stage_duration_seconds";

/// What became of a create handed to the batcher.
pub enum Batched {
    Created(Refund),
    /// Not created: the create is to be made one by one, with this input and key.
    Declined(RefundCreate, Option<Keyed>),
}

pub struct CreateBatcher {
    waiting: Mutex<Vec<Waiting>>,
    slots: Arc<Semaphore>,
    foresight: Arc<Foresight>,
}

/// The organizations whose endpoints wanted order events when their orders were last read
/// in a batch. A batch reads these organizations' `Order`s beside its read of the orders,
/// instead of after it once the read has told it which events are wanted. A guess only:
/// an `Order` read for nothing is dropped, and one the guess missed is read afterwards.
#[derive(Default)]
struct Foresight {
    order_events: Mutex<HashSet<Uuid>>,
}

/// Organizations a `Foresight` remembers at most; it forgets them all beyond, a guess being
/// as good as none.
const FORESIGHT_CAPACITY: usize = 10_000;

impl Foresight {
    /// The (order, organization) pairs of the creates whose caller's organizations include
    /// one that wanted order events.
    fn pairs_wanting_order_events(&self, batch: &[Waiting]) -> (Vec<Uuid>, Vec<Uuid>) {
        let known = self.lock();
        batch
            .iter()
            .filter(|waiting| waiting.organization_ids.iter().any(|id| known.contains(id)))
            .flat_map(Waiting::pairs)
            .unzip()
    }

    /// Learns which of the organizations of the orders read want order events.
    fn learn(
        &self,
        organizations_read: impl Iterator<Item = Uuid>,
        subscribed: &HashMap<Uuid, Subscribed>,
    ) {
        let mut known = self.lock();
        for organization_id in organizations_read {
            if !subscribed
                .get(&organization_id)
                .is_some_and(|types| types.order)
            {
                known.remove(&organization_id);
                continue;
            }
            if known.len() >= FORESIGHT_CAPACITY {
                known.clear();
            }
            known.insert(organization_id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        // Any set is a valid guess, whatever panicked while holding it.
        self.order_events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct Waiting {
    queued_at: Instant,
    refund_id: Uuid,
    organization_ids: Vec<Uuid>,
    input: RefundCreate,
    keyed: Option<Keyed>,
    answer: oneshot::Sender<Batched>,
}

impl Waiting {
    /// The (order, organization) pairs the batch reads the order by: the order may belong
    /// to any of the caller's organizations.
    fn pairs(&self) -> impl Iterator<Item = (Uuid, Uuid)> + '_ {
        let order_id = self.input.order_id;
        self.organization_ids
            .iter()
            .map(move |org| (order_id, *org))
    }

    fn decline(self) {
        metrics::counter!("refunds_batched_total", "outcome" => "declined").increment(1);
        // The create was abandoned (its client hung up) when nobody listens: nothing was
        // made for it, so nothing is lost.
        let _ = self.answer.send(Batched::Declined(self.input, self.keyed));
    }
}

impl Default for CreateBatcher {
    fn default() -> Self {
        Self {
            waiting: Mutex::default(),
            slots: Arc::new(Semaphore::new(SLOTS)),
            foresight: Arc::default(),
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
        keyed: Option<Keyed>,
    ) -> Result<Batched> {
        let (answer, mut answered) = oneshot::channel();
        self.lock_waiting().push(Waiting {
            queued_at: Instant::now(),
            refund_id,
            organization_ids: organization_ids.to_vec(),
            input,
            keyed,
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
                    let foresight = Arc::clone(&self.foresight);
                    tokio::spawn(async move {
                        run(&state, &foresight, batch).await;
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
    payment_id: Uuid,
    order_before: OrderState,
    order_after: OrderState,
    /// The create's key and the answer it keeps.
    key: Option<(KeyedRequest, StoredAnswer)>,
}

async fn run(state: &AppState, foresight: &Foresight, batch: Vec<Waiting>) {
    let started = Instant::now();
    metrics::histogram!(telemetry::BATCH_CREATES).record(batch.len() as f64);
    let waits = metrics::histogram!(BATCH_STAGE_SECONDS, "stage" => "wait");
    for waiting in &batch {
        waits.record(started.duration_since(waiting.queued_at).as_secs_f64());
    }
    // Two creates of one order would both be checked against the same counters: all but
    // the first go one by one.
    let mut orders_seen = HashSet::new();
    let (batch, repeated): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .partition(|waiting| orders_seen.insert(waiting.input.order_id));
    repeated.into_iter().for_each(Waiting::decline);

    let mut conn = match state.pool.acquire().await {
        Ok(conn) => conn,
        Err(error) => {
            tracing::warn!(%error, "no connection for a batch of refunds; creating them one by one");
            batch.into_iter().for_each(Waiting::decline);
            return;
        }
    };
    let mut unwritten = Vec::new();
    let created = match write(state, foresight, &mut conn, batch, &mut unwritten).await {
        Ok(created) => created,
        Err(error) => {
            tracing::warn!(%error, "a batch of refunds failed; creating them one by one");
            committed_anyway(state, &mut conn, &unwritten).await
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

/// The refunds of a failed batch that exist all the same: the connection may have been lost
/// after the commit. The others go one by one with the same refund ids, which can only be
/// inserted once. When even this cannot be read, all go one by one.
///
/// The batch's own connection is asked first. PostgreSQL reports a failed statement before
/// it has released the statement's locks, but answers the next statement on that connection
/// only after: so the creates then made one by one do not find their keys' advisory locks
/// still held by the failed batch. Another connection is asked when that one is lost.
async fn committed_anyway(
    state: &AppState,
    conn: &mut PgConnection,
    planned: &[Planned],
) -> HashSet<Uuid> {
    if planned.is_empty() {
        return HashSet::new();
    }
    let (ids, organization_ids): (Vec<Uuid>, Vec<Uuid>) = planned
        .iter()
        .map(|ready| (ready.refund.id, ready.refund.organization_id))
        .unzip();
    let existing = match repo::existing_ids(conn, &ids, &organization_ids).await {
        Err(_) => repo::existing_ids(&state.pool, &ids, &organization_ids).await,
        read => read,
    };
    match existing {
        Ok(existing) => existing.into_iter().collect(),
        Err(error) => {
            tracing::warn!(%error, "cannot tell which refunds of a failed batch exist");
            HashSet::new()
        }
    }
}

/// Reads the orders, checks each create, and writes those that pass. Every create ends up
/// in `planned` or declined.
async fn write(
    state: &AppState,
    foresight: &Foresight,
    conn: &mut PgConnection,
    batch: Vec<Waiting>,
    planned: &mut Vec<Planned>,
) -> Result<HashSet<Uuid>> {
    let (order_ids, organization_ids): (Vec<Uuid>, Vec<Uuid>) =
        batch.iter().flat_map(Waiting::pairs).unzip();
    let (foreseen_order_ids, foreseen_organization_ids) =
        foresight.pairs_wanting_order_events(&batch);
    let read_started = Instant::now();
    let read =
        orders_repo::read_for_refunds(&mut *conn, &order_ids, &organization_ids, &CREATE_EVENTS);
    // The keys and the `Order`s foreseen are read beside the orders, on other connections
    // when they are idle (given back once read). Without one, the keys are read on this
    // connection after the orders, and the `Order`s are not foreseen.
    let (read, keys_beside, foreseen) = {
        let keyed = batch.iter().any(|waiting| waiting.keyed.is_some());
        let mut keys_conn = second_connection(state, keyed);
        let mut orders_conn = second_connection(state, !foreseen_order_ids.is_empty());
        let mut lines_conn = second_connection(state, orders_conn.is_some());
        tokio::join!(
            read,
            async {
                let other = keys_conn.as_deref_mut()?;
                Some(keys_used_before(other, &batch).await)
            },
            async {
                let orders_conn = orders_conn.as_deref_mut()?;
                let read = orders::service::read_orders(
                    orders_conn,
                    lines_conn.as_deref_mut(),
                    &foreseen_order_ids,
                    &foreseen_organization_ids,
                );
                read.await
                    .inspect_err(|error| {
                        tracing::debug!(%error, "reading the foreseen orders failed; reading them after");
                    })
                    .ok()
            },
        )
    };
    let keys_used = match keys_beside {
        Some(keys_used) => keys_used,
        None => keys_used_before(&mut *conn, &batch).await,
    };
    let both = read
        .map_err(Error::from)
        .and_then(|read| Ok((read, keys_used?)));
    record_stage("read", read_started);
    let (read, keys_used) = match both {
        Ok(both) => both,
        Err(error) => {
            batch.into_iter().for_each(Waiting::decline);
            return Err(error);
        }
    };
    let mut orders: HashMap<Uuid, LockedOrder> = HashMap::with_capacity(read.len());
    let mut subscribed: HashMap<Uuid, Subscribed> = HashMap::new();
    for (order, events) in read {
        if !events.is_empty() {
            subscribed.insert(order.organization_id, Subscribed::to(&events));
        }
        orders.insert(order.id, order);
    }
    foresight.learn(
        orders.values().map(|order| order.organization_id),
        &subscribed,
    );

    let created_at = Utc::now().trunc_subsecs(6);
    for waiting in batch {
        if let Some(keyed) = &waiting.keyed
            && keys_used.contains(&(keyed.request.scope.clone(), keyed.request.key.clone()))
        {
            waiting.decline();
            continue;
        }
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
    let shown_orders =
        orders_with_events(state, conn, planned, &subscribed, foreseen, created_at).await?;
    // A create whose request has ended (the client hung up, or the request timed out and
    // was answered 503 while the database was slow to answer) is not made: as with a
    // transaction abandoned by its request, nothing happens for it.
    planned.retain(|ready| !ready.waiting.answer.is_closed());
    if planned.is_empty() {
        return Ok(HashSet::new());
    }
    let mut rows = Vec::with_capacity(planned.len());
    let mut tails = Vec::new();
    let mut answers: Vec<&[u8]> = Vec::new();
    for ready in planned.iter() {
        let refund = &ready.refund;
        let order = shown_orders.get(&refund.order_id);
        let with_refund_events = subscribed
            .get(&refund.organization_id)
            .is_some_and(|types| types.refund);
        rows.push(BatchedRefund {
            id: refund.id,
            organization_id: refund.organization_id,
            order_id: refund.order_id,
            customer_id: refund.customer_id,
            subscription_id: refund.subscription_id,
            payment_id: ready.payment_id,
            status: refund.status,
            reason: refund.reason,
            amount: refund.amount,
            tax_amount: refund.tax_amount,
            currency: &refund.currency,
            comment: ready.waiting.input.comment.as_deref(),
            processor_id: &ready.processor_id,
            revoke_benefits: refund.revoke_benefits,
            metadata: &refund.metadata,
            read: refund_state(&ready.order_before),
            written: refund_state(&ready.order_after),
            events: events(ready, with_refund_events, order, created_at, &mut tails)?,
            unbuilt_events: CREATE_EVENTS
                .into_iter()
                .filter(|event| match emit::carries_refund(event) {
                    true => !with_refund_events,
                    false => order.is_none(),
                })
                .collect(),
            key: ready.key.as_ref().map(|(request, answer)| BatchedKey {
                scope: &request.scope,
                key: &request.key,
                method: request.method,
                route: &request.route,
                fingerprint: hex::encode(request.fingerprint),
                status: answer.status,
                body: {
                    answers.push(&answer.body);
                    answers.len()
                },
            }),
        });
    }
    let key_lifetime = state.idempotency_key_lifetime;
    let write_started = Instant::now();
    let created = repo::insert_batch(
        conn,
        state.processor.name(),
        created_at,
        key_lifetime,
        &rows,
        &tails,
        &answers,
    )
    .await;
    record_stage("write", write_started);
    Ok(created?.into_iter().collect())
}

/// The keys of the batch's creates that were used before: their creates go one by one, which
/// replays, refuses or replaces them. A key another request takes and commits after this
/// read makes the batch's statement fail as a whole.
async fn keys_used_before(
    conn: &mut PgConnection,
    batch: &[Waiting],
) -> Result<HashSet<(String, String)>> {
    let (scopes, keys): (Vec<String>, Vec<String>) = batch
        .iter()
        .filter_map(|waiting| waiting.keyed.as_ref())
        .map(|keyed| (keyed.request.scope.clone(), keyed.request.key.clone()))
        .unzip();
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let used = idempotency::repo::existing_keys(conn, &scopes, &keys).await?;
    Ok(used.into_iter().collect())
}

/// A second connection for a read that can run beside the batch's own, if `wanted` and the
/// pool has one idle: the batch never waits for one (with a pool of one it would wait for
/// its own), it reads on its own connection after the other read instead.
fn second_connection(state: &AppState, wanted: bool) -> Option<PoolConnection<sqlx::Postgres>> {
    wanted.then(|| state.pool.try_acquire()).flatten()
}

/// The kinds of events a create can send that an organization's endpoints are subscribed to.
struct Subscribed {
    refund: bool,
    order: bool,
}

impl Subscribed {
    fn to(events: &[String]) -> Self {
        Subscribed {
            refund: events.iter().any(|event| emit::carries_refund(event)),
            order: events.iter().any(|event| !emit::carries_refund(event)),
        }
    }
}

/// Polar's `Order` of every planned refund whose organization has an endpoint subscribed to
/// order events, as the refund leaves it: from the `Order`s `foreseen` when they hold
/// them all, read now otherwise.
async fn orders_with_events(
    state: &AppState,
    conn: &mut PgConnection,
    planned: &[Planned],
    subscribed: &HashMap<Uuid, Subscribed>,
    foreseen: Option<OrdersRead>,
    modified_at: DateTime<Utc>,
) -> Result<HashMap<Uuid, Order>> {
    let changes: Vec<RefundStateChange> = planned
        .iter()
        .filter(|ready| {
            subscribed
                .get(&ready.refund.organization_id)
                .is_some_and(|types| types.order)
        })
        .map(|ready| RefundStateChange {
            order_id: ready.refund.order_id,
            organization_id: ready.refund.organization_id,
            status: ready.order_after.status,
            amounts: ready.order_after.amounts,
            modified_at,
        })
        .collect();
    if changes.is_empty() {
        return Ok(HashMap::new());
    }
    if let Some(foreseen) = foreseen.filter(|foreseen| foreseen.covers(&changes)) {
        return foreseen.as_changed(&changes);
    }
    let started = Instant::now();
    let mut other = second_connection(state, true);
    let orders = orders::service::orders_as_changed(conn, other.as_deref_mut(), &changes).await;
    record_stage("order", started);
    orders
}

/// The events a planned refund sends, as the one-by-one create writes them: the refund's
/// only `with_refund_events`, the order events only when its order is given. Their payloads'
/// tails are added to `tails`, each once: the order events share theirs.
fn events(
    ready: &Planned,
    with_refund_events: bool,
    order: Option<&Order>,
    at: DateTime<Utc>,
    tails: &mut Vec<String>,
) -> Result<Vec<BatchedEvent>> {
    let mut tail_of = |data: String| {
        tails.push(emit::payload_tail(&data));
        tails.len()
    };
    let refund = match with_refund_events {
        true => Some(tail_of(to_json(&ready.refund)?)),
        false => None,
    };
    let order = order.map(to_json).transpose()?.map(&mut tail_of);
    let change = RefundChange {
        organization_id: ready.refund.organization_id,
        order_id: ready.refund.order_id,
        refund: &ready.refund,
        status: ready.refund.status,
        previous_status: None,
        order_before: ready.order_before,
        order_after: ready.order_after,
    };
    let mut events = Vec::new();
    for event_type in change.event_types() {
        let tail = match emit::carries_refund(event_type) {
            true => refund,
            false => order,
        };
        let Some(tail) = tail else { continue };
        events.push(BatchedEvent {
            position: events.len(),
            event_type,
            head: emit::payload_head(event_type, &at),
            tail,
        });
    }
    Ok(events)
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
    let key = match &waiting.keyed {
        Some(keyed) => match (keyed.answer)(&Ok(refund.clone())) {
            Some(answer) => Some((keyed.request.clone(), answer)),
            None => return Err(waiting),
        },
        None => None,
    };
    Ok(Planned {
        key,
        waiting,
        refund,
        processor_id: outcome.processor_id,
        payment_id,
        order_before: OrderState::of(order),
        order_after: OrderState {
            status: order_status,
            amounts,
        },
    })
}

fn record_stage(stage: &'static str, started: Instant) {
    metrics::histogram!(BATCH_STAGE_SECONDS, "stage" => stage)
        .record(started.elapsed().as_secs_f64());
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|error| Error::Corrupt(format!("event data: {error}")))
}

fn refund_state(order: &OrderState) -> OrderRefundState {
    OrderRefundState {
        status: order.status,
        refunded_amount: order.amounts.refunded_amount,
        refunded_tax_amount: order.amounts.refunded_tax_amount,
        pending_amount: order.amounts.pending_amount,
        pending_tax_amount: order.amounts.pending_tax_amount,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanting(order: bool) -> Subscribed {
        Subscribed {
            refund: true,
            order,
        }
    }

    #[test]
    fn foresight_forgets_an_organization_that_no_longer_wants_order_events() {
        let foresight = Foresight::default();
        let (orders, refunds_only) = (Uuid::new_v4(), Uuid::new_v4());
        let subscribed = HashMap::from([(orders, wanting(true)), (refunds_only, wanting(false))]);
        foresight.learn([orders, refunds_only].into_iter(), &subscribed);
        assert_eq!(*foresight.lock(), HashSet::from([orders]));

        // Its endpoints now want refund events only, or none at all.
        let unsubscribed = HashMap::from([(orders, wanting(false))]);
        foresight.learn([orders].into_iter(), &unsubscribed);
        assert!(foresight.lock().is_empty());
        foresight.learn([orders].into_iter(), &subscribed);
        foresight.learn([orders].into_iter(), &HashMap::new());
        assert!(foresight.lock().is_empty());
    }

    #[test]
    fn foresight_starts_afresh_beyond_its_capacity() {
        let foresight = Foresight::default();
        let organizations: Vec<Uuid> = (0..=FORESIGHT_CAPACITY).map(|_| Uuid::new_v4()).collect();
        let subscribed: HashMap<Uuid, Subscribed> = organizations
            .iter()
            .map(|id| (*id, wanting(true)))
            .collect();
        foresight.learn(
            organizations[..FORESIGHT_CAPACITY].iter().copied(),
            &subscribed,
        );
        assert_eq!(foresight.lock().len(), FORESIGHT_CAPACITY);

        let last = organizations[FORESIGHT_CAPACITY];
        foresight.learn([last].into_iter(), &subscribed);
        assert_eq!(*foresight.lock(), HashSet::from([last]));
    }
}
