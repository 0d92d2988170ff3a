//! The refund resource as stored and as Polar emits it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::docs::nullable_dispute;
use crate::disputes::model::RefundDispute;
use crate::domain::{RefundReason, RefundStatus, RequestedAmount};
use crate::polar::schema::{
    MetadataOutputType, date_time, nullable_date_time, nullable_uuid4, uuid4_schema,
};
use crate::polar::timestamp;

/// One `sorting` criterion of the list endpoint; `-` means descending.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, strum::EnumString,
)]
#[schema(as = RefundSortProperty)]
pub enum RefundSort {
    #[serde(rename = "created_at")]
    CreatedAt,
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
    #[serde(rename = "amount")]
    Amount,
    #[serde(rename = "-amount")]
    AmountDesc,
}

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

/// A validated `RefundCreate` body.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundCreate {
    pub order_id: Uuid,
    pub reason: RefundReason,
    /// The requested amount: net (Polar) or net and tax together (Medusa). Values beyond
    /// `i64` saturate: they exceed any order.
    pub amount: RequestedAmount,
    /// The payment the caller names, when it names one: the refund must be of it.
    pub payment_id: Option<Uuid>,
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
