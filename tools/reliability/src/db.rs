//! The suite's own database (created fresh, dropped at the end) and the checks made with
//! SQL directly against it.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Row};
use uuid::Uuid;

/// `postgres://user@host:port/other?x=y` with its database name replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[authority_start..]
        .find('/')
        .map(|i| i + authority_start)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..path_start], database);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

pub async fn create_database(base_url: &str, name: &str) -> Result<()> {
    let mut conn = connect_once(base_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .with_context(|| format!("CREATE DATABASE {name}"))?;
    conn.close().await.ok();
    Ok(())
}

pub async fn drop_database(base_url: &str, name: &str) -> Result<()> {
    let mut conn = connect_once(base_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .with_context(|| format!("DROP DATABASE {name}"))?;
    conn.close().await.ok();
    Ok(())
}

async fn connect_once(url: &str) -> Result<sqlx::PgConnection> {
    let options: PgConnectOptions = url.parse().context("DATABASE_URL")?;
    tokio::time::timeout(Duration::from_secs(10), options.connect())
        .await
        .context("connecting to PostgreSQL timed out")?
        .with_context(|| format!("connecting to {url}"))
}

/// Whether PostgreSQL at `url` accepts a connection and answers a query.
pub async fn is_ready(url: &str) -> bool {
    let Ok(options) = url.parse::<PgConnectOptions>() else {
        return false;
    };
    let attempt = async {
        let mut conn = options.connect().await.ok()?;
        sqlx::query("SELECT 1").execute(&mut conn).await.ok()?;
        conn.close().await.ok();
        Some(())
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(()))
    )
}

pub async fn pool(url: &str) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// The result of checking the money invariant over every order of the database.
#[derive(Debug, Default)]
pub struct InvariantReport {
    pub orders: usize,
    pub refunds: i64,
    pub violations: Vec<String>,
}

/// For every order: refunded = Σ succeeded refunds, pending = Σ pending refunds (net and
/// tax), refunded + pending ≤ what was paid (net + applied balance; tax ≤ the order's tax),
/// nothing negative, and the status follows the refunded amount. Every refund belongs to
/// its order's customer and currency.
pub async fn check_invariant(pool: &PgPool) -> Result<InvariantReport> {
    let rows = sqlx::query(
        r#"
        WITH sums AS (
            SELECT order_id,
                   COALESCE(SUM(amount) FILTER (WHERE status = 'succeeded'), 0)::bigint AS s_amount,
                   COALESCE(SUM(tax_amount) FILTER (WHERE status = 'succeeded'), 0)::bigint AS s_tax,
                   COALESCE(SUM(amount) FILTER (WHERE status = 'pending'), 0)::bigint AS p_amount,
                   COALESCE(SUM(tax_amount) FILTER (WHERE status = 'pending'), 0)::bigint AS p_tax,
                   COUNT(*) FILTER (WHERE amount < 0 OR tax_amount < 0) AS negative,
                   COUNT(*) AS n
            FROM refunds GROUP BY order_id
        )
        SELECT o.id, o.status, o.net_amount, o.tax_amount, o.applied_balance_amount,
               o.refunded_amount, o.refunded_tax_amount, o.pending_amount, o.pending_tax_amount,
               COALESCE(s.s_amount, 0)::bigint AS s_amount, COALESCE(s.s_tax, 0)::bigint AS s_tax,
               COALESCE(s.p_amount, 0)::bigint AS p_amount, COALESCE(s.p_tax, 0)::bigint AS p_tax,
               COALESCE(s.negative, 0)::bigint AS negative, COALESCE(s.n, 0)::bigint AS n
        FROM orders o LEFT JOIN sums s ON s.order_id = o.id
        "#,
    )
    .fetch_all(pool)
    .await
    .context("invariant query")?;
    let mut report = InvariantReport {
        orders: rows.len(),
        ..Default::default()
    };
    for row in rows {
        let id: Uuid = row.get("id");
        let status: String = row.get("status");
        let get = |name: &str| -> i64 { row.get(name) };
        let (net, tax, balance) = (
            get("net_amount"),
            get("tax_amount"),
            get("applied_balance_amount"),
        );
        let (refunded, refunded_tax, pending, pending_tax) = (
            get("refunded_amount"),
            get("refunded_tax_amount"),
            get("pending_amount"),
            get("pending_tax_amount"),
        );
        let (s_amount, s_tax, p_amount, p_tax) =
            (get("s_amount"), get("s_tax"), get("p_amount"), get("p_tax"));
        report.refunds += get("n");
        let paid = (net + balance).max(0);
        let mut problems = Vec::new();
        if refunded != s_amount {
            problems.push(format!(
                "refunded_amount {refunded} != Σ succeeded amount {s_amount}"
            ));
        }
        if refunded_tax != s_tax {
            problems.push(format!(
                "refunded_tax_amount {refunded_tax} != Σ succeeded tax {s_tax}"
            ));
        }
        if pending != p_amount {
            problems.push(format!(
                "pending_amount {pending} != Σ pending amount {p_amount}"
            ));
        }
        if pending_tax != p_tax {
            problems.push(format!(
                "pending_tax_amount {pending_tax} != Σ pending tax {p_tax}"
            ));
        }
        if s_amount + p_amount > paid {
            problems.push(format!(
                "refunds {s_amount} + pending {p_amount} exceed what was paid {paid}"
            ));
        }
        if s_tax + p_tax > tax {
            problems.push(format!(
                "refunded tax {s_tax} + pending tax {p_tax} exceed the order's tax {tax}"
            ));
        }
        if [
            refunded,
            refunded_tax,
            pending,
            pending_tax,
            s_amount,
            s_tax,
            p_amount,
            p_tax,
        ]
        .iter()
        .any(|value| *value < 0)
            || get("negative") > 0
        {
            problems.push("a negative amount".to_owned());
        }
        let expected_status = if refunded == 0 {
            "paid"
        } else if refunded >= net + balance {
            "refunded"
        } else {
            "partially_refunded"
        };
        if ["paid", "partially_refunded", "refunded"].contains(&status.as_str())
            && status != expected_status
        {
            problems.push(format!(
                "status {status} but refunded {refunded} of {} (expected {expected_status})",
                net + balance
            ));
        }
        if !problems.is_empty() {
            report.violations.push(format!(
                "order {id} (net {net}, tax {tax}, balance {balance}): {}",
                problems.join("; ")
            ));
        }
    }
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM refunds r JOIN orders o ON o.id = r.order_id \
         WHERE r.customer_id <> o.customer_id OR r.currency <> o.currency \
            OR r.organization_id <> o.organization_id",
    )
    .fetch_one(pool)
    .await?;
    if mismatched > 0 {
        report.violations.push(format!(
            "{mismatched} refunds whose customer, currency or organization differ from their order's"
        ));
    }
    Ok(report)
}

/// A refund as stored, found by the suite's per-request marker (`metadata.rel_marker`).
#[derive(Debug, Clone)]
pub struct StoredRefund {
    pub id: Uuid,
    pub order_id: Uuid,
    pub amount: i64,
    pub reason: String,
    pub metadata: Value,
}

/// Every refund of `organization_id` that carries a marker, grouped by marker.
pub async fn refunds_by_marker(
    pool: &PgPool,
    organization_id: Uuid,
) -> Result<HashMap<String, Vec<StoredRefund>>> {
    let rows = sqlx::query(
        "SELECT id, order_id, amount, reason, metadata, metadata->>'rel_marker' AS marker \
         FROM refunds WHERE organization_id = $1 AND metadata ? 'rel_marker'",
    )
    .bind(organization_id)
    .fetch_all(pool)
    .await?;
    let mut out: HashMap<String, Vec<StoredRefund>> = HashMap::new();
    for row in rows {
        let marker: String = row.get("marker");
        out.entry(marker).or_default().push(StoredRefund {
            id: row.get("id"),
            order_id: row.get("order_id"),
            amount: row.get("amount"),
            reason: row.get("reason"),
            metadata: row.get("metadata"),
        });
    }
    Ok(out)
}

/// The order's counters: (refunded, refunded tax, pending, pending tax, status).
pub struct OrderState {
    pub net_amount: i64,
    pub tax_amount: i64,
    pub applied_balance_amount: i64,
    pub refunded_amount: i64,
    pub refunded_tax_amount: i64,
    pub pending_amount: i64,
    pub status: String,
    pub refunds: i64,
}

impl OrderState {
    /// Net amount still refundable.
    pub fn remaining(&self) -> i64 {
        (self.net_amount + self.applied_balance_amount - self.refunded_amount - self.pending_amount)
            .max(0)
    }
}

pub async fn order_states(pool: &PgPool, ids: &[Uuid]) -> Result<HashMap<Uuid, OrderState>> {
    let rows = sqlx::query(
        "SELECT o.id, o.net_amount, o.tax_amount, o.applied_balance_amount, o.refunded_amount, \
                o.refunded_tax_amount, o.pending_amount, o.status, \
                (SELECT count(*) FROM refunds r WHERE r.order_id = o.id) AS refunds \
         FROM orders o WHERE o.id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                row.get("id"),
                OrderState {
                    net_amount: row.get("net_amount"),
                    tax_amount: row.get("tax_amount"),
                    applied_balance_amount: row.get("applied_balance_amount"),
                    refunded_amount: row.get("refunded_amount"),
                    refunded_tax_amount: row.get("refunded_tax_amount"),
                    pending_amount: row.get("pending_amount"),
                    status: row.get("status"),
                    refunds: row.get("refunds"),
                },
            )
        })
        .collect())
}

/// How many refunds the organizations hold (isolation checks).
pub async fn refund_count(pool: &PgPool, organization_id: Uuid) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM refunds WHERE organization_id = $1")
            .bind(organization_id)
            .fetch_one(pool)
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
