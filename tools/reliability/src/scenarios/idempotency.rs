//! [idempotency]: `Idempotency-Key` across instances and crashes.
//! - Rounds of 50 concurrent requests with one key, spread over three instances: exactly
//!   one refund, and every answer is either the same 201 body or a 409.
//! - 200 keys, each sent up to 5 times while the instances are SIGKILLed and restarted in
//!   turn: per key at most one refund, and every key whose request was acknowledged replays
//!   the acknowledged body byte for byte.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use rand::Rng;
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::Ctx;
use crate::client::{self, Admin, OrderSpec, Outcome, Tenant};
use crate::db;
use crate::report::{Counts, Report, ms};
use refunds_server_process::ServerProcess;

const INSTANCES: usize = 3;

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let mut options = ctx.options();
    options.max_connections = 8;
    options.request_timeout = 10;
    let mut servers = Vec::new();
    for _ in 0..INSTANCES {
        servers.push(ctx.start_server("idempotency", &options).await?);
    }
    let admin = Admin::new(&servers[0].url, &ctx.admin_token);
    let tenant = admin.tenant("idempotency", 3).await?;
    let http = client::http_client(Duration::from_secs(15));
    race(ctx, report, &servers, &admin, &tenant, &http).await?;
    retries_under_kills(ctx, report, servers, &admin, &tenant, &http, &options).await
}

fn keyed_request(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    key: &str,
    body: &serde_json::Value,
) -> reqwest::RequestBuilder {
    client::refund_request(http, base, token, body).header("Idempotency-Key", key)
}

fn body_text(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Answer(_, body) => Some(body),
        Outcome::Transport(_) => None,
    }
}

async fn race(
    ctx: &Ctx,
    report: &mut Report,
    servers: &[ServerProcess],
    admin: &Admin,
    tenant: &Tenant,
    http: &reqwest::Client,
) -> Result<()> {
    let rounds = if ctx.full { 20 } else { 5 };
    let mut counts = Counts::default();
    let stored_before = db::refunds_by_marker(&ctx.pool, tenant.org).await?.len();
    for round in 0..rounds {
        let order = admin
            .order(
                tenant.org,
                tenant.customers[round % tenant.customers.len()],
                OrderSpec::simple(1_000_000, 200_000),
            )
            .await?;
        let marker = Uuid::new_v4().simple().to_string();
        let body = client::refund_body(order, 1_000, "customer_request", &marker);
        let key = format!("race-{marker}");
        let answers = futures::future::join_all((0..50).map(|i| {
            let base = &servers[i % servers.len()].url;
            client::send(keyed_request(http, base, &tenant.token, &key, &body))
        }))
        .await;
        let created: BTreeSet<&str> = answers
            .iter()
            .filter(|(outcome, _)| outcome.status() == Some(201))
            .filter_map(|(outcome, _)| body_text(outcome))
            .collect();
        for (outcome, _) in &answers {
            counts.add(outcome.label());
        }
        let others = answers
            .iter()
            .filter(|(outcome, _)| !matches!(outcome.status(), Some(201 | 409)))
            .count();
        report.check(
            created.len() == 1,
            format!(
                "round {round}: {} different 201 bodies for one key",
                created.len()
            ),
        );
        report.check(
            others == 0,
            format!("round {round}: {others} answers other than 201 or 409"),
        );
        let stored = db::refunds_by_marker(&ctx.pool, tenant.org).await?;
        let made = stored.get(&marker).map_or(0, Vec::len);
        report.check(
            made == 1,
            format!("round {round}: one key made {made} refunds"),
        );
    }
    let stored_after = db::refunds_by_marker(&ctx.pool, tenant.org).await?.len();
    report.figure(format!(
        "race: {rounds} keys x 50 concurrent requests over {INSTANCES} instances -> {}; {} refunds made",
        counts.summary(),
        stored_after - stored_before
    ));
    Ok(())
}

/// Sends a key's request until it has a definite answer (neither cut off, nor 5xx, nor
/// 409), at most 5 times, each time to the next live instance.
async fn send_until_definite(
    mut run: KeyedRun,
    targets: Arc<RwLock<Vec<Option<String>>>>,
    next_target: Arc<AtomicUsize>,
    http: reqwest::Client,
    token: String,
) -> KeyedRun {
    for _ in 0..5 {
        let base = loop {
            let live: Vec<String> = targets.read().await.iter().flatten().cloned().collect();
            if !live.is_empty() {
                break live[next_target.fetch_add(1, Ordering::Relaxed) % live.len()].clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let (outcome, _) =
            client::send(keyed_request(&http, &base, &token, &run.key, &run.body)).await;
        let definite = outcome
            .status()
            .is_some_and(|status| status < 500 && status != 409);
        run.outcomes.push(outcome);
        if definite {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run
}

/// One key's requests and their answers.
struct KeyedRun {
    key: String,
    marker: String,
    body: serde_json::Value,
    outcomes: Vec<Outcome>,
}

impl KeyedRun {
    /// The 201 bodies this key was answered with.
    fn acknowledged(&self) -> BTreeSet<&str> {
        self.outcomes
            .iter()
            .filter(|outcome| outcome.status() == Some(201))
            .filter_map(body_text)
            .collect()
    }
}

async fn retries_under_kills(
    ctx: &Ctx,
    report: &mut Report,
    mut servers: Vec<ServerProcess>,
    admin: &Admin,
    tenant: &Tenant,
    http: &reqwest::Client,
    options: &crate::server::ServerOptions,
) -> Result<()> {
    let keys: usize = 200;
    let kills: usize = if ctx.full { 10 } else { 5 };
    // Few orders, so that requests queue on their row locks and many are in flight when an
    // instance dies; a small one runs out, so that refusals are kept and replayed too.
    let mut orders = Vec::new();
    for i in 0..3 {
        let net = if i < 2 { 100_000_000 } else { 60_000 };
        let customer = tenant.customers[i % tenant.customers.len()];
        orders.push(
            admin
                .order(tenant.org, customer, OrderSpec::simple(net, net / 5))
                .await?,
        );
    }
    let targets: Arc<RwLock<Vec<Option<String>>>> = Arc::new(RwLock::new(
        servers
            .iter()
            .map(|server| Some(server.url.clone()))
            .collect(),
    ));
    let mut rng = ctx.rng("idempotency");
    let runs: Vec<KeyedRun> = (0..keys)
        .map(|_| {
            let marker = Uuid::new_v4().simple().to_string();
            let order = orders[rng.random_range(0..orders.len())];
            let amount = rng.random_range(1..=12_000);
            KeyedRun {
                key: format!("retry-{marker}"),
                body: client::refund_body(order, amount, "other", &marker),
                marker,
                outcomes: Vec::new(),
            }
        })
        .collect();
    // In waves: each wave's keys are sent at once, and an instance is killed while they are
    // in flight; the keys it cut off are retried on the others.
    let next_target = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut restarts = Vec::new();
    let mut runs_done = Vec::new();
    let mut pending = runs;
    let wave_size = keys.div_ceil(kills);
    for wave in 0..kills {
        let batch: Vec<KeyedRun> = pending.drain(..wave_size.min(pending.len())).collect();
        let tasks: Vec<_> = batch
            .into_iter()
            .map(|run| {
                let (targets, next_target, http, token) = (
                    targets.clone(),
                    next_target.clone(),
                    http.clone(),
                    tenant.token.clone(),
                );
                tokio::spawn(send_until_definite(run, targets, next_target, http, token))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(2..25))).await;
        let slot = wave % servers.len();
        targets.write().await[slot] = None;
        servers[slot].kill().await?;
        let down = Instant::now();
        servers[slot] = ctx.start_server("idempotency", options).await?;
        restarts.push(down.elapsed());
        targets.write().await[slot] = Some(servers[slot].url.clone());
        for task in tasks {
            runs_done.push(task.await?);
        }
    }
    let runs = runs_done;

    let stored = db::refunds_by_marker(&ctx.pool, tenant.org).await?;
    let mut counts = Counts::default();
    let (mut acknowledged, mut replayed, mut twice, mut unsettled) = (0, 0, 0, 0);
    let retried = runs.iter().filter(|run| run.outcomes.len() > 1).count();
    let base = servers[0].url.clone();
    for run in &runs {
        for outcome in &run.outcomes {
            counts.add(outcome.label());
        }
        let made = stored.get(&run.marker).map_or(0, Vec::len);
        if made > 1 {
            twice += 1;
            report.fail(format!("key {} made {made} refunds", run.key));
        }
        let acks = run.acknowledged();
        if acks.len() > 1 {
            report.fail(format!(
                "key {} was acknowledged with different bodies",
                run.key
            ));
        }
        let Some(ack) = acks.first() else {
            if !run
                .outcomes
                .last()
                .and_then(Outcome::status)
                .is_some_and(|status| status < 500 && status != 409)
            {
                unsettled += 1;
            }
            continue;
        };
        acknowledged += 1;
        if made != 1 {
            report.fail(format!(
                "key {} was acknowledged but made {made} refunds",
                run.key
            ));
        }
        let replay = keyed_request(http, &base, &tenant.token, &run.key, &run.body)
            .send()
            .await?;
        let status = replay.status().as_u16();
        let flagged = replay
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|value| value == "true");
        let text = replay.text().await?;
        if status == 201 && flagged && text == *ack {
            replayed += 1;
        } else {
            report.fail(format!(
                "key {}: the replay answered {status} (replayed header: {flagged}), not the acknowledged body",
                run.key
            ));
        }
    }
    report.check(
        runs.len() == keys,
        format!("{} of {keys} keys were tried", runs.len()),
    );
    report.check(acknowledged > 0, "no key was acknowledged");
    report.figure(format!(
        "retries: {keys} keys, up to 5 attempts each, {} SIGKILLs in {:.1} s (restart {} max) -> {}",
        restarts.len(),
        started.elapsed().as_secs_f64(),
        restarts.iter().max().map_or("-".into(), |d| ms(*d)),
        counts.summary()
    ));
    report.figure(format!(
        "retries: {retried} keys sent more than once; {acknowledged} acknowledged, {replayed} replayed byte for byte; {twice} made more than one refund; {unsettled} without a definite answer after 5 attempts"
    ));
    if retried == 0 {
        report.warn("no request was cut off by a kill: nothing was retried");
    }
    report.check(
        restarts.len() >= 2,
        format!("only {} kills happened during the load", restarts.len()),
    );
    Ok(())
}
