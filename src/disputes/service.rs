//! The rules of disputes, applied inside the caller's transaction on a locked order: what a
//! dispute may claim, which moves its status may make, and when it must be prevented.

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::model::{DisputeOpening, RefundDispute};
use super::repo::{self, NewDispute};
use crate::domain::money::RefundSplit;
use crate::domain::{DisputeStatus, Error, Result};
use crate::orders::repo::{self as orders_repo, LockedOrder};

/// Locks the order of a dispute reported by the processor (the admin API stands in for it),
/// whatever its organization.
pub async fn lock_order(conn: &mut PgConnection, order_id: Uuid) -> Result<LockedOrder> {
    let organization_id = orders_repo::organization_of(&mut *conn, order_id)
        .await?
        .ok_or(Error::NotFound("Order"))?;
    orders_repo::lock_for_refund(conn, order_id, &[organization_id])
        .await?
        .ok_or(Error::NotFound("Order"))
}

/// The order of a dispute, locked, and the dispute as it stands.
pub async fn lock_dispute(
    conn: &mut PgConnection,
    dispute_id: Uuid,
) -> Result<(LockedOrder, RefundDispute)> {
    let order_id = repo::order_of(&mut *conn, dispute_id)
        .await?
        .ok_or(Error::NotFound("Dispute"))?;
    let order = lock_order(&mut *conn, order_id).await?;
    let dispute = repo::find_dispute(conn, dispute_id)
        .await?
        .ok_or(Error::NotFound("Dispute"))?;
    Ok((order, dispute))
}

/// Records a dispute on the order's succeeded payment. Its amounts default to what is still
/// refundable and may not exceed it.
pub async fn open(
    conn: &mut PgConnection,
    order: &LockedOrder,
    opening: DisputeOpening,
) -> Result<RefundDispute> {
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
    check_within_refundable(order, amounts)?;
    repo::insert_dispute(
        conn,
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
    .await
}

/// Moves a dispute to a new status. Closed disputes (prevented, won, lost) stay closed.
pub async fn change_status(
    conn: &mut PgConnection,
    mut dispute: RefundDispute,
    status: DisputeStatus,
) -> Result<RefundDispute> {
    if dispute.status == status {
        return Ok(dispute);
    }
    if dispute.closed {
        return Err(Error::invalid_field(
            "status",
            &format!("Dispute is closed as {}", dispute.status.as_str()),
            json!(status.as_str()),
        ));
    }
    dispute.modified_at = Some(repo::set_status(conn, dispute.id, status).await?);
    Ok(with_status(dispute, status))
}

/// Polar prevents an early-warning dispute by refunding its amounts at once. When this
/// dispute must be prevented, marks it `prevented` and returns the amounts to refund.
pub async fn prevent_if_warned(
    conn: &mut PgConnection,
    order: &LockedOrder,
    dispute: RefundDispute,
) -> Result<(RefundDispute, Option<RefundSplit>)> {
    if !matches!(
        dispute.status,
        DisputeStatus::EarlyWarning | DisputeStatus::Prevented
    ) {
        return Ok((dispute, None));
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
            Some(repo::set_status(conn, prevented.id, DisputeStatus::Prevented).await?);
        prevented = with_status(prevented, DisputeStatus::Prevented);
    }
    Ok((prevented, Some(split)))
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
