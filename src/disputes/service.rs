use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::repo::{self, NewDispute};
use crate::AppState;
use crate::error::{Error, Result};
use crate::orders::repo::{self as orders_repo, LockedOrder};
use crate::refunds::model::{DisputeStatus, RefundDispute, RefundReason, RefundStatus};
use crate::refunds::service::{RefundRecord, record_refund};
use crate::refunds::tax::RefundSplit;

/// A dispute as the processor reports it. The amounts default to what is still refundable.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DisputeCreate)]
pub struct DisputeOpening {
    pub status: DisputeStatus,
    pub amount: Option<i64>,
    pub tax_amount: Option<i64>,
    /// The reason reported by the card network, e.g. `fraudulent`.
    pub reason: Option<String>,
    /// Deadline to submit evidence.
    pub evidence_due_by: Option<DateTime<Utc>>,
}

impl DisputeOpening {
    pub fn new(status: DisputeStatus) -> Self {
        Self {
            status,
            amount: None,
            tax_amount: None,
            reason: None,
            evidence_due_by: None,
        }
    }
}

/// Opens a dispute on an order's succeeded payment. Its amounts may not exceed what is
/// still refundable. An `early_warning` (or `prevented`) dispute is prevented at once.
pub async fn open_dispute(
    state: &AppState,
    order_id: Uuid,
    opening: DisputeOpening,
) -> Result<RefundDispute> {
    let mut tx = state.pool.begin().await?;
    let order = lock_order(&mut tx, order_id).await?;
    let payment_id = order
        .payment_id
        .ok_or(Error::RefundUnknownPayment(order.id))?;
    let amounts = RefundSplit {
        amount: opening
            .amount
            .unwrap_or_else(|| order.amounts.refundable_amount()),
        tax_amount: opening
            .tax_amount
            .unwrap_or_else(|| order.amounts.refundable_tax_amount()),
    };
    check_within_refundable(&order, amounts)?;
    let dispute = repo::insert_dispute(
        &mut tx,
        NewDispute {
            id: Uuid::new_v4(),
            organization_id: order.organization_id,
            order_id: order.id,
            payment_id,
            status: opening.status,
            amount: amounts.amount,
            tax_amount: amounts.tax_amount,
            currency: order.currency.clone(),
            reason: opening.reason,
            evidence_due_by: opening.evidence_due_by,
        },
    )
    .await?;
    let dispute = prevent_if_warned(state, &mut tx, &order, dispute).await?;
    tx.commit().await?;
    Ok(dispute)
}

/// Moves a dispute to a new status. Closed disputes (prevented, won, lost) stay closed.
pub async fn update_dispute_status(
    state: &AppState,
    dispute_id: Uuid,
    status: DisputeStatus,
) -> Result<RefundDispute> {
    let mut tx = state.pool.begin().await?;
    let order_id = repo::order_of(&mut tx, dispute_id)
        .await?
        .ok_or(Error::NotFound("Dispute"))?;
    let order = lock_order(&mut tx, order_id).await?;
    let mut dispute = repo::find_dispute(&mut tx, dispute_id)
        .await?
        .ok_or(Error::NotFound("Dispute"))?;
    if dispute.status != status {
        if dispute.closed {
            return Err(Error::invalid_field(
                "status",
                &format!("Dispute is closed as {}", dispute.status.as_str()),
                json!(status.as_str()),
            ));
        }
        dispute.modified_at = Some(repo::set_status(&mut tx, dispute_id, status).await?);
        dispute = with_status(dispute, status);
        dispute = prevent_if_warned(state, &mut tx, &order, dispute).await?;
    }
    tx.commit().await?;
    Ok(dispute)
}

async fn lock_order(conn: &mut PgConnection, order_id: Uuid) -> Result<LockedOrder> {
    let organization_id = orders_repo::organization_of(&mut *conn, order_id)
        .await?
        .ok_or(Error::NotFound("Order"))?;
    orders_repo::lock_for_refund(conn, order_id, &[organization_id])
        .await?
        .ok_or(Error::NotFound("Order"))
}

fn check_within_refundable(order: &LockedOrder, amounts: RefundSplit) -> Result<()> {
    for (field, value, limit) in [
        ("amount", amounts.amount, order.amounts.refundable_amount()),
        (
            "tax_amount",
            amounts.tax_amount,
            order.amounts.refundable_tax_amount(),
        ),
    ] {
        if value < 0 {
            return Err(Error::invalid_field(
                field,
                "Amount must not be negative",
                json!(value),
            ));
        }
        if value > limit {
            return Err(Error::invalid_field(
                field,
                &format!(
                    "Dispute {} exceeds what is refundable ({limit})",
                    field.replace('_', " ")
                ),
                json!(value),
            ));
        }
    }
    Ok(())
}

fn with_status(mut dispute: RefundDispute, status: DisputeStatus) -> RefundDispute {
    dispute.status = status;
    dispute.resolved = status.is_resolved();
    dispute.closed = status.is_closed();
    dispute
}

/// Polar prevents an early-warning dispute by refunding its amounts at once: a succeeded
/// refund with reason `dispute_prevention`, benefits revoked, no subscription, the dispute
/// embedded. The dispute becomes `prevented`.
async fn prevent_if_warned(
    state: &AppState,
    conn: &mut PgConnection,
    order: &LockedOrder,
    dispute: RefundDispute,
) -> Result<RefundDispute> {
    if !matches!(
        dispute.status,
        DisputeStatus::EarlyWarning | DisputeStatus::Prevented
    ) {
        return Ok(dispute);
    }
    let split = RefundSplit {
        amount: dispute.amount,
        tax_amount: dispute.tax_amount,
    };
    check_within_refundable(order, split)?;
    if split.amount + split.tax_amount == 0 {
        return Err(Error::invalid_field(
            "amount",
            "Nothing is left to refund on this order",
            json!(dispute.amount),
        ));
    }
    let mut prevented = dispute;
    if prevented.status != DisputeStatus::Prevented {
        prevented.modified_at =
            Some(repo::set_status(&mut *conn, prevented.id, DisputeStatus::Prevented).await?);
        prevented = with_status(prevented, DisputeStatus::Prevented);
    }
    record_refund(
        conn,
        order,
        RefundRecord {
            id: Uuid::new_v4(),
            status: RefundStatus::Succeeded,
            reason: RefundReason::DisputePrevention,
            split,
            subscription_id: None,
            payment_id: prevented.payment_id,
            dispute: Some(prevented.clone()),
            comment: None,
            processor: state.processor.name(),
            processor_id: prevented.id.to_string(),
            revoke_benefits: true,
            metadata: Default::default(),
        },
    )
    .await?;
    Ok(prevented)
}
