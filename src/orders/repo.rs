use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use super::model::{OrderListQuery, OrderSort, OrderView, ProductBillingType};
use crate::domain::{
    BillingReason, OrderAmounts, OrderStatus, RecurringInterval, SandboxRefundOutcome,
};

/// An order locked for the duration of a refund transaction, with what the checks need.
pub struct LockedOrder {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub customer_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub status: OrderStatus,
    pub currency: String,
    pub refunds_blocked: bool,
    pub amounts: OrderAmounts,
    /// The order's succeeded payment, if any, and the processor's id of its charge.
    pub payment_id: Option<Uuid>,
    pub charge_id: Option<String>,
    /// What the sandbox processor answers for this order's refunds.
    pub sandbox_refund_outcome: SandboxRefundOutcome,
    /// Whether a dispute on the order is still open (not prevented, won or lost).
    pub has_open_dispute: bool,
}

/// Locks the order row (`FOR UPDATE`) if it belongs to one of `organization_ids`. Every
/// refund of one order therefore runs one after another, each seeing the last one's counters.
pub async fn lock_for_refund(
    conn: &mut PgConnection,
    order_id: Uuid,
    organization_ids: &[Uuid],
) -> sqlx::Result<Option<LockedOrder>> {
    // `subscribed_events` is the batch's (see `read_for_refunds`); every caller of this one
    // reads the endpoints it needs when it writes its events.
    let row = sqlx::query_as!(
        RefundStateRow,
        r#"
        SELECT o.id, o.organization_id, o.customer_id, o.subscription_id,
               o.status AS "status: OrderStatus", o.currency,
               (o.refunds_blocked OR g.refunds_blocked) AS "refunds_blocked!",
               o.net_amount, o.tax_amount, o.applied_balance_amount,
               o.refunded_amount, o.refunded_tax_amount, o.pending_amount, o.pending_tax_amount,
               paid.id AS "payment_id?", paid.processor_id AS "charge_id?",
               o.sandbox_refund_outcome AS "sandbox_refund_outcome: SandboxRefundOutcome",
               o.open_disputes > 0 AS "has_open_dispute!",
               '{}'::text[] AS "subscribed_events!"
        FROM orders o
        JOIN organizations g ON g.id = o.organization_id
        LEFT JOIN LATERAL (SELECT p.id, p.processor_id FROM payments p
                            WHERE p.order_id = o.id AND p.status = 'succeeded'
                            ORDER BY p.created_at LIMIT 1) paid ON true
        WHERE o.id = $1 AND o.organization_id = ANY($2)
        FOR UPDATE OF o
        "#,
        order_id,
        organization_ids,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(LockedOrder::from))
}

/// The same state of several orders as `lock_for_refund` reads, without a lock: each
/// `(order_ids[i], organization_ids[i])` pair names an order and one organization it may
/// belong to. What is read may change before it is used; a writer that relies on it must
/// check that it still holds. Each order comes with those of `event_types` that an enabled,
/// undeleted webhook endpoint of its organization is subscribed to, so that a batch learns in
/// the same round trip which events it has to build.
pub async fn read_for_refunds(
    conn: &mut PgConnection,
    order_ids: &[Uuid],
    organization_ids: &[Uuid],
    event_types: &[&str],
) -> sqlx::Result<Vec<(LockedOrder, Vec<String>)>> {
    let rows = sqlx::query_as!(
        RefundStateRow,
        r#"
        SELECT o.id, o.organization_id, o.customer_id, o.subscription_id,
               o.status AS "status: OrderStatus", o.currency,
               (o.refunds_blocked OR g.refunds_blocked) AS "refunds_blocked!",
               o.net_amount, o.tax_amount, o.applied_balance_amount,
               o.refunded_amount, o.refunded_tax_amount, o.pending_amount, o.pending_tax_amount,
               paid.id AS "payment_id?", paid.processor_id AS "charge_id?",
               o.sandbox_refund_outcome AS "sandbox_refund_outcome: SandboxRefundOutcome",
               o.open_disputes > 0 AS "has_open_dispute!",
               coalesce(subscribed.events, '{}') AS "subscribed_events!"
        FROM unnest($1::uuid[], $2::uuid[]) AS wanted (order_id, organization_id)
        JOIN orders o ON o.id = wanted.order_id AND o.organization_id = wanted.organization_id
        JOIN organizations g ON g.id = o.organization_id
        LEFT JOIN LATERAL (SELECT p.id, p.processor_id FROM payments p
                            WHERE p.order_id = o.id AND p.status = 'succeeded'
                            ORDER BY p.created_at LIMIT 1) paid ON true
        LEFT JOIN (SELECT w.organization_id, array_agg(DISTINCT event) AS events
                   FROM webhook_endpoints w CROSS JOIN LATERAL unnest(w.events) AS event
                   WHERE w.organization_id = ANY($2) AND w.enabled AND w.deleted_at IS NULL
                     AND event = ANY($3::text[])
                   GROUP BY w.organization_id) subscribed
          ON subscribed.organization_id = o.organization_id
        "#,
        order_ids,
        organization_ids,
        event_types as &[&str],
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|mut row| {
            let events = std::mem::take(&mut row.subscribed_events);
            (LockedOrder::from(row), events)
        })
        .collect())
}

struct RefundStateRow {
    id: Uuid,
    organization_id: Uuid,
    customer_id: Uuid,
    subscription_id: Option<Uuid>,
    status: OrderStatus,
    currency: String,
    refunds_blocked: bool,
    net_amount: i64,
    tax_amount: i64,
    applied_balance_amount: i64,
    refunded_amount: i64,
    refunded_tax_amount: i64,
    pending_amount: i64,
    pending_tax_amount: i64,
    payment_id: Option<Uuid>,
    charge_id: Option<String>,
    sandbox_refund_outcome: SandboxRefundOutcome,
    has_open_dispute: bool,
    subscribed_events: Vec<String>,
}

impl From<RefundStateRow> for LockedOrder {
    fn from(row: RefundStateRow) -> Self {
        LockedOrder {
            id: row.id,
            organization_id: row.organization_id,
            customer_id: row.customer_id,
            subscription_id: row.subscription_id,
            status: row.status,
            currency: row.currency,
            refunds_blocked: row.refunds_blocked,
            amounts: OrderAmounts {
                net_amount: row.net_amount,
                tax_amount: row.tax_amount,
                applied_balance_amount: row.applied_balance_amount,
                refunded_amount: row.refunded_amount,
                refunded_tax_amount: row.refunded_tax_amount,
                pending_amount: row.pending_amount,
                pending_tax_amount: row.pending_tax_amount,
            },
            payment_id: row.payment_id,
            charge_id: row.charge_id,
            sandbox_refund_outcome: row.sandbox_refund_outcome,
            has_open_dispute: row.has_open_dispute,
        }
    }
}

/// Writes the refund counters and status of a locked order.
pub async fn update_refund_totals(
    conn: &mut PgConnection,
    order_id: Uuid,
    amounts: &OrderAmounts,
    status: OrderStatus,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"
        UPDATE orders
        SET refunded_amount = $2, refunded_tax_amount = $3,
            pending_amount = $4, pending_tax_amount = $5,
            status = $6, modified_at = now()
        WHERE id = $1
        "#,
        order_id,
        amounts.refunded_amount,
        amounts.refunded_tax_amount,
        amounts.pending_amount,
        amounts.pending_tax_amount,
        status as OrderStatus,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub struct NewOrder<'a> {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub customer_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub currency: &'a str,
    pub net_amount: i64,
    pub tax_amount: i64,
    pub applied_balance_amount: i64,
    pub metadata: &'a Value,
    pub billing_reason: BillingReason,
    pub billing_name: Option<&'a str>,
    pub billing_address: Option<&'a Value>,
    pub product: Option<NewProduct<'a>>,
}

/// The product an order was sold as.
pub struct NewProduct<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub recurring_interval: Option<RecurringInterval>,
}

pub struct NewOrderItem<'a> {
    pub label: &'a str,
    pub amount: i64,
    pub tax_amount: i64,
    pub proration: bool,
}

/// How a new order was paid: a card's brand and last digits, or another method's name.
pub struct NewPayment<'a> {
    pub id: Uuid,
    pub amount: i64,
    pub method: &'a str,
    pub card: Option<(&'a str, &'a str)>,
    pub customer_email: &'a str,
    pub processor: &'a str,
    pub processor_id: &'a str,
}

pub async fn insert_paid_order(db: impl PgExecutor<'_>, order: &NewOrder<'_>) -> sqlx::Result<()> {
    let product = order.product.as_ref();
    sqlx::query!(
        r#"
        INSERT INTO orders (id, organization_id, customer_id, subscription_id, status, currency,
                            net_amount, tax_amount, applied_balance_amount, metadata,
                            billing_reason, billing_name, billing_address, product_id,
                            product_name, product_recurring_interval)
        VALUES ($1, $2, $3, $4, 'paid', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
        "#,
        order.id,
        order.organization_id,
        order.customer_id,
        order.subscription_id,
        order.currency,
        order.net_amount,
        order.tax_amount,
        order.applied_balance_amount,
        order.metadata,
        order.billing_reason as BillingReason,
        order.billing_name,
        order.billing_address,
        product.map(|product| product.id),
        product.map(|product| product.name),
        product.and_then(|product| product.recurring_interval) as Option<RecurringInterval>,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Inserts the order's lines in the order given.
pub async fn insert_order_items(
    db: impl PgExecutor<'_>,
    order: &NewOrder<'_>,
    items: &[NewOrderItem<'_>],
) -> sqlx::Result<()> {
    let ids: Vec<Uuid> = items.iter().map(|_| Uuid::new_v4()).collect();
    let positions: Vec<i32> = (0..items.len() as i32).collect();
    let labels: Vec<&str> = items.iter().map(|item| item.label).collect();
    let amounts: Vec<i64> = items.iter().map(|item| item.amount).collect();
    let taxes: Vec<i64> = items.iter().map(|item| item.tax_amount).collect();
    let prorations: Vec<bool> = items.iter().map(|item| item.proration).collect();
    sqlx::query!(
        r#"
        INSERT INTO order_items (id, organization_id, order_id, position, label, amount,
                                 tax_amount, proration)
        SELECT id, $2, $3, position, label, amount, tax_amount, proration
        FROM unnest($1::uuid[], $4::int[], $5::text[], $6::bigint[], $7::bigint[], $8::bool[])
             AS item(id, position, label, amount, tax_amount, proration)
        "#,
        &ids,
        order.organization_id,
        order.id,
        &positions,
        &labels as &[&str],
        &amounts,
        &taxes,
        &prorations,
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn insert_succeeded_payment(
    db: impl PgExecutor<'_>,
    order: &NewOrder<'_>,
    payment: &NewPayment<'_>,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"
        INSERT INTO payments (id, organization_id, order_id, status, processor, processor_id,
                              amount, currency, method, card_brand, card_last4, customer_email,
                              trigger)
        VALUES ($1, $2, $3, 'succeeded', $11, $4, $5, $6, $7, $8, $9, $10, 'purchase')
        "#,
        payment.id,
        order.organization_id,
        order.id,
        payment.processor_id,
        payment.amount,
        order.currency,
        payment.method,
        payment.card.map(|(brand, _)| brand),
        payment.card.map(|(_, last4)| last4),
        payment.customer_email,
        payment.processor,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The organization of an order, for callers outside any organization (the admin API).
pub async fn organization_of(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!("SELECT organization_id FROM orders WHERE id = $1", order_id)
        .fetch_optional(db)
        .await
}

pub async fn find_order(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
) -> sqlx::Result<Option<OrderView>> {
    let row = sqlx::query!(
        r#"
        SELECT id, organization_id, customer_id, subscription_id, status AS "status: OrderStatus",
               currency, refunds_blocked,
               net_amount, tax_amount, applied_balance_amount, refunded_amount, refunded_tax_amount,
               pending_amount, pending_tax_amount
        FROM orders WHERE id = $1
        "#,
        order_id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| {
        let amounts = OrderAmounts {
            net_amount: row.net_amount,
            tax_amount: row.tax_amount,
            applied_balance_amount: row.applied_balance_amount,
            refunded_amount: row.refunded_amount,
            refunded_tax_amount: row.refunded_tax_amount,
            pending_amount: row.pending_amount,
            pending_tax_amount: row.pending_tax_amount,
        };
        OrderView {
            id: row.id,
            organization_id: row.organization_id,
            customer_id: row.customer_id,
            subscription_id: row.subscription_id,
            status: row.status,
            net_amount: row.net_amount,
            tax_amount: row.tax_amount,
            applied_balance_amount: row.applied_balance_amount,
            refunded_amount: row.refunded_amount,
            refunded_tax_amount: row.refunded_tax_amount,
            refundable_amount: amounts.refundable_amount(),
            refundable_tax_amount: amounts.refundable_tax_amount(),
            currency: row.currency,
            refunds_blocked: row.refunds_blocked,
        }
    }))
}

/// The order of a processor's charge, and its organization, for the processor's events.
pub async fn order_of_charge(
    db: impl PgExecutor<'_>,
    processor: &str,
    charge_id: &str,
) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    let row = sqlx::query!(
        "SELECT order_id, organization_id FROM payments WHERE processor = $1 AND processor_id = $2",
        processor,
        charge_id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| (row.order_id, row.organization_id)))
}

pub async fn set_sandbox_refund_outcome(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
    outcome: SandboxRefundOutcome,
) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE orders SET sandbox_refund_outcome = $2, modified_at = now() WHERE id = $1",
        order_id,
        outcome as SandboxRefundOutcome,
    )
    .execute(db)
    .await?;
    Ok(updated.rows_affected() == 1)
}

pub async fn set_refunds_blocked(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
    blocked: bool,
) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE orders SET refunds_blocked = $2, modified_at = now() WHERE id = $1",
        order_id,
        blocked
    )
    .execute(db)
    .await?;
    Ok(updated.rows_affected() == 1)
}

// ---------------------------------------------------------------------------------------
// Reading orders as Polar shows them
// ---------------------------------------------------------------------------------------

/// An order row joined with its customer: everything its Polar `Order` shows but its lines.
#[derive(Debug, sqlx::FromRow)]
pub struct OrderRecord {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub modified_at: Option<DateTime<Utc>>,
    pub status: OrderStatus,
    pub currency: String,
    pub net_amount: i64,
    pub tax_amount: i64,
    pub applied_balance_amount: i64,
    pub refunded_amount: i64,
    pub refunded_tax_amount: i64,
    pub pending_amount: i64,
    pub pending_tax_amount: i64,
    pub billing_reason: BillingReason,
    pub billing_name: Option<String>,
    pub billing_address: Option<Value>,
    pub subscription_id: Option<Uuid>,
    pub product_id: Option<Uuid>,
    pub product_name: Option<String>,
    pub product_recurring_interval: Option<RecurringInterval>,
    pub metadata: Value,
    pub customer_id: Uuid,
    pub customer_created_at: DateTime<Utc>,
    pub customer_modified_at: Option<DateTime<Utc>>,
    pub customer_email: String,
    pub customer_name: Option<String>,
    pub customer_external_id: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct OrderItemRecord {
    pub id: Uuid,
    pub order_id: Uuid,
    pub label: String,
    pub amount: i64,
    pub tax_amount: i64,
    pub proration: bool,
    pub created_at: DateTime<Utc>,
    pub modified_at: Option<DateTime<Utc>>,
}

const ORDER_SELECT: &str = "SELECT o.id, o.organization_id, o.created_at, o.modified_at, \
     o.status, o.currency, o.net_amount, o.tax_amount, o.applied_balance_amount, \
     o.refunded_amount, o.refunded_tax_amount, o.pending_amount, o.pending_tax_amount, \
     o.billing_reason, o.billing_name, o.billing_address, o.subscription_id, o.product_id, \
     o.product_name, o.product_recurring_interval, o.metadata, o.customer_id, \
     c.created_at AS customer_created_at, c.modified_at AS customer_modified_at, \
     c.email AS customer_email, c.name AS customer_name, \
     c.external_id AS customer_external_id \
     FROM orders o \
     JOIN customers c ON c.id = o.customer_id AND c.organization_id = o.organization_id";

/// The order, if it belongs to one of `organization_ids`.
pub async fn find_readable_order(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
    organization_ids: &[Uuid],
) -> sqlx::Result<Option<OrderRecord>> {
    let mut builder = QueryBuilder::new(ORDER_SELECT);
    builder.push(" WHERE o.id = ");
    builder.push_bind(order_id);
    builder.push(" AND o.organization_id = ANY(");
    builder.push_bind(organization_ids);
    builder.push(")");
    builder.build_query_as().fetch_optional(db).await
}

/// Pairs of an order and its organization as one JSON document, `[{order_id,
/// organization_id}]`, for `jsonb_to_recordset`.
///
/// The pairs go to PostgreSQL as one document, not as two arrays: PostgreSQL sizes an array
/// parameter at ten elements in a statement's generic plan but at its real length in a
/// custom plan, so for a batch's few orders the custom plan always looked cheaper and the
/// statement was planned again on every call, which cost several times its execution. A
/// JSON document is sized alike in both plans, and the generic plan is kept.
fn order_pairs<'a>(
    order_ids: &'a [Uuid],
    organization_ids: &'a [Uuid],
) -> sqlx::types::Json<Vec<OrderPair<'a>>> {
    debug_assert_eq!(order_ids.len(), organization_ids.len());
    sqlx::types::Json(
        order_ids
            .iter()
            .zip(organization_ids)
            .map(|(order_id, organization_id)| OrderPair {
                order_id,
                organization_id,
            })
            .collect(),
    )
}

#[derive(serde::Serialize)]
struct OrderPair<'a> {
    order_id: &'a Uuid,
    organization_id: &'a Uuid,
}

/// The orders `(order_ids[i], organization_ids[i])`.
pub async fn find_orders_of(
    db: impl PgExecutor<'_>,
    order_ids: &[Uuid],
    organization_ids: &[Uuid],
) -> sqlx::Result<Vec<OrderRecord>> {
    let mut builder = QueryBuilder::new(ORDER_SELECT);
    builder.push(" JOIN jsonb_to_recordset(");
    builder.push_bind(order_pairs(order_ids, organization_ids));
    builder.push(
        ") AS wanted (order_id uuid, organization_id uuid) \
         ON o.id = wanted.order_id AND o.organization_id = wanted.organization_id",
    );
    builder.build_query_as().fetch_all(db).await
}

/// The lines of the orders `(order_ids[i], organization_ids[i])`, by order and in their
/// order within each.
pub async fn order_items(
    db: impl PgExecutor<'_>,
    order_ids: &[Uuid],
    organization_ids: &[Uuid],
) -> sqlx::Result<Vec<OrderItemRecord>> {
    sqlx::query_as(
        "SELECT i.id, i.order_id, i.label, i.amount, i.tax_amount, i.proration, i.created_at, \
                i.modified_at \
         FROM jsonb_to_recordset($1) AS wanted (order_id uuid, organization_id uuid) \
         JOIN order_items i \
           ON i.order_id = wanted.order_id AND i.organization_id = wanted.organization_id \
         ORDER BY i.order_id, i.position",
    )
    .bind(order_pairs(order_ids, organization_ids))
    .fetch_all(db)
    .await
}

/// Appends the WHERE clause shared by the page and the count of the order list.
fn push_order_filters(
    builder: &mut QueryBuilder<Postgres>,
    organization_ids: &[Uuid],
    query: &OrderListQuery,
) {
    builder.push(" WHERE o.organization_id = ANY(");
    builder.push_bind(organization_ids.to_vec());
    builder.push(")");
    let uuid_filters: [(&str, &Vec<Uuid>); 3] = [
        ("o.product_id", &query.product_ids),
        ("o.customer_id", &query.customer_ids),
        ("o.subscription_id", &query.subscription_ids),
    ];
    for (column, values) in uuid_filters {
        if !values.is_empty() {
            builder.push(format_args!(" AND {column} = ANY("));
            builder.push_bind(values.clone());
            builder.push(")");
        }
    }
    // No order here has a discount or a checkout: filtering by either matches nothing.
    if !query.discount_ids.is_empty() || !query.checkout_ids.is_empty() {
        builder.push(" AND false");
    }
    if !query.product_billing_types.is_empty() {
        let one_time = query
            .product_billing_types
            .contains(&ProductBillingType::OneTime);
        let recurring = query
            .product_billing_types
            .contains(&ProductBillingType::Recurring);
        builder.push(" AND o.product_id IS NOT NULL");
        match (one_time, recurring) {
            (true, false) => builder.push(" AND o.product_recurring_interval IS NULL"),
            (false, true) => builder.push(" AND o.product_recurring_interval IS NOT NULL"),
            _ => builder,
        };
    }
    if !query.external_customer_ids.is_empty() {
        builder.push(" AND c.external_id = ANY(");
        builder.push_bind(query.external_customer_ids.clone());
        builder.push(")");
    }
    if !query.statuses.is_empty() {
        let statuses: Vec<&str> = query.statuses.iter().map(|s| s.as_str()).collect();
        builder.push(" AND o.status = ANY(");
        builder.push_bind(statuses);
        builder.push(")");
    }
    if let Some(after) = query.created_after {
        builder.push(" AND o.created_at > ");
        builder.push_bind(after);
    }
    if let Some(before) = query.created_before {
        builder.push(" AND o.created_at < ");
        builder.push_bind(before);
    }
    // Each key must hold one of its values, compared as text as Polar compares them.
    for (key, values) in &query.metadata {
        builder.push(" AND o.metadata ->> ");
        builder.push_bind(key.clone());
        builder.push(" = ANY(");
        builder.push_bind(values.clone());
        builder.push(")");
    }
}

/// `ORDER BY` for the requested criteria, in Polar's terms (`status` by its place in the
/// order's life, `customer` by email, `product` by name), with `id` as the last tie-break
/// in the direction of the first criterion so that pages are stable.
fn order_list_order_by(sorting: &[OrderSort]) -> String {
    const STATUS_RANK: &str = "CASE o.status WHEN 'draft' THEN 1 WHEN 'pending' THEN 2 \
         WHEN 'paid' THEN 3 WHEN 'partially_refunded' THEN 4 WHEN 'refunded' THEN 5 \
         WHEN 'void' THEN 6 END";
    let mut terms: Vec<String> = Vec::new();
    for sort in sorting {
        let (expression, descending) = match sort {
            OrderSort::CreatedAt => ("o.created_at", false),
            OrderSort::CreatedAtDesc => ("o.created_at", true),
            OrderSort::Status => (STATUS_RANK, false),
            OrderSort::StatusDesc => (STATUS_RANK, true),
            // No order here carries an invoice number or a discount: every order ties.
            OrderSort::InvoiceNumber
            | OrderSort::InvoiceNumberDesc
            | OrderSort::Discount
            | OrderSort::DiscountDesc => continue,
            OrderSort::Amount | OrderSort::NetAmount => ("o.net_amount", false),
            OrderSort::AmountDesc | OrderSort::NetAmountDesc => ("o.net_amount", true),
            OrderSort::Customer => ("c.email", false),
            OrderSort::CustomerDesc => ("c.email", true),
            OrderSort::Product => ("o.product_name", false),
            OrderSort::ProductDesc => ("o.product_name", true),
            OrderSort::Subscription => ("o.subscription_id", false),
            OrderSort::SubscriptionDesc => ("o.subscription_id", true),
        };
        let term = format!("{expression} {}", if descending { "DESC" } else { "ASC" });
        if !terms
            .iter()
            .any(|existing| existing.starts_with(expression))
        {
            terms.push(term);
        }
    }
    let descending_first = sorting.first().is_none_or(|sort| {
        matches!(
            sort,
            OrderSort::CreatedAtDesc
                | OrderSort::StatusDesc
                | OrderSort::InvoiceNumberDesc
                | OrderSort::AmountDesc
                | OrderSort::NetAmountDesc
                | OrderSort::CustomerDesc
                | OrderSort::ProductDesc
                | OrderSort::DiscountDesc
                | OrderSort::SubscriptionDesc
        )
    });
    terms.push(
        if descending_first {
            "o.id DESC"
        } else {
            "o.id ASC"
        }
        .to_owned(),
    );
    format!(" ORDER BY {}", terms.join(", "))
}

/// One page of the orders the query matches in `organization_ids`.
pub async fn list_orders(
    db: impl PgExecutor<'_>,
    organization_ids: &[Uuid],
    query: &OrderListQuery,
) -> sqlx::Result<Vec<OrderRecord>> {
    let mut builder = QueryBuilder::new(ORDER_SELECT);
    push_order_filters(&mut builder, organization_ids, query);
    builder.push(order_list_order_by(&query.sorting));
    builder.push(" LIMIT ");
    builder.push_bind(query.limit);
    builder.push(" OFFSET ");
    builder.push_bind((query.page - 1).saturating_mul(query.limit));
    builder.build_query_as().fetch_all(db).await
}

/// The number of orders the query matches in `organization_ids`.
pub async fn count_orders(
    db: impl PgExecutor<'_>,
    organization_ids: &[Uuid],
    query: &OrderListQuery,
) -> sqlx::Result<i64> {
    let mut builder = QueryBuilder::new(
        "SELECT count(*) FROM orders o \
         JOIN customers c ON c.id = o.customer_id AND c.organization_id = o.organization_id",
    );
    push_order_filters(&mut builder, organization_ids, query);
    builder.build_query_scalar().fetch_one(db).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_by_each_expression_once_with_an_id_tie_break() {
        assert_eq!(
            order_list_order_by(&[OrderSort::CreatedAtDesc]),
            " ORDER BY o.created_at DESC, o.id DESC"
        );
        assert_eq!(
            order_list_order_by(&[
                OrderSort::Amount,
                OrderSort::NetAmountDesc,
                OrderSort::Customer
            ]),
            " ORDER BY o.net_amount ASC, c.email ASC, o.id ASC"
        );
        assert_eq!(
            order_list_order_by(&[OrderSort::Discount]),
            " ORDER BY o.id ASC"
        );
    }
}
