use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::model::RefundDispute;
use crate::domain::DisputeStatus;
use crate::domain::{Error, Result};

pub struct NewDispute {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub status: DisputeStatus,
    pub amount: i64,
    pub tax_amount: i64,
    pub currency: String,
    pub reason: Option<String>,
    pub evidence_due_by: Option<DateTime<Utc>>,
}

pub async fn insert_dispute(conn: &mut PgConnection, dispute: NewDispute) -> Result<RefundDispute> {
    let created_at = sqlx::query_scalar!(
        r#"
        INSERT INTO disputes (id, organization_id, order_id, payment_id, status, amount, tax_amount,
                              currency, reason, evidence_due_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        RETURNING created_at
        "#,
        dispute.id,
        dispute.organization_id,
        dispute.order_id,
        dispute.payment_id,
        dispute.status as DisputeStatus,
        dispute.amount,
        dispute.tax_amount,
        dispute.currency,
        dispute.reason,
        dispute.evidence_due_by,
    )
    .fetch_one(conn)
    .await?;
    Ok(RefundDispute {
        created_at,
        modified_at: None,
        id: dispute.id,
        status: dispute.status,
        resolved: dispute.status.is_resolved(),
        closed: dispute.status.is_closed(),
        amount: dispute.amount,
        tax_amount: dispute.tax_amount,
        currency: dispute.currency,
        reason: dispute.reason,
        past_due: RefundDispute::is_past_due(dispute.evidence_due_by),
        evidence_due_by: dispute.evidence_due_by,
        order_id: dispute.order_id,
        payment_id: dispute.payment_id,
    })
}

struct DisputeRow {
    id: Uuid,
    order_id: Uuid,
    payment_id: Uuid,
    status: DisputeStatus,
    amount: i64,
    tax_amount: i64,
    currency: String,
    reason: Option<String>,
    evidence_due_by: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    modified_at: Option<DateTime<Utc>>,
}

impl From<DisputeRow> for RefundDispute {
    fn from(row: DisputeRow) -> Self {
        let status = row.status;
        RefundDispute {
            created_at: row.created_at,
            modified_at: row.modified_at,
            id: row.id,
            status,
            resolved: status.is_resolved(),
            closed: status.is_closed(),
            amount: row.amount,
            tax_amount: row.tax_amount,
            currency: row.currency,
            reason: row.reason,
            past_due: RefundDispute::is_past_due(row.evidence_due_by),
            evidence_due_by: row.evidence_due_by,
            order_id: row.order_id,
            payment_id: row.payment_id,
        }
    }
}

/// The order a dispute belongs to, read without a lock (to lock the order first).
pub async fn order_of(conn: &mut PgConnection, dispute_id: Uuid) -> Result<Option<Uuid>> {
    Ok(
        sqlx::query_scalar!("SELECT order_id FROM disputes WHERE id = $1", dispute_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Reads a dispute whose order the caller has locked.
pub async fn find_dispute(
    conn: &mut PgConnection,
    dispute_id: Uuid,
) -> Result<Option<RefundDispute>> {
    sqlx::query_as!(
        DisputeRow,
        r#"
        SELECT id, order_id, payment_id, status AS "status: DisputeStatus", amount, tax_amount,
               currency, reason, evidence_due_by, created_at, modified_at
        FROM disputes WHERE id = $1
        "#,
        dispute_id
    )
    .fetch_optional(conn)
    .await
    .map(|row| row.map(RefundDispute::from))
    .map_err(Error::from)
}

pub async fn set_status(
    conn: &mut PgConnection,
    dispute_id: Uuid,
    status: DisputeStatus,
) -> Result<DateTime<Utc>> {
    Ok(sqlx::query_scalar!(
        r#"UPDATE disputes SET status = $2, modified_at = now() WHERE id = $1 RETURNING modified_at AS "modified_at!""#,
        dispute_id,
        status as DisputeStatus,
    )
    .fetch_one(conn)
    .await?)
}

/// Records the processor's id of a dispute.
pub async fn set_processor_id(
    conn: &mut PgConnection,
    dispute_id: Uuid,
    processor_id: &str,
) -> Result<()> {
    sqlx::query!(
        "UPDATE disputes SET processor_id = $2 WHERE id = $1",
        dispute_id,
        processor_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The dispute with the processor's id `processor_id`, read in a transaction that locked
/// its order.
pub async fn find_by_processor_id(
    conn: &mut PgConnection,
    processor_id: &str,
) -> Result<Option<RefundDispute>> {
    let id = sqlx::query_scalar!(
        "SELECT id FROM disputes WHERE processor_id = $1",
        processor_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    match id {
        Some(id) => find_dispute(conn, id).await,
        None => Ok(None),
    }
}
