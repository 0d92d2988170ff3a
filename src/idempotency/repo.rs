//! SQL of idempotency keys.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Claim, KeyedRequest, StoredAnswer};
use crate::domain::{Error, Result};

/// Takes the key for the rest of the caller's transaction and says what it holds. The key
/// is taken with a transaction-scoped advisory lock, not a row lock, so that a concurrent
/// request with the same key, on any instance, learns at once that it is in use instead of
/// waiting; the lock goes with the transaction, even when the process dies. An expired use
/// of the key is deleted, so that `keep` inserts.
///
/// The lock and the read are one statement, whose snapshot may predate the lock: a holder
/// that committed in between is not seen here, and `keep` then finds its key and refuses.
pub async fn claim(conn: &mut PgConnection, request: &KeyedRequest) -> Result<Claim> {
    let stored = sqlx::query!(
        r#"SELECT pg_try_advisory_xact_lock(idempotency_lock_id($1, $2)) AS "taken!",
                  k.method AS "method?", k.route AS "route?", k.fingerprint AS "fingerprint?",
                  k.response_status, k.response_body,
                  k.expires_at <= now() AND k.response_status IS NOT NULL AS expired
           FROM (SELECT) AS one
           LEFT JOIN stored_idempotency_keys(ARRAY[$1], ARRAY[$2]) k ON true"#,
        request.scope,
        request.key,
    )
    .fetch_one(&mut *conn)
    .await?;
    if !stored.taken {
        return Ok(Claim::InUse);
    }
    if stored.expired == Some(true) {
        sqlx::query!(
            "DELETE FROM idempotency_keys
             WHERE scope = $1 AND key = $2 AND expires_at <= now()
               AND response_status IS NOT NULL",
            request.scope,
            request.key,
        )
        .execute(&mut *conn)
        .await?;
        return Ok(Claim::Fresh);
    }
    let Some(fingerprint) = stored.fingerprint else {
        return Ok(Claim::Fresh);
    };
    if stored.method.as_deref() != Some(request.method)
        || stored.route.as_deref() != Some(request.route.as_str())
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

/// Which of the keys `(scopes[i], keys[i])` are stored, expired or not.
pub async fn existing_keys(
    conn: &mut PgConnection,
    scopes: &[String],
    keys: &[String],
) -> sqlx::Result<Vec<(String, String)>> {
    let rows = sqlx::query!(
        r#"SELECT scope AS "scope!", key AS "key!" FROM stored_idempotency_keys($1, $2)"#,
        scopes,
        keys,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|row| (row.scope, row.key)).collect())
}

/// Writes the key with its request, the refund it made and the answer; without an answer
/// the key stays in use, and does not expire, until `complete`. A key already there means
/// another request took it after `claim` looked: the caller's transaction must roll back.
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
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + $9 * interval '1 millisecond')"#,
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
    .await;
    match written {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            Err(Error::IdempotencyKeyInUse)
        }
        Err(error) => Err(error.into()),
    }
}

/// Records the answer of a key kept without one for `refund_id`; with no answer to keep,
/// forgets the key instead, so that a retry runs again (its refund was released).
pub async fn complete(
    conn: &mut PgConnection,
    request: &KeyedRequest,
    refund_id: Uuid,
    answer: Option<&StoredAnswer>,
) -> Result<()> {
    let written = match answer {
        Some(answer) => {
            sqlx::query!(
                "UPDATE idempotency_keys SET response_status = $4, response_body = $5
             WHERE scope = $1 AND key = $2 AND refund_id = $3",
                request.scope,
                request.key,
                refund_id,
                answer.status as i16,
                answer.body,
            )
            .execute(conn)
            .await?
        }
        None => {
            sqlx::query!(
                "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND refund_id = $3",
                request.scope,
                request.key,
                refund_id,
            )
            .execute(conn)
            .await?
        }
    };
    // Keys without an answer neither expire nor are replaced, so this is a broken invariant,
    // not a race; the refund's own move must still commit.
    if written.rows_affected() != 1 {
        tracing::error!(%refund_id, "the idempotency key of a settled refund is gone");
    }
    Ok(())
}

/// Gives the answer to a key whose create was cut off (the process died between reserving
/// its refund and settling it), so that a retry is answered instead of waiting forever.
/// Keys already answered are left as they are.
pub async fn complete_unanswered(
    conn: &mut PgConnection,
    refund_id: Uuid,
    route: &str,
    answer: &StoredAnswer,
) -> Result<()> {
    sqlx::query!(
        "UPDATE idempotency_keys SET response_status = $2, response_body = $3
         WHERE refund_id = $1 AND route = $4 AND response_status IS NULL",
        refund_id,
        answer.status as i16,
        answer.body,
        route,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes expired keys that have their answer, in batches so that no statement holds many
/// rows at once; returns how many.
pub async fn purge_expired(pool: &PgPool) -> Result<u64> {
    const BATCH: i64 = 5_000;
    let mut purged = 0;
    loop {
        let deleted = sqlx::query!(
            "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM idempotency_keys
                 WHERE expires_at <= now() AND response_status IS NOT NULL LIMIT $1))
             AND expires_at <= now() AND response_status IS NOT NULL",
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
