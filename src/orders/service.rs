//! The rules of orders: creating paid orders (for sandboxes and ingestion) and reading
//! them as Polar shows them.

use std::collections::HashMap;

use chrono::{DateTime, Days, Months, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::model::{
    Address, COUNTRIES, CustomerType, Order, OrderCustomer, OrderItem, OrderList, OrderListQuery,
    OrderProduct, OrderSubscription, OrderUser, ProductVisibility, SubscriptionStatus,
};
use super::repo::{
    self, NewOrder, NewOrderItem, NewPayment, NewProduct, OrderItemRecord, OrderRecord,
};
use crate::auth::Principal;
use crate::customers::repo as customers_repo;
use crate::domain::{BillingReason, Error, OrderAmounts, OrderStatus, RecurringInterval, Result};
use crate::polar::schema::Pagination;
use crate::state::{Reader, snapshot};

/// The largest amount an order may carry, so that sums of amounts never overflow and stay
/// exact in JSON clients that read numbers as doubles (2^53).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

/// What a sandbox or an ingestion job supplies to create a paid order.
#[derive(Debug, Clone)]
pub struct PaidOrderInput {
    pub organization_id: Uuid,
    pub customer_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub currency: String,
    pub net_amount: i64,
    pub tax_amount: i64,
    pub applied_balance_amount: i64,
    pub metadata: Value,
    pub details: OrderDetails,
}

/// What an order shows beyond its amounts; every part has a default.
#[derive(Debug, Clone, Default)]
pub struct OrderDetails {
    /// Defaults to `subscription_create` for a subscription order, else `purchase`.
    pub billing_reason: Option<BillingReason>,
    pub billing_name: Option<String>,
    pub billing_address: Option<Address>,
    /// The product the order sold. A subscription order without one gets a monthly product
    /// named "Subscription"; another order without one has no product.
    pub product_id: Option<Uuid>,
    pub product_name: Option<String>,
    pub product_recurring_interval: Option<RecurringInterval>,
    /// The lines, whose amounts add up to the order's net and tax amounts. Defaults to one
    /// line for the whole order, labelled with the product's name.
    pub items: Vec<OrderItemInput>,
    /// `card` (the default) or any other method's name.
    pub payment_method: Option<String>,
    /// The card's brand and last four digits; `visa` and `4242` by default.
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    /// The processor that took the payment and its id of the charge; a sandbox charge by
    /// default.
    pub payment: Option<PaymentSource>,
}

/// Where an order's payment was taken: the processor (`sandbox` or `stripe`) and its id of
/// the charge (`ch_…` at Stripe), which refunds of the order refund.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentSource {
    pub processor: String,
    pub processor_id: String,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItemInput {
    pub label: String,
    pub amount: i64,
    #[serde(default)]
    pub tax_amount: i64,
    #[serde(default)]
    pub proration: bool,
}

fn check_amount(field: &'static str, value: i64, may_be_negative: bool) -> Result<()> {
    if value < 0 && !may_be_negative {
        return Err(Error::invalid_field(
            field,
            "Amount must not be negative",
            json!(value),
        ));
    }
    if value.unsigned_abs() > MAX_AMOUNT.unsigned_abs() {
        return Err(Error::invalid_field(
            field,
            &format!("Amount must be within {MAX_AMOUNT} minor units"),
            json!(value),
        ));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct CreatedOrder {
    pub id: Uuid,
    pub payment_id: Uuid,
}

fn check_text(field: &'static str, value: &str, max_length: usize) -> Result<()> {
    let length = value.chars().count();
    if length == 0 || length > max_length {
        return Err(Error::invalid_field(
            field,
            &format!("Must be 1 to {max_length} characters"),
            json!(value),
        ));
    }
    Ok(())
}

/// The product, billing reason, lines and payment of a new order, with their defaults.
struct CheckedDetails {
    billing_reason: BillingReason,
    billing_address: Option<Value>,
    product: Option<(Uuid, String, Option<RecurringInterval>)>,
    items: Vec<OrderItemInput>,
    payment_method: String,
    card: Option<(String, String)>,
}

fn check_details(input: &PaidOrderInput) -> Result<CheckedDetails> {
    let details = &input.details;
    let subscribed = input.subscription_id.is_some();
    let billing_reason = details.billing_reason.unwrap_or(if subscribed {
        BillingReason::SubscriptionCreate
    } else {
        BillingReason::Purchase
    });
    if billing_reason != BillingReason::Purchase && !subscribed {
        return Err(Error::invalid_field(
            "billing_reason",
            "A subscription billing reason needs a subscription_id",
            json!(billing_reason),
        ));
    }
    if let Some(name) = &details.billing_name {
        check_text("billing_name", name, 255)?;
    }
    if let Some(address) = &details.billing_address
        && !COUNTRIES.contains(&address.country.as_str())
    {
        return Err(Error::invalid_field(
            "billing_address",
            "Country must be an ISO 3166-1 alpha-2 code",
            json!(address.country),
        ));
    }
    let named = details.product_id.is_some() || details.product_name.is_some();
    let product = if named || subscribed {
        let name = details.product_name.clone().unwrap_or_else(|| {
            if subscribed {
                "Subscription"
            } else {
                "Product"
            }
            .to_owned()
        });
        check_text("product_name", &name, 255)?;
        let interval = details
            .product_recurring_interval
            .or(subscribed.then_some(RecurringInterval::Month));
        Some((
            details.product_id.unwrap_or_else(Uuid::new_v4),
            name,
            interval,
        ))
    } else {
        if details.product_recurring_interval.is_some() {
            return Err(Error::invalid_field(
                "product_recurring_interval",
                "A recurring interval needs a product_id or a product_name",
                json!(details.product_recurring_interval),
            ));
        }
        None
    };
    let items = if details.items.is_empty() {
        let label = product
            .as_ref()
            .map_or("Order".to_owned(), |(_, name, _)| name.clone());
        vec![OrderItemInput {
            label,
            amount: input.net_amount,
            tax_amount: input.tax_amount,
            proration: false,
        }]
    } else {
        for item in &details.items {
            check_text("items", &item.label, 500)?;
            check_amount("items", item.amount, true)?;
            check_amount("items", item.tax_amount, false)?;
        }
        let amount: i64 = details.items.iter().map(|item| item.amount).sum();
        let tax_amount: i64 = details.items.iter().map(|item| item.tax_amount).sum();
        if (amount, tax_amount) != (input.net_amount, input.tax_amount) {
            return Err(Error::invalid_field(
                "items",
                "The items' amounts must add up to net_amount and tax_amount",
                json!({"amount": amount, "tax_amount": tax_amount}),
            ));
        }
        details.items.clone()
    };
    let payment_method = details
        .payment_method
        .clone()
        .unwrap_or_else(|| "card".into());
    check_text("payment_method", &payment_method, 64)?;
    let card = if payment_method == "card" {
        let brand = details.card_brand.clone().unwrap_or_else(|| "visa".into());
        check_text("card_brand", &brand, 64)?;
        let last4 = details.card_last4.clone().unwrap_or_else(|| "4242".into());
        if last4.len() != 4 || !last4.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid_field(
                "card_last4",
                "Must be four digits",
                json!(last4),
            ));
        }
        Some((brand, last4))
    } else {
        if details.card_brand.is_some() || details.card_last4.is_some() {
            return Err(Error::invalid_field(
                "payment_method",
                "Card details need the payment method card",
                json!(payment_method),
            ));
        }
        None
    };
    let billing_address = details
        .billing_address
        .as_ref()
        .map(|address| serde_json::to_value(address).expect("an address serializes"));
    Ok(CheckedDetails {
        billing_reason,
        billing_address,
        product,
        items,
        payment_method,
        card,
    })
}

/// Creates an order in status `paid` with its lines and its succeeded payment, in one
/// transaction.
pub async fn create_paid_order(pool: &PgPool, input: PaidOrderInput) -> Result<CreatedOrder> {
    let currency = input.currency.to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(Error::invalid_field(
            "currency",
            "Currency must be a three-letter ISO 4217 code",
            json!(input.currency),
        ));
    }
    check_amount("net_amount", input.net_amount, false)?;
    check_amount("tax_amount", input.tax_amount, false)?;
    check_amount("applied_balance_amount", input.applied_balance_amount, true)?;
    if !input.metadata.is_object() {
        return Err(Error::invalid_field(
            "metadata",
            "Metadata must be an object",
            input.metadata,
        ));
    }
    let paid = input.net_amount + input.tax_amount + input.applied_balance_amount;
    if paid < 0 {
        return Err(Error::invalid_field(
            "applied_balance_amount",
            "Applied balance exceeds the order total",
            json!(input.applied_balance_amount),
        ));
    }
    let details = check_details(&input)?;

    let order = NewOrder {
        id: Uuid::new_v4(),
        organization_id: input.organization_id,
        customer_id: input.customer_id,
        subscription_id: input.subscription_id,
        currency: &currency,
        net_amount: input.net_amount,
        tax_amount: input.tax_amount,
        applied_balance_amount: input.applied_balance_amount,
        metadata: &input.metadata,
        billing_reason: details.billing_reason,
        billing_name: input.details.billing_name.as_deref(),
        billing_address: details.billing_address.as_ref(),
        product: details
            .product
            .as_ref()
            .map(|(id, name, recurring_interval)| NewProduct {
                id: *id,
                name,
                recurring_interval: *recurring_interval,
            }),
    };
    let items: Vec<NewOrderItem> = details
        .items
        .iter()
        .map(|item| NewOrderItem {
            label: &item.label,
            amount: item.amount,
            tax_amount: item.tax_amount,
            proration: item.proration,
        })
        .collect();
    let payment_id = Uuid::new_v4();
    let (processor, processor_id) = match &input.details.payment {
        None => ("sandbox", format!("sandbox_ch_{}", payment_id.simple())),
        Some(source) => {
            if !["sandbox", "stripe"].contains(&source.processor.as_str()) {
                return Err(Error::invalid_field(
                    "payment.processor",
                    "Processor must be sandbox or stripe",
                    json!(source.processor),
                ));
            }
            check_text("payment.processor_id", &source.processor_id, 255)?;
            (source.processor.as_str(), source.processor_id.clone())
        }
    };
    let mut tx = pool.begin().await?;
    let customer_email =
        customers_repo::email_of(&mut *tx, input.organization_id, input.customer_id)
            .await?
            .ok_or(Error::NotFound("Customer in this organization"))?;
    repo::insert_paid_order(&mut *tx, &order).await?;
    repo::insert_order_items(&mut *tx, &order, &items).await?;
    let payment = NewPayment {
        id: payment_id,
        processor,
        processor_id: &processor_id,
        amount: paid,
        method: &details.payment_method,
        card: details
            .card
            .as_ref()
            .map(|(brand, last4)| (brand.as_str(), last4.as_str())),
        customer_email: &customer_email,
    };
    repo::insert_succeeded_payment(&mut *tx, &order, &payment)
        .await
        .map_err(|error| {
            Error::unique_violation(error, || {
                format!("A payment with processor id {processor_id} exists already")
            })
        })?;
    tx.commit().await?;
    Ok(CreatedOrder {
        id: order.id,
        payment_id: payment.id,
    })
}

pub async fn get_order(pool: &PgPool, order_id: Uuid) -> Result<super::model::OrderView> {
    repo::find_order(pool, order_id)
        .await?
        .ok_or(Error::NotFound("Order"))
}

pub async fn set_refunds_blocked(
    pool: &PgPool,
    order_id: Uuid,
    blocked: bool,
) -> Result<super::model::OrderView> {
    if !repo::set_refunds_blocked(pool, order_id, blocked).await? {
        return Err(Error::NotFound("Order"));
    }
    get_order(pool, order_id).await
}

/// Sets what the sandbox processor answers for the order's next refunds.
pub async fn set_sandbox_refund_outcome(
    pool: &PgPool,
    order_id: Uuid,
    outcome: crate::domain::SandboxRefundOutcome,
) -> Result<super::model::OrderView> {
    if !repo::set_sandbox_refund_outcome(pool, order_id, outcome).await? {
        return Err(Error::NotFound("Order"));
    }
    get_order(pool, order_id).await
}

// ---------------------------------------------------------------------------------------
// Orders as Polar shows them
// ---------------------------------------------------------------------------------------

/// The avatar Polar shows for an email: its Gravatar, 404 when there is none.
fn avatar_url(email: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(email.to_lowercase().as_bytes());
    let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("https://www.gravatar.com/avatar/{hex}?d=404")
}

fn period_end(start: DateTime<Utc>, interval: RecurringInterval) -> DateTime<Utc> {
    let end = match interval {
        RecurringInterval::Day => start.checked_add_days(Days::new(1)),
        RecurringInterval::Week => start.checked_add_days(Days::new(7)),
        RecurringInterval::Month => start.checked_add_months(Months::new(1)),
        RecurringInterval::Year => start.checked_add_months(Months::new(12)),
    };
    end.unwrap_or(start)
}

/// An order as Polar's `Order`, from its row and its lines. This is the one place that
/// shapes an order for Polar's wire (the API and webhooks both send it).
pub fn order_from_record(record: OrderRecord, items: Vec<OrderItemRecord>) -> Result<Order> {
    let Value::Object(metadata) = record.metadata else {
        return Err(Error::Corrupt("order metadata is not an object".into()));
    };
    let billing_address = record
        .billing_address
        .map(serde_json::from_value::<Address>)
        .transpose()
        .map_err(|error| Error::Corrupt(format!("order billing address: {error}")))?;
    let amounts = OrderAmounts {
        net_amount: record.net_amount,
        tax_amount: record.tax_amount,
        applied_balance_amount: record.applied_balance_amount,
        refunded_amount: record.refunded_amount,
        refunded_tax_amount: record.refunded_tax_amount,
        pending_amount: record.pending_amount,
        pending_tax_amount: record.pending_tax_amount,
    };
    let email = record.customer_email;
    let avatar = avatar_url(&email);
    let public_name = record
        .customer_name
        .as_deref()
        .filter(|name| !name.is_empty())
        .unwrap_or(&email)
        .chars()
        .next()
        .map_or_else(|| "?".to_owned(), String::from);
    let customer = OrderCustomer {
        id: record.customer_id,
        created_at: record.customer_created_at,
        modified_at: record.customer_modified_at,
        metadata: Map::new(),
        external_id: record.customer_external_id,
        email: Some(email.clone()),
        email_verified: false,
        customer_type: CustomerType::Individual,
        billing_name: record.customer_name.clone(),
        name: record.customer_name,
        billing_address: None,
        tax_id: None,
        locale: None,
        organization_id: record.organization_id,
        default_payment_method_id: None,
        deleted_at: None,
        first_user_event_at: None,
        avatar_url: Some(avatar.clone()),
    };
    let user = OrderUser {
        id: record.customer_id,
        email: Some(email),
        public_name,
        avatar_url: Some(avatar),
        github_username: None,
    };
    let product = match (record.product_id, &record.product_name) {
        (Some(id), Some(name)) => Some(OrderProduct {
            metadata: Map::new(),
            id,
            created_at: record.created_at,
            modified_at: None,
            trial_interval: None,
            trial_interval_count: None,
            name: name.clone(),
            description: None,
            visibility: ProductVisibility::Public,
            recurring_interval: record.product_recurring_interval,
            recurring_interval_count: record.product_recurring_interval.map(|_| 1),
            meter_interval: None,
            meter_interval_count: None,
            is_recurring: record.product_recurring_interval.is_some(),
            is_archived: false,
            organization_id: record.organization_id,
        }),
        _ => None,
    };
    let subscription = match (record.subscription_id, record.product_id) {
        (Some(id), Some(product_id)) => {
            let interval = record
                .product_recurring_interval
                .unwrap_or(RecurringInterval::Month);
            Some(OrderSubscription {
                metadata: Map::new(),
                created_at: record.created_at,
                modified_at: None,
                id,
                amount: record.net_amount,
                currency: record.currency.clone(),
                recurring_interval: interval,
                recurring_interval_count: 1,
                status: SubscriptionStatus::Active,
                current_period_start: record.created_at,
                current_period_end: period_end(record.created_at, interval),
                current_meter_period_start: None,
                current_meter_period_end: None,
                trial_start: None,
                trial_end: None,
                cancel_at_period_end: false,
                canceled_at: None,
                started_at: Some(record.created_at),
                ends_at: None,
                ended_at: None,
                past_due_at: None,
                pause_at_period_end: false,
                paused_at: None,
                resumes_at: None,
                customer_id: record.customer_id,
                product_id,
                discount_id: None,
                checkout_id: None,
                seats: None,
                units: None,
                customer_cancellation_reason: None,
                customer_cancellation_comment: None,
                user_id: record.customer_id,
            })
        }
        _ => None,
    };
    let items: Vec<OrderItem> = items
        .into_iter()
        .map(|item| OrderItem {
            created_at: item.created_at,
            modified_at: item.modified_at,
            id: item.id,
            label: item.label,
            amount: item.amount,
            tax_amount: item.tax_amount,
            proration: item.proration,
            product_price_id: None,
            start_timestamp: None,
            end_timestamp: None,
        })
        .collect();
    let description = match (&record.product_name, items.first()) {
        (Some(name), _) => name.clone(),
        (None, Some(item)) => item.label.clone(),
        (None, None) => String::new(),
    };
    let total_amount = record.net_amount + record.tax_amount;
    Ok(Order {
        id: record.id,
        created_at: record.created_at,
        modified_at: record.modified_at,
        status: record.status,
        paid: matches!(
            record.status,
            OrderStatus::Paid | OrderStatus::Refunded | OrderStatus::PartiallyRefunded
        ),
        subtotal_amount: items.iter().map(|item| item.amount).sum(),
        discount_amount: 0,
        net_amount: record.net_amount,
        tax_amount: record.tax_amount,
        total_amount,
        applied_balance_amount: record.applied_balance_amount,
        due_amount: (total_amount + record.applied_balance_amount).max(0),
        refunded_amount: record.refunded_amount,
        refunded_tax_amount: record.refunded_tax_amount,
        currency: record.currency,
        billing_reason: record.billing_reason,
        billing_name: record.billing_name,
        billing_address,
        invoice_number: None,
        is_invoice_generated: false,
        receipt_number: None,
        seats: None,
        units: None,
        customer_id: record.customer_id,
        product_id: record.product_id,
        product_price_id: None,
        discount_id: None,
        subscription_id: record.subscription_id,
        checkout_id: None,
        next_payment_attempt_at: None,
        metadata,
        custom_field_data: Map::new(),
        platform_fee_amount: 0,
        platform_fee_currency: None,
        customer,
        user_id: record.customer_id,
        user,
        product,
        product_price: None,
        discount: None,
        subscription,
        items,
        description,
        amount: record.net_amount,
        from_balance_amount: record.applied_balance_amount,
        refundable_amount: amounts.refundable_amount(),
        refundable_tax_amount: amounts.refundable_tax_amount(),
    })
}

/// The orders of `records` with their lines, in the same order.
async fn with_items(db: impl PgExecutor<'_>, records: Vec<OrderRecord>) -> Result<Vec<Order>> {
    let ids: Vec<Uuid> = records.iter().map(|record| record.id).collect();
    let organization_ids: Vec<Uuid> = records
        .iter()
        .map(|record| record.organization_id)
        .collect();
    let items = repo::order_items(db, &ids, &organization_ids).await?;
    join_items(records, items)
}

/// Polar's `Order` of each record, with its lines among `items`.
fn join_items(records: Vec<OrderRecord>, mut items: Vec<OrderItemRecord>) -> Result<Vec<Order>> {
    records
        .into_iter()
        .map(|record| {
            let (mine, rest): (Vec<_>, Vec<_>) =
                items.drain(..).partition(|item| item.order_id == record.id);
            items = rest;
            order_from_record(record, mine)
        })
        .collect()
}

/// An order of `organization_id` as Polar shows it, read in the caller's transaction (the
/// `data` of an order webhook, which shows the order as the change left it).
pub async fn order_of_organization(
    conn: &mut sqlx::PgConnection,
    organization_id: Uuid,
    order_id: Uuid,
) -> Result<Order> {
    let record = repo::find_readable_order(&mut *conn, order_id, &[organization_id])
        .await?
        .ok_or(Error::ResourceNotFound)?;
    let mut orders = with_items(&mut *conn, vec![record]).await?;
    orders.pop().ok_or(Error::ResourceNotFound)
}

/// A change of an order's refund state about to be written, and when.
pub struct RefundStateChange {
    pub order_id: Uuid,
    pub organization_id: Uuid,
    pub status: OrderStatus,
    pub amounts: OrderAmounts,
    pub modified_at: DateTime<Utc>,
}

/// Orders as Polar shows them, each as its change will leave it (the `data` of the order
/// webhooks of changes written later, in one statement). Their lines are read on `beside`
/// at the same time, when it is given, or on `conn` after them.
pub async fn orders_as_changed(
    conn: &mut sqlx::PgConnection,
    beside: Option<&mut sqlx::PgConnection>,
    changes: &[RefundStateChange],
) -> Result<HashMap<Uuid, Order>> {
    let (order_ids, organization_ids): (Vec<Uuid>, Vec<Uuid>) = changes
        .iter()
        .map(|change| (change.order_id, change.organization_id))
        .unzip();
    read_orders(conn, beside, &order_ids, &organization_ids)
        .await?
        .as_changed(changes)
}

/// Orders read as they are, to be shown as changes will leave them.
pub struct OrdersRead {
    records: Vec<OrderRecord>,
    items: Vec<OrderItemRecord>,
}

impl OrdersRead {
    /// Whether every order `changes` name was read.
    pub fn covers(&self, changes: &[RefundStateChange]) -> bool {
        changes.iter().all(|change| {
            self.records
                .iter()
                .any(|record| record.id == change.order_id)
        })
    }

    /// Polar's `Order` of each order read that `changes` change, as its change leaves it.
    /// The other orders read are left out: an `Order` as it was before a change is no
    /// event's data.
    pub fn as_changed(self, changes: &[RefundStateChange]) -> Result<HashMap<Uuid, Order>> {
        let records = self
            .records
            .into_iter()
            .filter_map(|mut record| {
                let change = changes.iter().find(|change| change.order_id == record.id)?;
                record.status = change.status;
                record.refunded_amount = change.amounts.refunded_amount;
                record.refunded_tax_amount = change.amounts.refunded_tax_amount;
                record.pending_amount = change.amounts.pending_amount;
                record.pending_tax_amount = change.amounts.pending_tax_amount;
                record.modified_at = Some(change.modified_at);
                Some(record)
            })
            .collect();
        let orders = join_items(records, self.items)?;
        Ok(orders.into_iter().map(|order| (order.id, order)).collect())
    }
}

/// The orders of `(order_ids[i], organization_ids[i])` pairs with their lines, the lines
/// read on `beside` at the same time when it is given, or on `conn` after the orders.
pub async fn read_orders(
    conn: &mut sqlx::PgConnection,
    beside: Option<&mut sqlx::PgConnection>,
    order_ids: &[Uuid],
    organization_ids: &[Uuid],
) -> Result<OrdersRead> {
    let records = repo::find_orders_of(&mut *conn, order_ids, organization_ids);
    let (records, items) = match beside {
        Some(beside) => tokio::try_join!(
            records,
            repo::order_items(beside, order_ids, organization_ids)
        )?,
        None => (
            records.await?,
            repo::order_items(&mut *conn, order_ids, organization_ids).await?,
        ),
    };
    Ok(OrdersRead { records, items })
}

/// An order the caller may see, as Polar shows it; 404 for any other.
#[tracing::instrument(name = "orders.get", skip_all, fields(route = "/v1/orders/{id}"))]
pub async fn read_order(reader: &Reader, principal: &Principal, order_id: Uuid) -> Result<Order> {
    let organization_ids = principal.organization_ids.as_slice();
    reader
        .read(|db| async move {
            let record = repo::find_readable_order(&db, order_id, organization_ids)
                .await?
                .ok_or(Error::ResourceNotFound)?;
            let mut orders = with_items(&db, vec![record]).await?;
            orders.pop().ok_or(Error::ResourceNotFound)
        })
        .await
}

/// The caller's organizations narrowed by an `organization_id` filter; a filter naming one
/// the caller cannot see simply matches nothing.
pub fn visible_organizations(principal: &Principal, filter: &[Uuid]) -> Vec<Uuid> {
    principal
        .organization_ids
        .iter()
        .filter(|id| filter.is_empty() || filter.contains(id))
        .copied()
        .collect()
}

#[tracing::instrument(name = "orders.list", skip_all, fields(route = "/v1/orders/"))]
pub async fn list_orders(
    reader: &Reader,
    principal: &Principal,
    query: &OrderListQuery,
) -> Result<OrderList> {
    let organization_ids = visible_organizations(principal, &query.organization_ids);
    if organization_ids.is_empty() {
        return Ok(OrderList {
            items: Vec::new(),
            pagination: Pagination::of(0, query.limit),
        });
    }
    let organization_ids = organization_ids.as_slice();
    reader
        .read(|db| async move {
            let mut snapshot = snapshot(&db).await?;
            let records = repo::list_orders(&mut *snapshot, organization_ids, query).await?;
            let total_count = repo::count_orders(&mut *snapshot, organization_ids, query).await?;
            let items = with_items(&mut *snapshot, records).await?;
            snapshot.commit().await?;
            Ok(OrderList {
                items,
                pagination: Pagination::of(total_count, query.limit),
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avatars_are_the_gravatar_of_the_lower_cased_email() {
        assert_eq!(
            avatar_url("A0@Example.com"),
            "https://www.gravatar.com/avatar/96ed3d6961624cfa26db2ad494235b44b3490786c5ee053ea2801acd6b454cb2?d=404"
        );
    }

    #[test]
    fn a_period_ends_one_interval_after_it_starts() {
        let start = DateTime::parse_from_rfc3339("2026-01-31T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let end = |interval| period_end(start, interval).to_rfc3339();
        assert_eq!(end(RecurringInterval::Day), "2026-02-01T10:00:00+00:00");
        assert_eq!(end(RecurringInterval::Week), "2026-02-07T10:00:00+00:00");
        assert_eq!(end(RecurringInterval::Month), "2026-02-28T10:00:00+00:00");
        assert_eq!(end(RecurringInterval::Year), "2027-01-31T10:00:00+00:00");
    }
}
