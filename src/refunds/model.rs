//! The refund resource as stored and as Polar emits it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::http::timestamp;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
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
    RefundSort {
        CreatedAt => "created_at",
        CreatedAtDesc => "-created_at",
        Amount => "amount",
        AmountDesc => "-amount",
    }
);

/// Polar's `Refund` schema; field order is the order Polar emits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    pub modified_at: Option<DateTime<Utc>>,
    pub id: Uuid,
    pub metadata: Map<String, Value>,
    pub status: RefundStatus,
    pub reason: RefundReason,
    pub amount: i64,
    pub tax_amount: i64,
    pub currency: String,
    pub organization_id: Uuid,
    pub order_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub customer_id: Uuid,
    pub revoke_benefits: bool,
    pub dispute: Option<RefundDispute>,
}

/// Polar's `RefundDispute` schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundDispute {
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    pub modified_at: Option<DateTime<Utc>>,
    pub id: Uuid,
    pub status: DisputeStatus,
    pub resolved: bool,
    pub closed: bool,
    pub amount: i64,
    pub tax_amount: i64,
    pub currency: String,
    pub order_id: Uuid,
    pub payment_id: Uuid,
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
