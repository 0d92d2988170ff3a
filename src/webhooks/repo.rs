//! The SQL of webhooks: endpoints, the outbox of events, leases of the delivery worker and
//! the record of every attempt. Every query of a request is scoped by the caller's
//! organizations; the worker's queries work on the rows it leased.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use super::model::{
    DeliveryListQuery, EndpointListQuery, EndpointUpdate, WebhookDelivery, WebhookEndpoint,
    WebhookEvent,
};

/// The columns of `WebhookEndpoint`, as a literal to build statements with.
macro_rules! endpoint_columns {
    () => {
        "created_at, modified_at, id, url, name, api_version, format, secret, organization_id, \
         events, enabled, true AS uses_standard_webhook_signature"
    };
}

pub struct NewEndpoint<'a> {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub url: &'a str,
    pub name: Option<&'a str>,
    pub secret: &'a str,
    pub events: &'a [String],
    pub api_version: &'a str,
}

pub async fn insert_endpoint(
    db: impl PgExecutor<'_>,
    endpoint: &NewEndpoint<'_>,
) -> sqlx::Result<WebhookEndpoint> {
    sqlx::query_as(concat!(
        "INSERT INTO webhook_endpoints \
         (id, organization_id, url, name, format, secret, events, api_version) \
         VALUES ($1, $2, $3, $4, 'raw', $5, $6, $7) RETURNING ",
        endpoint_columns!(),
        ""
    ))
    .bind(endpoint.id)
    .bind(endpoint.organization_id)
    .bind(endpoint.url)
    .bind(endpoint.name)
    .bind(endpoint.secret)
    .bind(endpoint.events)
    .bind(endpoint.api_version)
    .fetch_one(db)
    .await
}

pub async fn list_endpoints(
    db: &mut PgConnection,
    organization_ids: &[Uuid],
    query: &EndpointListQuery,
) -> sqlx::Result<(Vec<WebhookEndpoint>, i64)> {
    let items = sqlx::query_as(concat!(
        "SELECT ",
        endpoint_columns!(),
        " FROM webhook_endpoints \
         WHERE organization_id = ANY($1) AND deleted_at IS NULL \
         ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
    ))
    .bind(organization_ids)
    .bind(query.limit)
    .bind((query.page - 1).saturating_mul(query.limit))
    .fetch_all(&mut *db)
    .await?;
    let count = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_endpoints \
         WHERE organization_id = ANY($1) AND deleted_at IS NULL",
    )
    .bind(organization_ids)
    .fetch_one(db)
    .await?;
    Ok((items, count))
}

pub async fn find_endpoint(
    db: impl PgExecutor<'_>,
    id: Uuid,
    organization_ids: &[Uuid],
) -> sqlx::Result<Option<WebhookEndpoint>> {
    sqlx::query_as(concat!(
        "SELECT ",
        endpoint_columns!(),
        " FROM webhook_endpoints \
         WHERE id = $1 AND organization_id = ANY($2) AND deleted_at IS NULL"
    ))
    .bind(id)
    .bind(organization_ids)
    .fetch_optional(db)
    .await
}

/// Applies an update; re-enabling an endpoint forgets the failures that disabled it.
pub async fn update_endpoint(
    db: impl PgExecutor<'_>,
    id: Uuid,
    organization_ids: &[Uuid],
    update: &EndpointUpdate,
) -> sqlx::Result<Option<WebhookEndpoint>> {
    let (name_given, name) = match &update.name {
        Some(name) => (true, name.as_deref()),
        None => (false, None),
    };
    sqlx::query_as(concat!(
        "UPDATE webhook_endpoints SET \
           url = COALESCE($3, url), \
           name = CASE WHEN $4 THEN $5 ELSE name END, \
           events = COALESCE($6, events), \
           enabled = COALESCE($7, enabled), \
           failed_events_in_row = CASE WHEN $7 THEN 0 ELSE failed_events_in_row END, \
           api_version = COALESCE($8, api_version), \
           modified_at = now() \
         WHERE id = $1 AND organization_id = ANY($2) AND deleted_at IS NULL \
         RETURNING ",
        endpoint_columns!(),
        ""
    ))
    .bind(id)
    .bind(organization_ids)
    .bind(update.url.as_deref())
    .bind(name_given)
    .bind(name)
    .bind(update.events.as_deref())
    .bind(update.enabled)
    .bind(update.api_version.as_deref())
    .fetch_optional(db)
    .await
}

pub async fn set_secret(
    db: impl PgExecutor<'_>,
    id: Uuid,
    organization_ids: &[Uuid],
    secret: &str,
) -> sqlx::Result<Option<WebhookEndpoint>> {
    sqlx::query_as(concat!(
        "UPDATE webhook_endpoints SET secret = $3, modified_at = now() \
         WHERE id = $1 AND organization_id = ANY($2) AND deleted_at IS NULL \
         RETURNING ",
        endpoint_columns!(),
        ""
    ))
    .bind(id)
    .bind(organization_ids)
    .bind(secret)
    .fetch_optional(db)
    .await
}

/// Soft-deletes an endpoint; its events still pending are skipped.
pub async fn delete_endpoint(
    conn: &mut PgConnection,
    id: Uuid,
    organization_ids: &[Uuid],
) -> sqlx::Result<bool> {
    let deleted = sqlx::query(
        "UPDATE webhook_endpoints SET deleted_at = now(), enabled = false, modified_at = now() \
         WHERE id = $1 AND organization_id = ANY($2) AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(organization_ids)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    if deleted {
        skip_pending_events(conn, id, organization_ids).await?;
    }
    Ok(deleted)
}

pub async fn skip_pending_events(
    db: impl PgExecutor<'_>,
    endpoint_id: Uuid,
    organization_ids: &[Uuid],
) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE webhook_events SET state = 'skipped', leased_until = NULL, modified_at = now() \
         WHERE endpoint_id = $1 AND organization_id = ANY($2) AND state = 'pending'",
    )
    .bind(endpoint_id)
    .bind(organization_ids)
    .execute(db)
    .await?
    .rows_affected())
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    created_at: DateTime<Utc>,
    succeeded: bool,
    http_code: Option<i32>,
    response: Option<String>,
    event_id: Uuid,
    event_created_at: DateTime<Utc>,
    event_modified_at: Option<DateTime<Utc>>,
    event_state: String,
    event_type: String,
    api_version: String,
    payload: Option<String>,
    last_http_code: Option<i32>,
    archived: bool,
}

impl From<DeliveryRow> for WebhookDelivery {
    fn from(row: DeliveryRow) -> Self {
        let succeeded = match row.event_state.as_str() {
            "succeeded" => Some(true),
            "failed" => Some(false),
            _ => None,
        };
        WebhookDelivery {
            created_at: row.created_at,
            modified_at: None,
            id: row.id,
            succeeded: row.succeeded,
            http_code: row.http_code,
            response: row.response,
            webhook_event: WebhookEvent {
                created_at: row.event_created_at,
                modified_at: row.event_modified_at,
                id: row.event_id,
                last_http_code: row.last_http_code,
                succeeded,
                skipped: row.event_state == "skipped",
                api_version: row.api_version,
                payload: row.payload,
                event_type: row.event_type,
                is_archived: row.archived,
            },
        }
    }
}

fn push_delivery_filters(
    builder: &mut QueryBuilder<Postgres>,
    organization_ids: &[Uuid],
    query: &DeliveryListQuery,
) {
    builder.push(" WHERE d.organization_id = ANY(");
    builder.push_bind(organization_ids.to_vec());
    builder.push(")");
    if !query.endpoint_ids.is_empty() {
        builder.push(" AND d.endpoint_id = ANY(");
        builder.push_bind(query.endpoint_ids.clone());
        builder.push(")");
    }
    if let Some(start) = query.start_timestamp {
        builder.push(" AND d.created_at > ");
        builder.push_bind(start);
    }
    if let Some(end) = query.end_timestamp {
        builder.push(" AND d.created_at < ");
        builder.push_bind(end);
    }
    if let Some(succeeded) = query.succeeded {
        builder.push(" AND d.succeeded = ");
        builder.push_bind(succeeded);
    }
    if let Some(class) = query.http_code_class {
        builder.push(" AND d.http_code >= ");
        builder.push_bind(class.floor());
        builder.push(" AND d.http_code < ");
        builder.push_bind(class.floor() + 100);
    }
    if !query.event_types.is_empty() {
        builder.push(" AND e.type = ANY(");
        builder.push_bind(query.event_types.clone());
        builder.push(")");
    }
}

pub async fn list_deliveries(
    db: &mut PgConnection,
    organization_ids: &[Uuid],
    query: &DeliveryListQuery,
) -> sqlx::Result<(Vec<WebhookDelivery>, i64)> {
    const FROM: &str = " FROM webhook_deliveries d \
         JOIN webhook_events e ON e.id = d.event_id AND e.organization_id = d.organization_id";
    let mut page = QueryBuilder::new(
        "SELECT d.id, d.created_at, d.succeeded, d.http_code, d.response, \
         e.id AS event_id, e.created_at AS event_created_at, e.modified_at AS event_modified_at, \
         e.state AS event_state, e.type AS event_type, e.api_version, e.payload, \
         e.last_http_code, \
         (e.archived_at IS NOT NULL) AS archived",
    );
    page.push(FROM);
    push_delivery_filters(&mut page, organization_ids, query);
    page.push(" ORDER BY d.created_at DESC, d.id LIMIT ");
    page.push_bind(query.limit);
    page.push(" OFFSET ");
    page.push_bind((query.page - 1).saturating_mul(query.limit));
    let rows: Vec<DeliveryRow> = page.build_query_as().fetch_all(&mut *db).await?;
    let mut count = QueryBuilder::new("SELECT count(*)");
    count.push(FROM);
    push_delivery_filters(&mut count, organization_ids, query);
    let total: i64 = count.build_query_scalar().fetch_one(db).await?;
    Ok((rows.into_iter().map(Into::into).collect(), total))
}

/// Schedules one more attempt of an event that still has its payload, at once. Returns
/// whether the event exists for the caller; an archived one is found but not sent.
pub async fn redeliver_event(
    db: impl PgExecutor<'_>,
    event_id: Uuid,
    organization_ids: &[Uuid],
) -> sqlx::Result<bool> {
    // An endpoint that is disabled or deleted gets nothing: the event is skipped.
    let found: Option<bool> = sqlx::query_scalar(
        "WITH found AS ( \
           SELECT e.id, e.payload IS NOT NULL AND e.state <> 'pending' AS resend, \
                  w.enabled AND w.deleted_at IS NULL AS deliverable \
           FROM webhook_events e \
           JOIN webhook_endpoints w ON w.id = e.endpoint_id AND w.organization_id = e.organization_id \
           WHERE e.id = $1 AND e.organization_id = ANY($2)), \
         resent AS ( \
           UPDATE webhook_events e SET \
             state = CASE WHEN found.deliverable THEN 'pending' ELSE 'skipped' END, \
             attempts = greatest(e.attempts, 1), \
             attempts_allowed = greatest(e.attempts, 1) + 1, \
             next_attempt_at = now(), leased_until = NULL, modified_at = now() \
           FROM found WHERE e.id = found.id AND found.resend AND e.organization_id = ANY($2) \
           RETURNING e.id) \
         SELECT true FROM found",
    )
    .bind(event_id)
    .bind(organization_ids)
    .fetch_optional(db)
    .await?;
    Ok(found.is_some())
}

/// An endpoint an event may go to.
#[derive(Debug, sqlx::FromRow)]
pub struct Target {
    pub id: Uuid,
    pub events: Vec<String>,
    pub api_version: String,
}

/// The organization's endpoints that are enabled, not deleted and subscribed to any of
/// `types`.
pub async fn targets(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    types: &[&str],
) -> sqlx::Result<Vec<Target>> {
    sqlx::query_as(
        "SELECT id, events, api_version FROM webhook_endpoints \
         WHERE organization_id = $1 AND enabled AND deleted_at IS NULL AND events && $2::text[] \
         ORDER BY created_at, id",
    )
    .bind(organization_id)
    .bind(types)
    .fetch_all(db)
    .await
}

/// Events to write, one per endpoint, in the order they happened.
#[derive(Default)]
pub struct NewEvents {
    pub ids: Vec<Uuid>,
    pub endpoint_ids: Vec<Uuid>,
    pub types: Vec<&'static str>,
    pub api_versions: Vec<String>,
    pub payloads: Vec<String>,
}

/// Writes the events in one statement, in their order, and wakes the delivery workers when
/// the transaction commits, with a notification that names each endpoint.
pub async fn insert_events(
    conn: &mut PgConnection,
    organization_id: Uuid,
    created_at: DateTime<Utc>,
    events: &NewEvents,
) -> sqlx::Result<()> {
    sqlx::query(
        "WITH inserted AS ( \
           INSERT INTO webhook_events \
             (id, organization_id, endpoint_id, type, api_version, payload, created_at, \
              next_attempt_at) \
           SELECT id, $1, endpoint_id, type, api_version, payload, $2, $2 \
           FROM unnest($3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[]) \
             WITH ORDINALITY AS e(id, endpoint_id, type, api_version, payload, position) \
           ORDER BY position \
           RETURNING endpoint_id) \
         SELECT pg_notify($8, endpoint_id::text) FROM (SELECT DISTINCT endpoint_id FROM inserted) AS woken",
    )
    .bind(organization_id)
    .bind(created_at)
    .bind(&events.ids)
    .bind(&events.endpoint_ids)
    .bind(&events.types)
    .bind(&events.api_versions)
    .bind(&events.payloads)
    .bind(super::delivery::WAKE_CHANNEL)
    .execute(conn)
    .await?;
    Ok(())
}

/// An event leased for an attempt, with where and how it goes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Leased {
    pub id: Uuid,
    pub seq: i64,
    pub organization_id: Uuid,
    pub endpoint_id: Uuid,
    pub payload: String,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
    pub attempts_allowed: i32,
    pub url: String,
    pub secret: String,
}

// The leases (`lease_first_attempts`, `lease_retries`) are planned afresh each time, not
// cached: the queue's table grows from empty and is emptied by delivery, and a plan cached
// while it was small (a sequential scan) stays in use long after it holds thousands of
// events. The test for an endpoint's waiting first attempts asks for the first one in
// order, so that it walks the queue's index and stops at it: as a plain `EXISTS` it was
// planned on other indexes, through every event already sent in the lookback.

/// Leases up to `endpoints` endpoints whose first attempts are waiting and that no other
/// worker holds, and returns up to `per_endpoint` of each one's waiting events in creation
/// order. The leases are committed before any call is made.
///
/// Only events less than `lookback` below the highest `seq` an endpoint was sent are looked
/// at: an event committed later than others created after it may lie further below, and a
/// lease with an unbounded `lookback`, made now and then, finds it.
pub async fn lease_first_attempts(
    conn: &mut PgConnection,
    lease: Uuid,
    lease_for: std::time::Duration,
    endpoints: i64,
    per_endpoint: i64,
    lookback: i64,
) -> sqlx::Result<Vec<Leased>> {
    let endpoint_ids: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE webhook_endpoints w \
         SET first_attempts_leased_until = now() + make_interval(secs => $2), \
             first_attempts_lease = $1 \
         FROM ( \
           SELECT c.organization_id, c.id FROM webhook_endpoints c \
           WHERE (c.first_attempts_leased_until IS NULL OR c.first_attempts_leased_until < now()) \
             AND EXISTS (SELECT 1 FROM ( \
                   SELECT e.seq FROM webhook_events e \
                   WHERE e.endpoint_id = c.id AND e.organization_id = c.organization_id \
                     AND e.state = 'pending' AND e.attempts = 0 \
                     AND e.seq > c.first_attempts_sent_seq - $4 \
                   ORDER BY e.seq LIMIT 1) AS waiting) \
           LIMIT $3 FOR UPDATE SKIP LOCKED) AS picked \
         WHERE w.organization_id = picked.organization_id AND w.id = picked.id \
         RETURNING w.id",
    )
    .bind(lease)
    .bind(lease_for.as_secs_f64())
    .bind(endpoints)
    .bind(lookback)
    .persistent(false)
    .fetch_all(&mut *conn)
    .await?;
    if endpoint_ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT e.id, e.seq, e.organization_id, e.endpoint_id, e.payload, e.created_at, \
                e.attempts, e.attempts_allowed, w.url, w.secret \
         FROM webhook_endpoints w \
         CROSS JOIN LATERAL ( \
           SELECT * FROM webhook_events e \
           WHERE e.endpoint_id = w.id AND e.organization_id = w.organization_id \
             AND e.state = 'pending' AND e.attempts = 0 \
             AND e.seq > w.first_attempts_sent_seq - $3 \
           ORDER BY e.seq LIMIT $2) e \
         WHERE w.id = ANY($1) AND e.payload IS NOT NULL \
         ORDER BY w.id, e.seq",
    )
    .bind(&endpoint_ids)
    .bind(per_endpoint)
    .bind(lookback)
    .persistent(false)
    .fetch_all(conn)
    .await
}

/// Gives back an endpoint's first attempts, if this worker still holds them, noting the
/// highest `seq` it sent.
pub async fn release_first_attempts(
    db: impl PgExecutor<'_>,
    lease: Uuid,
    endpoint_id: Uuid,
    organization_id: Uuid,
    sent_seq: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE webhook_endpoints SET first_attempts_leased_until = NULL, first_attempts_lease = NULL, \
           first_attempts_sent_seq = greatest(first_attempts_sent_seq, $4) \
         WHERE id = $2 AND organization_id = $3 AND first_attempts_lease = $1",
    )
    .bind(lease)
    .bind(endpoint_id)
    .bind(organization_id)
    .bind(sent_seq)
    .execute(db)
    .await?;
    Ok(())
}

/// Leases up to `limit` retries that are due and that no other worker holds.
pub async fn lease_retries(
    conn: &mut PgConnection,
    lease_for: std::time::Duration,
    limit: i64,
) -> sqlx::Result<Vec<Leased>> {
    sqlx::query_as(
        "WITH due AS ( \
           SELECT organization_id, id FROM webhook_events \
           WHERE state = 'pending' AND attempts > 0 AND next_attempt_at <= now() \
             AND (leased_until IS NULL OR leased_until < now()) \
           ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED), \
         leased AS ( \
           UPDATE webhook_events e SET leased_until = now() + make_interval(secs => $1) \
           FROM due WHERE e.id = due.id AND e.organization_id = due.organization_id \
           RETURNING e.id, e.seq, e.organization_id, e.endpoint_id, e.payload, e.created_at, \
                     e.attempts, e.attempts_allowed) \
         SELECT l.id, l.seq, l.organization_id, l.endpoint_id, l.payload, l.created_at, l.attempts, \
                l.attempts_allowed, w.url, w.secret \
         FROM leased l JOIN webhook_endpoints w \
           ON w.id = l.endpoint_id AND w.organization_id = l.organization_id \
         WHERE l.payload IS NOT NULL",
    )
    .bind(lease_for.as_secs_f64())
    .bind(limit)
    .persistent(false)
    .fetch_all(conn)
    .await
}

/// What one attempt came to.
pub struct Attempt {
    pub event_id: Uuid,
    pub organization_id: Uuid,
    pub endpoint_id: Uuid,
    pub succeeded: bool,
    pub http_code: Option<i32>,
    pub response: Option<String>,
    /// When to try again after a failure; `None` when the event has no attempt left.
    pub retry_at: Option<DateTime<Utc>>,
}

/// Records attempts in one statement each for the deliveries and the events, and returns
/// the endpoints whose events failed for good and which succeeded, for the failure streaks.
pub async fn record_attempts(conn: &mut PgConnection, attempts: &[Attempt]) -> sqlx::Result<()> {
    if attempts.is_empty() {
        return Ok(());
    }
    let column = |pick: fn(&Attempt) -> Uuid| attempts.iter().map(pick).collect::<Vec<_>>();
    let delivery_ids: Vec<Uuid> = attempts.iter().map(|_| Uuid::new_v4()).collect();
    let event_ids = column(|attempt| attempt.event_id);
    let organization_ids = column(|attempt| attempt.organization_id);
    let endpoint_ids = column(|attempt| attempt.endpoint_id);
    let succeeded: Vec<bool> = attempts.iter().map(|attempt| attempt.succeeded).collect();
    let codes: Vec<Option<i32>> = attempts.iter().map(|attempt| attempt.http_code).collect();
    let responses: Vec<Option<String>> = attempts
        .iter()
        .map(|attempt| attempt.response.clone())
        .collect();
    let retry_at: Vec<Option<DateTime<Utc>>> =
        attempts.iter().map(|attempt| attempt.retry_at).collect();
    sqlx::query(
        "INSERT INTO webhook_deliveries \
           (id, organization_id, endpoint_id, event_id, succeeded, http_code, response) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::bool[], \
                              $6::int[], $7::text[])",
    )
    .bind(&delivery_ids)
    .bind(&organization_ids)
    .bind(&endpoint_ids)
    .bind(&event_ids)
    .bind(&succeeded)
    .bind(&codes)
    .bind(&responses)
    .execute(&mut *conn)
    .await?;
    // An event another worker already finished (a lease that ran out) stays finished.
    sqlx::query(
        "UPDATE webhook_events e SET \
           attempts = e.attempts + 1, \
           last_http_code = a.http_code, \
           state = CASE WHEN a.succeeded THEN 'succeeded' \
                        WHEN a.retry_at IS NULL THEN 'failed' ELSE 'pending' END, \
           next_attempt_at = COALESCE(a.retry_at, e.next_attempt_at), \
           leased_until = NULL, modified_at = now() \
         FROM unnest($1::uuid[], $2::uuid[], $3::bool[], $4::int[], $5::timestamptz[]) \
           AS a(event_id, organization_id, succeeded, http_code, retry_at) \
         WHERE e.id = a.event_id AND e.organization_id = a.organization_id \
           AND e.state = 'pending'",
    )
    .bind(&event_ids)
    .bind(&organization_ids)
    .bind(&succeeded)
    .bind(&codes)
    .bind(&retry_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Counts an endpoint's events that failed for good since its last success (`failed` of
/// them now) or resets the count (`succeeded`), and disables the endpoint once the count
/// reaches `threshold`, skipping its pending events. Returns the endpoints disabled.
pub async fn update_failure_streaks(
    conn: &mut PgConnection,
    failed: &[(Uuid, Uuid, i32)],
    succeeded: &[(Uuid, Uuid)],
    threshold: i32,
) -> sqlx::Result<Vec<Uuid>> {
    if !succeeded.is_empty() {
        let ids: Vec<Uuid> = succeeded.iter().map(|(id, _)| *id).collect();
        let organizations: Vec<Uuid> = succeeded.iter().map(|(_, org)| *org).collect();
        sqlx::query(
            "UPDATE webhook_endpoints w SET failed_events_in_row = 0 \
             FROM unnest($1::uuid[], $2::uuid[]) AS s(id, organization_id) \
             WHERE w.id = s.id AND w.organization_id = s.organization_id \
               AND w.failed_events_in_row <> 0",
        )
        .bind(&ids)
        .bind(&organizations)
        .execute(&mut *conn)
        .await?;
    }
    if failed.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = failed.iter().map(|(id, _, _)| *id).collect();
    let organizations: Vec<Uuid> = failed.iter().map(|(_, org, _)| *org).collect();
    let counts: Vec<i32> = failed.iter().map(|(_, _, count)| *count).collect();
    let disabled: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "UPDATE webhook_endpoints w SET \
           failed_events_in_row = w.failed_events_in_row + f.count, \
           enabled = w.enabled AND w.failed_events_in_row + f.count < $4, \
           modified_at = CASE WHEN w.failed_events_in_row + f.count >= $4 AND w.enabled \
                              THEN now() ELSE w.modified_at END \
         FROM unnest($1::uuid[], $2::uuid[], $3::int[]) AS f(id, organization_id, count) \
         WHERE w.id = f.id AND w.organization_id = f.organization_id \
         RETURNING w.id, w.organization_id, w.enabled",
    )
    .bind(&ids)
    .bind(&organizations)
    .bind(&counts)
    .bind(threshold)
    .fetch_all(&mut *conn)
    .await
    .map(|rows: Vec<(Uuid, Uuid, bool)>| {
        rows.into_iter()
            .filter(|(_, _, enabled)| !enabled)
            .map(|(id, org, _)| (id, org))
            .collect()
    })?;
    for (endpoint_id, organization_id) in &disabled {
        skip_pending_events(&mut *conn, *endpoint_id, &[*organization_id]).await?;
    }
    Ok(disabled.into_iter().map(|(id, _)| id).collect())
}

/// Drops the payloads of up to `batch` events created before `before`; returns how many.
pub async fn archive_events(
    db: impl PgExecutor<'_>,
    before: DateTime<Utc>,
    batch: i64,
) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE webhook_events SET payload = NULL, archived_at = now(), \
           state = CASE WHEN state = 'pending' THEN 'skipped' ELSE state END \
         WHERE (organization_id, id) IN ( \
           SELECT organization_id, id FROM webhook_events \
           WHERE created_at < $1 AND archived_at IS NULL ORDER BY created_at LIMIT $2)",
    )
    .bind(before)
    .bind(batch)
    .execute(db)
    .await?
    .rows_affected())
}

/// How many events wait, and how old the oldest is (seconds).
///
/// Counted queue by queue, each through its own index, so that the cost follows the
/// queue's length rather than that of the table, which keeps every event for 90 days.
pub async fn queue_depth(db: impl PgExecutor<'_>) -> sqlx::Result<(i64, f64)> {
    sqlx::query_as(
        "SELECT sum(waiting)::bigint, \
                COALESCE(EXTRACT(EPOCH FROM now() - min(oldest))::float8, 0) \
         FROM ( \
           SELECT count(*) AS waiting, min(created_at) AS oldest FROM webhook_events \
           WHERE state = 'pending' AND attempts = 0 \
           UNION ALL \
           SELECT count(*), min(created_at) FROM webhook_events \
           WHERE state = 'pending' AND attempts > 0) AS queues",
    )
    .fetch_one(db)
    .await
}
