//! Orders as Polar shows them (`Order` and the objects it embeds), the list query, and the
//! admin API's own view of an order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::schema::{AnyOfBuilder, Schema, Type};
use uuid::Uuid;

use crate::domain::{BillingReason, OrderStatus, RecurringInterval};
use crate::polar::schema::{
    MetadataOutputType, date_time, nullable_date_time, nullable_uuid4, typed, uuid4_schema,
};
use crate::polar::timestamp;

/// An order as the admin API shows it, with Polar's Order field names.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub customer_id: Uuid,
    pub subscription_id: Option<Uuid>,
    #[schema(value_type = String)]
    pub status: OrderStatus,
    pub net_amount: i64,
    pub tax_amount: i64,
    pub applied_balance_amount: i64,
    pub refunded_amount: i64,
    pub refunded_tax_amount: i64,
    pub refundable_amount: i64,
    pub refundable_tax_amount: i64,
    pub currency: String,
    pub refunds_blocked: bool,
}

/// The country codes Polar's `Address` accepts (ISO 3166-1 alpha-2).
pub const COUNTRIES: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Polar's `Address`; only `country` is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Address {
    #[schema(required = false)]
    pub line1: Option<String>,
    #[schema(required = false)]
    pub line2: Option<String>,
    #[schema(required = false)]
    pub postal_code: Option<String>,
    #[schema(required = false)]
    pub city: Option<String>,
    #[schema(required = false)]
    pub state: Option<String>,
    #[schema(schema_with = country)]
    pub country: String,
}

fn country() -> Schema {
    typed(Type::String)
        .enum_values(Some(COUNTRIES.iter().copied()))
        .build()
        .into()
}

fn nullable_ref(name: &str) -> Schema {
    AnyOfBuilder::new()
        .item(utoipa::openapi::Ref::from_schema_name(name))
        .item(typed(Type::Null))
        .build()
        .into()
}

fn nullable_address() -> Schema {
    nullable_ref("Address")
}

fn nullable_product() -> Schema {
    nullable_ref("OrderProduct")
}

fn nullable_subscription() -> Schema {
    nullable_ref("OrderSubscription")
}

fn nullable_interval() -> Schema {
    nullable_ref("RecurringInterval")
}

fn nullable_trial_interval() -> Schema {
    nullable_ref("TrialInterval")
}

fn nullable_cancellation_reason() -> Schema {
    nullable_ref("CustomerCancellationReason")
}

/// Polar's `(number, format)` pair of a tax id, or null.
fn tax_id() -> Schema {
    let schema = serde_json::json!({
        "anyOf": [
            {"prefixItems": [{"type": "string"}, {"$ref": "#/components/schemas/TaxIDFormat"}],
             "type": "array", "maxItems": 2, "minItems": 2},
            {"type": "null"}
        ]
    });
    serde_json::from_value(schema).expect("a valid schema")
}

/// Always null: this server holds no discounts (Polar documents one of four discount kinds).
fn nullable_discount() -> Schema {
    typed(Type::Null).build().into()
}

/// Polar's `custom_field_data`: values of the order's custom checkout fields.
fn custom_field_data() -> Schema {
    let value = AnyOfBuilder::new()
        .item(typed(Type::String))
        .item(typed(Type::Integer))
        .item(typed(Type::Boolean))
        .item(
            typed(Type::String).format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::DateTime,
            ))),
        )
        .item(typed(Type::Null));
    typed(Type::Object)
        .additional_properties(Some(Schema::AnyOf(value.build())))
        .build()
        .into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CustomerType {
    Individual,
    Team,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductVisibility {
    Draft,
    Private,
    Public,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrialInterval {
    Day,
    Week,
    Month,
    Year,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CustomerCancellationReason {
    CustomerService,
    LowQuality,
    MissingFeatures,
    SwitchedService,
    TooComplex,
    TooExpensive,
    Unused,
    Other,
}

/// Polar's `OrderCustomer`: the customer as the order embeds it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OrderCustomer {
    #[schema(schema_with = uuid4_schema)]
    pub id: Uuid,
    #[serde(with = "timestamp")]
    #[schema(schema_with = date_time)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub modified_at: Option<DateTime<Utc>>,
    #[schema(value_type = MetadataOutputType)]
    pub metadata: Map<String, Value>,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub customer_type: CustomerType,
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(required = true)]
    pub billing_name: Option<String>,
    #[schema(schema_with = nullable_address, required = true)]
    pub billing_address: Option<Address>,
    #[schema(schema_with = tax_id, required = true)]
    pub tax_id: Option<Value>,
    pub locale: Option<String>,
    #[schema(schema_with = uuid4_schema)]
    pub organization_id: Uuid,
    #[schema(schema_with = nullable_uuid4)]
    pub default_payment_method_id: Option<Uuid>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub first_user_event_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub avatar_url: Option<String>,
}

/// The customer under the deprecated name `user`, which Polar still sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderUser {
    pub id: Uuid,
    pub email: Option<String>,
    pub public_name: String,
    pub avatar_url: Option<String>,
    pub github_username: Option<String>,
}

/// Polar's `OrderProduct`: the product as it was sold.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OrderProduct {
    #[schema(value_type = MetadataOutputType)]
    pub metadata: Map<String, Value>,
    #[schema(schema_with = uuid4_schema)]
    pub id: Uuid,
    #[serde(with = "timestamp")]
    #[schema(schema_with = date_time)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub modified_at: Option<DateTime<Utc>>,
    #[schema(schema_with = nullable_trial_interval, required = true)]
    pub trial_interval: Option<TrialInterval>,
    #[schema(required = true)]
    pub trial_interval_count: Option<i64>,
    pub name: String,
    #[schema(required = true)]
    pub description: Option<String>,
    pub visibility: ProductVisibility,
    #[schema(schema_with = nullable_interval, required = true)]
    pub recurring_interval: Option<RecurringInterval>,
    #[schema(required = true)]
    pub recurring_interval_count: Option<i64>,
    #[schema(schema_with = nullable_interval, required = true)]
    pub meter_interval: Option<RecurringInterval>,
    #[schema(required = true)]
    pub meter_interval_count: Option<i64>,
    pub is_recurring: bool,
    pub is_archived: bool,
    #[schema(schema_with = uuid4_schema)]
    pub organization_id: Uuid,
}

/// Polar's `OrderSubscription`: the subscription the order bills.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OrderSubscription {
    #[schema(value_type = MetadataOutputType)]
    pub metadata: Map<String, Value>,
    #[serde(with = "timestamp")]
    #[schema(schema_with = date_time)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub modified_at: Option<DateTime<Utc>>,
    #[schema(schema_with = uuid4_schema)]
    pub id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub recurring_interval: RecurringInterval,
    pub recurring_interval_count: i64,
    pub status: SubscriptionStatus,
    #[serde(with = "timestamp")]
    #[schema(schema_with = date_time)]
    pub current_period_start: DateTime<Utc>,
    #[serde(with = "timestamp")]
    #[schema(schema_with = date_time)]
    pub current_period_end: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub current_meter_period_start: Option<DateTime<Utc>>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub current_meter_period_end: Option<DateTime<Utc>>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub trial_start: Option<DateTime<Utc>>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub trial_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub canceled_at: Option<DateTime<Utc>>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time)]
    pub past_due_at: Option<DateTime<Utc>>,
    pub pause_at_period_end: bool,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub paused_at: Option<DateTime<Utc>>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub resumes_at: Option<DateTime<Utc>>,
    #[schema(schema_with = uuid4_schema)]
    pub customer_id: Uuid,
    #[schema(schema_with = uuid4_schema)]
    pub product_id: Uuid,
    #[schema(schema_with = nullable_uuid4, required = true)]
    pub discount_id: Option<Uuid>,
    #[schema(schema_with = nullable_uuid4, required = true)]
    pub checkout_id: Option<Uuid>,
    pub seats: Option<i64>,
    /// Required by polar-sdk 1.0.2, although Polar's document omits it.
    #[schema(required = true)]
    pub units: Option<i64>,
    #[schema(schema_with = nullable_cancellation_reason, required = true)]
    pub customer_cancellation_reason: Option<CustomerCancellationReason>,
    #[schema(required = true)]
    pub customer_cancellation_comment: Option<String>,
    /// Deprecated alias of `customer_id` that Polar still sends.
    #[schema(ignore)]
    pub user_id: Uuid,
}

/// Polar's `OrderItemSchema`: one line of the order.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = OrderItemSchema)]
pub struct OrderItem {
    #[serde(with = "timestamp")]
    #[schema(schema_with = date_time)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub modified_at: Option<DateTime<Utc>>,
    #[schema(schema_with = uuid4_schema)]
    pub id: Uuid,
    pub label: String,
    pub amount: i64,
    pub tax_amount: i64,
    pub proration: bool,
    #[schema(schema_with = nullable_uuid4, required = true)]
    pub product_price_id: Option<Uuid>,
    /// Required by polar-sdk 1.0.2, although Polar's document omits it.
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub start_timestamp: Option<DateTime<Utc>>,
    /// Required by polar-sdk 1.0.2, although Polar's document omits it.
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub end_timestamp: Option<DateTime<Utc>>,
}

/// Polar's `Order`, field for field in the order Polar sends them, with the deprecated
/// fields Polar still sends but no longer documents.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Order {
    #[schema(schema_with = uuid4_schema)]
    pub id: Uuid,
    #[serde(with = "timestamp")]
    #[schema(schema_with = date_time)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time, required = true)]
    pub modified_at: Option<DateTime<Utc>>,
    pub status: OrderStatus,
    pub paid: bool,
    pub subtotal_amount: i64,
    pub discount_amount: i64,
    pub net_amount: i64,
    pub tax_amount: i64,
    pub total_amount: i64,
    pub applied_balance_amount: i64,
    pub due_amount: i64,
    pub refunded_amount: i64,
    pub refunded_tax_amount: i64,
    pub currency: String,
    pub billing_reason: BillingReason,
    #[schema(required = true)]
    pub billing_name: Option<String>,
    #[schema(schema_with = nullable_address, required = true)]
    pub billing_address: Option<Address>,
    #[schema(required = true)]
    pub invoice_number: Option<String>,
    pub is_invoice_generated: bool,
    #[schema(required = true)]
    pub receipt_number: Option<String>,
    pub seats: Option<i64>,
    /// Required by polar-sdk 1.0.2, although Polar's document omits it.
    #[schema(required = true)]
    pub units: Option<i64>,
    #[schema(schema_with = uuid4_schema)]
    pub customer_id: Uuid,
    #[schema(schema_with = nullable_uuid4, required = true)]
    pub product_id: Option<Uuid>,
    #[schema(ignore)]
    pub product_price_id: Option<Uuid>,
    #[schema(schema_with = nullable_uuid4, required = true)]
    pub discount_id: Option<Uuid>,
    #[schema(schema_with = nullable_uuid4, required = true)]
    pub subscription_id: Option<Uuid>,
    #[schema(schema_with = nullable_uuid4, required = true)]
    pub checkout_id: Option<Uuid>,
    #[serde(with = "timestamp::option")]
    #[schema(schema_with = nullable_date_time)]
    pub next_payment_attempt_at: Option<DateTime<Utc>>,
    #[schema(value_type = MetadataOutputType)]
    pub metadata: Map<String, Value>,
    #[schema(schema_with = custom_field_data, required = false)]
    pub custom_field_data: Map<String, Value>,
    pub platform_fee_amount: i64,
    #[schema(required = true)]
    pub platform_fee_currency: Option<String>,
    pub customer: OrderCustomer,
    #[schema(ignore)]
    pub user_id: Uuid,
    #[schema(ignore)]
    pub user: OrderUser,
    #[schema(schema_with = nullable_product, required = true)]
    pub product: Option<OrderProduct>,
    #[schema(ignore)]
    pub product_price: Option<Value>,
    #[schema(schema_with = nullable_discount, required = true)]
    pub discount: Option<Value>,
    #[schema(schema_with = nullable_subscription, required = true)]
    pub subscription: Option<OrderSubscription>,
    /// Line items composing the order.
    pub items: Vec<OrderItem>,
    /// A summary description of the order.
    pub description: String,
    #[schema(ignore)]
    pub amount: i64,
    #[schema(ignore)]
    pub from_balance_amount: i64,
    /// Amount in cents that can still be refunded (net, before taxes).
    #[schema(read_only)]
    pub refundable_amount: i64,
    /// Sales tax in cents that would be refunded if the full refundable amount is refunded.
    #[schema(read_only)]
    pub refundable_tax_amount: i64,
}

/// `ListResource[Order]`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ListResource_Order_)]
pub struct OrderList {
    pub items: Vec<Order>,
    pub pagination: crate::polar::schema::Pagination,
}

/// One `sorting` criterion of the order list; `-` means descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = OrderSortProperty)]
pub enum OrderSort {
    #[serde(rename = "created_at")]
    CreatedAt,
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
    #[serde(rename = "status")]
    Status,
    #[serde(rename = "-status")]
    StatusDesc,
    #[serde(rename = "invoice_number")]
    InvoiceNumber,
    #[serde(rename = "-invoice_number")]
    InvoiceNumberDesc,
    #[serde(rename = "amount")]
    Amount,
    #[serde(rename = "-amount")]
    AmountDesc,
    #[serde(rename = "net_amount")]
    NetAmount,
    #[serde(rename = "-net_amount")]
    NetAmountDesc,
    #[serde(rename = "customer")]
    Customer,
    #[serde(rename = "-customer")]
    CustomerDesc,
    #[serde(rename = "product")]
    Product,
    #[serde(rename = "-product")]
    ProductDesc,
    #[serde(rename = "discount")]
    Discount,
    #[serde(rename = "-discount")]
    DiscountDesc,
    #[serde(rename = "subscription")]
    Subscription,
    #[serde(rename = "-subscription")]
    SubscriptionDesc,
}

impl OrderSort {
    /// Every criterion by the name clients give it, in the order pydantic lists them.
    pub const ALL: &'static [(&'static str, OrderSort)] = &[
        ("created_at", OrderSort::CreatedAt),
        ("-created_at", OrderSort::CreatedAtDesc),
        ("status", OrderSort::Status),
        ("-status", OrderSort::StatusDesc),
        ("invoice_number", OrderSort::InvoiceNumber),
        ("-invoice_number", OrderSort::InvoiceNumberDesc),
        ("amount", OrderSort::Amount),
        ("-amount", OrderSort::AmountDesc),
        ("net_amount", OrderSort::NetAmount),
        ("-net_amount", OrderSort::NetAmountDesc),
        ("customer", OrderSort::Customer),
        ("-customer", OrderSort::CustomerDesc),
        ("product", OrderSort::Product),
        ("-product", OrderSort::ProductDesc),
        ("discount", OrderSort::Discount),
        ("-discount", OrderSort::DiscountDesc),
        ("subscription", OrderSort::Subscription),
        ("-subscription", OrderSort::SubscriptionDesc),
    ];
}

/// Polar's `ProductBillingType`: whether a product is sold once or recurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductBillingType {
    OneTime,
    Recurring,
}

/// The validated query of `GET /v1/orders/`. An empty filter list means "no filter".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderListQuery {
    pub organization_ids: Vec<Uuid>,
    pub product_ids: Vec<Uuid>,
    pub product_billing_types: Vec<ProductBillingType>,
    pub discount_ids: Vec<Uuid>,
    pub customer_ids: Vec<Uuid>,
    pub external_customer_ids: Vec<String>,
    pub checkout_ids: Vec<Uuid>,
    pub subscription_ids: Vec<Uuid>,
    pub statuses: Vec<OrderStatus>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// `metadata[key]=value` filters: every key must match one of its values.
    pub metadata: Vec<(String, Vec<String>)>,
    pub page: i64,
    /// Already clamped to the maximum page size.
    pub limit: i64,
    /// Never empty: defaults to `[-created_at]`.
    pub sorting: Vec<OrderSort>,
}
