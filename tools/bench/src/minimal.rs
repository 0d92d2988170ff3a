//! The minimal-transaction limit: what PostgreSQL needs at the least to create a refund, on
//! scratch tables that hold only what a refund needs (`tools/bench/sql/limit_scratch.sql`, a
//! schema `limit_scratch` of their own), with the four statements of
//! `tools/bench/sql/minimal.pgbench`. `scripts/bench-schema-costs.sh` runs the same files.

use anyhow::Result;
use sqlx::PgConnection;
use uuid::Uuid;

pub const SCHEMA: &str = include_str!("../sql/limit_scratch.sql");
pub const SCRIPT: &str = include_str!("../sql/minimal.pgbench");

/// Refunds in the scratch table: pgbench must have made one per transaction it reports.
pub const COUNT_REFUNDS: &str = "SELECT count(*) FROM limit_scratch.refunds";

/// Creates the scratch schema (replacing one left behind) and fills its orders from the
/// create-load organization's orders, with the same amounts and nothing refunded. A scratch
/// order's id is `md5(n)` of its number `n` (1 to the number of orders), so that pgbench picks
/// a random order without a lookup; like our v4 ids, these are spread uniformly.
pub async fn create_scratch(database: &mut PgConnection, organization_id: Uuid) -> Result<u64> {
    sqlx::raw_sql(SCHEMA).execute(&mut *database).await?;
    let filled = sqlx::query(
        "INSERT INTO limit_scratch.orders (id, organization_id, customer_id, subscription_id, \
             status, currency, net_amount, tax_amount, created_at) \
         SELECT md5((row_number() OVER (ORDER BY id))::text)::uuid, organization_id, customer_id, \
                subscription_id, 'paid', currency, net_amount, tax_amount, created_at \
         FROM orders WHERE organization_id = $1",
    )
    .bind(organization_id)
    .execute(&mut *database)
    .await?;
    Ok(filled.rows_affected())
}
