//! Polar's `Payment`: a card payment, or a payment by another method.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::openapi::schema::{Schema, Type};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use crate::domain::{PaymentStatus, PaymentTrigger};
use crate::polar::schema::{date_time, nullable_date_time, nullable_uuid4, typed, uuid4_schema};
use crate::polar::timestamp;

/// Polar's `PaymentProcessor`. Polar knows only Stripe and the SDKs refuse any other
/// value; the sandbox processor stands in for Stripe, so every payment shows `stripe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentProcessor {
    Stripe,
}

fn nullable_trigger() -> Schema {
    utoipa::openapi::schema::AnyOfBuilder::new()
        .item(utoipa::openapi::Ref::from_schema_name("PaymentTrigger"))
        .item(typed(Type::Null))
        .build()
        .into()
}

fn card_method() -> Schema {
    typed(Type::String)
        .enum_values(Some(["card"]))
        .build()
        .into()
}

fn processor_metadata() -> Schema {
    typed(Type::Object)
        .additional_properties(Some(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(true),
        ))
        .build()
        .into()
}

/// The fields every payment shows, in the order Polar sends them.
macro_rules! payment_struct {
    ($(#[$meta:meta])* $name:ident { $(#[$method_meta:meta])* method: $method:ty $(, $(#[$extra_meta:meta])* $extra:ident: $extra_type:ty)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
        pub struct $name {
            #[serde(with = "timestamp")]
            #[schema(schema_with = date_time)]
            pub created_at: DateTime<Utc>,
            #[serde(with = "timestamp::option")]
            #[schema(schema_with = nullable_date_time, required = true)]
            pub modified_at: Option<DateTime<Utc>>,
            #[schema(schema_with = uuid4_schema)]
            pub id: Uuid,
            pub processor: PaymentProcessor,
            pub status: PaymentStatus,
            pub amount: i64,
            pub currency: String,
            $(#[$method_meta])*
            pub method: $method,
            #[schema(schema_with = nullable_trigger, required = true)]
            pub trigger: Option<PaymentTrigger>,
            #[schema(required = true)]
            pub decline_reason: Option<String>,
            #[schema(required = true)]
            pub decline_message: Option<String>,
            #[schema(schema_with = uuid4_schema)]
            pub organization_id: Uuid,
            #[schema(schema_with = nullable_uuid4, required = true)]
            pub checkout_id: Option<Uuid>,
            #[schema(schema_with = nullable_uuid4, required = true)]
            pub order_id: Option<Uuid>,
            #[schema(schema_with = processor_metadata, required = false)]
            pub processor_metadata: Map<String, Value>,
            $($(#[$extra_meta])* pub $extra: $extra_type,)*
        }
    };
}

/// Additional metadata for a card payment method.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CardPaymentMetadata {
    pub brand: String,
    pub last4: String,
}

payment_struct!(
    /// Schema of a payment with a card payment method.
    CardPayment {
        #[schema(schema_with = card_method)]
        method: String,
        method_metadata: CardPaymentMetadata
    }
);

payment_struct!(
    /// Schema of a payment with a generic payment method.
    GenericPayment { method: String }
);

/// Polar's `Payment`: a card payment with its card, or any other.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Payment {
    Card(CardPayment),
    Generic(GenericPayment),
}

// `anyOf`, as Polar documents it: a card payment is a valid generic payment too, so `oneOf`
// (what utoipa derives for an untagged enum) would refuse it.
impl utoipa::PartialSchema for Payment {
    fn schema() -> utoipa::openapi::RefOr<Schema> {
        utoipa::openapi::schema::AnyOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name("CardPayment"))
            .item(utoipa::openapi::Ref::from_schema_name("GenericPayment"))
            .into()
    }
}

impl ToSchema for Payment {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<Schema>)>) {
        schemas.push(("CardPayment".into(), CardPayment::schema()));
        CardPayment::schemas(schemas);
        schemas.push(("GenericPayment".into(), GenericPayment::schema()));
        GenericPayment::schemas(schemas);
    }
}

/// `ListResource[Payment]`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ListResource_Payment_)]
pub struct PaymentList {
    pub items: Vec<Payment>,
    pub pagination: crate::polar::schema::Pagination,
}

/// One `sorting` criterion of the payment list; `-` means descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = PaymentSortProperty)]
pub enum PaymentSort {
    #[serde(rename = "created_at")]
    CreatedAt,
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
    #[serde(rename = "status")]
    Status,
    #[serde(rename = "-status")]
    StatusDesc,
    #[serde(rename = "amount")]
    Amount,
    #[serde(rename = "-amount")]
    AmountDesc,
    #[serde(rename = "method")]
    Method,
    #[serde(rename = "-method")]
    MethodDesc,
}

impl PaymentSort {
    /// Every criterion by the name clients give it, in the order pydantic lists them.
    pub const ALL: &'static [(&'static str, PaymentSort)] = &[
        ("created_at", PaymentSort::CreatedAt),
        ("-created_at", PaymentSort::CreatedAtDesc),
        ("status", PaymentSort::Status),
        ("-status", PaymentSort::StatusDesc),
        ("amount", PaymentSort::Amount),
        ("-amount", PaymentSort::AmountDesc),
        ("method", PaymentSort::Method),
        ("-method", PaymentSort::MethodDesc),
    ];
}

/// The validated query of `GET /v1/payments/`. An empty filter list means "no filter".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PaymentListQuery {
    pub organization_ids: Vec<Uuid>,
    pub checkout_ids: Vec<Uuid>,
    pub order_ids: Vec<Uuid>,
    pub customer_ids: Vec<Uuid>,
    pub statuses: Vec<PaymentStatus>,
    pub methods: Vec<String>,
    pub customer_emails: Vec<String>,
    pub page: i64,
    pub limit: i64,
    pub sorting: Vec<PaymentSort>,
}
