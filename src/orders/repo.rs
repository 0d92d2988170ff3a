use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::OrderView;
use crate::domain::{OrderAmounts, OrderStatus};

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
    /// The order's succeeded payment, if any.
    pub payment_id: Option<Uuid>,
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
    let row = sqlx::query!(
        r#"
        SELECT o.id, o.organization_id, o.customer_id, o.subscription_id,
               o.status AS "status: OrderStatus", o.currency,
               (o.refunds_blocked OR g.refunds_blocked) AS "refunds_blocked!",
               o.net_amount, o.tax_amount, o.applied_balance_amount,
               o.refunded_amount, o.refunded_tax_amount, o.pending_amount, o.pending_tax_amount,
               (SELECT p.id FROM payments p
                 WHERE p.order_id = o.id AND p.status = 'succeeded'
                 ORDER BY p.created_at LIMIT 1) AS payment_id,
               EXISTS (SELECT 1 FROM disputes d
                        WHERE d.order_id = o.id
                          AND d.status NOT IN ('prevented', 'won', 'lost')) AS "has_open_dispute!"
        FROM orders o
        JOIN organizations g ON g.id = o.organization_id
        WHERE o.id = $1 AND o.organization_id = ANY($2)
        FOR UPDATE OF o
        "#,
        order_id,
        organization_ids,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| LockedOrder {
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
        has_open_dispute: row.has_open_dispute,
    }))
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
}

pub async fn insert_paid_order(db: impl PgExecutor<'_>, order: &NewOrder<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        r#"
        INSERT INTO orders (id, organization_id, customer_id, subscription_id, status, currency,
                            net_amount, tax_amount, applied_balance_amount, metadata)
        VALUES ($1, $2, $3, $4, 'paid', $5, $6, $7, $8, $9)
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
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn insert_succeeded_payment(
    db: impl PgExecutor<'_>,
    order: &NewOrder<'_>,
    payment_id: Uuid,
    amount: i64,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"
        INSERT INTO payments (id, organization_id, order_id, status, processor, processor_id, amount, currency)
        VALUES ($1, $2, $3, 'succeeded', 'sandbox', $4, $5, $6)
        "#,
        payment_id,
        order.organization_id,
        order.id,
        format!("sandbox_ch_{}", payment_id.simple()),
        amount,
        order.currency,
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
