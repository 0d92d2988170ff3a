//! Medusa's wire types: the refund reasons, the request, the `Refund` answered, and the error
//! body.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::RefundReason;

/// Medusa's `RefundReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = MedusaRefundReason)]
pub enum MedusaReason {
    Discount,
    Return,
    Swap,
    Claim,
    Other,
}

impl MedusaReason {
    pub const ALL: [MedusaReason; 5] = [
        MedusaReason::Discount,
        MedusaReason::Return,
        MedusaReason::Swap,
        MedusaReason::Claim,
        MedusaReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MedusaReason::Discount => "discount",
            MedusaReason::Return => "return",
            MedusaReason::Swap => "swap",
            MedusaReason::Claim => "claim",
            MedusaReason::Other => "other",
        }
    }

    /// The reason the same refund shows through Polar's API: a return is the customer's
    /// request; a discount, swap or claim has no Polar counterpart.
    pub fn polar_reason(self) -> RefundReason {
        match self {
            MedusaReason::Return => RefundReason::CustomerRequest,
            MedusaReason::Discount
            | MedusaReason::Swap
            | MedusaReason::Claim
            | MedusaReason::Other => RefundReason::Other,
        }
    }
}

/// A validated `AdminPostPaymentRefundsReq` body.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRefund {
    /// What leaves the payment, net and tax together. Values beyond `i64` saturate: they
    /// exceed any payment.
    pub amount: i64,
    pub reason: MedusaReason,
    pub note: Option<String>,
}

// The body as documented; `medusa::input` parses it.
/// The details of the refund to create.
#[derive(ToSchema)]
#[schema(as = MedusaAdminPostPaymentRefundsReq)]
#[allow(dead_code)]
pub struct PaymentRefundBody {
    /// The amount to refund, net and tax together, in minor units. Minimum is 1.
    #[schema(minimum = 1)]
    amount: i64,
    /// The reason for the Refund.
    reason: MedusaReason,
    /// A note with additional details about the Refund.
    note: Option<String>,
}

/// Medusa's `Refund`, as `POST /admin/payments/{id}/refund` answers it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = MedusaRefund)]
pub struct MedusaRefund {
    pub id: Uuid,
    pub order_id: Uuid,
    pub payment_id: Uuid,
    /// What left the payment, net and tax together.
    pub amount: i64,
    #[schema(required = true)]
    pub note: Option<String>,
    pub reason: MedusaReason,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// The `Idempotency-Key` of the request, if it sent one.
    #[schema(required = true)]
    pub idempotency_key: Option<String>,
    #[serde(serialize_with = "javascript_date")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "javascript_date")]
    pub updated_at: DateTime<Utc>,
}

/// Medusa's `AdminRefundRes`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MedusaAdminRefundRes)]
pub struct RefundAnswer {
    pub refund: MedusaRefund,
}

/// A timestamp as JavaScript's `Date.toJSON` writes it: milliseconds and `Z`.
fn javascript_date<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Medusa's error body: `{"code"?, "type", "message"}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = MedusaError)]
pub struct ErrorBody {
    /// A slug for the kind of error, where Medusa gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub code: Option<&'static str>,
    /// `invalid_data`, `not_allowed`, `not_found`, `conflict`, `duplicate_error`,
    /// `unexpected_state`, `database_error` or `unknown_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
}
