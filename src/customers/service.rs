use sqlx::PgPool;
use uuid::Uuid;

use super::{Customer, repo};
use crate::domain::{Error, Result};
use crate::organizations::service::normalized_email;

pub async fn create_customer(
    pool: &PgPool,
    organization_id: Uuid,
    email: &str,
    name: Option<&str>,
    external_id: Option<&str>,
) -> Result<Customer> {
    let customer = Customer {
        id: Uuid::new_v4(),
        organization_id,
        email: normalized_email(email)?,
        name: name.map(str::to_owned),
        external_id: external_id.map(str::to_owned),
    };
    repo::insert_customer(pool, &customer)
        .await
        .map_err(|error| match error {
            sqlx::Error::Database(ref db) if db.is_unique_violation() => Error::Conflict(format!(
                "A customer with external_id {external_id:?} exists in this organization"
            )),
            other => Error::missing_reference(other, "Organization"),
        })?;
    Ok(customer)
}
