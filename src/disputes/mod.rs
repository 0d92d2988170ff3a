//! Disputes on an order's payment. An open dispute blocks manual refunds.

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::refunds::model::DisputeStatus;

#[derive(Debug, Serialize)]
pub struct CreatedDispute {
    pub id: Uuid,
}

/// Opens a dispute on an order's succeeded payment for the amounts given.
pub async fn create_dispute(
    pool: &PgPool,
    order_id: Uuid,
    status: DisputeStatus,
    amount: i64,
    tax_amount: i64,
) -> Result<CreatedDispute> {
    let id = Uuid::new_v4();
    let inserted = sqlx::query_scalar!(
        r#"
        INSERT INTO disputes (id, organization_id, order_id, payment_id, status, amount, tax_amount, currency)
        SELECT $1, o.organization_id, o.id, p.id, $3, $4, $5, o.currency
        FROM orders o
        JOIN payments p ON p.order_id = o.id AND p.status = 'succeeded'
        WHERE o.id = $2
        LIMIT 1
        RETURNING id
        "#,
        id,
        order_id,
        status.as_str(),
        amount,
        tax_amount,
    )
    .fetch_optional(pool)
    .await?;
    inserted
        .map(|id| CreatedDispute { id })
        .ok_or(Error::NotFound("Paid order"))
}
