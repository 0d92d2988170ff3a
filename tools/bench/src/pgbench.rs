//! The limits: pgbench running the SQL of one create-refund request, statement for
//! statement (`SCRIPT`), or the minimal transaction (`crate::minimal`), and reading back the
//! latency of every transaction from its logs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use tokio::process::Command;

use crate::load::new_histogram;

/// The variables of `SCRIPT`: the create-load organization's token and orders.
pub fn server_sql_defines(
    token_hash_hex: &str,
    organization_id: uuid::Uuid,
    orders: usize,
) -> Vec<String> {
    vec![
        format!("norders={orders}"),
        format!("token_hash=\\x{token_hash_hex}"),
        format!("organization_ids={{{organization_id}}}"),
        "new_status=partially_refunded".into(),
    ]
}

/// One create-refund request's SQL, copied from `src/auth/repo.rs` (`find_active_token`),
/// `src/orders/repo.rs` (`lock_for_refund`, `update_refund_totals`) and
/// `src/refunds/repo.rs` (`insert_refund`), in the order `service::create_refund` runs it.
///
/// Differences, none of which changes the work PostgreSQL does per statement:
/// - the order id comes from `(SELECT id FROM bench_orders WHERE n = :n)`, a random order
///   of the create-load organization: one primary-key lookup more than the server does;
/// - column aliases are plain names (`\gset` stores the locked order's columns in
///   variables, which the INSERT and UPDATE then pass as parameters, as the server does);
/// - the refund id is `gen_random_uuid()` and the constants (status, reason, processor,
///   NULL dispute and comment, empty metadata) are literals, not parameters;
///   `subscription_id` goes through `NULLIF(:subscription_id, '')::uuid` because `\gset`
///   stores NULL as an empty string.
/// - the new counters are computed by pgbench (`\set`), the status is the constant
///   `partially_refunded` (what the server computes for these small refunds).
pub const SCRIPT: &str = r#"\set n random(1, :norders)
\set amount random(1, 10)
SELECT t.organization_id, t.user_id, t.scopes,
       CASE WHEN t.kind = 'organization' THEN ARRAY[t.organization_id]
            ELSE ARRAY(SELECT m.organization_id FROM memberships m WHERE m.user_id = t.user_id)
       END AS organization_ids
FROM access_tokens t
WHERE t.token_hash = :token_hash
  AND t.revoked_at IS NULL
  AND (t.expires_at IS NULL OR t.expires_at > now());
BEGIN;
SELECT o.id, o.organization_id, o.customer_id, o.subscription_id, o.status, o.currency,
       (o.refunds_blocked OR g.refunds_blocked) AS refunds_blocked,
       o.net_amount, o.tax_amount, o.applied_balance_amount,
       o.refunded_amount, o.refunded_tax_amount, o.pending_amount, o.pending_tax_amount,
       (SELECT p.id FROM payments p
         WHERE p.order_id = o.id AND p.status = 'succeeded'
         ORDER BY p.created_at LIMIT 1) AS payment_id,
       EXISTS (SELECT 1 FROM disputes d
                WHERE d.order_id = o.id
                  AND d.status NOT IN ('prevented', 'won', 'lost')) AS has_open_dispute
FROM orders o
JOIN organizations g ON g.id = o.organization_id
WHERE o.id = (SELECT id FROM bench_orders WHERE n = :n) AND o.organization_id = ANY(:organization_ids)
FOR UPDATE OF o
\gset
\set tax (2 * :amount * :tax_amount + :net_amount) / (2 * :net_amount)
\set refunded :refunded_amount + :amount
\set refunded_tax :refunded_tax_amount + :tax
INSERT INTO refunds (id, organization_id, order_id, customer_id, subscription_id,
                     payment_id, dispute_id, status, reason, amount, tax_amount, currency,
                     comment, processor, processor_id, revoke_benefits, metadata)
VALUES (gen_random_uuid(), :organization_id, :id, :customer_id, NULLIF(:subscription_id, '')::uuid,
        :payment_id, NULL, 'succeeded', 'customer_request', :amount, :tax, :currency,
        NULL, 'sandbox', 'sandbox_re_' || md5(random()::text), false, '{}')
RETURNING created_at;
UPDATE orders
SET refunded_amount = :refunded, refunded_tax_amount = :refunded_tax,
    pending_amount = :pending_amount, pending_tax_amount = :pending_tax_amount,
    status = :new_status, modified_at = now()
WHERE id = :id;
COMMIT;
"#;

pub struct PgbenchParams<'a> {
    pub binary: &'a Path,
    pub database_url: &'a str,
    pub script: &'a Path,
    pub clients: u32,
    pub threads: u32,
    pub duration: Duration,
    /// The script's variables, `name=value` (pgbench's `--define`).
    pub defines: &'a [String],
    /// Per-transaction log files go to `<log_prefix>.<pid>[.<thread>]`; `None` logs nothing.
    pub log_prefix: Option<&'a Path>,
}

pub struct PgbenchResult {
    pub tps: f64,
    pub transactions: u64,
    pub failed: u64,
    /// Microseconds per transaction, from the log.
    pub latencies: Histogram<u64>,
}

pub fn find_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PGBENCH") {
        return path.into();
    }
    let packaged = Path::new("/usr/lib/postgresql/15/bin/pgbench");
    if packaged.exists() {
        packaged.into()
    } else {
        "pgbench".into()
    }
}

pub async fn run(params: &PgbenchParams<'_>) -> Result<PgbenchResult> {
    let mut command = Command::new(params.binary);
    refunds_server_process::die_with_parent(&mut command);
    command
        .arg("--no-vacuum")
        .args(["--protocol", "prepared"])
        .args(["--client", &params.clients.to_string()])
        .args(["--jobs", &params.threads.to_string()])
        .args(["--time", &params.duration.as_secs().max(1).to_string()])
        .args(["--file", &params.script.to_string_lossy()]);
    for define in params.defines {
        command.args(["--define", define]);
    }
    if let Some(prefix) = params.log_prefix {
        command
            .arg("--log")
            .arg(format!("--log-prefix={}", prefix.display()));
    }
    command
        .arg(params.database_url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .with_context(|| format!("spawning {}", params.binary.display()))?;
    let output = tokio::time::timeout(
        params.duration + Duration::from_secs(120),
        child.wait_with_output(),
    )
    .await
    .context("pgbench did not finish in time")??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("pgbench failed ({}):\n{stdout}\n{stderr}", output.status);
    }
    let tps = stdout
        .lines()
        .find(|line| line.starts_with("tps = "))
        .and_then(|line| line["tps = ".len()..].split_whitespace().next())
        .and_then(|value| value.parse::<f64>().ok())
        .with_context(|| format!("no tps in pgbench's output:\n{stdout}"))?;
    let count_after = |label: &str| -> u64 {
        stdout
            .lines()
            .find(|line| line.starts_with(label))
            .and_then(|line| line[label.len()..].split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    let failed = count_after("number of failed transactions:");
    let transactions = count_after("number of transactions actually processed:");
    let latencies = match params.log_prefix {
        Some(prefix) => read_logs(prefix)?,
        None => new_histogram(),
    };
    Ok(PgbenchResult {
        tps,
        transactions,
        failed,
        latencies,
    })
}

/// Reads pgbench's per-transaction logs (`client_id transaction_no time script_no
/// time_epoch time_us …`, time in µs) and deletes them.
fn read_logs(prefix: &Path) -> Result<Histogram<u64>> {
    let directory = prefix.parent().context("log prefix without a directory")?;
    let stem = prefix
        .file_name()
        .context("log prefix without a name")?
        .to_string_lossy()
        .into_owned();
    let mut histogram = new_histogram();
    let mut files = 0;
    for entry in std::fs::read_dir(directory)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !name.starts_with(&format!("{stem}.")) {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path)?;
        for line in text.lines() {
            let Some(time) = line.split_whitespace().nth(2) else {
                continue;
            };
            // "failed" or "skipped" instead of a time: counted by pgbench's summary.
            if let Ok(micros) = time.parse::<u64>() {
                histogram.saturating_record(micros.max(1));
            }
        }
        std::fs::remove_file(&path)?;
    }
    if files == 0 {
        bail!("pgbench wrote no log file under {}", prefix.display());
    }
    Ok(histogram)
}
