//! [db-restart]: PostgreSQL stopped and started again under load. During each outage the
//! server answers 503 within the request timeout, /readyz goes 503 and back to 200 by
//! itself within 5 s of PostgreSQL returning; afterwards no 201 is lost and no request
//! took effect twice.
//!
//! Restarting PostgreSQL disrupts everyone using it: the scenario runs only when allowed
//! (see `PgControl::allowed`), and PostgreSQL is started again whatever happens.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::common::{Load, LoadConfig, StopOnDrop, Target, tally, verify_logicals};
use crate::client::{self, Admin, OrderSpec, Outcome};
use crate::report::{Counts, Latencies, Report, ms};
use crate::{Ctx, PgControl, db};

/// Stops and starts PostgreSQL; starts it again when dropped while stopped.
struct PgGuard {
    control: PgControl,
    url: String,
    stopped: bool,
}

impl PgGuard {
    async fn run(command: &[String]) -> Result<()> {
        let output = tokio::time::timeout(
            Duration::from_secs(90),
            tokio::process::Command::new(&command[0])
                .args(&command[1..])
                .kill_on_drop(true)
                .output(),
        )
        .await
        .with_context(|| format!("{} timed out", command.join(" ")))?
        .with_context(|| format!("running {}", command.join(" ")))?;
        if !output.status.success() {
            bail!(
                "{} failed ({}): {}{}",
                command.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    async fn stop(&mut self) -> Result<()> {
        self.stopped = true;
        Self::run(&self.control.stop).await
    }

    async fn start(&mut self) -> Result<()> {
        Self::run(&self.control.start).await?;
        self.stopped = false;
        Ok(())
    }

    /// Answers when PostgreSQL accepts connections again.
    async fn wait_ready(&self, limit: Duration) -> Result<Instant> {
        let started = Instant::now();
        loop {
            if db::is_ready(&self.url).await {
                return Ok(Instant::now());
            }
            if started.elapsed() > limit {
                bail!("PostgreSQL not ready {limit:?} after start");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Makes sure PostgreSQL runs, whatever state the scenario left it in.
    async fn ensure_running(&mut self) -> Result<()> {
        if db::is_ready(&self.url).await {
            self.stopped = false;
            return Ok(());
        }
        if let Err(error) = Self::run(&self.control.start).await {
            eprintln!("starting PostgreSQL: {error:#}");
        }
        self.wait_ready(Duration::from_secs(60)).await?;
        self.stopped = false;
        Ok(())
    }
}

impl Drop for PgGuard {
    fn drop(&mut self) {
        if self.stopped {
            eprintln!("db-restart: starting PostgreSQL again on the way out");
            let _ = std::process::Command::new(&self.control.start[0])
                .args(&self.control.start[1..])
                .status();
        }
    }
}

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    // Checked right before running: the flag file may have appeared or gone meanwhile.
    let Some(why) = ctx.pg.allowed() else {
        report.skip(
            "restarting PostgreSQL disrupts everyone on this machine; create /tmp/allow-pg-restart, \
             pass --allow-pg-restart or set CI=true to run it",
        );
        return Ok(());
    };
    report.figure(format!(
        "allowed: {why}; stop: {:?}, start: {:?}",
        ctx.pg.stop.join(" "),
        ctx.pg.start.join(" ")
    ));
    let mut guard = PgGuard {
        control: ctx.pg.clone(),
        url: ctx.base_url.clone(),
        stopped: false,
    };
    let result = scenario(ctx, report, &mut guard).await;
    let ensured = guard.ensure_running().await;
    report.check(
        ensured.is_ok(),
        format!("PostgreSQL is not running after the scenario: {ensured:?}"),
    );
    result
}

struct Probe {
    started: Instant,
    finished: Instant,
    outcome: Outcome,
}

async fn scenario(ctx: &Ctx, report: &mut Report, guard: &mut PgGuard) -> Result<()> {
    let restarts = 5;
    let request_timeout = 5u64;
    // Longer than the server's 5 s pool acquire timeout, so that requests waiting for a
    // connection give up (503) while PostgreSQL is still away.
    let outage = Duration::from_millis(if ctx.full { 9_000 } else { 7_000 });
    let healthy = Duration::from_millis(if ctx.full { 4_000 } else { 2_000 });
    let mut options = ctx.options();
    options.request_timeout = request_timeout;
    let server = ctx.start_server("db-restart", &options).await?;
    let admin = Admin::new(&server.url, &ctx.admin_token);
    let tenant = admin.tenant("dbrestart", 2).await?;
    let mut orders = Vec::new();
    for i in 0..8 {
        let tax = if i % 2 == 0 { 0 } else { 2_000_000 };
        let id = admin
            .order(
                tenant.org,
                tenant.customers[i % 2],
                OrderSpec::simple(10_000_000, tax),
            )
            .await?;
        orders.push((id, 5_000));
    }
    for i in 0..4 {
        let id = admin
            .order(
                tenant.org,
                tenant.customers[i % 2],
                OrderSpec::simple(30_000, 0),
            )
            .await?;
        orders.push((id, 9_000));
    }

    let http = client::http_client(Duration::from_secs(request_timeout * 6));
    let target: Target = Arc::new(tokio::sync::RwLock::new(Some(server.url.clone())));
    let load = Load::start(
        &http,
        &target,
        LoadConfig {
            workers: 8,
            orders,
            token: tenant.token.clone(),
            retries: 4,
            retry_delay: Duration::from_millis(300),
            pause: Duration::from_millis(5),
            max_duration: Duration::from_secs(if ctx.full { 400 } else { 180 }),
        },
        ctx.seed,
    );

    // /readyz every 100 ms.
    let stop_probe = Arc::new(AtomicBool::new(false));
    let _stop_helpers = StopOnDrop(stop_probe.clone());
    let prober = {
        let (http, base, stop) = (http.clone(), server.url.clone(), stop_probe.clone());
        tokio::spawn(async move {
            let mut probes = Vec::new();
            while !stop.load(Ordering::Relaxed) && probes.len() < 20_000 {
                let started = Instant::now();
                let (outcome, _) = client::send(http.get(format!("{base}/readyz"))).await;
                probes.push(Probe {
                    started,
                    finished: Instant::now(),
                    outcome,
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            probes
        })
    };

    let mut windows: Vec<(Instant, Instant, Instant)> = Vec::new();
    let cycles = async {
        for cycle in 0..restarts {
            tokio::time::sleep(healthy).await;
            let stopping = Instant::now();
            guard.stop().await?;
            let down = Instant::now();
            tokio::time::sleep(outage).await;
            let starting = Instant::now();
            guard.start().await?;
            let up = guard.wait_ready(Duration::from_secs(60)).await?;
            report.figure(format!(
                "restart {}: stop took {}, start took {}, PostgreSQL unavailable for {}",
                cycle + 1,
                ms(down - stopping),
                ms(up - starting),
                ms(up - stopping)
            ));
            windows.push((stopping, down, up));
            // Let the server notice before the next outage.
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && !ready(&http, &server.url).await {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        anyhow::Ok(())
    };
    let cycled = cycles.await;
    tokio::time::sleep(healthy).await;
    let logicals = load.finish().await;
    stop_probe.store(true, Ordering::Relaxed);
    let probes = prober.await.unwrap_or_default();
    cycled?;

    // Every request: how long, and what answer, inside and outside the outages.
    // A request overlapping an outage (in flight when PostgreSQL stopped, or sent while it
    // was away) counts as "during".
    let in_outage = |at: Instant, latency: Duration| {
        windows
            .iter()
            .any(|(stop, _, up)| at <= *up && at + latency >= *stop)
    };
    let mut during = Counts::default();
    let mut outside = Counts::default();
    let mut during_latency = Latencies::default();
    let mut all_latency = Latencies::default();
    for attempt in logicals.iter().flat_map(|logical| &logical.attempts) {
        all_latency.push(attempt.latency);
        if in_outage(attempt.started, attempt.latency) {
            during.add(attempt.outcome.label());
            during_latency.push(attempt.latency);
        } else {
            outside.add(attempt.outcome.label());
        }
    }
    let (counts, _) = tally(&logicals);
    report.figure(format!("requests (all attempts): {}", counts.summary()));
    report.figure(format!(
        "sent during outages: {}; latency {}",
        during.summary(),
        during_latency.summary()
    ));
    report.figure(format!("sent outside outages: {}", outside.summary()));
    report.figure(format!(
        "latency of every request: {}",
        all_latency.summary()
    ));
    let limit = Duration::from_secs(request_timeout) + Duration::from_millis(1_500);
    report.check(
        all_latency.max() <= limit,
        format!(
            "a request took {} (request timeout {request_timeout} s)",
            ms(all_latency.max())
        ),
    );
    report.check(
        during.get("503") > 0,
        "no 503 was answered during the outages",
    );
    let bad_during = during.others(&["201", "422", "403", "503"]);
    report.check(
        bad_during == 0,
        format!(
            "{bad_during} answers during outages were neither 503 nor a completed refund: {}",
            during.summary()
        ),
    );
    let bad_outside = outside.others(&["201", "422", "403"]);
    report.check(
        bad_outside == 0,
        format!(
            "{bad_outside} answers outside outages were not 201/422/403: {}",
            outside.summary()
        ),
    );
    for logical in logicals.iter().filter(|l| {
        l.attempts
            .iter()
            .any(|a| a.outcome.status().is_some_and(|s| s >= 500 && s != 503))
    }) {
        if let Some(attempt) = logical
            .attempts
            .iter()
            .find(|a| a.outcome.status() == Some(500))
        {
            report.figure(format!(
                "example of a 500 during an outage: {}",
                match &attempt.outcome {
                    Outcome::Answer(_, body) => body.clone(),
                    Outcome::Transport(e) => e.clone(),
                }
            ));
            break;
        }
    }

    // /readyz: 503 in each outage, back to 200 within 5 s of PostgreSQL returning.
    let mut recoveries = Latencies::default();
    let mut probe_latency = Latencies::default();
    for probe in &probes {
        probe_latency.push(probe.finished - probe.started);
    }
    for (i, (stop, down, up)) in windows.iter().enumerate() {
        let saw_503 = probes
            .iter()
            .any(|p| p.started <= *up && p.finished >= *stop && p.outcome.status() == Some(503));
        report.check(
            saw_503,
            format!(
                "restart {}: /readyz never answered 503 during the outage",
                i + 1
            ),
        );
        let recovered = probes
            .iter()
            .filter(|p| p.started >= *up && p.outcome.status() == Some(200))
            .map(|p| p.finished)
            .min();
        match recovered {
            Some(at) => {
                recoveries.push(at - *up);
                report.check(
                    at - *up <= Duration::from_secs(5),
                    format!(
                        "restart {}: /readyz took {} to answer 200 after PostgreSQL returned",
                        i + 1,
                        ms(at - *up)
                    ),
                );
            }
            None => report.fail(format!(
                "restart {}: /readyz never answered 200 after PostgreSQL returned",
                i + 1
            )),
        }
        let _ = down;
    }
    let mut readyz = Counts::default();
    for probe in &probes {
        readyz.add(probe.outcome.label());
    }
    report.figure(format!(
        "/readyz probes {}; latency {}; back to 200 after PostgreSQL returned: {}",
        readyz.summary(),
        probe_latency.summary(),
        recoveries.summary()
    ));
    report.check(
        probe_latency.max() <= limit,
        format!("a /readyz probe took {}", ms(probe_latency.max())),
    );
    if probe_latency.max() > Duration::from_secs(2) {
        report.warn(format!(
            "/readyz took up to {} to answer while PostgreSQL was away (it waits for a pooled \
             connection): a load balancer probing with a 1-2 s timeout sees timeouts, not 503",
            ms(probe_latency.max())
        ));
    }

    let created_after = logicals
        .iter()
        .flat_map(|logical| &logical.attempts)
        .filter(|a| {
            windows.last().is_some_and(|(_, _, up)| a.started > *up)
                && a.outcome.status() == Some(201)
        })
        .count();
    report.check(
        created_after > 0,
        "no refund was created after the last restart",
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
    .await
}

async fn ready(http: &reqwest::Client, base: &str) -> bool {
    let (outcome, _) = client::send(http.get(format!("{base}/readyz"))).await;
    outcome.status() == Some(200)
}
