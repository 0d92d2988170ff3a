use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::repo::{self, NewOrder};
use crate::domain::{Error, Result};

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

/// Creates an order in status `paid` with its succeeded payment, in one transaction.
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
    };
    let payment_id = Uuid::new_v4();
    let mut tx = pool.begin().await?;
    repo::insert_paid_order(&mut *tx, &order)
        .await
        .map_err(|error| match error {
            // The foreign key on (organization_id, customer_id) refuses a missing organization
            // as well as a customer of another organization.
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                Error::NotFound("Customer in this organization")
            }
            other => other.into(),
        })?;
    repo::insert_succeeded_payment(&mut *tx, &order, payment_id, paid).await?;
    tx.commit().await?;
    Ok(CreatedOrder {
        id: order.id,
        payment_id,
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
