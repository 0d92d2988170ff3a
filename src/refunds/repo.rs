use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::model::{ListQuery, Refund, RefundSort};
use crate::disputes::model::RefundDispute;
use crate::domain::{
    DisputeStatus, Error, OrderStatus, RefundFailureReason, RefundReason, RefundStatus, Result,
};

pub struct NewRefund<'a> {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub payment_id: Option<Uuid>,
    pub dispute_id: Option<Uuid>,
    pub status: RefundStatus,
    pub reason: RefundReason,
    pub amount: i64,
    pub tax_amount: i64,
    pub currency: &'a str,
    pub comment: Option<&'a str>,
    pub processor: &'a str,
    pub processor_id: Option<&'a str>,
    pub revoke_benefits: bool,
    pub metadata: &'a Map<String, Value>,
    pub failure_reason: Option<RefundFailureReason>,
    /// What the outside processor is asked, when it has not answered yet.
    pub processor_request: Option<Value>,
    /// Milliseconds after which the recovery worker may ask the processor again.
    pub recover_after_ms: Option<i64>,
}

/// Inserts a refund and returns its creation time.
pub async fn insert_refund(
    conn: &mut PgConnection,
    refund: &NewRefund<'_>,
) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query_scalar!(
        r#"
        INSERT INTO refunds (id, organization_id, order_id, customer_id, subscription_id,
                             payment_id, dispute_id, status, reason, amount, tax_amount, currency,
                             comment, processor, processor_id, revoke_benefits, metadata,
                             failure_reason, processor_request, recover_after)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                $18, $19, now() + $20 * interval '1 millisecond')
        RETURNING created_at
        "#,
        refund.id,
        refund.organization_id,
        refund.order_id,
        refund.customer_id,
        refund.subscription_id,
        refund.payment_id,
        refund.dispute_id,
        refund.status as RefundStatus,
        refund.reason as RefundReason,
        refund.amount,
        refund.tax_amount,
        refund.currency,
        refund.comment,
        refund.processor,
        refund.processor_id,
        refund.revoke_benefits,
        Value::Object(refund.metadata.clone()),
        refund.failure_reason as Option<RefundFailureReason>,
        refund.processor_request,
        refund.recover_after_ms.map(|ms| ms as f64),
    )
    .fetch_one(conn)
    .await
}

/// One refund of a batch, with its order's refund state as it was read and as the refund
/// leaves it. Serialized as one element of the JSON array the batch statement reads.
#[derive(Serialize)]
pub struct BatchedRefund<'a> {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub payment_id: Uuid,
    pub status: RefundStatus,
    pub reason: RefundReason,
    pub amount: i64,
    pub tax_amount: i64,
    pub currency: &'a str,
    pub comment: Option<&'a str>,
    pub processor_id: &'a str,
    pub revoke_benefits: bool,
    pub metadata: &'a Map<String, Value>,
    pub read: OrderRefundState,
    pub written: OrderRefundState,
    /// The events the refund sends, in order, for every endpoint subscribed to them.
    pub events: Vec<BatchedEvent>,
    /// The events a create can send that `events` was built without: the refund is created
    /// only while no endpoint of its organization wants one of them.
    pub unbuilt_events: Vec<&'static str>,
    /// The create's idempotency key, kept with its answer; left out (NULL) without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<BatchedKey<'a>>,
}

/// An idempotency key to keep with the answer of its batched create.
#[derive(Serialize)]
pub struct BatchedKey<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub method: &'a str,
    pub route: &'a str,
    /// Hexadecimal.
    pub fingerprint: String,
    pub status: u16,
    /// The batch's answer at this index (from 1).
    pub body: usize,
}

/// An event of a batched refund: its payload is `head`, the endpoint's `api_version` as a
/// JSON string, then the batch's tail at index `tail` (from 1), which the events of one
/// refund may share.
#[derive(Serialize)]
pub struct BatchedEvent {
    pub position: usize,
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub head: String,
    pub tail: usize,
}

/// The columns of an order that a refund reads and moves.
#[derive(Serialize, Clone, Copy)]
pub struct OrderRefundState {
    pub status: OrderStatus,
    pub refunded_amount: i64,
    pub refunded_tax_amount: i64,
    pub pending_amount: i64,
    pub pending_tax_amount: i64,
}

/// Creates a batch of refunds, at most one per order, in one statement that commits by
/// itself, and returns the ids of those it created. A refund is created only if its order
/// still has the refund state it was read with, is not blocked (nor is its organization),
/// has no open dispute and still has the succeeded payment, and while its organization has
/// no webhook endpoint subscribed to an event the batch did not build for it (its
/// `refund.created`, or its order events). The tails of the events' payloads and the keys'
/// answers come apart from the refunds' JSON, as `tails` and `answers`, so that PostgreSQL
/// does not parse them as JSON inside it.
/// Such a refund moves its order's counters and status, keeps its idempotency key with its
/// answer for `key_lifetime`, and writes its events for every subscribed endpoint, all at
/// `created_at`. A key that another request still holds skips its refund (the key's
/// advisory lock); one it took and committed after the batch read it fails the whole
/// statement: nothing of the batch is written. An order locked by another transaction is
/// skipped: its refund is not created here.
pub async fn insert_batch(
    conn: &mut PgConnection,
    processor: &str,
    created_at: DateTime<Utc>,
    key_lifetime: std::time::Duration,
    refunds: &[BatchedRefund<'_>],
    tails: &[String],
    answers: &[&[u8]],
) -> Result<Vec<Uuid>> {
    let refunds = serde_json::to_string(refunds)
        .map_err(|error| Error::Corrupt(format!("refund batch as JSON: {error}")))?;
    Ok(sqlx::query_scalar!(
        r#"
        WITH request AS (
            SELECT r.*, position
            FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS e (refund, position),
                 jsonb_to_record(e.refund) AS r (
                     id uuid, organization_id uuid, order_id uuid, customer_id uuid,
                     subscription_id uuid, payment_id uuid, status text, reason text,
                     amount bigint, tax_amount bigint, currency text, comment text,
                     processor_id text, revoke_benefits boolean, metadata jsonb,
                     read jsonb, written jsonb, events jsonb, unbuilt_events text[],
                     key jsonb)
        ),
        -- Orders another transaction holds are skipped, not waited for: their creates go
        -- one by one, each waiting within its own request, and the batch never holds up the
        -- creates behind it.
        locked AS (
            SELECT o.id FROM orders o
            JOIN request r ON o.id = r.order_id AND o.organization_id = r.organization_id
            ORDER BY o.id
            FOR UPDATE OF o SKIP LOCKED
        ),
        moved AS (
            UPDATE orders o
            SET refunded_amount = (r.written->>'refunded_amount')::bigint,
                refunded_tax_amount = (r.written->>'refunded_tax_amount')::bigint,
                pending_amount = (r.written->>'pending_amount')::bigint,
                pending_tax_amount = (r.written->>'pending_tax_amount')::bigint,
                status = r.written->>'status',
                modified_at = $2
            FROM request r
            WHERE o.id = r.order_id AND o.organization_id = r.organization_id
              AND o.id IN (SELECT id FROM locked)
              AND o.status = r.read->>'status'
              AND o.refunded_amount = (r.read->>'refunded_amount')::bigint
              AND o.refunded_tax_amount = (r.read->>'refunded_tax_amount')::bigint
              AND o.pending_amount = (r.read->>'pending_amount')::bigint
              AND o.pending_tax_amount = (r.read->>'pending_tax_amount')::bigint
              AND NOT o.refunds_blocked AND o.open_disputes = 0
              AND NOT EXISTS (SELECT 1 FROM organizations g
                              WHERE g.id = o.organization_id AND g.refunds_blocked)
              AND EXISTS (SELECT 1 FROM payments p
                          WHERE p.id = r.payment_id AND p.organization_id = o.organization_id
                            AND p.order_id = o.id AND p.status = 'succeeded')
              -- A create holding the key one by one holds this lock until it commits.
              AND (r.key IS NULL
                   OR pg_try_advisory_xact_lock(
                          idempotency_lock_id(r.key->>'scope', r.key->>'key')))
              -- An endpoint subscribed meanwhile to an event the request was built without.
              AND (r.unbuilt_events = '{}'
                   OR NOT EXISTS (SELECT 1 FROM webhook_endpoints w
                                  WHERE w.organization_id = o.organization_id AND w.enabled
                                    AND w.deleted_at IS NULL
                                    AND w.events && r.unbuilt_events))
            RETURNING r.id
        ),
        created AS (
            INSERT INTO refunds (id, organization_id, order_id, customer_id, subscription_id,
                                 payment_id, status, reason, amount, tax_amount, currency,
                                 comment, processor, processor_id, revoke_benefits, metadata,
                                 created_at)
            SELECT r.id, r.organization_id, r.order_id, r.customer_id, r.subscription_id,
                   r.payment_id, r.status, r.reason, r.amount, r.tax_amount, r.currency,
                   r.comment, $3, r.processor_id, r.revoke_benefits, r.metadata, $2
            FROM request r JOIN moved m ON m.id = r.id
            ORDER BY r.position
            RETURNING id
        ),
        events AS (
            INSERT INTO webhook_events (id, organization_id, endpoint_id, type, api_version,
                                        payload, created_at, next_attempt_at)
            SELECT gen_random_uuid(), r.organization_id, w.id, event.type, w.api_version,
                   event.head || to_json(w.api_version)::text || ($6::text[])[event.tail],
                   $2, $2
            FROM request r
            JOIN moved m ON m.id = r.id
            CROSS JOIN LATERAL jsonb_to_recordset(r.events)
                AS event (position bigint, type text, head text, tail int)
            JOIN webhook_endpoints w
              ON w.organization_id = r.organization_id AND w.enabled AND w.deleted_at IS NULL
             AND event.type = ANY(w.events)
            ORDER BY r.position, event.position, w.created_at, w.id
            RETURNING endpoint_id
        ),
        kept AS (
            INSERT INTO idempotency_keys (scope, key, method, route, fingerprint, refund_id,
                                          response_status, response_body, expires_at)
            SELECT r.key->>'scope', r.key->>'key', r.key->>'method', r.key->>'route',
                   decode(r.key->>'fingerprint', 'hex'), r.id,
                   (r.key->>'status')::smallint, ($7::bytea[])[(r.key->>'body')::int],
                   $2 + $5 * interval '1 millisecond'
            FROM request r JOIN moved m ON m.id = r.id
            -- A key taken and committed meanwhile is a unique violation: the statement
            -- fails, and nothing of the batch is written.
            WHERE r.key IS NOT NULL
        ),
        -- One notification per endpoint, which the delivery workers read as it commits.
        woken AS (
            SELECT count(pg_notify($4, endpoint_id::text))
            FROM (SELECT DISTINCT endpoint_id FROM events) AS e
        )
        SELECT c.id AS "id!" FROM created c LEFT JOIN woken ON true
        "#,
        refunds,
        created_at,
        processor,
        crate::webhooks::delivery::WAKE_CHANNEL,
        key_lifetime.as_millis() as f64,
        tails,
        answers as &[&[u8]],
    )
    .fetch_all(conn)
    .await?)
}

/// Which of the refunds `(ids[i], organization_ids[i])` exist.
pub async fn existing_ids(
    executor: impl PgExecutor<'_>,
    ids: &[Uuid],
    organization_ids: &[Uuid],
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT r.id AS "id!" FROM refunds r
           JOIN unnest($1::uuid[], $2::uuid[]) AS wanted (id, organization_id)
             ON r.id = wanted.id AND r.organization_id = wanted.organization_id"#,
        ids,
        organization_ids,
    )
    .fetch_all(executor)
    .await
}

/// Locks a refund row whose order the caller has locked, and reads its status.
pub async fn lock_refund_status(
    conn: &mut PgConnection,
    refund_id: Uuid,
) -> sqlx::Result<Option<RefundStatus>> {
    sqlx::query_scalar!(
        r#"SELECT status AS "status: RefundStatus" FROM refunds WHERE id = $1 FOR UPDATE"#,
        refund_id
    )
    .fetch_optional(conn)
    .await
}

/// Moves a refund to `status`, keeping the processor's id once it is known and the failure
/// reason of a failed refund; a moved refund has its answer and is no longer recovered.
/// Returns when.
pub async fn set_status(
    conn: &mut PgConnection,
    refund_id: Uuid,
    status: RefundStatus,
    processor_id: Option<&str>,
    failure_reason: Option<RefundFailureReason>,
) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query_scalar!(
        r#"
        UPDATE refunds
        SET status = $2, processor_id = coalesce($3, processor_id),
            failure_reason = coalesce($4, failure_reason),
            recover_after = NULL,
            modified_at = now()
        WHERE id = $1
        RETURNING modified_at AS "modified_at!"
        "#,
        refund_id,
        status as RefundStatus,
        processor_id,
        failure_reason as Option<RefundFailureReason>,
    )
    .fetch_one(conn)
    .await
}

/// Records the processor's id of a refund whose status stays as it is; the refund is no
/// longer recovered.
pub async fn set_processor_id(
    conn: &mut PgConnection,
    refund_id: Uuid,
    processor_id: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE refunds SET processor_id = $2, recover_after = NULL
         WHERE id = $1 AND processor_id IS DISTINCT FROM $2",
        refund_id,
        processor_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The order of a refund and its organization, read without a lock (to lock the order
/// first), for callers outside any organization: the processor's events and the workers.
pub async fn order_of(
    conn: &mut PgConnection,
    refund_id: Uuid,
) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    let row = sqlx::query!(
        "SELECT order_id, organization_id FROM refunds WHERE id = $1",
        refund_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| (row.order_id, row.organization_id)))
}

/// Our refund with the processor's id `processor_id`.
pub async fn find_by_processor_id(
    conn: &mut PgConnection,
    processor: &str,
    processor_id: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM refunds WHERE processor = $1 AND processor_id = $2",
        processor,
        processor_id
    )
    .fetch_optional(conn)
    .await
}

/// A refund still waiting for the processor's first answer, taken up by the recovery worker.
pub struct Unanswered {
    pub id: Uuid,
    pub processor_request: Value,
    pub created_at: DateTime<Utc>,
}

/// Takes up to `limit` refunds of `processor` whose first answer is overdue, and moves their
/// next turn `lease_ms` ahead, so that no other instance takes them meanwhile. The statement
/// commits by itself: no row stays locked while the processor is asked.
pub async fn take_unanswered(
    pool: &PgPool,
    processor: &str,
    lease_ms: i64,
    limit: i64,
) -> sqlx::Result<Vec<Unanswered>> {
    sqlx::query_as!(
        Unanswered,
        r#"
        UPDATE refunds SET recover_after = now() + $1 * interval '1 millisecond'
        WHERE id IN (SELECT id FROM refunds
                     WHERE recover_after <= now() AND status = 'pending' AND processor_id IS NULL
                       AND processor = $3
                     ORDER BY recover_after LIMIT $2
                     FOR UPDATE SKIP LOCKED)
        RETURNING id, processor_request AS "processor_request!", created_at
        "#,
        lease_ms as f64,
        limit,
        processor,
    )
    .fetch_all(pool)
    .await
}

/// Pending refunds of `processor` older than `age_ms`.
pub async fn pending_older_than(
    pool: &PgPool,
    processor: &str,
    age_ms: i64,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM refunds
         WHERE status = 'pending' AND processor = $1
           AND created_at <= now() - $2 * interval '1 millisecond'
         ORDER BY created_at LIMIT $3",
        processor,
        age_ms as f64,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// One refund with its dispute, as the API shows it.
pub async fn find_refund(conn: &mut PgConnection, refund_id: Uuid) -> Result<Option<Refund>> {
    let mut builder = QueryBuilder::new(REFUND_COLUMNS);
    builder.push(" WHERE r.id = ");
    builder.push_bind(refund_id);
    let row: Option<RefundRow> = builder.build_query_as().fetch_optional(conn).await?;
    row.map(RefundRow::into_refund).transpose()
}

/// A refund row joined with its dispute, as the list query returns it.
#[derive(sqlx::FromRow)]
struct RefundRow {
    created_at: DateTime<Utc>,
    modified_at: Option<DateTime<Utc>>,
    id: Uuid,
    metadata: Value,
    status: RefundStatus,
    reason: RefundReason,
    amount: i64,
    tax_amount: i64,
    currency: String,
    organization_id: Uuid,
    order_id: Uuid,
    subscription_id: Option<Uuid>,
    customer_id: Uuid,
    revoke_benefits: bool,
    dispute_id: Option<Uuid>,
    dispute_created_at: Option<DateTime<Utc>>,
    dispute_modified_at: Option<DateTime<Utc>>,
    dispute_status: Option<DisputeStatus>,
    dispute_amount: Option<i64>,
    dispute_tax_amount: Option<i64>,
    dispute_currency: Option<String>,
    dispute_reason: Option<String>,
    dispute_evidence_due_by: Option<DateTime<Utc>>,
    dispute_payment_id: Option<Uuid>,
}

impl RefundRow {
    fn into_refund(self) -> Result<Refund> {
        let dispute = match (self.dispute_id, self.dispute_status) {
            (Some(id), Some(status)) => Some(RefundDispute {
                created_at: self.dispute_created_at.unwrap_or(self.created_at),
                modified_at: self.dispute_modified_at,
                id,
                status,
                resolved: status.is_resolved(),
                closed: status.is_closed(),
                amount: self.dispute_amount.unwrap_or_default(),
                tax_amount: self.dispute_tax_amount.unwrap_or_default(),
                currency: self.dispute_currency.unwrap_or_default(),
                reason: self.dispute_reason,
                past_due: RefundDispute::is_past_due(self.dispute_evidence_due_by),
                evidence_due_by: self.dispute_evidence_due_by,
                order_id: self.order_id,
                payment_id: self.dispute_payment_id.unwrap_or_default(),
            }),
            _ => None,
        };
        let Value::Object(metadata) = self.metadata else {
            return Err(Error::Corrupt("refund metadata is not an object".into()));
        };
        Ok(Refund {
            created_at: self.created_at,
            modified_at: self.modified_at,
            id: self.id,
            metadata,
            status: self.status,
            reason: self.reason,
            amount: self.amount,
            tax_amount: self.tax_amount,
            currency: self.currency,
            organization_id: self.organization_id,
            order_id: self.order_id,
            subscription_id: self.subscription_id,
            customer_id: self.customer_id,
            revoke_benefits: self.revoke_benefits,
            dispute,
        })
    }
}

/// Appends the WHERE clause shared by the page and the count: the organizations to search
/// (already narrowed to the caller's), then each other filter the query names.
fn push_filters(
    builder: &mut QueryBuilder<Postgres>,
    organization_ids: &[Uuid],
    query: &ListQuery,
) {
    // With one organization, `=` lets PostgreSQL read the (organization_id, sort key) index
    // in order and stop after a page; `= ANY` would sort all of the organization's refunds.
    // Not under a filter on ids: there the planner may walk the organization's index in
    // order and read all of it when the filter matches few rows (3 s at a million refunds
    // for a customer without any); `= ANY` keeps it on the filter's own index.
    match organization_ids {
        [organization_id] if !filters_by_ids(query) => {
            builder.push(" WHERE r.organization_id = ");
            builder.push_bind(*organization_id);
        }
        _ => {
            builder.push(" WHERE r.organization_id = ANY(");
            builder.push_bind(organization_ids);
            builder.push(")");
        }
    }
    let uuid_filters: [(&str, &Vec<Uuid>); 4] = [
        ("r.id", &query.ids),
        ("r.order_id", &query.order_ids),
        ("r.subscription_id", &query.subscription_ids),
        ("r.customer_id", &query.customer_ids),
    ];
    for (column, values) in uuid_filters {
        if !values.is_empty() {
            builder.push(format_args!(" AND {column} = ANY("));
            builder.push_bind(values.as_slice());
            builder.push(")");
        }
    }
    if !query.external_customer_ids.is_empty() {
        builder.push(
            " AND r.customer_id IN (SELECT c.id FROM customers c WHERE c.organization_id = ANY(",
        );
        builder.push_bind(organization_ids);
        builder.push(") AND c.external_id = ANY(");
        builder.push_bind(query.external_customer_ids.as_slice());
        builder.push("))");
    }
    match query.succeeded {
        Some(true) => builder.push(" AND r.status = 'succeeded'"),
        Some(false) => builder.push(" AND r.status <> 'succeeded'"),
        None => builder,
    };
}

/// Whether the query filters by refund, order, subscription or customer ids.
fn filters_by_ids(query: &ListQuery) -> bool {
    !(query.ids.is_empty()
        && query.order_ids.is_empty()
        && query.subscription_ids.is_empty()
        && query.customer_ids.is_empty()
        && query.external_customer_ids.is_empty())
}

/// `ORDER BY` for the requested criteria. A column already ordered by is skipped (it cannot
/// change the order again), and `id` breaks ties in the direction of the first criterion so
/// that pages are stable.
fn order_by(sorting: &[RefundSort], table: &str) -> String {
    let mut terms: Vec<String> = Vec::new();
    let mut columns: Vec<&str> = Vec::new();
    for sort in sorting {
        let (column, direction) = match sort {
            RefundSort::CreatedAt => ("created_at", "ASC"),
            RefundSort::CreatedAtDesc => ("created_at", "DESC"),
            RefundSort::Amount => ("amount", "ASC"),
            RefundSort::AmountDesc => ("amount", "DESC"),
        };
        if !columns.contains(&column) {
            columns.push(column);
            terms.push(format!("{table}.{column} {direction}"));
        }
    }
    let tie_break = match sorting.first() {
        Some(RefundSort::CreatedAt | RefundSort::Amount) => "ASC",
        _ => "DESC",
    };
    terms.push(format!("{table}.id {tie_break}"));
    format!(" ORDER BY {}", terms.join(", "))
}

/// The page of refunds the query asks for, with their disputes.
const REFUND_COLUMNS: &str = "SELECT r.created_at, r.modified_at, r.id, r.metadata, r.status, r.reason, r.amount, \
         r.tax_amount, r.currency, r.organization_id, r.order_id, r.subscription_id, \
         r.customer_id, r.revoke_benefits, d.id AS dispute_id, \
         d.created_at AS dispute_created_at, d.modified_at AS dispute_modified_at, \
         d.status AS dispute_status, d.amount AS dispute_amount, \
         d.tax_amount AS dispute_tax_amount, d.currency AS dispute_currency, \
         d.reason AS dispute_reason, d.evidence_due_by AS dispute_evidence_due_by, \
         d.payment_id AS dispute_payment_id \
         FROM refunds r LEFT JOIN disputes d \
         ON d.id = r.dispute_id AND d.organization_id = r.organization_id";

fn push_page(builder: &mut QueryBuilder<Postgres>, organization_ids: &[Uuid], query: &ListQuery) {
    builder.push(REFUND_COLUMNS);
    push_filters(builder, organization_ids, query);
    builder.push(order_by(&query.sorting, "r"));
    builder.push(" LIMIT ");
    builder.push_bind(query.limit);
    builder.push(" OFFSET ");
    builder.push_bind((query.page - 1).saturating_mul(query.limit));
}

/// The exact number of refunds the query matches in `organization_ids`, as `total_count`.
/// Filters by `succeeded` alone are answered from the maintained counts (`refund_counts`),
/// which stay as cheap at a million refunds as at ten; narrower filters count their
/// (index-selected) rows.
fn push_count(builder: &mut QueryBuilder<Postgres>, organization_ids: &[Uuid], query: &ListQuery) {
    if filters_by_ids(query) {
        builder.push("SELECT count(*) AS total_count FROM refunds r");
        push_filters(builder, organization_ids, query);
        return;
    }
    let counted = match query.succeeded {
        None => "succeeded + not_succeeded",
        Some(true) => "succeeded",
        Some(false) => "not_succeeded",
    };
    builder.push(format_args!(
        "SELECT coalesce(sum({counted}), 0)::bigint AS total_count FROM refund_counts \
         WHERE organization_id = ANY("
    ));
    builder.push_bind(organization_ids);
    builder.push(")");
}

/// A row of a page: the page's count on every row, and a refund unless the page is empty.
struct PageRow {
    total_count: i64,
    refund: Option<RefundRow>,
}

impl<'r> FromRow<'r, PgRow> for PageRow {
    fn from_row(row: &'r PgRow) -> sqlx::Result<Self> {
        let refund = match row.try_get::<Option<Uuid>, _>("id")? {
            Some(_) => Some(RefundRow::from_row(row)?),
            None => None,
        };
        Ok(Self {
            total_count: row.try_get("total_count")?,
            refund,
        })
    }
}

/// The page of refunds the query asks for and the number it matches in all, read by one
/// statement so that they agree while refunds are being written.
pub async fn list_refunds(
    db: impl PgExecutor<'_>,
    organization_ids: &[Uuid],
    query: &ListQuery,
) -> Result<(Vec<Refund>, i64)> {
    let mut builder = QueryBuilder::new("WITH page AS (");
    push_page(&mut builder, organization_ids, query);
    builder.push("), total AS (");
    push_count(&mut builder, organization_ids, query);
    builder.push(") SELECT total.total_count, page.* FROM total LEFT JOIN page ON true");
    builder.push(order_by(&query.sorting, "page"));
    let rows: Vec<PageRow> = builder.build_query_as().fetch_all(db).await?;
    let total_count = rows.first().map_or(0, |row| row.total_count);
    let refunds = rows
        .into_iter()
        .filter_map(|row| row.refund)
        .map(RefundRow::into_refund)
        .collect::<Result<_>>()?;
    Ok((refunds, total_count))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page and the count alone, as the scoping test reads them.
    fn page_statement(organization_ids: &[Uuid], query: &ListQuery) -> QueryBuilder<Postgres> {
        let mut builder = QueryBuilder::new("");
        push_page(&mut builder, organization_ids, query);
        builder
    }

    fn count_statement(organization_ids: &[Uuid], query: &ListQuery) -> QueryBuilder<Postgres> {
        let mut builder = QueryBuilder::new("");
        push_count(&mut builder, organization_ids, query);
        builder
    }

    /// What tests/api/sql_scoping.rs cannot see in the source: the WHERE clause of every
    /// page and count begins with the organizations, whatever the filters.
    #[test]
    fn every_page_and_count_is_scoped_by_organization_first() {
        let (one, two) = ([Uuid::new_v4()], [Uuid::new_v4(), Uuid::new_v4()]);
        let plain = crate::refunds::input::parse_list_query(None).unwrap();
        let by_customer = ListQuery {
            customer_ids: vec![Uuid::new_v4()],
            external_customer_ids: vec!["cus_1".into()],
            ..plain.clone()
        };
        for query in [&plain, &by_customer] {
            for organizations in [&one[..], &two[..]] {
                for sql in [
                    page_statement(organizations, query).sql(),
                    count_statement(organizations, query).sql(),
                ] {
                    let sql = sql.as_str();
                    let (_, filters) = sql.split_once(" WHERE ").expect(sql);
                    assert!(
                        filters.starts_with("r.organization_id = ")
                            || filters.starts_with("organization_id = ANY("),
                        "{sql}"
                    );
                }
            }
        }
    }

    #[test]
    fn orders_by_each_column_once_with_an_id_tie_break() {
        assert_eq!(
            order_by(&[RefundSort::CreatedAtDesc], "r"),
            " ORDER BY r.created_at DESC, r.id DESC"
        );
        assert_eq!(
            order_by(
                &[
                    RefundSort::Amount,
                    RefundSort::CreatedAtDesc,
                    RefundSort::AmountDesc
                ],
                "r"
            ),
            " ORDER BY r.amount ASC, r.created_at DESC, r.id ASC"
        );
    }
}
