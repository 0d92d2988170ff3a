use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// A live token (not revoked, not expired) with the organizations it may see.
pub struct ActiveToken {
    pub organization_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub scopes: Vec<String>,
    pub organization_ids: Vec<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn find_active_token(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
) -> sqlx::Result<Option<ActiveToken>> {
    sqlx::query_as!(
        ActiveToken,
        r#"
        SELECT t.organization_id, t.user_id, t.scopes,
               CASE WHEN t.kind = 'organization' THEN ARRAY[t.organization_id]
                    ELSE ARRAY(SELECT m.organization_id FROM memberships m WHERE m.user_id = t.user_id)
               END AS "organization_ids!: Vec<Uuid>",
               t.expires_at
        FROM access_tokens t
        WHERE t.token_hash = $1
          AND t.revoked_at IS NULL
          AND (t.expires_at IS NULL OR t.expires_at > now())
        "#,
        token_hash
    )
    .fetch_optional(db)
    .await
}

pub struct NewToken<'a> {
    pub id: Uuid,
    pub token_hash: &'a [u8],
    pub organization_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub scopes: &'a [String],
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert_token(db: impl PgExecutor<'_>, token: NewToken<'_>) -> sqlx::Result<()> {
    let kind = if token.organization_id.is_some() {
        "organization"
    } else {
        "personal"
    };
    sqlx::query!(
        r#"
        INSERT INTO access_tokens (id, token_hash, kind, organization_id, user_id, scopes, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        "#,
        token.id,
        token.token_hash,
        kind,
        token.organization_id,
        token.user_id,
        token.scopes,
        token.expires_at,
    )
    .execute(db)
    .await?;
    Ok(())
}
