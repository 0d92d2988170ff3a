//! [race] and [instances]: concurrent refunds of the same orders, through one server or
//! spread over three processes on the same database.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::Value;
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::Ctx;
use crate::client::{self, Admin, OrderSpec, Outcome, Tenant};
use crate::db;
use crate::report::{Counts, Latencies, Report, ms};
use refunds_server_process::ServerProcess;

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let server = ctx.start_server("race", &ctx.options()).await?;
    report.figure(format!(
        "1 server (pid {}, started in {})",
        server.pid,
        ms(server.startup)
    ));
    race_suite(ctx, report, std::slice::from_ref(&server), "race").await
}

pub async fn run_instances(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let mut options = ctx.options();
    options.max_connections = 8;
    let mut servers: Vec<ServerProcess> = Vec::new();
    for _ in 0..3 {
        servers.push(ctx.start_server("instances", &options).await?);
    }
    report.figure(format!(
        "3 servers on one database (pids {}), pool of {} connections each",
        servers
            .iter()
            .map(|s| s.pid.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        options.max_connections
    ));
    race_suite(ctx, report, &servers, "instances").await?;
    for server in &mut servers {
        report.check(
            server.exited().is_none(),
            format!("server {} died during the scenario", server.pid),
        );
    }
    Ok(())
}

async fn race_suite(
    ctx: &Ctx,
    report: &mut Report,
    servers: &[ServerProcess],
    label: &str,
) -> Result<()> {
    let bases: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let admin = Admin::new(&bases[0], &ctx.admin_token);
    let tenant = admin.tenant(label, 4).await?;
    let http = client::http_client(Duration::from_secs(60));

    // The fixed race: 50 × 300 against 10,000 → 33 succeed, 17 are refused.
    for (tax, name) in [(0, "untaxed"), (2_500, "taxed")] {
        let order = admin
            .order(
                tenant.org,
                tenant.customers[0],
                OrderSpec::simple(10_000, tax),
            )
            .await?;
        let requests: Vec<RaceRequest> = (0..50)
            .map(|_| RaceRequest::new(0, order, 300, "customer_request"))
            .collect();
        let started = Instant::now();
        let outcomes = fire(&http, &bases, &tenant.token, &requests).await;
        let elapsed = started.elapsed();
        let mut counts = Counts::default();
        let mut latencies = Latencies::default();
        for (outcome, latency) in &outcomes {
            counts.add(outcome.label());
            latencies.push(*latency);
        }
        let state = db::order_states(&ctx.pool, &[order]).await?;
        let state = &state[&order];
        report.figure(format!(
            "fixed race ({name}, net 10,000, tax {tax}): 50 × 300 in {} -> {}; latency {}; \
             order refunded {} + tax {}",
            ms(elapsed),
            counts.summary(),
            latencies.summary(),
            state.refunded_amount,
            state.refunded_tax_amount
        ));
        report.check(
            counts.get("201") == 33 && counts.get("422") == 17 && counts.total() == 50,
            format!(
                "fixed race ({name}): expected exactly 33 × 201 and 17 × 422, got {}",
                counts.summary()
            ),
        );
        report.check(
            state.refunded_amount == 9_900 && state.refunds == 33,
            format!(
                "fixed race ({name}): order shows {} refunded in {} refunds, expected 9,900 in 33",
                state.refunded_amount, state.refunds
            ),
        );
        let expected_tax = if tax == 0 { 0 } else { 33 * 75 };
        report.check(
            state.refunded_tax_amount == expected_tax,
            format!(
                "fixed race ({name}): refunded tax {} expected {expected_tax}",
                state.refunded_tax_amount
            ),
        );
    }

    // Random rounds.
    let rounds = if ctx.full { 200 } else { 50 };
    let mut rng = ctx.rng(label);
    let mut totals = RoundTotals::default();
    let started = Instant::now();
    for round in 0..rounds {
        let failures_before = report.failures.len();
        race_round(
            ctx,
            &admin,
            &http,
            &bases,
            &tenant,
            &mut rng,
            &mut totals,
            report,
        )
        .await?;
        // Per round: the whole database's invariant, not only this round's orders.
        let invariant = db::check_invariant(&ctx.pool).await?;
        for violation in invariant.violations.iter().take(5) {
            report.fail(format!("round {round}: invariant: {violation}"));
        }
        if report.failures.len() > failures_before + 20 {
            report.fail("too many failures, stopping the rounds");
            break;
        }
        totals.rounds += 1;
    }
    let elapsed = started.elapsed();
    report.figure(format!(
        "random rounds: {} rounds in {:.1} s, {} orders ({} taxed, {} with applied balance, \
         {} subscriptions), {} fully refunded",
        totals.rounds,
        elapsed.as_secs_f64(),
        totals.orders,
        totals.taxed,
        totals.with_balance,
        totals.subscriptions,
        totals.fully_refunded
    ));
    report.figure(format!(
        "random rounds: requests {}",
        totals.counts.summary()
    ));
    report.figure(format!(
        "random rounds: 201 latency {}; all answers {}",
        totals.created_latency.summary(),
        totals.latency.summary()
    ));
    report.figure(format!(
        "random rounds: refunded {} net + {} tax in {} refunds; the invariant held after each round",
        totals.refunded, totals.refunded_tax, totals.created
    ));
    if totals.adjusted > 0 {
        report.figure(format!(
            "random rounds: {} refunds got a net amount other than requested (tax split rounding)",
            totals.adjusted
        ));
    }
    if !totals.tax_left_on_full.is_empty() {
        report.warn(format!(
            "{} orders whose net was fully refunded kept part of their tax, e.g. {}",
            totals.tax_left_on_full.len(),
            totals.tax_left_on_full[0]
        ));
    }
    let unexpected = totals.counts.others(&["201", "422", "403"]);
    report.check(
        unexpected == 0,
        format!("{unexpected} answers other than 201, 422 or 403"),
    );
    Ok(())
}

#[derive(Clone)]
struct RaceRequest {
    order_index: usize,
    order_id: Uuid,
    amount: i64,
    body: Value,
}

impl RaceRequest {
    fn new(order_index: usize, order_id: Uuid, amount: i64, reason: &str) -> Self {
        let marker = Uuid::new_v4().simple().to_string();
        Self {
            order_index,
            order_id,
            amount,
            body: client::refund_body(order_id, amount, reason, &marker),
        }
    }
}

/// Sends every request at once (all wait on one barrier), each on its own task, spread
/// over `bases` round-robin.
async fn fire(
    http: &reqwest::Client,
    bases: &[String],
    token: &str,
    requests: &[RaceRequest],
) -> Vec<(Outcome, Duration)> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let handles: Vec<_> = requests
        .iter()
        .enumerate()
        .map(|(i, request)| {
            let barrier = barrier.clone();
            let builder =
                client::refund_request(http, &bases[i % bases.len()], token, &request.body);
            tokio::spawn(async move {
                barrier.wait().await;
                client::send(builder).await
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(handles.len());
    for handle in handles {
        outcomes.push(
            handle
                .await
                .unwrap_or((Outcome::Transport("task failed".into()), Duration::ZERO)),
        );
    }
    outcomes
}

#[derive(Default)]
struct RoundTotals {
    rounds: usize,
    orders: usize,
    taxed: usize,
    with_balance: usize,
    subscriptions: usize,
    fully_refunded: usize,
    counts: Counts,
    latency: Latencies,
    created_latency: Latencies,
    created: usize,
    refunded: i64,
    refunded_tax: i64,
    adjusted: usize,
    tax_left_on_full: Vec<String>,
}

fn random_order(rng: &mut StdRng) -> OrderSpec {
    // Mostly 1..100,000; sometimes tiny, where the tax split's rounding matters most.
    let net = if rng.random_bool(0.1) {
        rng.random_range(1..=20)
    } else {
        rng.random_range(1..=100_000)
    };
    let tax = if rng.random_bool(0.5) {
        0
    } else if rng.random_bool(0.7) {
        let rate: f64 = rng.random_range(0.01..0.30);
        ((net as f64 * rate).round() as i64).max(1)
    } else {
        rng.random_range(1..=net.max(1))
    };
    // Applied customer balance: usually none, sometimes added, sometimes taken off (never
    // more than the order's total, which the admin API refuses).
    let balance = match rng.random_range(0..10) {
        0 | 1 => rng.random_range(1..=5_000),
        2 => -rng.random_range(0..=(net + tax)),
        _ => 0,
    };
    let subscription = rng.random_bool(0.3).then(Uuid::new_v4);
    OrderSpec {
        net,
        tax,
        balance,
        subscription,
    }
}

fn random_amount(rng: &mut StdRng, paid: i64) -> i64 {
    let paid = paid.max(1);
    match rng.random_range(0..100) {
        0..45 => rng.random_range(1..=(paid / 8).max(1)),
        45..70 => rng.random_range(1..=(paid / 3).max(1)),
        70..85 => rng.random_range(1..=paid),
        85..95 => paid,
        _ => paid + rng.random_range(1..=100),
    }
}

#[allow(clippy::too_many_arguments)]
async fn race_round(
    ctx: &Ctx,
    admin: &Admin,
    http: &reqwest::Client,
    bases: &[String],
    tenant: &Tenant,
    rng: &mut StdRng,
    totals: &mut RoundTotals,
    report: &mut Report,
) -> Result<()> {
    let order_count = rng.random_range(2..=5);
    let mut orders: Vec<(Uuid, OrderSpec)> = Vec::new();
    for _ in 0..order_count {
        let spec = random_order(rng);
        let customer = tenant.customers[rng.random_range(0..tenant.customers.len())];
        let id = admin.order(tenant.org, customer, spec).await?;
        totals.orders += 1;
        totals.taxed += usize::from(spec.tax > 0);
        totals.with_balance += usize::from(spec.balance != 0);
        totals.subscriptions += usize::from(spec.subscription.is_some());
        orders.push((id, spec));
    }
    let request_count = rng.random_range(16..=40);
    let requests: Vec<RaceRequest> = (0..request_count)
        .map(|_| {
            let index = rng.random_range(0..orders.len());
            let (id, spec) = orders[index];
            let amount = random_amount(rng, spec.paid_net());
            let reason = client::REASONS[rng.random_range(0..client::REASONS.len())];
            RaceRequest::new(index, id, amount, reason)
        })
        .collect();
    let mut requests = requests;
    let mut outcomes = fire(http, bases, &tenant.token, &requests).await;

    // A second burst at the edge: what is left exactly, one more, one less and parts of it,
    // all at once, so that orders end fully refunded through every path.
    let ids: Vec<Uuid> = orders.iter().map(|(id, _)| *id).collect();
    let middle = db::order_states(&ctx.pool, &ids).await?;
    let mut edge = Vec::new();
    for (index, (id, _)) in orders.iter().enumerate() {
        let left = middle.get(id).map(|state| state.remaining()).unwrap_or(0);
        if left == 0 || !rng.random_bool(0.8) {
            continue;
        }
        for amount in [left, left + 1, left - 1, left / 2, left / 3] {
            if amount >= 1 {
                let reason = client::REASONS[rng.random_range(0..client::REASONS.len())];
                edge.push(RaceRequest::new(index, *id, amount, reason));
            }
        }
    }
    if !edge.is_empty() {
        outcomes.extend(fire(http, bases, &tenant.token, &edge).await);
        requests.extend(edge);
    }

    let states = db::order_states(&ctx.pool, &ids).await?;
    if states.len() != ids.len() {
        bail!("orders of the round missing from the database");
    }
    #[derive(Default)]
    struct PerOrder {
        created: i64,
        amount: i64,
        tax: i64,
    }
    let mut per_order: HashMap<usize, PerOrder> = HashMap::new();
    for (request, (outcome, latency)) in requests.iter().zip(&outcomes) {
        totals.counts.add(outcome.label());
        if outcome.status().is_some() {
            totals.latency.push(*latency);
        }
        let state = &states[&request.order_id];
        match outcome {
            Outcome::Answer(201, body) => {
                totals.created_latency.push(*latency);
                let refund: Value = serde_json::from_str(body).unwrap_or_default();
                let amount = refund["amount"].as_i64().unwrap_or(-1);
                let tax = refund["tax_amount"].as_i64().unwrap_or(-1);
                let entry = per_order.entry(request.order_index).or_default();
                entry.created += 1;
                entry.amount += amount;
                entry.tax += tax;
                totals.created += 1;
                totals.refunded += amount;
                totals.refunded_tax += tax;
                if amount != request.amount {
                    totals.adjusted += 1;
                }
                let ok = refund["status"] == "succeeded"
                    && refund["order_id"] == request.body["order_id"]
                    && refund["metadata"] == request.body["metadata"]
                    && refund["reason"] == request.body["reason"]
                    && amount >= 0
                    && tax >= 0;
                report.check(ok, format!("201 body does not match the request: {body}"));
            }
            Outcome::Answer(422, body) => {
                // The amount was refused as too high: what is left now (it only shrinks)
                // must be below it, or the refusal was spurious.
                let over_refund = body.contains("exceeds refundable amount");
                report.check(
                    over_refund && request.amount > state.remaining(),
                    format!(
                        "422 for {} on an order with {} still refundable at the end: {body}",
                        request.amount,
                        state.remaining()
                    ),
                );
            }
            Outcome::Answer(403, body) => {
                report.check(
                    body.contains("RefundedAlready")
                        && state.remaining() == 0
                        && state.status == "refunded",
                    format!(
                        "403 on an order with {} still refundable: {body}",
                        state.remaining()
                    ),
                );
            }
            Outcome::Answer(status, body) => {
                report.fail(format!(
                    "unexpected {status} for {} on order {} (net {}, tax {}, balance {}): {}",
                    request.amount,
                    request.order_id,
                    orders[request.order_index].1.net,
                    orders[request.order_index].1.tax,
                    orders[request.order_index].1.balance,
                    body.chars().take(300).collect::<String>()
                ));
            }
            Outcome::Transport(error) => {
                report.fail(format!("no answer: {error}"));
            }
        }
    }
    for (index, (id, spec)) in orders.iter().enumerate() {
        let state = &states[id];
        let seen = per_order.remove(&index).unwrap_or_default();
        report.check(
            state.refunds == seen.created
                && state.refunded_amount == seen.amount
                && state.refunded_tax_amount == seen.tax,
            format!(
                "order {id}: database holds {} refunds for {} + tax {}, the 201s add up to {} for {} + tax {}",
                state.refunds,
                state.refunded_amount,
                state.refunded_tax_amount,
                seen.created,
                seen.amount,
                seen.tax
            ),
        );
        report.check(
            state.refunded_tax_amount <= spec.tax && state.refunded_tax_amount <= state.tax_amount,
            format!(
                "order {id}: tax refunded {} exceeds the order's tax {}",
                state.refunded_tax_amount, spec.tax
            ),
        );
        if state.remaining() == 0 {
            totals.fully_refunded += 1;
            if state.refunded_amount > 0 && state.refunded_tax_amount != state.tax_amount {
                totals.tax_left_on_full.push(format!(
                    "order {id} (net {}, tax {}, balance {}): net fully refunded, tax {} of {}",
                    spec.net, spec.tax, spec.balance, state.refunded_tax_amount, state.tax_amount
                ));
            }
        }
    }
    Ok(())
}
