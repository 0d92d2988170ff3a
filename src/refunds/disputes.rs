//! Disputes reported by the processor. An early warning is answered the way Polar answers
//! it, with a refund of the dispute's amounts, so opening or moving a dispute is a refund
//! operation: one transaction on the locked order.

use uuid::Uuid;

use super::service::{RefundRecord, record_refund};
use crate::disputes::model::{DisputeOpening, RefundDispute};
use crate::disputes::service as disputes;
use crate::domain::{DisputeStatus, RefundReason, RefundStatus, Result};
use crate::orders::repo::LockedOrder;
use crate::state::AppState;

/// Opens a dispute on an order's succeeded payment; an `early_warning` (or `prevented`)
/// dispute is prevented at once.
#[tracing::instrument(skip(state, opening), fields(order_id = %order_id))]
pub async fn open_dispute(
    state: &AppState,
    order_id: Uuid,
    opening: DisputeOpening,
) -> Result<RefundDispute> {
    let mut tx = state.pool.begin().await?;
    let order = disputes::lock_order(&mut tx, order_id).await?;
    let dispute = disputes::open(&mut tx, &order, opening).await?;
    let dispute = prevent_if_warned(state, &mut tx, &order, dispute).await?;
    tx.commit().await?;
    Ok(dispute)
}

/// Moves a dispute to a new status; a move to `early_warning` is prevented at once.
#[tracing::instrument(skip(state), fields(dispute_id = %dispute_id))]
pub async fn update_dispute_status(
    state: &AppState,
    dispute_id: Uuid,
    status: DisputeStatus,
) -> Result<RefundDispute> {
    let mut tx = state.pool.begin().await?;
    let (order, dispute) = disputes::lock_dispute(&mut tx, dispute_id).await?;
    let unchanged = dispute.status == status;
    let mut dispute = disputes::change_status(&mut tx, dispute, status).await?;
    if !unchanged {
        dispute = prevent_if_warned(state, &mut tx, &order, dispute).await?;
    }
    tx.commit().await?;
    Ok(dispute)
}

/// The prevention refund is succeeded, with reason `dispute_prevention`, benefits revoked,
/// no subscription and the dispute embedded, as Polar issues it.
async fn prevent_if_warned(
    state: &AppState,
    conn: &mut sqlx::PgConnection,
    order: &LockedOrder,
    dispute: RefundDispute,
) -> Result<RefundDispute> {
    let (dispute, split) = disputes::prevent_if_warned(&mut *conn, order, dispute).await?;
    if let Some(split) = split {
        record_refund(
            conn,
            order,
            RefundRecord {
                id: Uuid::new_v4(),
                status: RefundStatus::Succeeded,
                reason: RefundReason::DisputePrevention,
                split,
                subscription_id: None,
                payment_id: dispute.payment_id,
                dispute: Some(dispute.clone()),
                comment: None,
                processor: state.processor.name(),
                processor_id: Some(dispute.id.to_string()),
                revoke_benefits: true,
                metadata: Default::default(),
                failure_reason: None,
                awaiting: None,
            },
        )
        .await?;
    }
    Ok(dispute)
}
