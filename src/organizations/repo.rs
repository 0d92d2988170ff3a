use sqlx::PgExecutor;
use uuid::Uuid;

use super::Organization;

pub async fn insert_organization(
    db: impl PgExecutor<'_>,
    id: Uuid,
    name: &str,
    slug: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO organizations (id, name, slug) VALUES ($1, $2, $3)",
        id,
        name,
        slug
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_refunds_blocked(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    blocked: bool,
) -> sqlx::Result<Option<Organization>> {
    sqlx::query_as!(
        Organization,
        r#"
        UPDATE organizations SET refunds_blocked = $2, modified_at = now() WHERE id = $1
        RETURNING id, name, slug, refunds_blocked
        "#,
        organization_id,
        blocked
    )
    .fetch_optional(db)
    .await
}

pub async fn insert_user(db: impl PgExecutor<'_>, id: Uuid, email: &str) -> sqlx::Result<()> {
    sqlx::query!("INSERT INTO users (id, email) VALUES ($1, $2)", id, email)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn insert_membership(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    organization_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO memberships (user_id, organization_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        user_id,
        organization_id
    )
    .execute(db)
    .await?;
    Ok(())
}
