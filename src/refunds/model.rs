//! The refund resource as stored and as Polar emits it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::http::openapi::{
    MetadataOutputType, date_time, nullable_date_time, nullable_dispute, nullable_uuid4,
    uuid4_schema,
};
use crate::http::timestamp;

macro_rules! string_enum {
    // `tt`, not `literal`: the derives must see the renames as plain string tokens.
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:tt),+ $(,)? }) => {
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::utoipa::ToSchema,
        )]
        $(#[$meta])*
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// Why a refund was made. `DisputePrevention` is reserved for refunds the server issues
    /// itself; clients may send any other reason.
    RefundReason {
        Duplicate => "duplicate",
        Fraudulent => "fraudulent",
        CustomerRequest => "customer_request",
        ServiceDisruption => "service_disruption",
        SatisfactionGuarantee => "satisfaction_guarantee",
        DisputePrevention => "dispute_prevention",
        Other => "other",
    }
);

string_enum!(RefundStatus {
    Pending => "pending",
    Succeeded => "succeeded",
    Failed => "failed",
    Canceled => "canceled",
});

string_enum!(DisputeStatus {
    Prevented => "prevented",
    EarlyWarning => "early_warning",
    NeedsResponse => "needs_response",
    UnderReview => "under_review",
    Lost => "lost",
    Won => "won",
});

impl DisputeStatus {
    pub fn is_resolved(self) -> bool {
        matches!(self, DisputeStatus::Won | DisputeStatus::Lost)
    }

    pub fn is_closed(self) -> bool {
        matches!(
            self,
            DisputeStatus::Prevented | DisputeStatus::Won | DisputeStatus::Lost
        )
    }
}

string_enum!(
    /// One `sorting` criterion of the list endpoint; `-` means descending.
    #[schema(as = RefundSortProperty)]
    RefundSort {
        CreatedAt => "created_at",
        CreatedAtDesc => "-created_at",
        Amount => "amount",
        AmountDesc => "-amount",
    }
);

// Polar's `Refund` schema; field order is the order Polar emits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Refund {
    #[serde(with = "timestamp")]
    #[schema(schema_with = date_time)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub modified_at: Option<DateTime<Utc>>,
    #[schema(schema_with = uuid4_schema)]
    pub id: Uuid,
    #[schema(value_type = MetadataOutputType)]
    pub metadata: Map<String, Value>,
    pub status: RefundStatus,
    pub reason: RefundReason,
    pub amount: i64,
    pub tax_amount: i64,
    pub currency: String,
    #[schema(schema_with = uuid4_schema)]
    pub organization_id: Uuid,
    #[schema(schema_with = uuid4_schema)]
    pub order_id: Uuid,
    #[schema(schema_with = nullable_uuid4, required = true)]
    pub subscription_id: Option<Uuid>,
    #[schema(schema_with = uuid4_schema)]
    pub customer_id: Uuid,
    pub revoke_benefits: bool,
    #[schema(schema_with = nullable_dispute, required = true)]
    pub dispute: Option<RefundDispute>,
}

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

/// A validated `RefundCreate` body.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundCreate {
    pub order_id: Uuid,
    pub reason: RefundReason,
    /// The requested net amount. Values beyond `i64` saturate: they exceed any order.
    pub amount: i64,
    /// `amount` exactly as the client sent it, echoed back in an over-refund error.
    pub amount_input: Value,
    pub comment: Option<String>,
    pub revoke_benefits: bool,
    pub metadata: Map<String, Value>,
}

/// The validated query of `GET /v1/refunds/`. An empty filter list means "no filter".
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub ids: Vec<Uuid>,
    pub organization_ids: Vec<Uuid>,
    pub order_ids: Vec<Uuid>,
    pub subscription_ids: Vec<Uuid>,
    pub customer_ids: Vec<Uuid>,
    pub external_customer_ids: Vec<String>,
    pub succeeded: Option<bool>,
    pub page: i64,
    /// Already clamped to `MAX_LIMIT`.
    pub limit: i64,
    /// Never empty: defaults to `[-created_at]`.
    pub sorting: Vec<RefundSort>,
}

pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 100;
