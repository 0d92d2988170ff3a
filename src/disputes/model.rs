//! Disputes as Polar shows them embedded in a refund, and as a processor reports them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::DisputeStatus;
use crate::polar::schema::{date_time, nullable_date_time, uuid4_schema};
use crate::polar::timestamp;

/// Polar's `RefundDispute` schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefundDispute {
    #[serde(with = "timestamp")]
    #[schema(schema_with = date_time)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub modified_at: Option<DateTime<Utc>>,
    #[schema(schema_with = uuid4_schema)]
    pub id: Uuid,
    pub status: DisputeStatus,
    pub resolved: bool,
    pub closed: bool,
    pub amount: i64,
    pub tax_amount: i64,
    pub currency: String,
    /// The reason for the dispute as reported by the card network.
    #[schema(required = true)]
    pub reason: Option<String>,
    /// Deadline to submit evidence; `None` when no response is required.
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub evidence_due_by: Option<DateTime<Utc>>,
    /// Whether the evidence submission deadline has passed.
    pub past_due: bool,
    #[schema(schema_with = uuid4_schema)]
    pub order_id: Uuid,
    #[schema(schema_with = uuid4_schema)]
    pub payment_id: Uuid,
}

impl RefundDispute {
    /// Polar's `past_due`: an evidence deadline that has passed.
    pub fn is_past_due(evidence_due_by: Option<DateTime<Utc>>) -> bool {
        evidence_due_by.is_some_and(|due| due < Utc::now())
    }
}

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
