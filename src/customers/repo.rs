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
