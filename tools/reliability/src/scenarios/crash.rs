//! [crash]: clients create refunds without pause while the server is killed with SIGKILL
//! and restarted. Every refund acknowledged with 201 must exist afterwards exactly as it was
//! returned; a request cut off by the kill exists completely or not at all.

use std::time::{Duration, Instant};

use anyhow::Result;
use rand::Rng;

use super::common::{Load, LoadConfig, Target, tally, verify_logicals};
use crate::Ctx;
use crate::client::{self, Admin, OrderSpec};
use crate::report::{Latencies, Report, ms};

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let kills = if ctx.full { 10 } else { 3 };
    let mut options = ctx.options();
    options.request_timeout = 10;
    let mut server = ctx.start_server("crash", &options).await?;
    let admin = Admin::new(&server.url, &ctx.admin_token);
    let tenant = admin.tenant("crash", 3).await?;
    let mut orders = Vec::new();
    // Large orders that never run out, and small ones that do (so that 422s happen too).
    for i in 0..10 {
        let tax = if i % 2 == 0 { 0 } else { 10_000_000 };
        let id = admin
            .order(
                tenant.org,
                tenant.customers[i % 3],
                OrderSpec::simple(50_000_000, tax),
            )
            .await?;
        orders.push((id, 5_000));
    }
    for i in 0..5 {
        let id = admin
            .order(
                tenant.org,
                tenant.customers[i % 3],
                OrderSpec::simple(20_000, 4_000),
            )
            .await?;
        orders.push((id, 8_000));
    }

    let http = client::http_client(Duration::from_secs(20));
    let target: Target = std::sync::Arc::new(tokio::sync::RwLock::new(Some(server.url.clone())));
    let load = Load::start(
        &http,
        &target,
        LoadConfig {
            workers: 12,
            orders,
            token: tenant.token.clone(),
            retries: 0,
            retry_delay: Duration::ZERO,
            pause: Duration::ZERO,
            max_duration: Duration::from_secs(if ctx.full { 300 } else { 90 }),
        },
        ctx.seed,
    );
    let mut rng = ctx.rng("crash");
    let mut restarts = Latencies::default();
    let mut last_restart = Instant::now();
    let started = Instant::now();
    for kill in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.random_range(700..1_500))).await;
        // New requests wait for the restart; those in flight are cut off by the kill.
        *target.write().await = None;
        let pid = server.pid;
        server.kill().await?;
        let down = Instant::now();
        server = ctx.start_server("crash", &options).await?;
        restarts.push(down.elapsed());
        *target.write().await = Some(server.url.clone());
        last_restart = Instant::now();
        report.figure(format!(
            "kill {}: SIGKILL to pid {pid}, new pid {} listening after {}",
            kill + 1,
            server.pid,
            ms(down.elapsed())
        ));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let logicals = load.finish().await;
    let load_time = started.elapsed();

    let (counts, latencies) = tally(&logicals);
    report.figure(format!(
        "{kills} kills in {:.1} s; requests {}",
        load_time.as_secs_f64(),
        counts.summary()
    ));
    report.figure(format!(
        "answer latency {}; restart (kill to listening) {}",
        latencies.summary(),
        restarts.summary()
    ));
    let after_last = logicals
        .iter()
        .flat_map(|logical| &logical.attempts)
        .filter(|attempt| attempt.started >= last_restart && attempt.outcome.status() == Some(201))
        .count();
    report.check(
        after_last > 0,
        "no refund was created after the last restart",
    );
    report.check(
        counts.get("201") > 0 && counts.get("422") + counts.get("403") > 0,
        "the load created no refunds or met no refusal",
    );
    let unexpected = counts.others(&["201", "422", "403"])
        - counts
            .0
            .iter()
            .filter(|(label, _)| label.starts_with("transport"))
            .map(|(_, count)| count)
            .sum::<usize>();
    report.check(
        unexpected == 0,
        format!("{unexpected} HTTP answers other than 201/422/403"),
    );
    verify_logicals(
        ctx,
        &http,
        &server.url,
        tenant.org,
        &tenant.token,
        &logicals,
        report,
    )
    .await?;
    Ok(())
}
