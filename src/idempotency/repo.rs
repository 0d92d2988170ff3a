//! SQL of idempotency keys.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Claim, KeyedRequest, StoredAnswer};
use crate::domain::{Error, Result};

/// Takes the key for the rest of the caller's transaction and says what it holds. The key
/// is taken with a transaction-scoped advisory lock, not a row lock, so that a concurrent
/// request with the same key, on any instance, learns at once that it is in use instead of
/// waiting; the lock goes with the transaction, even when the process dies.
///
/// The lock and the read are one statement, whose snapshot may predate the lock: a holder
/// that committed in between is not seen here, and `keep` then finds its key and refuses.
pub async fn claim(conn: &mut PgConnection, request: &KeyedRequest) -> Result<Claim> {
    let stored = sqlx::query!(
        r#"SELECT pg_try_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0)) AS "taken!",
                  k.method AS "method?", k.route AS "route?", k.fingerprint AS "fingerprint?",
                  k.response_status, k.response_body
           FROM (SELECT) AS one
           LEFT JOIN idempotency_keys k
                  ON k.scope = $1 AND k.key = $2 AND k.expires_at > now()"#,
        request.scope,
        request.key,
    )
    .fetch_one(&mut *conn)
    .await?;
    if !stored.taken {
        return Ok(Claim::InUse);
    }
    let Some(fingerprint) = stored.fingerprint else {
        return Ok(Claim::Fresh);
    };
    if stored.method.as_deref() != Some(request.method)
        || stored.route.as_deref() != Some(request.route)
        || fingerprint != request.fingerprint
    {
        return Ok(Claim::Reused);
    }
    Ok(match (stored.response_status, stored.response_body) {
        (Some(status), Some(body)) => Claim::Replay(StoredAnswer {
            status: status as u16,
            body,
        }),
        _ => Claim::InUse,
    })
}

/// Writes the key with its request, the refund it made and the answer; without an answer
/// the key stays in use until `complete` or `release`. Replaces an expired use of the key;
/// a live one means another request took the key after `claim` looked: the caller's
/// transaction must roll back.
pub async fn keep(
    conn: &mut PgConnection,
    request: &KeyedRequest,
    refund_id: Option<Uuid>,
    answer: Option<&StoredAnswer>,
    lifetime: Duration,
) -> Result<()> {
    let written = sqlx::query!(
        r#"INSERT INTO idempotency_keys
               (scope, key, method, route, fingerprint, refund_id, response_status,
                response_body, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + $9 * interval '1 millisecond')
           ON CONFLICT (scope, key) DO UPDATE
           SET method = EXCLUDED.method, route = EXCLUDED.route,
               fingerprint = EXCLUDED.fingerprint, refund_id = EXCLUDED.refund_id,
               response_status = EXCLUDED.response_status,
               response_body = EXCLUDED.response_body, created_at = now(),
               expires_at = EXCLUDED.expires_at
           WHERE idempotency_keys.expires_at <= now()"#,
        request.scope,
        request.key,
        request.method,
        request.route,
        &request.fingerprint[..],
        refund_id,
        answer.map(|answer| answer.status as i16),
        answer.map(|answer| answer.body.as_slice()),
        lifetime.as_millis() as f64,
    )
    .execute(conn)
    .await?;
    match written.rows_affected() {
        1 => Ok(()),
        _ => Err(Error::IdempotencyKeyInUse),
    }
}

/// Records the answer of a key kept without one.
pub async fn complete(
    conn: &mut PgConnection,
    request: &KeyedRequest,
    answer: &StoredAnswer,
) -> Result<()> {
    sqlx::query!(
        "UPDATE idempotency_keys SET response_status = $3, response_body = $4
         WHERE scope = $1 AND key = $2",
        request.scope,
        request.key,
        answer.status as i16,
        answer.body,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets a key kept without an answer, when the outcome is not one to keep: a retry runs
/// again.
pub async fn release(conn: &mut PgConnection, request: &KeyedRequest) -> Result<()> {
    sqlx::query!(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2",
        request.scope,
        request.key,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes expired keys, in batches so that no statement holds many rows at once; returns
/// how many.
pub async fn purge_expired(pool: &PgPool) -> Result<u64> {
    const BATCH: i64 = 5_000;
    let mut purged = 0;
    loop {
        let deleted = sqlx::query!(
            "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT $1))",
            BATCH,
        )
        .execute(pool)
        .await?
        .rows_affected();
        purged += deleted;
        if deleted < BATCH as u64 {
            return Ok(purged);
        }
    }
}
