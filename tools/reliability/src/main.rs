//! The reliability suite of refunds-server: real server processes on a fresh database,
//! load over real sockets, crashes, outages and abuse, and after every scenario the money
//! invariant checked with SQL against the database.
//!
//! `refunds-reliability [--full] [--only NAME]...` (see `--help`).

mod client;
mod db;
mod report;
mod scenarios;
mod server;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::FutureExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sqlx::PgPool;

use refunds_server_process::ServerProcess;
use report::Report;
use server::ServerOptions;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const PG_RESTART_FLAG_FILE: &str = "/tmp/allow-pg-restart";

/// Every scenario, in the order they run.
pub const SCENARIOS: &[&str] = &[
    "race",
    "instances",
    "crash",
    "db-restart",
    "shutdown",
    "rolling-restart",
    "bad-input",
    "isolation",
    "idempotency",
    "replica",
    "stripe",
    "webhooks",
];

#[derive(Debug, Parser)]
#[command(
    name = "refunds-reliability",
    about = "Reliability suite of refunds-server: races, several instances, crashes, \
             database restarts, graceful shutdown, rolling restarts, hostile input, tenant \
             isolation, idempotency keys, a streaming read replica, Stripe-backed refunds \
             through crashes and webhook deliveries, each followed by an \
             SQL check of the money invariant."
)]
struct Cli {
    /// The longer counts (200 race rounds, 10 crashes, ...) instead of the CI-sized ones.
    #[arg(long)]
    full: bool,
    /// Run only this scenario (repeat for several): race, instances, crash, db-restart,
    /// shutdown, rolling-restart, bad-input, isolation, idempotency, replica, stripe,
    /// webhooks.
    #[arg(long = "only", value_name = "NAME")]
    only: Vec<String>,
    /// Let the db-restart scenario restart PostgreSQL (also when CI=true, or when the file
    /// /tmp/allow-pg-restart exists). Restarting disrupts everyone using that PostgreSQL.
    #[arg(long)]
    allow_pg_restart: bool,
    /// Shell command that stops PostgreSQL, for a private cluster (with --pg-start-cmd).
    /// Default: pg_ctlcluster --skip-systemctl-redirect <version> main stop.
    #[arg(long, requires = "pg_start_cmd")]
    pg_stop_cmd: Option<String>,
    /// Shell command that starts PostgreSQL again.
    #[arg(long, requires = "pg_stop_cmd")]
    pg_start_cmd: Option<String>,
    /// The server binary; default: refunds-server beside this program.
    #[arg(long, env = "REFUNDS_SERVER_BIN")]
    server_bin: Option<PathBuf>,
    /// PostgreSQL URL used to create and drop the suite's database.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Seed of the random choices (printed at start, to replay a run).
    #[arg(long)]
    seed: Option<u64>,
    /// Keep the suite's database and logs at the end (for inspection).
    #[arg(long)]
    keep: bool,
}

/// How the db-restart scenario stops and starts PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgControl {
    pub stop: Vec<String>,
    pub start: Vec<String>,
    /// Commands given on the command line (a private cluster) rather than the default.
    pub custom: bool,
    /// --allow-pg-restart or CI=true.
    pub allowed_by_flag: bool,
}

impl PgControl {
    fn new(cli: &Cli) -> Self {
        let allowed_by_flag = cli.allow_pg_restart
            || std::env::var("CI").is_ok_and(|value| value.eq_ignore_ascii_case("true"));
        if let (Some(stop), Some(start)) = (&cli.pg_stop_cmd, &cli.pg_start_cmd) {
            let shell = |command: &str| vec!["sh".into(), "-c".into(), command.to_owned()];
            return Self {
                stop: shell(stop),
                start: shell(start),
                custom: true,
                allowed_by_flag,
            };
        }
        let version = std::fs::read_dir("/etc/postgresql")
            .ok()
            .and_then(|entries| {
                let mut names: Vec<String> = entries
                    .filter_map(|entry| entry.ok())
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                names.into_iter().next()
            })
            .unwrap_or_else(|| "15".into());
        let cluster = |action: &str| {
            [
                "pg_ctlcluster",
                "--skip-systemctl-redirect",
                &version,
                "main",
                action,
            ]
            .iter()
            .map(|part| part.to_string())
            .collect()
        };
        Self {
            stop: cluster("stop"),
            start: cluster("start"),
            custom: false,
            allowed_by_flag,
        }
    }

    /// Checked right before the scenario runs: the flag file may come and go.
    pub fn allowed(&self) -> Option<String> {
        if self.custom {
            Some("custom stop/start commands (a private cluster)".into())
        } else if self.allowed_by_flag {
            Some("--allow-pg-restart or CI=true".into())
        } else if std::path::Path::new(PG_RESTART_FLAG_FILE).exists() {
            Some(format!("{PG_RESTART_FLAG_FILE} exists"))
        } else {
            None
        }
    }
}

/// What every scenario shares.
pub struct Ctx {
    pub binary: PathBuf,
    /// The URL the suite was given (used to create and drop its database, and to see
    /// whether PostgreSQL is up).
    pub base_url: String,
    pub db_url: String,
    pub pool: PgPool,
    pub full: bool,
    pub workdir: PathBuf,
    pub admin_token: String,
    pub pg: PgControl,
    pub seed: u64,
    servers_started: AtomicUsize,
}

impl Ctx {
    pub fn options(&self) -> ServerOptions {
        ServerOptions {
            database_url: self.db_url.clone(),
            admin_token: self.admin_token.clone(),
            request_timeout: 30,
            shutdown_timeout: 30,
            max_connections: 16,
            // Scenarios that stop servers without testing the lame-duck phase skip it.
            shutdown_delay_ms: 0,
            read_replica: None,
            extra_env: Vec::new(),
        }
    }

    /// Starts a server process whose output goes to `<workdir>/<label>-<n>.log`.
    pub async fn start_server(
        &self,
        label: &str,
        options: &ServerOptions,
    ) -> Result<ServerProcess> {
        let n = self.servers_started.fetch_add(1, Ordering::SeqCst);
        let log = self.workdir.join(format!("{label}-{n}.log"));
        server::start(&self.binary, log, options).await
    }

    /// A random generator for one scenario, derived from the run's seed.
    pub fn rng(&self, salt: &str) -> StdRng {
        let mut hash: u64 = 0xcbf29ce484222325;
        for byte in salt.bytes() {
            hash = (hash ^ byte as u64).wrapping_mul(0x100000001b3);
        }
        StdRng::seed_from_u64(self.seed ^ hash)
    }

    /// Checks the money invariant over the whole database and records it in `report`.
    pub async fn check_invariant(&self, report: &mut Report) -> Result<()> {
        let started = Instant::now();
        let invariant = db::check_invariant(&self.pool).await?;
        report.figure(format!(
            "invariant: {} orders, {} refunds checked in {} -> {}",
            invariant.orders,
            invariant.refunds,
            report::ms(started.elapsed()),
            if invariant.violations.is_empty() {
                "holds".to_owned()
            } else {
                format!("{} VIOLATIONS", invariant.violations.len())
            }
        ));
        for violation in invariant.violations.iter().take(10) {
            report.fail(format!("invariant: {violation}"));
        }
        if invariant.violations.len() > 10 {
            report.fail(format!(
                "invariant: ... and {} more",
                invariant.violations.len() - 10
            ));
        }
        Ok(())
    }
}

fn scenario_timeout(name: &str, full: bool) -> Duration {
    let base = match name {
        "race" | "instances" => 180,
        "db-restart" => 240,
        "crash" | "webhooks" => 180,
        _ => 150,
    };
    Duration::from_secs(if full { base * 5 } else { base })
}

async fn run_scenario(ctx: &Ctx, name: &'static str) -> Report {
    let mut report = Report::new(name);
    let body = async {
        match name {
            "race" => scenarios::race::run(ctx, &mut report).await,
            "instances" => scenarios::race::run_instances(ctx, &mut report).await,
            "crash" => scenarios::crash::run(ctx, &mut report).await,
            "db-restart" => scenarios::db_restart::run(ctx, &mut report).await,
            "shutdown" => scenarios::shutdown::run(ctx, &mut report).await,
            "rolling-restart" => scenarios::rolling::run(ctx, &mut report).await,
            "replica" => scenarios::replica::run(ctx, &mut report).await,
            "bad-input" => scenarios::bad_input::run(ctx, &mut report).await,
            "isolation" => scenarios::isolation::run(ctx, &mut report).await,
            "idempotency" => scenarios::idempotency::run(ctx, &mut report).await,
            "stripe" => scenarios::stripe::run(ctx, &mut report).await,
            "webhooks" => scenarios::webhooks::run(ctx, &mut report).await,
            other => Err(anyhow::anyhow!("unknown scenario {other}")),
        }
    };
    let timeout = scenario_timeout(name, ctx.full);
    let outcome =
        tokio::time::timeout(timeout, std::panic::AssertUnwindSafe(body).catch_unwind()).await;
    match outcome {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => report.fail(format!("error: {error:#}")),
        Ok(Err(_)) => report.fail("the scenario panicked"),
        Err(_) => report.fail(format!("the scenario did not finish within {timeout:?}")),
    }
    if report.skipped.is_none() {
        // After every scenario, whatever happened in it.
        if !db::is_ready(&ctx.db_url).await {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        if let Err(error) = ctx.check_invariant(&mut report).await {
            report.fail(format!("invariant check failed to run: {error:#}"));
        }
    }
    report.finish();
    println!(
        "[{name}] {} in {:.1} s",
        report.verdict(),
        report.elapsed().as_secs_f64()
    );
    report
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<bool> {
    for name in &cli.only {
        if !SCENARIOS.contains(&name.as_str()) {
            bail!("unknown scenario {name:?}; known: {}", SCENARIOS.join(", "));
        }
    }
    let selected: Vec<&'static str> = SCENARIOS
        .iter()
        .copied()
        .filter(|name| cli.only.is_empty() || cli.only.iter().any(|only| only == name))
        .collect();
    let binary = match &cli.server_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory of the program")?
            .join("refunds-server"),
    };
    if !binary.exists() {
        bail!(
            "server binary {} not found (build it with cargo build --release --locked --bin refunds-server, or pass --server-bin)",
            binary.display()
        );
    }
    let seed = cli.seed.unwrap_or_else(rand::random);
    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let db_name = format!("refunds_rel_{suffix}");
    let workdir = std::env::temp_dir().join(format!("refunds-rel-{suffix}"));
    std::fs::create_dir_all(&workdir)?;
    println!(
        "refunds-reliability: mode {}, seed {seed}, scenarios {}, server {}, database {db_name}, logs {}",
        if cli.full { "full" } else { "ci" },
        selected.join(","),
        binary.display(),
        workdir.display()
    );

    let started = Instant::now();
    db::create_database(&cli.database_url, &db_name).await?;
    let db_url = db::with_database(&cli.database_url, &db_name);
    let pool = match db::pool(&db_url).await {
        Ok(pool) => pool,
        Err(error) => {
            db::drop_database(&cli.database_url, &db_name).await.ok();
            return Err(error);
        }
    };
    let ctx = Ctx {
        binary,
        base_url: cli.database_url.clone(),
        db_url,
        pool,
        full: cli.full,
        workdir: workdir.clone(),
        admin_token: format!("rel-admin-{}", uuid::Uuid::new_v4().simple()),
        pg: PgControl::new(&cli),
        seed,
        servers_started: AtomicUsize::new(0),
    };

    let mut reports = Vec::new();
    let all = async {
        for name in &selected {
            reports.push(run_scenario(&ctx, name).await);
        }
    };
    let interrupted = tokio::select! {
        _ = all => false,
        _ = tokio::signal::ctrl_c() => true,
    };
    if interrupted {
        println!("\ninterrupted: cleaning up");
    }

    ctx.pool.close().await;
    if cli.keep {
        println!("kept database {db_name} and logs in {}", workdir.display());
    } else {
        // PostgreSQL may still be coming back after a db-restart scenario.
        let mut dropped = Err(anyhow::anyhow!("not tried"));
        for _ in 0..10 {
            dropped = db::drop_database(&cli.database_url, &db_name).await;
            if dropped.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        if let Err(error) = dropped {
            eprintln!("could not drop the database {db_name}: {error:#}");
        }
    }

    println!(
        "\n=== summary ({:.1} s) ===",
        started.elapsed().as_secs_f64()
    );
    let mut ok = !interrupted;
    for report in &reports {
        let detail = match (&report.skipped, report.failures.len()) {
            (Some(why), 0) => format!(" ({why})"),
            (_, 0) => String::new(),
            (_, n) => format!(" ({n} failed checks)"),
        };
        println!(
            "{:<15} {} {:>6.1} s{}",
            report.name,
            report.verdict(),
            report.elapsed().as_secs_f64(),
            detail
        );
        for warning in &report.warnings {
            println!("            warning: {warning}");
        }
        ok &= report.passed();
    }
    if ok && !cli.keep {
        std::fs::remove_dir_all(&workdir).ok();
    } else if !cli.keep {
        println!("server logs kept in {}", workdir.display());
    }
    println!("{}", if ok { "ALL PASSED" } else { "FAILED" });
    Ok(ok)
}
