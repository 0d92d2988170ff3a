use sqlx::PgExecutor;

use super::Customer;

pub async fn insert_customer(db: impl PgExecutor<'_>, customer: &Customer) -> sqlx::Result<()> {
    sqlx::query!(
        r#"
        INSERT INTO customers (id, organization_id, email, name, external_id)
        VALUES ($1, $2, $3, $4, $5)
        "#,
        customer.id,
        customer.organization_id,
        customer.email,
        customer.name,
        customer.external_id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The email of a customer of `organization_id`.
pub async fn email_of(
    db: impl PgExecutor<'_>,
    organization_id: uuid::Uuid,
    customer_id: uuid::Uuid,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "SELECT email FROM customers WHERE id = $1 AND organization_id = $2",
        customer_id,
        organization_id
    )
    .fetch_optional(db)
    .await
}
