//! SQL of Stripe's events.

use sqlx::PgConnection;

/// Records an event as handled, in the transaction that handles it; `false` when it was
/// handled before (Stripe delivers an event at least once).
pub async fn record_event(conn: &mut PgConnection, id: &str, kind: &str) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO stripe_events (id, type) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        id,
        kind
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
