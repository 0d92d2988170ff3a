//! The business rules of refunds. Creating one is a single transaction around the locked
//! order row (see DESIGN.md, "The refund transaction").

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::model::{ListQuery, Refund, RefundCreate};
use super::repo::{self, NewRefund};
use crate::auth::Principal;
use crate::disputes::model::RefundDispute;
use crate::domain::money::RefundSplit;
use crate::domain::{Error, OrderStatus, RefundReason, RefundStatus, Result};
use crate::orders::repo::{self as orders_repo, LockedOrder};
use crate::payments::{ProcessorError, ProcessorRefund};
use crate::state::AppState;

pub async fn create_refund(
    state: &AppState,
    principal: &Principal,
    input: RefundCreate,
) -> Result<Refund> {
    let mut tx = state.pool.begin().await?;
    let order = orders_repo::lock_for_refund(&mut tx, input.order_id, &principal.organization_ids)
        .await?
        .ok_or(Error::OrderNotFound(input.order_id))?;

    // The checks run in Polar's order (CONTRACT.md §4).
    if order.refunds_blocked {
        return Err(Error::RefundsBlocked(order.id));
    }
    if order.status == OrderStatus::Refunded.as_str() {
        return Err(Error::RefundedAlready(order.id));
    }
    if input.revoke_benefits && order.subscription_id.is_some() {
        return Err(Error::RevokeSubscriptionBenefitsProhibited);
    }
    let split = order.amounts.split(input.amount).ok_or(Error::OverRefund)?;
    let payment_id = order
        .payment_id
        .ok_or(Error::RefundUnknownPayment(order.id))?;
    // Polar learns of a dispute from the processor's refusal, so it is checked last.
    if order.has_open_dispute {
        return Err(Error::RefundDisputedPayment(order.id));
    }

    let refund_id = Uuid::new_v4();
    let outcome = state
        .processor
        .refund(&ProcessorRefund {
            refund_id,
            payment_id,
            amount: split.amount,
            tax_amount: split.tax_amount,
            currency: order.currency.clone(),
        })
        .map_err(|error| match error {
            ProcessorError::AlreadyRefunded => Error::RefundedAlready(order.id),
            ProcessorError::Disputed => Error::RefundDisputedPayment(order.id),
            ProcessorError::Other(message) => Error::Processor(message),
        })?;

    let refund = record_refund(
        &mut tx,
        &order,
        RefundRecord {
            id: refund_id,
            status: outcome.status,
            reason: input.reason,
            split,
            subscription_id: order.subscription_id,
            payment_id,
            dispute: None,
            comment: input.comment,
            processor: state.processor.name(),
            processor_id: outcome.processor_id,
            revoke_benefits: input.revoke_benefits,
            metadata: input.metadata,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(refund)
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
    pub processor_id: String,
    pub revoke_benefits: bool,
    pub metadata: Map<String, Value>,
}

/// Inserts the refund and moves the order's counters and status in the caller's
/// transaction: a succeeded refund adds to what is refunded, a pending one reserves.
pub async fn record_refund(
    conn: &mut PgConnection,
    order: &LockedOrder,
    record: RefundRecord,
) -> Result<Refund> {
    let split = record.split;
    let mut amounts = order.amounts;
    match record.status {
        RefundStatus::Succeeded => {
            amounts.refunded_amount += split.amount;
            amounts.refunded_tax_amount += split.tax_amount;
        }
        RefundStatus::Pending => {
            amounts.pending_amount += split.amount;
            amounts.pending_tax_amount += split.tax_amount;
        }
        RefundStatus::Failed | RefundStatus::Canceled => {}
    }
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
            processor_id: Some(&record.processor_id),
            revoke_benefits: record.revoke_benefits,
            metadata: &record.metadata,
        },
    )
    .await?;
    if amounts != order.amounts {
        let status = if amounts.refunded_amount == order.amounts.refunded_amount {
            order.status.clone()
        } else {
            OrderStatus::after_refunds(
                amounts.refunded_amount,
                amounts.net_amount + amounts.applied_balance_amount,
            )
            .as_str()
            .to_owned()
        };
        orders_repo::update_refund_totals(conn, order.id, &amounts, &status).await?;
    }
    Ok(Refund {
        created_at,
        modified_at: None,
        id: record.id,
        metadata: record.metadata,
        status: record.status,
        reason: record.reason,
        amount: split.amount,
        tax_amount: split.tax_amount,
        currency: order.currency.clone(),
        organization_id: order.organization_id,
        order_id: order.id,
        subscription_id: record.subscription_id,
        customer_id: order.customer_id,
        revoke_benefits: record.revoke_benefits,
        dispute: record.dispute,
    })
}

/// Polar's `ListResource[Refund]`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ListResource_Refund_)]
pub struct RefundList {
    pub items: Vec<Refund>,
    pub pagination: Pagination,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pagination {
    pub total_count: i64,
    pub max_page: i64,
}

pub async fn list_refunds(
    state: &AppState,
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
            pagination: Pagination {
                total_count: 0,
                max_page: 0,
            },
        });
    }
    let (items, total_count) = tokio::try_join!(
        repo::list_refunds(&state.pool, &organization_ids, query),
        repo::count_refunds(&state.pool, &organization_ids, query),
    )?;
    Ok(RefundList {
        items,
        pagination: Pagination {
            total_count,
            max_page: (total_count + query.limit - 1) / query.limit,
        },
    })
}
