//! What each of Stripe's events does, in one transaction with the record of the event, so
//! that an event delivered twice acts once and a failure leaves it for Stripe to deliver
//! again.

use sqlx::PgConnection;
use uuid::Uuid;

use super::repo;
use crate::disputes::model::DisputeOpening;
use crate::disputes::service as disputes;
use crate::domain::money::RefundSplit;
use crate::domain::{Error, RefundStatus, Result};
use crate::orders::repo as orders_repo;
use crate::payments::stripe::{
    STRIPE, StripeDispute, StripeEvent, StripeRefund, reason_from_stripe,
};
use crate::refunds::repo as refunds_repo;
use crate::refunds::service::{RefundRecord, record_processor_answer, record_refund};
use crate::state::AppState;

/// Handles one verified event; events of other types are recorded and ignored.
#[tracing::instrument(name = "stripe.event", skip_all, fields(event_id = %event.id, kind = %event.kind))]
pub async fn handle_event(state: &AppState, event: StripeEvent) -> Result<()> {
    let mut tx = state.pool.begin().await?;
    if !repo::record_event(&mut tx, &event.id, &event.kind).await? {
        tracing::info!("event handled before");
        return Ok(());
    }
    match event.kind.as_str() {
        "refund.created" | "refund.updated" | "refund.failed" => {
            refund_event(&mut tx, &object::<StripeRefund>(event.data.object)?).await?
        }
        "charge.dispute.created" | "charge.dispute.updated" | "charge.dispute.closed" => {
            dispute_event(&mut tx, &object::<StripeDispute>(event.data.object)?).await?
        }
        _ => {}
    }
    tx.commit().await?;
    Ok(())
}

fn object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|error| {
        Error::invalid_field(
            "data.object",
            &format!("not a Stripe object of this event's type: {error}"),
            serde_json::Value::Null,
        )
    })
}

/// A refund's news: ours (by Stripe's id, or by the id in its metadata when the create's
/// answer is not recorded yet) moves; one made in Stripe's dashboard is imported.
async fn refund_event(conn: &mut PgConnection, refund: &StripeRefund) -> Result<()> {
    let ours = match refunds_repo::find_by_processor_id(&mut *conn, STRIPE, &refund.id).await? {
        Some(id) => Some(id),
        None => match refund.refund_id() {
            Some(id) if refunds_repo::order_of(&mut *conn, id).await?.is_some() => Some(id),
            _ => None,
        },
    };
    match ours {
        Some(refund_id) => {
            let moved = record_processor_answer(conn, refund_id, &refund.outcome()).await?;
            tracing::info!(%refund_id, status = moved.status.as_str(), "refund updated by Stripe");
            Ok(())
        }
        None => import_refund(conn, refund).await,
    }
}

/// Records a refund made outside this server, with Polar's reason mapping and the tax share
/// Polar derives from its total.
async fn import_refund(conn: &mut PgConnection, refund: &StripeRefund) -> Result<()> {
    let Some(charge) = refund.charge.as_deref() else {
        tracing::warn!(stripe_refund = %refund.id, "a refund without a charge: ignored");
        return Ok(());
    };
    let Some((order_id, organization_id)) =
        orders_repo::order_of_charge(&mut *conn, STRIPE, charge).await?
    else {
        tracing::warn!(stripe_refund = %refund.id, charge, "a refund of an unknown charge: ignored");
        return Ok(());
    };
    let order = orders_repo::lock_for_refund(conn, order_id, &[organization_id])
        .await?
        .ok_or(Error::NotFound("Order"))?;
    let payment_id = order
        .payment_id
        .ok_or(Error::RefundUnknownPayment(order.id))?;
    let outcome = refund.outcome();
    let status = match outcome.state {
        crate::payments::ProcessorRefundState::Succeeded => RefundStatus::Succeeded,
        crate::payments::ProcessorRefundState::Pending => RefundStatus::Pending,
        crate::payments::ProcessorRefundState::Failed => RefundStatus::Failed,
        crate::payments::ProcessorRefundState::Canceled => RefundStatus::Canceled,
    };
    let imported = record_refund(
        conn,
        &order,
        RefundRecord {
            id: Uuid::new_v4(),
            status,
            reason: reason_from_stripe(refund.reason.as_deref()),
            split: order.amounts.split_total(refund.amount),
            subscription_id: order.subscription_id,
            payment_id,
            dispute: None,
            comment: None,
            processor: STRIPE,
            processor_id: Some(refund.id.clone()),
            revoke_benefits: false,
            metadata: Default::default(),
            failure_reason: outcome.failure_reason,
            awaiting: None,
        },
    )
    .await?;
    tracing::info!(refund_id = %imported.id, stripe_refund = %refund.id, "refund made at Stripe imported");
    Ok(())
}

/// A dispute opened, moved or closed at Stripe. An open dispute blocks manual refunds.
async fn dispute_event(conn: &mut PgConnection, dispute: &StripeDispute) -> Result<()> {
    let Some((order_id, _)) =
        orders_repo::order_of_charge(&mut *conn, STRIPE, &dispute.charge).await?
    else {
        tracing::warn!(dispute = %dispute.id, "a dispute of an unknown charge: ignored");
        return Ok(());
    };
    let order = disputes::lock_order(conn, order_id).await?;
    let status = dispute.dispute_status();
    match crate::disputes::repo::find_by_processor_id(&mut *conn, &dispute.id).await? {
        Some(existing) => {
            if existing.closed && existing.status != status {
                tracing::warn!(dispute = %dispute.id, "the dispute is closed already: event ignored");
                return Ok(());
            }
            disputes::change_status(conn, existing, status).await?;
        }
        None => {
            let refundable =
                order.amounts.refundable_amount() + order.amounts.refundable_tax_amount();
            let split: RefundSplit = order.amounts.split_total(dispute.amount.min(refundable));
            let opening = DisputeOpening {
                amount: Some(split.amount),
                tax_amount: Some(split.tax_amount),
                reason: dispute.reason.clone(),
                ..DisputeOpening::new(status)
            };
            let opened = disputes::open(&mut *conn, &order, opening).await?;
            crate::disputes::repo::set_processor_id(conn, opened.id, &dispute.id).await?;
        }
    }
    Ok(())
}
