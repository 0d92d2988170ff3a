//! Refunding a payment as Medusa asks for it, through the refund flow of Polar's API: the
//! payment leads to its order, and the create flow splits the gross amount under the
//! order's row lock, so both APIs share one set of rules and counters.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::model::PaymentRefund;
use crate::auth::Principal;
use crate::domain::{Error, RequestedAmount, Result};
use crate::orders::payments::repo as payments_repo;
use crate::refunds::model::RefundCreate;
use crate::refunds::service::{self as refunds, Created, Keyed};
use crate::state::AppState;

/// Refunds `refund.amount` (net and tax together) of the payment, if the caller may see it.
/// The refund keeps the note as its comment and shows Polar's counterpart of the reason.
#[tracing::instrument(
    name = "medusa.refund_payment",
    skip_all,
    fields(route = "/admin/payments/{id}/refund", %payment_id)
)]
pub async fn refund_payment(
    state: &AppState,
    principal: &Principal,
    payment_id: Uuid,
    refund: &PaymentRefund,
    keyed: Option<Keyed>,
) -> Result<Created> {
    let payment =
        payments_repo::find_readable_payment(&state.pool, payment_id, &principal.organization_ids)
            .await?
            .ok_or(Error::ResourceNotFound)?;
    let input = RefundCreate {
        order_id: payment.order_id,
        reason: refund.reason.polar_reason(),
        amount: RequestedAmount::Gross(refund.amount),
        payment_id: Some(payment_id),
        amount_input: json!(refund.amount),
        comment: refund.note.clone(),
        revoke_benefits: false,
        metadata: Map::<String, Value>::new(),
    };
    refunds::create_refund(state, None, principal, input, keyed).await
}
