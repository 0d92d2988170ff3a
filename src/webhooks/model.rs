//! Webhook endpoints, events and deliveries as Polar shows them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::polar::schema::{Pagination, date_time, nullable_date_time, uuid4_schema};
use crate::polar::timestamp;

/// Polar's `WebhookEventType`: an endpoint may subscribe to any of them; this server sends
/// the refund and order ones.
pub const EVENT_TYPES: &[&str] = &[
    "checkout.created",
    "checkout.updated",
    "checkout.expired",
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.state_changed",
    "customer_seat.assigned",
    "customer_seat.claimed",
    "customer_seat.revoked",
    "member.created",
    "member.updated",
    "member.deleted",
    "order.created",
    "order.updated",
    "order.paid",
    "order.refunded",
    "subscription.created",
    "subscription.updated",
    "subscription.active",
    "subscription.canceled",
    "subscription.uncanceled",
    "subscription.cycled",
    "subscription.revoked",
    "subscription.past_due",
    "subscription.paused",
    "subscription.resumed",
    "refund.created",
    "refund.updated",
    "product.created",
    "product.updated",
    "discount.created",
    "discount.updated",
    "discount.deleted",
    "benefit.created",
    "benefit.updated",
    "benefit_grant.created",
    "benefit_grant.cycled",
    "benefit_grant.updated",
    "benefit_grant.revoked",
    "organization.updated",
];

/// The events this server sends.
pub const REFUND_CREATED: &str = "refund.created";
pub const REFUND_UPDATED: &str = "refund.updated";
pub const ORDER_UPDATED: &str = "order.updated";
pub const ORDER_REFUNDED: &str = "order.refunded";

/// Polar's `WebhookEndpoint`; field order is the order Polar emits.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct WebhookEndpoint {
    #[serde(with = "timestamp")]
    #[schema(schema_with = date_time)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub modified_at: Option<DateTime<Utc>>,
    #[schema(schema_with = uuid4_schema)]
    pub id: Uuid,
    /// The URL where the webhook events will be sent.
    pub url: String,
    /// An optional name for the webhook endpoint to help organize and identify it.
    pub name: Option<String>,
    /// The API version that'll be used in event payloads.
    pub api_version: String,
    /// The format of the webhook payload.
    pub format: String,
    /// The secret used to sign the webhook events.
    pub secret: String,
    /// The organization ID associated with the webhook endpoint.
    #[schema(schema_with = uuid4_schema)]
    pub organization_id: Uuid,
    /// The events that will trigger the webhook.
    pub events: Vec<String>,
    /// Whether the webhook endpoint is enabled and will receive events.
    pub enabled: bool,
    /// Whether deliveries are signed with Standard Webhooks (they carry that signature beside
    /// Polar's original one over the UTF-8 bytes of the full secret).
    pub uses_standard_webhook_signature: bool,
}

/// Polar's `ListResource[WebhookEndpoint]`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ListResource_WebhookEndpoint_)]
pub struct WebhookEndpointList {
    pub items: Vec<WebhookEndpoint>,
    pub pagination: Pagination,
}

/// Polar's `WebhookEvent`: something that happened, to deliver to one endpoint.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookEvent {
    #[serde(with = "timestamp")]
    #[schema(schema_with = date_time)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub modified_at: Option<DateTime<Utc>>,
    #[schema(schema_with = uuid4_schema)]
    pub id: Uuid,
    /// Last HTTP code returned by the URL; `null` if no delivery has been attempted or if the
    /// endpoint was unreachable.
    pub last_http_code: Option<i32>,
    /// Whether this event was successfully delivered; `null` while it is still being tried.
    pub succeeded: Option<bool>,
    /// Whether this event was skipped because the webhook endpoint was disabled.
    pub skipped: bool,
    /// The API version of the payload.
    pub api_version: String,
    /// The payload of the webhook event.
    pub payload: Option<String>,
    /// The type of the webhook event.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Whether this event is archived: its payload is gone and it cannot be redelivered.
    pub is_archived: bool,
}

/// Polar's `WebhookDelivery`: one attempt to deliver an event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookDelivery {
    #[serde(with = "timestamp")]
    #[schema(schema_with = date_time)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub modified_at: Option<DateTime<Utc>>,
    #[schema(schema_with = uuid4_schema)]
    pub id: Uuid,
    /// Whether the delivery was successful.
    pub succeeded: bool,
    /// The HTTP code returned by the URL; `null` if the endpoint was unreachable.
    pub http_code: Option<i32>,
    /// The response body returned by the URL, or the error message if the endpoint was
    /// unreachable.
    pub response: Option<String>,
    /// The webhook event sent by this delivery.
    pub webhook_event: WebhookEvent,
}

/// Polar's `ListResource[WebhookDelivery]`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ListResource_WebhookDelivery_)]
pub struct WebhookDeliveryList {
    pub items: Vec<WebhookDelivery>,
    pub pagination: Pagination,
}

/// What an endpoint is created with, once read and checked.
#[derive(Debug, Clone)]
pub struct EndpointCreate {
    pub url: String,
    pub name: Option<String>,
    pub events: Vec<String>,
    pub organization_id: Option<Uuid>,
    pub api_version: String,
}

/// What an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    /// `Some(None)` clears the name.
    pub name: Option<Option<String>>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub api_version: Option<String>,
}

/// The query of the endpoint list.
#[derive(Debug, Clone)]
pub struct EndpointListQuery {
    pub organization_ids: Vec<Uuid>,
    pub page: i64,
    pub limit: i64,
}

/// A class of HTTP answers, as the delivery list filters them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpCodeClass {
    Success,
    Redirection,
    ClientError,
    ServerError,
}

impl HttpCodeClass {
    /// The lowest code of the class.
    pub fn floor(self) -> i32 {
        match self {
            HttpCodeClass::Success => 200,
            HttpCodeClass::Redirection => 300,
            HttpCodeClass::ClientError => 400,
            HttpCodeClass::ServerError => 500,
        }
    }
}

/// The query of the delivery list.
#[derive(Debug, Clone)]
pub struct DeliveryListQuery {
    pub endpoint_ids: Vec<Uuid>,
    pub start_timestamp: Option<DateTime<Utc>>,
    pub end_timestamp: Option<DateTime<Utc>>,
    pub succeeded: Option<bool>,
    pub http_code_class: Option<HttpCodeClass>,
    pub event_types: Vec<String>,
    pub page: i64,
    pub limit: i64,
}
