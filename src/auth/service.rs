use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::cache::{Cached, TokenCache};
use super::repo::{self, NewToken};
use super::{Credentials, KNOWN_SCOPES, Principal, Subject};
use crate::domain::{Error, Result};
use crate::polar::timestamp;

/// Resolves an `Authorization` header to a principal, or the matching 401, looking the
/// token up in the database.
pub async fn authenticate(pool: &PgPool, header: Option<&str>) -> Result<Principal> {
    let token_hash = token_hash(header)?;
    look_up(pool, &token_hash)
        .await
        .map(|(principal, _)| principal)
}

/// The same, answered from `cache` when it holds the token; what the database says is kept
/// there for the next request.
pub async fn authenticate_cached(
    cache: &TokenCache,
    pool: &PgPool,
    header: Option<&str>,
) -> Result<Principal> {
    let token_hash = token_hash(header)?;
    let ticket = match cache.get(&token_hash) {
        Cached::Hit(principal) => return Ok(principal),
        Cached::Miss(ticket) => ticket,
    };
    let (principal, expires_at) = look_up(pool, &token_hash).await?;
    cache.insert(ticket, &token_hash, &principal, expires_at);
    Ok(principal)
}

/// The hash of the header's token, or the 401 a header without one answers.
fn token_hash(header: Option<&str>) -> Result<Vec<u8>> {
    match super::parse_authorization(header) {
        Credentials::Anonymous => Err(Error::Unauthorized),
        Credentials::Invalid => Err(Error::InvalidToken),
        Credentials::Token(token) => Ok(super::hash_token(token)),
    }
}

/// The principal of a live token, and when the token expires.
async fn look_up(pool: &PgPool, token_hash: &[u8]) -> Result<(Principal, Option<DateTime<Utc>>)> {
    let found = repo::find_active_token(pool, token_hash)
        .await?
        .ok_or(Error::InvalidToken)?;
    let subject = match (found.organization_id, found.user_id) {
        (Some(organization_id), _) => Subject::Organization(organization_id),
        (None, Some(user_id)) => Subject::User(user_id),
        (None, None) => return Err(Error::Corrupt("token without an owner".into())),
    };
    let principal = Principal {
        subject,
        scopes: found.scopes,
        organization_ids: found.organization_ids,
    };
    Ok((principal, found.expires_at))
}

/// A token as shown once, at creation. Only its hash is kept.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    pub id: Uuid,
    pub token: String,
    pub scopes: Vec<String>,
    #[serde(with = "timestamp::option")]
    pub expires_at: Option<DateTime<Utc>>,
}

pub enum TokenOwner {
    Organization(Uuid),
    User(Uuid),
}

pub async fn create_token(
    pool: &PgPool,
    owner: TokenOwner,
    scopes: Vec<String>,
    expires_in_seconds: Option<i64>,
) -> Result<CreatedToken> {
    if let Some(unknown) = scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return Err(Error::invalid_field(
            "scopes",
            &format!(
                "Unknown scope {unknown:?}; known scopes: {}",
                KNOWN_SCOPES.join(", ")
            ),
            serde_json::json!(scopes),
        ));
    }
    let expires_at = match expires_in_seconds {
        None => None,
        Some(seconds) => Some(
            Duration::try_seconds(seconds)
                .filter(|lifetime| *lifetime > Duration::zero())
                .and_then(|lifetime| Utc::now().checked_add_signed(lifetime))
                .ok_or_else(|| {
                    Error::invalid_field(
                        "expires_in_seconds",
                        "Must be a positive number of seconds within the calendar",
                        seconds.into(),
                    )
                })?,
        ),
    };
    let (prefix, organization_id, user_id) = match owner {
        TokenOwner::Organization(id) => (super::ORGANIZATION_TOKEN_PREFIX, Some(id), None),
        TokenOwner::User(id) => (super::PERSONAL_TOKEN_PREFIX, None, Some(id)),
    };
    let token = super::generate_token(prefix);
    let id = Uuid::new_v4();
    repo::insert_token(
        pool,
        NewToken {
            id,
            token_hash: &super::hash_token(&token),
            organization_id,
            user_id,
            scopes: &scopes,
            expires_at,
        },
    )
    .await
    .map_err(|error| match error {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            Error::NotFound(if organization_id.is_some() {
                "Organization"
            } else {
                "User"
            })
        }
        other => other.into(),
    })?;
    Ok(CreatedToken {
        id,
        token,
        scopes,
        expires_at,
    })
}
