//! [stripe]: refunds through the Stripe connector, against the fake Stripe, while the
//! server is killed with SIGKILL again and again (several times while calls to Stripe are
//! in flight) and the fake breaks, delays or refuses a share of the calls. Once recovery has
//! run: every refund of ours is exactly one refund at Stripe carrying its id, and nothing
//! else is there; per charge, our succeeded refunds sum to what Stripe refunded; nothing is
//! left pending; every order's counters equal the sum of its refunds (the invariant).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fake_stripe::{FakeStripe, Faults, RefundMode, Settings};
use rand::Rng;
use serde_json::json;
use uuid::Uuid;

use super::common::{Load, LoadConfig, Target, tally};
use crate::Ctx;
use crate::client::{self, Admin};
use crate::report::{Latencies, Report, ms};

const SECRET_KEY: &str = "sk_test_reliability";
const WEBHOOK_SECRET: &str = "whsec_reliability";

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let kills = 10;
    let fake = FakeStripe::start(
        "127.0.0.1:0".parse()?,
        Settings {
            secret_key: SECRET_KEY.into(),
            webhook_secret: WEBHOOK_SECRET.into(),
        },
    )
    .await?;
    fake.set_faults(Faults {
        server_error: 0.05,
        reset_after: 0.08,
        hang_after: 0.05,
        hang: Duration::from_secs(3),
        slow: 0.2,
        slow_delay: Duration::from_millis(400),
        dropped_webhooks: 0.3,
    });
    let mut options = ctx.options();
    options.request_timeout = 10;
    options.extra_env = [
        ("REFUNDS_PROCESSOR", "stripe".to_owned()),
        ("STRIPE_SECRET_KEY", SECRET_KEY.to_owned()),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("STRIPE_API_BASE", fake.url()),
        ("STRIPE_TIMEOUT_MS", "1000".to_owned()),
        ("REFUNDS_RECOVERY_AFTER_MS", "1500".to_owned()),
        ("REFUNDS_RECOVERY_INTERVAL_MS", "300".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    let webhook_url = |base: &str| format!("{base}/v1/integrations/stripe/webhook");
    let mut server = ctx.start_server("stripe", &options).await?;
    fake.set_webhook_url(&webhook_url(&server.url));

    let admin = Admin::new(&server.url, &ctx.admin_token);
    let tenant = admin.tenant("stripe", 3).await?;
    let mut orders = Vec::new();
    let mut charges = HashMap::new();
    for i in 0..12 {
        let (net, tax) = if i % 2 == 0 {
            (30_000, 0)
        } else {
            (20_000, 5_000)
        };
        let charge = format!("ch_rel_{i}_{}", Uuid::new_v4().simple());
        fake.add_charge(&charge, net + tax, "usd");
        let order = admin
            .post(
                "/admin/orders",
                json!({
                    "organization_id": tenant.org, "customer_id": tenant.customers[i % 3],
                    "net_amount": net, "tax_amount": tax, "currency": "usd",
                    "payment": {"processor": "stripe", "processor_id": charge},
                }),
            )
            .await?;
        let id: Uuid = order["id"].as_str().context("order id")?.parse()?;
        charges.insert(id, charge);
        orders.push((id, 3_000));
    }

    let http = client::http_client(Duration::from_secs(20));
    let target: Target = std::sync::Arc::new(tokio::sync::RwLock::new(Some(server.url.clone())));
    let load = Load::start(
        &http,
        &target,
        LoadConfig {
            workers: 8,
            orders,
            token: tenant.token.clone(),
            retries: 0,
            retry_delay: Duration::ZERO,
            pause: Duration::ZERO,
            max_duration: Duration::from_secs(120),
        },
        ctx.seed,
    );
    let mut rng = ctx.rng("stripe");
    let mut restarts = Latencies::default();
    let mut kills_in_flight = 0;
    let started = Instant::now();
    for kill in 0..kills {
        // Half the time Stripe answers pending and settles by webhook a little later.
        fake.set_mode(if rng.random_bool(0.5) {
            RefundMode::Pending {
                settle_after: Duration::from_millis(rng.random_range(50..800)),
                settle_to: if rng.random_bool(0.9) {
                    "succeeded"
                } else {
                    "failed"
                },
            }
        } else {
            RefundMode::Succeeded
        });
        tokio::time::sleep(Duration::from_millis(rng.random_range(600..1_200))).await;
        // Most kills wait (briefly) for a call to Stripe to be in flight.
        let wait_until = Instant::now() + Duration::from_millis(500);
        while kill % 3 != 2 && fake.counters().in_flight == 0 && Instant::now() < wait_until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let in_flight = fake.counters().in_flight;
        *target.write().await = None;
        server.kill().await?;
        if in_flight > 0 {
            kills_in_flight += 1;
        }
        let down = Instant::now();
        server = ctx.start_server("stripe", &options).await?;
        fake.set_webhook_url(&webhook_url(&server.url));
        restarts.push(down.elapsed());
        *target.write().await = Some(server.url.clone());
        report.figure(format!(
            "kill {}: {in_flight} calls to Stripe in flight; listening again after {}",
            kill + 1,
            ms(down.elapsed())
        ));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logicals = load.finish().await;
    let (counts, latencies) = tally(&logicals);
    report.figure(format!(
        "{kills} kills ({kills_in_flight} with calls to Stripe in flight) in {:.1} s; requests {}",
        started.elapsed().as_secs_f64(),
        counts.summary()
    ));
    report.figure(format!(
        "answer latency {}; restart {}",
        latencies.summary(),
        restarts.summary()
    ));
    report.check(
        kills_in_flight >= 3,
        format!("only {kills_in_flight} kills hit calls in flight"),
    );

    // Recovery: no more faults; wait until nothing is pending and every webhook is in.
    fake.set_faults(Faults::default());
    let recovering = Instant::now();
    let pending = loop {
        let (pending,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM refunds WHERE status = 'pending'")
                .fetch_one(&ctx.pool)
                .await?;
        if (pending == 0 && fake.undelivered_webhooks() == 0)
            || recovering.elapsed() > Duration::from_secs(60)
        {
            break pending;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    report.figure(format!(
        "recovery: nothing pending {} after the load stopped",
        ms(recovering.elapsed())
    ));
    report.check(pending == 0, format!("{pending} refunds still pending"));
    report.check(
        fake.undelivered_webhooks() == 0,
        format!("{} webhooks undelivered", fake.undelivered_webhooks()),
    );

    let ours: Vec<(Uuid, Uuid, String, i64)> = sqlx::query_as(
        "SELECT id, order_id, status, amount + tax_amount FROM refunds WHERE processor = 'stripe'",
    )
    .fetch_all(&ctx.pool)
    .await?;
    let at_stripe = fake.refunds();
    let mut by_refund_id: HashMap<String, Vec<&fake_stripe::RefundObject>> = HashMap::new();
    for refund in &at_stripe {
        by_refund_id
            .entry(
                refund
                    .metadata
                    .get("refund_id")
                    .cloned()
                    .unwrap_or_default(),
            )
            .or_default()
            .push(refund);
    }
    let mut not_exactly_one = 0;
    let mut status_differs = 0;
    let mut ours_succeeded: HashMap<&str, i64> = HashMap::new();
    for (id, order_id, status, total) in &ours {
        match by_refund_id.get(&id.to_string()).map(Vec::as_slice) {
            Some([one]) => {
                if &one.status != status || one.amount != *total {
                    status_differs += 1;
                }
            }
            _ => not_exactly_one += 1,
        }
        if status == "succeeded" {
            *ours_succeeded
                .entry(charges[order_id].as_str())
                .or_default() += total;
        }
    }
    let ours_ids: std::collections::HashSet<String> =
        ours.iter().map(|(id, ..)| id.to_string()).collect();
    let orphans = at_stripe
        .iter()
        .filter(|refund| {
            !refund
                .metadata
                .get("refund_id")
                .is_some_and(|id| ours_ids.contains(id))
        })
        .count();
    let charges_differing = charges
        .values()
        .filter(|charge| {
            fake.refunded(charge) != ours_succeeded.get(charge.as_str()).copied().unwrap_or(0)
        })
        .count();
    let stripe = fake.counters();
    report.figure(format!(
        "{} refunds of ours ({} succeeded, {} failed), {} at Stripe; exactly one at Stripe for \
         {} of them; statuses differing {status_differs}; Stripe refunds without a refund of \
         ours {orphans}; charges whose refunded sum differs {charges_differing} of {}",
        ours.len(),
        ours.iter()
            .filter(|(_, _, status, _)| status == "succeeded")
            .count(),
        ours.iter()
            .filter(|(_, _, status, _)| status == "failed")
            .count(),
        at_stripe.len(),
        ours.len() - not_exactly_one,
        charges.len(),
    ));
    report.figure(format!(
        "Stripe saw {} refund calls: {} replayed by idempotency key, {} in-flight conflicts, \
         {} idempotency errors, {} faults injected; {} webhooks delivered, {} dropped, {} \
         delivery attempts refused or cut off",
        stripe.refund_requests,
        stripe.replays,
        stripe.in_flight_conflicts,
        stripe.idempotency_errors,
        stripe.faults,
        stripe.webhooks_delivered,
        stripe.webhooks_dropped,
        stripe.webhook_attempts_refused,
    ));
    report.check(!ours.is_empty(), "no refunds were made");
    report.check(
        not_exactly_one == 0,
        format!("{not_exactly_one} refunds of ours are not exactly one Stripe refund"),
    );
    report.check(
        orphans == 0,
        format!("{orphans} Stripe refunds are not ours"),
    );
    report.check(
        status_differs == 0,
        format!("{status_differs} refunds differ from Stripe's in status or amount"),
    );
    report.check(
        charges_differing == 0,
        format!("{charges_differing} charges: our succeeded refunds do not sum to Stripe's"),
    );
    report.check(
        stripe.idempotency_errors == 0,
        "a retried call changed its parameters",
    );
    server.kill().await?;
    Ok(())
}
