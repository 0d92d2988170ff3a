//! The business rules of refunds: creating one against the locked order (Polar's checks, in
//! Polar's order), moving it as the processor answers, and listing.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{PgConnection, Postgres, Transaction};
use tracing::Instrument;
use uuid::Uuid;

use super::batch::{Batched, CreateBatcher};
use super::model::{ListQuery, Refund, RefundCreate};
use super::repo::{self, NewRefund};
use crate::auth::Principal;
use crate::disputes::model::RefundDispute;
use crate::domain::money::{OrderAmounts, RefundSplit};
use crate::domain::{Error, OrderStatus, RefundFailureReason, RefundReason, RefundStatus, Result};
use crate::idempotency::{self, Claim, KeyedRequest, StoredAnswer};
use crate::orders::repo::{self as orders_repo, LockedOrder};
use crate::payments::{ProcessorError, ProcessorOutcome, ProcessorRefund, ProcessorRefundState};
use crate::polar::schema::Pagination;
use crate::state::{AppState, Reader};
use crate::webhooks::{
    self,
    emit::{OrderState, RefundChange},
};

/// The answer an API surface gives an outcome, when that outcome is one to keep (`None`: a
/// retry runs again).
pub type KeptAnswer = Arc<dyn Fn(&Result<Refund>) -> Option<StoredAnswer> + Send + Sync>;

/// An idempotency key on a create: the request it names, and how its answer is kept.
pub struct Keyed {
    pub request: KeyedRequest,
    pub answer: KeptAnswer,
}

/// What a create did.
#[derive(Debug)]
pub enum Created {
    Fresh(Box<Refund>),
    /// The key was answered before: its answer, to send again.
    Replayed(StoredAnswer),
}

/// Creates a refund. With a processor that answers in process, it is first offered to
/// `batcher` (see `refunds::batch`); one the batch declines is made here, one by
/// one. A processor that answers in-process settles it inside the transaction that locked
/// the order. Any other is called outside every transaction, between one that
/// reserves the amount as a pending refund and one that settles or releases it, so that no
/// outside call ever runs while the order's row is locked. With a key, the key is taken
/// first and the answer is kept in the transaction that makes the change.
#[tracing::instrument(
    name = "refunds.create",
    skip_all,
    fields(route = "/v1/refunds/", order_id = %input.order_id, organization_id, refund_id)
)]
pub async fn create_refund(
    state: &AppState,
    batcher: Option<&CreateBatcher>,
    principal: &Principal,
    input: RefundCreate,
    keyed: Option<Keyed>,
) -> Result<Created> {
    let refund_id = Uuid::new_v4();
    tracing::Span::current().record("refund_id", tracing::field::display(refund_id));
    let (input, keyed) = match batcher {
        Some(batcher) if state.processor.answers_in_process() => {
            let organization_ids = &principal.organization_ids;
            match batcher
                .create(state, organization_ids, refund_id, input, keyed)
                .await?
            {
                Batched::Created(refund) => return Ok(Created::Fresh(Box::new(refund))),
                Batched::Declined(input, keyed) => (input, keyed),
            }
        }
        _ => (input, keyed),
    };
    create_one(state, principal, input, keyed, refund_id).await
}

/// Creates one refund in a transaction of its own, under its order's lock.
async fn create_one(
    state: &AppState,
    principal: &Principal,
    input: RefundCreate,
    keyed: Option<Keyed>,
    refund_id: Uuid,
) -> Result<Created> {
    let mut tx = state.pool.begin().await?;
    if let Some(keyed) = &keyed {
        match idempotency::repo::claim(&mut tx, &keyed.request).await? {
            Claim::Fresh => {}
            Claim::Replay(answer) => return Ok(Created::Replayed(answer)),
            Claim::InUse => return Err(Error::IdempotencyKeyInUse),
            Claim::Reused => return Err(Error::IdempotencyKeyReused(keyed.request.key.clone())),
        }
    }
    let order = orders_repo::lock_for_refund(&mut tx, input.order_id, &principal.organization_ids)
        .await?
        .ok_or(Error::OrderNotFound(input.order_id));
    let checked = order.and_then(|order| {
        let (split, payment_id, charge_id) = check_refundable(&order, &input)?;
        Ok((order, split, payment_id, charge_id))
    });
    let (order, split, payment_id, charge_id) = match checked {
        Ok(checked) => checked,
        Err(refused) => return finish(state, tx, keyed.as_ref(), Err(refused)).await,
    };
    tracing::Span::current().record(
        "organization_id",
        tracing::field::display(order.organization_id),
    );

    let processor = &state.processor;
    let request = processor_request(refund_id, &order, &input, split, payment_id, charge_id);
    let mut record = new_record(
        refund_id,
        &order,
        &input,
        split,
        payment_id,
        processor.name(),
    );

    if processor.answers_in_process() {
        let created = match processor.refund(&request).await {
            Ok(outcome) => {
                record.status = status_of(outcome.state);
                record.processor_id = Some(outcome.processor_id);
                record.failure_reason = outcome.failure_reason;
                record_refund(&mut tx, &order, record).await
            }
            Err(error) => Err(refusal(error, order.id)),
        };
        return finish(state, tx, keyed.as_ref(), created).await;
    }

    record.awaiting = Some(Awaiting {
        request: request.clone(),
        recover_after: state.recovery_after,
    });
    let pending = record_refund(&mut tx, &order, record).await?;
    if let Some(keyed) = &keyed {
        let lifetime = state.idempotency_key_lifetime;
        idempotency::repo::keep(&mut tx, &keyed.request, Some(refund_id), None, lifetime).await?;
    }
    tx.commit().await?;
    // Once the amount is reserved the refund must settle even when the request is abandoned
    // (the client hangs up, the request times out): a task of its own asks the processor and
    // settles, and the request only waits for it.
    let state = state.clone();
    let settling = tokio::spawn(
        async move {
            let answer = state.processor.refund(&request).await;
            settle_new_refund(&state, pending, answer, keyed.as_ref()).await
        }
        .instrument(tracing::Span::current()),
    );
    let settled = settling
        .await
        .map_err(|failure| Error::Processor(format!("settling the refund failed: {failure}")))??;
    Ok(Created::Fresh(Box::new(settled)))
}

/// What the processor is asked for a refund of `order`.
pub(super) fn processor_request(
    refund_id: Uuid,
    order: &LockedOrder,
    input: &RefundCreate,
    split: RefundSplit,
    payment_id: Uuid,
    charge_id: String,
) -> ProcessorRefund {
    ProcessorRefund {
        refund_id,
        order_id: order.id,
        payment_id,
        charge_id,
        requested_amount: split.amount,
        amount: split.amount,
        tax_amount: split.tax_amount,
        currency: order.currency.clone(),
        reason: input.reason,
        revoke_benefits: input.revoke_benefits,
        sandbox_outcome: order.sandbox_refund_outcome,
    }
}

/// A refund of `order` as the create asks for it, before the processor answers.
pub(super) fn new_record(
    refund_id: Uuid,
    order: &LockedOrder,
    input: &RefundCreate,
    split: RefundSplit,
    payment_id: Uuid,
    processor: &'static str,
) -> RefundRecord {
    RefundRecord {
        id: refund_id,
        status: RefundStatus::Pending,
        reason: input.reason,
        split,
        subscription_id: order.subscription_id,
        payment_id,
        dispute: None,
        comment: input.comment.clone(),
        processor,
        processor_id: None,
        revoke_benefits: input.revoke_benefits,
        metadata: input.metadata.clone(),
        failure_reason: None,
        awaiting: None,
    }
}

/// Ends a create's only transaction: commits what it made, with the key's answer when the
/// outcome is one to keep. A refusal that is not kept leaves nothing to commit.
async fn finish(
    state: &AppState,
    mut tx: Transaction<'_, Postgres>,
    keyed: Option<&Keyed>,
    created: Result<Refund>,
) -> Result<Created> {
    let kept = keyed.and_then(|keyed| Some((&keyed.request, (keyed.answer)(&created)?)));
    if let Some((request, answer)) = &kept {
        let refund_id = created.as_ref().ok().map(|refund| refund.id);
        let lifetime = state.idempotency_key_lifetime;
        idempotency::repo::keep(&mut tx, request, refund_id, Some(answer), lifetime).await?;
    }
    if created.is_ok() || kept.is_some() {
        tx.commit().await?;
    }
    created.map(|refund| Created::Fresh(Box::new(refund)))
}

/// The checks, in Polar's order, and the amounts the refund takes. Polar learns of a dispute
/// from the processor's refusal, so it is checked last.
pub(super) fn check_refundable(
    order: &LockedOrder,
    input: &RefundCreate,
) -> Result<(RefundSplit, Uuid, String)> {
    if order.refunds_blocked {
        return Err(Error::RefundsBlocked(order.id));
    }
    if order.status == OrderStatus::Refunded {
        return Err(Error::RefundedAlready(order.id));
    }
    if input.revoke_benefits && order.subscription_id.is_some() {
        return Err(Error::RevokeSubscriptionBenefitsProhibited);
    }
    let split = order
        .amounts
        .take(input.amount)
        .map_err(|remaining| Error::OverRefund { remaining })?;
    let (Some(payment_id), Some(charge_id)) = (
        order
            .payment_id
            .filter(|paid| input.payment_id.is_none_or(|named| named == *paid)),
        order.charge_id.clone(),
    ) else {
        return Err(Error::RefundUnknownPayment(order.id));
    };
    if order.has_open_dispute {
        return Err(Error::RefundDisputedPayment(order.id));
    }
    Ok((split, payment_id, charge_id))
}

pub(super) fn status_of(state: ProcessorRefundState) -> RefundStatus {
    match state {
        ProcessorRefundState::Succeeded => RefundStatus::Succeeded,
        ProcessorRefundState::Pending => RefundStatus::Pending,
        ProcessorRefundState::Failed => RefundStatus::Failed,
        ProcessorRefundState::Canceled => RefundStatus::Canceled,
    }
}

/// A processor's refusal as Polar answers it.
fn refusal(error: ProcessorError, order_id: Uuid) -> Error {
    match error {
        ProcessorError::AlreadyRefunded => Error::RefundedAlready(order_id),
        ProcessorError::Disputed => Error::RefundDisputedPayment(order_id),
        ProcessorError::Other(message) | ProcessorError::Unavailable(message) => {
            Error::Processor(message)
        }
    }
}

/// The third step of an outside processor's refund: the reserved refund settles or is
/// released by what the processor answered. Without an answer it stays pending, its amount
/// reserved: asking the processor again with the same refund id finds out what happened.
/// The key, if any, gets the answer the client is given.
async fn settle_new_refund(
    state: &AppState,
    refund: Refund,
    answer: std::result::Result<ProcessorOutcome, ProcessorError>,
    keyed: Option<&Keyed>,
) -> Result<Refund> {
    let refused = match answer {
        Ok(outcome) => {
            let mut tx = state.pool.begin().await?;
            let settled = record_processor_answer(&mut tx, refund.id, &outcome).await;
            return keep_and_commit(tx, keyed, refund.id, settled).await;
        }
        Err(ProcessorError::Unavailable(cause)) => {
            tracing::warn!(%cause, "no answer from the processor; the refund stays pending");
            if keyed.is_none() {
                return Ok(refund);
            }
            return keep_and_commit(state.pool.begin().await?, keyed, refund.id, Ok(refund)).await;
        }
        Err(refused) => refused,
    };
    let mut tx = state.pool.begin().await?;
    move_refund(&mut tx, refund.id, RefundMove::to(RefundStatus::Failed)).await?;
    let order_id = refund.order_id;
    keep_and_commit(tx, keyed, refund.id, Err(refusal(refused, order_id))).await
}

/// Completes a key kept without an answer with the answer of its create, and commits.
async fn keep_and_commit(
    mut tx: Transaction<'_, Postgres>,
    keyed: Option<&Keyed>,
    refund_id: Uuid,
    settled: Result<Refund>,
) -> Result<Refund> {
    if let Some(keyed) = keyed {
        let answer = (keyed.answer)(&settled);
        idempotency::repo::complete(&mut tx, &keyed.request, refund_id, answer.as_ref()).await?;
    }
    tx.commit().await?;
    settled
}

/// A move asked of a refund: by the processor's answer or event, or by its stand-in (the
/// admin API, the sandbox's own settling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundMove {
    pub to: RefundStatus,
    /// The processor's id of the refund, once known.
    pub processor_id: Option<String>,
    pub failure_reason: Option<RefundFailureReason>,
}

impl RefundMove {
    pub fn to(status: RefundStatus) -> Self {
        Self {
            to: status,
            processor_id: None,
            failure_reason: None,
        }
    }
}

/// Moves a refund, in the caller's transaction, with the order's counters and status: a
/// pending refund settles (succeeded), or is released (failed, canceled); a succeeded one
/// is reversed (failed, canceled), its amounts taken back from what is refunded. Asking for
/// the status the refund has already records the processor's id only. Any other move is
/// refused. Every move of a refund's status goes through here. Returns the refund as it now
/// stands.
pub async fn move_refund(
    conn: &mut PgConnection,
    refund_id: Uuid,
    change: RefundMove,
) -> Result<Refund> {
    let (order_id, organization_id) = repo::order_of(&mut *conn, refund_id)
        .await?
        .ok_or(Error::NotFound("Refund"))?;
    let order = orders_repo::lock_for_refund(conn, order_id, &[organization_id])
        .await?
        .ok_or(Error::NotFound("Order"))?;
    let current = repo::lock_refund_status(&mut *conn, refund_id)
        .await?
        .ok_or(Error::NotFound("Refund"))?;
    if current == change.to {
        if let Some(processor_id) = &change.processor_id {
            repo::set_processor_id(conn, refund_id, processor_id).await?;
        }
    } else if current.may_move_to(change.to) {
        let mut moved = find(conn, refund_id).await?;
        let split = RefundSplit {
            amount: moved.amount,
            tax_amount: moved.tax_amount,
        };
        let mut amounts = order.amounts;
        amounts.apply_move(current, change.to, split);
        let failure_reason = match change.to {
            RefundStatus::Failed => change.failure_reason.or(Some(RefundFailureReason::Unknown)),
            _ => None,
        };
        moved.modified_at = Some(
            repo::set_status(
                &mut *conn,
                refund_id,
                change.to,
                change.processor_id.as_deref(),
                failure_reason,
            )
            .await?,
        );
        moved.status = change.to;
        let order_status = save_counters(conn, &order, &amounts).await?;
        webhooks::emit::refund_changed(
            conn,
            RefundChange {
                organization_id,
                order_id,
                refund: &moved,
                status: change.to,
                previous_status: Some(current),
                order_before: OrderState::of(&order),
                order_after: OrderState {
                    status: order_status,
                    amounts,
                },
            },
        )
        .await?;
        return Ok(moved);
    } else {
        return Err(Error::InvalidRefundMove {
            refund_id,
            current,
            requested: change.to,
        });
    }
    find(conn, refund_id).await
}

/// Moves a refund as a processor's event would, in a transaction of its own (the admin
/// API's settle). A move to the status the refund has is refused too: nothing would happen.
pub async fn settle_refund(
    state: &AppState,
    refund_id: Uuid,
    change: RefundMove,
) -> Result<Refund> {
    let mut tx = state.pool.begin().await?;
    let current = find(&mut tx, refund_id).await?.status;
    if current == change.to || change.to == RefundStatus::Pending {
        return Err(Error::InvalidRefundMove {
            refund_id,
            current,
            requested: change.to,
        });
    }
    let refund = move_refund(&mut tx, refund_id, change).await?;
    complete_cut_off_key(&mut tx, &refund).await?;
    tx.commit().await?;
    Ok(refund)
}

async fn find(conn: &mut PgConnection, refund_id: Uuid) -> Result<Refund> {
    repo::find_refund(conn, refund_id)
        .await?
        .ok_or(Error::NotFound("Refund"))
}

/// Applies what the processor says of a refund (its answer to the create, or a later
/// event), in the caller's transaction. Answers and events may arrive in any order, so one
/// that the refund's status has already gone past only records the processor's id. A key
/// whose create was cut off before it could answer gets the answer its route would have
/// given: the refund as it now stands.
pub async fn record_processor_answer(
    conn: &mut PgConnection,
    refund_id: Uuid,
    outcome: &ProcessorOutcome,
) -> Result<Refund> {
    let change = RefundMove {
        to: status_of(outcome.state),
        processor_id: Some(outcome.processor_id.clone()),
        failure_reason: outcome.failure_reason,
    };
    let refund = match move_refund(&mut *conn, refund_id, change).await {
        Err(Error::InvalidRefundMove { .. }) => {
            repo::set_processor_id(&mut *conn, refund_id, &outcome.processor_id).await?;
            find(conn, refund_id).await?
        }
        moved => moved?,
    };
    complete_cut_off_key(conn, &refund).await?;
    Ok(refund)
}

/// The route of Polar's create, as its idempotency keys are bound to it.
pub const CREATE_ROUTE: &str = "/v1/refunds/";

/// The answer a create of `refund` gives on Polar's route: 201 and the refund.
fn created_answer(refund: &Refund) -> Result<StoredAnswer> {
    let body = serde_json::to_vec(refund)
        .map_err(|error| Error::Corrupt(format!("refund does not serialize: {error}")))?;
    Ok(StoredAnswer { status: 201, body })
}

/// Gives a key of Polar's route whose create was cut off before it could answer the answer
/// it would have given. Another surface's keys keep waiting: their answers are shaped by
/// that surface.
pub(super) async fn complete_cut_off_key(conn: &mut PgConnection, refund: &Refund) -> Result<()> {
    let answer = created_answer(refund)?;
    idempotency::repo::complete_unanswered(conn, refund.id, CREATE_ROUTE, &answer).await
}

/// Writes a locked order's counters, and the status that follows them, when a move changed
/// them. Returns the order's status after the move.
async fn save_counters(
    conn: &mut PgConnection,
    order: &LockedOrder,
    amounts: &OrderAmounts,
) -> Result<OrderStatus> {
    if *amounts == order.amounts {
        return Ok(order.status);
    }
    let status = amounts.status_after(&order.amounts, order.status);
    orders_repo::update_refund_totals(conn, order.id, amounts, status).await?;
    Ok(status)
}

/// A refund about to be written for a locked order.
pub struct RefundRecord {
    pub id: Uuid,
    pub status: RefundStatus,
    pub reason: RefundReason,
    pub split: RefundSplit,
    pub subscription_id: Option<Uuid>,
    pub payment_id: Uuid,
    pub dispute: Option<RefundDispute>,
    pub comment: Option<String>,
    pub processor: &'static str,
    pub processor_id: Option<String>,
    pub revoke_benefits: bool,
    pub metadata: Map<String, Value>,
    pub failure_reason: Option<RefundFailureReason>,
    /// Set when an outside processor is yet to be asked.
    pub awaiting: Option<Awaiting>,
}

/// A refund an outside processor is yet to answer: what it is asked, and when the recovery
/// worker may ask again if no answer is recorded by then.
pub struct Awaiting {
    pub request: ProcessorRefund,
    pub recover_after: std::time::Duration,
}

/// Inserts the refund and moves the order's counters and status in the caller's
/// transaction, as the refund's status says (reserve when pending, settle when succeeded).
pub async fn record_refund(
    conn: &mut PgConnection,
    order: &LockedOrder,
    record: RefundRecord,
) -> Result<Refund> {
    let split = record.split;
    let mut amounts = order.amounts;
    amounts.record(record.status, split);
    let created_at = repo::insert_refund(
        conn,
        &NewRefund {
            id: record.id,
            organization_id: order.organization_id,
            order_id: order.id,
            customer_id: order.customer_id,
            subscription_id: record.subscription_id,
            payment_id: Some(record.payment_id),
            dispute_id: record.dispute.as_ref().map(|dispute| dispute.id),
            status: record.status,
            reason: record.reason,
            amount: split.amount,
            tax_amount: split.tax_amount,
            currency: &order.currency,
            comment: record.comment.as_deref(),
            processor: record.processor,
            processor_id: record.processor_id.as_deref(),
            revoke_benefits: record.revoke_benefits,
            metadata: &record.metadata,
            failure_reason: record.failure_reason,
            processor_request: match &record.awaiting {
                Some(awaiting) => Some(
                    serde_json::to_value(&awaiting.request)
                        .map_err(|error| Error::Corrupt(format!("processor request: {error}")))?,
                ),
                None => None,
            },
            recover_after_ms: record
                .awaiting
                .as_ref()
                .map(|awaiting| awaiting.recover_after.as_millis() as i64),
        },
    )
    .await?;
    let order_status = save_counters(conn, order, &amounts).await?;
    let refund = refund_of(order, &record, created_at);
    webhooks::emit::refund_changed(
        conn,
        RefundChange {
            organization_id: order.organization_id,
            order_id: order.id,
            refund: &refund,
            status: refund.status,
            previous_status: None,
            order_before: OrderState::of(order),
            order_after: OrderState {
                status: order_status,
                amounts,
            },
        },
    )
    .await?;
    Ok(refund)
}

/// The refund `record` of `order` makes, as Polar shows it.
pub(super) fn refund_of(
    order: &LockedOrder,
    record: &RefundRecord,
    created_at: chrono::DateTime<chrono::Utc>,
) -> Refund {
    Refund {
        created_at,
        modified_at: None,
        id: record.id,
        metadata: record.metadata.clone(),
        status: record.status,
        reason: record.reason,
        amount: record.split.amount,
        tax_amount: record.split.tax_amount,
        currency: order.currency.clone(),
        organization_id: order.organization_id,
        order_id: order.id,
        subscription_id: record.subscription_id,
        customer_id: order.customer_id,
        revoke_benefits: record.revoke_benefits,
        dispute: record.dispute.clone(),
    }
}

/// Polar's `ListResource[Refund]`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ListResource_Refund_)]
pub struct RefundList {
    pub items: Vec<Refund>,
    pub pagination: Pagination,
}

#[tracing::instrument(name = "refunds.list", skip_all, fields(route = "/v1/refunds/"))]
pub async fn list_refunds(
    reader: &Reader,
    principal: &Principal,
    query: &ListQuery,
) -> Result<RefundList> {
    // An organization filter narrows the caller's organizations; one the caller cannot see
    // simply matches nothing.
    let organization_ids: Vec<Uuid> = principal
        .organization_ids
        .iter()
        .filter(|id| query.organization_ids.is_empty() || query.organization_ids.contains(id))
        .copied()
        .collect();
    if organization_ids.is_empty() {
        return Ok(RefundList {
            items: Vec::new(),
            pagination: Pagination::of(0, query.limit),
        });
    }
    let organization_ids = organization_ids.as_slice();
    let (items, total_count) = reader
        .read(|db| async move { repo::list_refunds(&db, organization_ids, query).await })
        .await?;
    Ok(RefundList {
        items,
        pagination: Pagination::of(total_count, query.limit),
    })
}
