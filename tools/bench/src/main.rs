//! The refunds-server benchmark: `scripts/bench.sh [--quick]` builds and runs this.
//!
//! In a fresh database it seeds orders and refunds, then in each run measures the server's
//! create-refund throughput and latency against two limits taken with pgbench on the same
//! database (the server's own SQL, and the minimal transaction on scratch tables), on as many
//! connections as the server's pool and as there are clients; the latency of the list's first
//! page as an organization grows from 10 thousand to 1 million refunds, and under the create
//! load; the server's peak memory under load and its start-to-ready time. It prints the
//! medians of the runs against the targets. The database, the server processes and pgbench
//! are removed or stopped at the end, also on failure and on Ctrl-C.

mod batches;
mod cpu;
mod http;
mod list;
mod load;
mod minimal;
mod pgbench;
mod server;
mod webhooks;

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::http::{Client, bearer};
use crate::server::{Server, ServerConfig};

const DEFAULT_BASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const MIB: f64 = 1024.0 * 1024.0;

/// Targets the figures are held against.
/// Against pgbench running the server's own SQL.
const TARGET_THROUGHPUT_RATIO: f64 = 0.7;
/// Against pgbench running the minimal transaction on scratch tables.
const TARGET_MINIMAL_THROUGHPUT_RATIO: f64 = 0.8;
/// Against either.
const TARGET_P99_RATIO: f64 = 2.0;
/// A key on every create may cost at most 15 % of the throughput.
const TARGET_KEYED_RATIO: f64 = 0.85;
const TARGET_LIST_RATIO: f64 = 3.0;
const TARGET_LIST_UNDER_LOAD_P99_MS: f64 = 20.0;
const TARGET_PEAK_RSS_MIB: f64 = 64.0;
const TARGET_START_MS: f64 = 500.0;
/// One subscribed webhook endpoint may cost at most 10 % of the create throughput.
const TARGET_SUBSCRIBED_RATIO: f64 = 0.9;
const TARGET_DELIVERIES_PER_S: f64 = 1000.0;
/// The steady create rate of the sustained-delivery phase: with the three events of each
/// create, a little over the delivery target.
const PACED_CREATES_PER_S: f64 = 350.0;
const TARGET_DELIVERY_P99_MS: f64 = 100.0;

#[derive(Debug, Clone)]
struct Settings {
    quick: bool,
    runs: usize,
    /// Orders of the create-load organization.
    orders: u64,
    /// Refunds of each list organization, smallest first.
    list_sizes: Vec<u64>,
    refunds_per_order: u64,
    warmup: Duration,
    window: Duration,
    client_counts: Vec<usize>,
    list_warmup: usize,
    list_requests: usize,
    /// Longest one list case may take once it has 50 requests.
    list_budget: Duration,
    start_samples: usize,
    pool_size: u32,
    /// The server's pool in the phase of the most clients on a pool as large.
    large_pool: u32,
    /// Where `perf record` writes the profile of one more create phase, if anywhere.
    perf: Option<PathBuf>,
}

impl Settings {
    fn full() -> Self {
        Settings {
            quick: false,
            runs: 3,
            orders: 200_000,
            list_sizes: vec![10_000, 100_000, 1_000_000],
            refunds_per_order: 10,
            warmup: Duration::from_secs(3),
            window: Duration::from_secs(10),
            client_counts: vec![16, 64],
            list_warmup: 10,
            list_requests: 200,
            list_budget: Duration::from_secs(120),
            start_samples: 5,
            pool_size: 16,
            large_pool: 64,
            perf: None,
        }
    }

    fn quick() -> Self {
        Settings {
            quick: true,
            runs: 1,
            orders: 20_000,
            list_sizes: vec![1_000, 5_000, 10_000],
            warmup: Duration::from_secs(1),
            window: Duration::from_secs(2),
            list_warmup: 3,
            list_requests: 50,
            list_budget: Duration::from_secs(30),
            ..Settings::full()
        }
    }
}

/// The refunds-server benchmark: seeds a fresh database, measures the server against
/// pgbench and prints the medians of the runs against the targets.
#[derive(Parser, Debug)]
#[command(
    name = "refunds-bench",
    after_help = "DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) is the server the
benchmark database refunds_bench_<random> is created on; PGBENCH overrides the pgbench
binary; REFUNDS_SERVER_BIN the server binary (default: next to this one)."
)]
struct Args {
    /// Tiny sizes, 2 s phases, 1 run: checks the benchmark works
    #[arg(long)]
    quick: bool,
    /// Runs to take the median of (default 3)
    #[arg(long, value_name = "N")]
    runs: Option<usize>,
    /// Measured seconds of each load phase (default 10)
    #[arg(long, value_name = "S")]
    seconds: Option<u64>,
    /// Orders of the create-load organization (default 200000)
    #[arg(long, value_name = "N")]
    orders: Option<u64>,
    /// Refunds of the list organizations (default 10000,100000,1000000)
    #[arg(long, value_name = "A,B,C", value_delimiter = ',', value_parser = parse_size)]
    list_sizes: Option<Vec<u64>>,
    /// Refunds per seeded order in the list organizations (default 10)
    #[arg(long, value_name = "K")]
    refunds_per_order: Option<u64>,
    /// Sequential requests per list case (default 200)
    #[arg(long, value_name = "N")]
    list_requests: Option<usize>,
    /// Also, in the first run, profile the server with `perf record` (PERF_CALL_GRAPH,
    /// default dwarf,32768) through one more create phase of the first client count, into
    /// FILE (see scripts/bench-flamegraph.sh)
    #[arg(long, value_name = "FILE")]
    perf: Option<PathBuf>,
}

fn parse_size(text: &str) -> Result<u64, std::num::ParseIntError> {
    text.trim().parse()
}

/// The settings of `--quick` or of a full run, with the sizes given on the command line.
fn settings(args: Args) -> Result<Settings> {
    let mut settings = if args.quick {
        Settings::quick()
    } else {
        Settings::full()
    };
    settings.runs = args.runs.unwrap_or(settings.runs);
    settings.window = args.seconds.map_or(settings.window, Duration::from_secs);
    settings.orders = args.orders.unwrap_or(settings.orders);
    settings.list_sizes = args.list_sizes.unwrap_or(settings.list_sizes);
    settings.refunds_per_order = args.refunds_per_order.unwrap_or(settings.refunds_per_order);
    settings.list_requests = args.list_requests.unwrap_or(settings.list_requests);
    settings.perf = args.perf;
    if settings.runs == 0 || settings.orders == 0 || settings.list_requests == 0 {
        bail!("--runs, --orders and --list-requests must be positive");
    }
    if settings.window.is_zero() {
        bail!("--seconds must be positive");
    }
    if settings.list_sizes.len() < 2 {
        bail!("--list-sizes needs at least two sizes");
    }
    if !(1..=100).contains(&settings.refunds_per_order)
        || settings
            .list_sizes
            .iter()
            .any(|size| *size == 0 || !size.is_multiple_of(settings.refunds_per_order))
    {
        bail!("each list size must be a positive multiple of --refunds-per-order (1 to 100)");
    }
    Ok(settings)
}

/// What must be cleaned up whatever happens.
struct Resources {
    base_url: String,
    database: String,
    database_url: String,
    temp_dir: PathBuf,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let settings = match settings(Args::parse()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("refunds-bench: {error:#}");
            return ExitCode::from(2);
        }
    };
    let base_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_BASE_URL.into());
    let suffix = Uuid::new_v4().simple().to_string()[..12].to_owned();
    let database = format!("refunds_bench_{suffix}");
    let resources = Resources {
        database_url: with_database(&base_url, &database),
        base_url,
        database,
        temp_dir: std::env::temp_dir().join(format!("refunds-bench-{suffix}")),
    };
    let started = Instant::now();
    let outcome = tokio::select! {
        outcome = run(&settings, &resources) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        _ = terminated() => Err(anyhow::anyhow!("terminated")),
    };
    // Every child process was spawned with kill_on_drop: leaving `run` has killed them.
    let cleanup = cleanup(&resources).await;
    let code = match (&outcome, &cleanup) {
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    };
    if let Err(error) = outcome {
        eprintln!("\nrefunds-bench: FAILED: {error:#}");
    }
    if let Err(error) = cleanup {
        eprintln!("refunds-bench: cleanup failed: {error:#}");
    }
    eprintln!(
        "refunds-bench: finished in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    code
}

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

fn with_database(url: &str, database: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((main, query)) => (main, Some(query)),
        None => (url, None),
    };
    let authority_start = main.find("://").map_or(0, |index| index + 3);
    let base = match main[authority_start..].find('/') {
        Some(slash) => &main[..authority_start + slash],
        None => main,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

async fn cleanup(resources: &Resources) -> Result<()> {
    let _ = std::fs::remove_dir_all(&resources.temp_dir);
    let mut connection = tokio::time::timeout(
        Duration::from_secs(30),
        PgConnection::connect(&resources.base_url),
    )
    .await
    .context("connecting to drop the database timed out")??;
    // FORCE ends the sessions a killed server may have left behind.
    // The name is ours: refunds_bench_ and 12 hex digits.
    tokio::time::timeout(
        Duration::from_secs(60),
        sqlx::query(sqlx::AssertSqlSafe(format!(
            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
            resources.database
        )))
        .execute(&mut connection),
    )
    .await
    .context("dropping the database timed out")?
    .with_context(|| format!("dropping database {}", resources.database))?;
    eprintln!("refunds-bench: dropped database {}", resources.database);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Machine

struct Machine {
    cpus: usize,
    model: String,
    memory: String,
    postgres: String,
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map_or("unknown".into(), |(_, model)| model.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find(|line| line.starts_with("MemTotal:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or("unknown".into(), |kib| format!("{:.1} GiB", kib / MIB));
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        model,
        memory,
        postgres: String::new(),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".into())
}

// ---------------------------------------------------------------------------------------
// Set-up

struct Fixture {
    create_org: Uuid,
    create_token: HeaderValue,
    /// The create organization's token that manages its webhook endpoints.
    webhook_token: HeaderValue,
    token_hash_hex: String,
    orders: Arc<Vec<Uuid>>,
    list_orgs: Vec<ListOrg>,
}

struct ListOrg {
    refunds: u64,
    token: HeaderValue,
    customer_id: Uuid,
    customer_refunds: i64,
}

async fn run_subprocess(
    description: &str,
    binary: &Path,
    args: &[String],
    database_url: &str,
    limit: Duration,
) -> Result<String> {
    let mut command = tokio::process::Command::new(binary);
    refunds_server_process::die_with_parent(&mut command);
    let child = command
        .args(args)
        .env("DATABASE_URL", database_url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {}", binary.display()))?;
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .with_context(|| format!("{description} took longer than {limit:?}"))??;
    if !output.status.success() {
        bail!(
            "{description} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

async fn create_organization(client: &mut Client, admin: &HeaderValue, name: &str) -> Result<Uuid> {
    let organization = client
        .json(
            Method::POST,
            "/admin/organizations",
            Some(admin),
            Some(json!({ "name": name })),
            StatusCode::CREATED,
        )
        .await?;
    organization["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .context("organization without an id")
}

async fn create_token(client: &mut Client, admin: &HeaderValue, org: Uuid) -> Result<String> {
    create_token_with(client, admin, org, &["refunds:read", "refunds:write"]).await
}

async fn create_token_with(
    client: &mut Client,
    admin: &HeaderValue,
    org: Uuid,
    scopes: &[&str],
) -> Result<String> {
    let token = client
        .json(
            Method::POST,
            &format!("/admin/organizations/{org}/access-tokens"),
            Some(admin),
            Some(json!({ "scopes": scopes })),
            StatusCode::CREATED,
        )
        .await?;
    token["token"]
        .as_str()
        .map(str::to_owned)
        .context("access token without a token")
}

async fn seed(
    binary: &Path,
    database_url: &str,
    organization: Uuid,
    orders: u64,
    refunds_per_order: u64,
) -> Result<()> {
    let started = Instant::now();
    let output = run_subprocess(
        "refunds-server seed",
        binary,
        &[
            "seed".into(),
            "--orders".into(),
            orders.to_string(),
            "--refunds-per-order".into(),
            refunds_per_order.to_string(),
            "--organization-id".into(),
            organization.to_string(),
        ],
        database_url,
        Duration::from_secs(1800),
    )
    .await?;
    let report: serde_json::Value =
        serde_json::from_str(&output).context("seed printed no JSON report")?;
    let refunds = report["refunds"].as_u64().unwrap_or(0);
    if report["orders"].as_u64() != Some(orders) || refunds != orders * refunds_per_order {
        bail!("seed made {output}, expected {orders} orders × {refunds_per_order} refunds");
    }
    eprintln!(
        "  seeded {orders} orders, {refunds} refunds in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn set_up(
    settings: &Settings,
    resources: &Resources,
    server_config: &ServerConfig,
    database: &mut PgConnection,
) -> Result<Fixture> {
    let binary = &server_config.binary;
    eprintln!("- migrating");
    run_subprocess(
        "refunds-server migrate",
        binary,
        &["migrate".into()],
        &resources.database_url,
        Duration::from_secs(120),
    )
    .await?;

    let (server, _) = Server::start(server_config).await?;
    let admin = bearer(&server_config.admin_token);
    let mut client = Client::connect(server.addr).await?;
    let create_org = create_organization(&mut client, &admin, "Bench create load").await?;
    let mut list_org_ids = Vec::new();
    for size in &settings.list_sizes {
        list_org_ids
            .push(create_organization(&mut client, &admin, &format!("Bench list {size}")).await?);
    }
    let create_token_text = create_token(&mut client, &admin, create_org).await?;
    let webhook_token = create_token_with(
        &mut client,
        &admin,
        create_org,
        &["webhooks:read", "webhooks:write"],
    )
    .await?;
    let mut list_tokens = Vec::new();
    for org in &list_org_ids {
        list_tokens.push(create_token(&mut client, &admin, *org).await?);
    }
    drop(client);
    server.stop().await?;

    eprintln!(
        "- seeding {} orders without refunds for the create load",
        settings.orders
    );
    seed(
        binary,
        &resources.database_url,
        create_org,
        settings.orders,
        0,
    )
    .await?;
    for (size, org) in settings.list_sizes.iter().zip(&list_org_ids) {
        eprintln!(
            "- seeding an organization with {size} refunds ({} orders × {})",
            size / settings.refunds_per_order,
            settings.refunds_per_order
        );
        seed(
            binary,
            &resources.database_url,
            *org,
            size / settings.refunds_per_order,
            settings.refunds_per_order,
        )
        .await?;
    }

    eprintln!("- bench_orders, VACUUM ANALYZE, CHECKPOINT");
    sqlx::query("CREATE TABLE bench_orders (n int PRIMARY KEY, id uuid NOT NULL)")
        .execute(&mut *database)
        .await?;
    sqlx::query(
        "INSERT INTO bench_orders (n, id) \
         SELECT row_number() OVER (ORDER BY id), id FROM orders WHERE organization_id = $1",
    )
    .bind(create_org)
    .execute(&mut *database)
    .await?;
    eprintln!("- limit_scratch: the minimal transaction's tables");
    let scratch_orders = minimal::create_scratch(&mut *database, create_org).await?;
    if scratch_orders != settings.orders {
        bail!(
            "limit_scratch.orders holds {scratch_orders} orders, expected {}",
            settings.orders
        );
    }
    sqlx::query("VACUUM ANALYZE")
        .execute(&mut *database)
        .await?;
    sqlx::query("CHECKPOINT").execute(&mut *database).await?;
    let orders: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM bench_orders ORDER BY n")
        .fetch_all(&mut *database)
        .await?;
    if orders.len() as u64 != settings.orders {
        bail!(
            "bench_orders holds {} orders, expected {}",
            orders.len(),
            settings.orders
        );
    }
    let token_hash_hex: String = sqlx::query_scalar(
        "SELECT encode(token_hash, 'hex') FROM access_tokens \
         WHERE organization_id = $1 AND 'refunds:write' = ANY(scopes)",
    )
    .bind(create_org)
    .fetch_one(&mut *database)
    .await?;

    let mut list_orgs = Vec::new();
    for ((size, org), token) in settings
        .list_sizes
        .iter()
        .zip(&list_org_ids)
        .zip(list_tokens)
    {
        // The customer with the median number of refunds.
        let (customer_id, customer_refunds): (Uuid, i64) = sqlx::query_as(
            "SELECT customer_id, count(*) FROM refunds WHERE organization_id = $1 \
             GROUP BY customer_id ORDER BY count(*), customer_id \
             OFFSET (SELECT count(DISTINCT customer_id) / 2 FROM refunds WHERE organization_id = $1) \
             LIMIT 1",
        )
        .bind(org)
        .fetch_one(&mut *database)
        .await?;
        list_orgs.push(ListOrg {
            refunds: *size,
            token: bearer(&token),
            customer_id,
            customer_refunds,
        });
    }
    Ok(Fixture {
        create_org,
        create_token: bearer(&create_token_text),
        webhook_token: bearer(&webhook_token),
        token_hash_hex,
        orders: Arc::new(orders),
        list_orgs,
    })
}

// ---------------------------------------------------------------------------------------
// One run

/// The create load of a phase on the fixture's orders, over the settings' warm-up and
/// window; `rate` paces it (see `load::create_refunds`).
fn create_load(
    settings: &Settings,
    fixture: &Fixture,
    server: &Server,
    clients: usize,
    keyed: bool,
    rate: Option<f64>,
) -> impl Future<Output = Result<load::LoadResult>> + use<> {
    load::create_refunds(
        server.addr,
        fixture.create_token.clone(),
        fixture.orders.clone(),
        clients,
        keyed,
        settings.warmup,
        settings.window,
        rate,
    )
}

/// One create phase: `clients` clients for the warm-up and the window, with the server's
/// and PostgreSQL's CPU over the window. Answers the figures and the errors.
async fn measure_create(
    settings: &Settings,
    resources: &Resources,
    fixture: &Fixture,
    server: &Server,
    clients: usize,
    keyed: bool,
    label: &str,
) -> Result<(CreateFigures, u64)> {
    // Server, PostgreSQL and machine CPU over the measured window only. The batches are
    // read from `/metrics` just outside it, so that answering those reads is not counted
    // as the creates' CPU.
    let cpu_sampler = async {
        tokio::time::sleep(settings.warmup).await;
        let batches_before = batches::Totals::read(server.addr).await?;
        let before = (
            server.cpu_time(),
            cpu::Backends::sample(&resources.database),
            cpu::Machine::sample(),
        );
        tokio::time::sleep(settings.window).await;
        let server_cpu = server.cpu_time()?.saturating_sub(before.0?);
        let backends = cpu::Backends::sample(&resources.database).since(&before.1);
        let machine_busy = cpu::Machine::sample().busy_since(&before.2);
        let batches = batches::Totals::read(server.addr)
            .await?
            .since(&batches_before);
        Ok::<_, anyhow::Error>((server_cpu, backends, machine_busy, batches))
    };
    let (result, cpu) = tokio::join!(
        create_load(settings, fixture, server, clients, keyed, None),
        cpu_sampler
    );
    let (result, (cpu, pg_cpu, machine_busy, batches)) = (result?, cpu?);
    let create = CreateFigures {
        throughput: result.throughput(),
        latency: Latency::of(&result.latencies),
        requests: result.completed,
        cpu_us_per_request: cpu.as_secs_f64() * 1e6 / result.completed.max(1) as f64,
        pg_cpu_us_per_request: pg_cpu.as_secs_f64() * 1e6 / result.completed.max(1) as f64,
        machine_busy,
    };
    eprintln!(
        "  create, {clients} clients{}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} requests, {} errors, machine {:.0} % busy",
        label,
        create.throughput,
        create.latency.p50_ms,
        create.latency.p99_ms,
        create.requests,
        result.errors,
        create.machine_busy * 100.0
    );
    let order = match batches.order_ms {
        Some(ms) => format!(", reads Polar's Order for {ms:.2} ms"),
        None => String::new(),
    };
    eprintln!(
        "    batches of {:.1} creates: a create waits {:.2} ms for its batch; a batch reads for {:.2} ms{order}, writes for {:.2} ms",
        batches.creates_per_batch, batches.wait_ms, batches.read_ms, batches.write_ms
    );
    if result.errors > 0 {
        for sample in &result.error_samples {
            eprintln!("    error: {sample}");
        }
    }
    if result.completed == 0 {
        bail!("no refund was created with {clients} clients");
    }
    Ok((create, result.errors))
}

/// One more create phase of the first client count with `perf record` on the server
/// through its window, so that its profile is that of the create load alone.
async fn profile_create(
    settings: &Settings,
    fixture: &Fixture,
    server: &Server,
    output: &Path,
) -> Result<()> {
    let clients = settings.client_counts[0];
    let perf = std::env::var_os("PERF").unwrap_or_else(|| "perf".into());
    // DWARF unwinding goes through libc, which has no frame pointers (its socket calls
    // would otherwise lose their callers).
    let call_graph = std::env::var("PERF_CALL_GRAPH").unwrap_or_else(|_| "dwarf,32768".into());
    let record = async {
        tokio::time::sleep(settings.warmup).await;
        let mut command = tokio::process::Command::new(&perf);
        refunds_server_process::die_with_parent(&mut command);
        let status = command
            .args(["record", "-F", "999", "--call-graph", &call_graph])
            .args(["-p", &server.pid().to_string(), "-o"])
            .arg(output)
            .args(["--", "sleep", &settings.window.as_secs().max(1).to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .status()
            .await
            .with_context(|| format!("spawning {}", perf.to_string_lossy()))?;
        if !status.success() {
            bail!("perf record failed ({status})");
        }
        Ok(())
    };
    let (result, recorded) = tokio::join!(
        create_load(settings, fixture, server, clients, false, None),
        record
    );
    let result = result?;
    recorded?;
    eprintln!(
        "  profiled create, {clients} clients: {:.0} req/s under perf, {} errors; profile in {}",
        result.throughput(),
        result.errors,
        output.display()
    );
    if result.errors > 0 {
        bail!("{} errors in the profiled create phase", result.errors);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, Default)]
struct Latency {
    p50_ms: f64,
    p99_ms: f64,
}

impl Latency {
    fn of(histogram: &Histogram<u64>) -> Self {
        Latency {
            p50_ms: histogram.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: histogram.value_at_quantile(0.99) as f64 / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct CreateFigures {
    throughput: f64,
    latency: Latency,
    requests: u64,
    cpu_us_per_request: f64,
    pg_cpu_us_per_request: f64,
    /// The share of the machine's CPU time (stolen time aside) that was busy.
    machine_busy: f64,
}

#[derive(Debug, Clone, Default)]
struct Paced {
    creates_per_s: f64,
    deliveries_per_s: f64,
    latency: Latency,
}

#[derive(Debug, Clone, Default)]
struct RunFigures {
    create: Vec<CreateFigures>,
    /// The first client count again, with an `Idempotency-Key` on every request.
    create_keyed: CreateFigures,
    /// The first client count again without a webhook endpoint (also the keyed phase's
    /// comparison), then with one subscribed to the three events a create sends, back to
    /// back.
    create_unsubscribed: CreateFigures,
    create_subscribed: CreateFigures,
    /// The deliveries of the subscribed phase: per second, and timestamp to arrival.
    deliveries_per_s: f64,
    delivery_latency: Latency,
    deliveries: u64,
    /// The deliveries of a steady `PACED_CREATES_PER_S` creates a second: sustained delivery.
    paced: Paced,
    /// The most clients again, on a server whose pool has a connection for each.
    create_large_pool: CreateFigures,
    /// The first client count's load while the first pages below are read.
    create_during_list: CreateFigures,
    /// The largest list organization's first page under that load, and the create-load
    /// organization's (the one written).
    list_under_load: Latency,
    list_written_under_load: Latency,
    /// [kind: server's SQL, minimal][connections: as client_counts]
    limits: Vec<LimitFigures>,
    /// [filter][size]
    list: Vec<Vec<Latency>>,
    peak_rss: f64,
    start_ms: f64,
    load_average: String,
}

const LIST_FILTERS: [&str; 3] = ["unfiltered", "succeeded=true", "customer_id=<one>"];

fn list_path(filter: usize, org: &ListOrg) -> (String, Option<i64>) {
    match filter {
        0 => ("/v1/refunds/?limit=10".into(), Some(org.refunds as i64)),
        1 => (
            "/v1/refunds/?limit=10&succeeded=true".into(),
            Some(org.refunds as i64),
        ),
        _ => (
            format!("/v1/refunds/?limit=10&customer_id={}", org.customer_id),
            Some(org.customer_refunds),
        ),
    }
}

async fn one_run(
    run: usize,
    settings: &Settings,
    resources: &Resources,
    server_config: &ServerConfig,
    fixture: &Fixture,
) -> Result<(RunFigures, u64)> {
    let mut figures = RunFigures {
        load_average: load_average(),
        ..RunFigures::default()
    };
    let mut errors = 0;
    eprintln!(
        "- run {}/{} (load average {})",
        run + 1,
        settings.runs,
        figures.load_average
    );

    // Start-to-ready on the migrated, seeded database.
    let mut starts = Vec::new();
    for _ in 0..settings.start_samples {
        let (server, elapsed) = Server::start(server_config).await?;
        starts.push(elapsed.as_secs_f64() * 1000.0);
        server.stop().await?;
    }
    figures.start_ms = median(&mut starts);
    eprintln!(
        "  start-to-ready: {:.1} ms (median of {})",
        figures.start_ms,
        starts.len()
    );

    // The limits, on the same database, with no server running. The machine's speed drifts
    // by half within minutes, so the minimal transaction at the first client count is
    // measured last, just before the first create phase it is held against.
    let counts = &settings.client_counts;
    figures.limits = vec![LimitFigures::default(); 2 * counts.len()];
    let order = (0..counts.len())
        .map(|index| (LimitKind::ServerSql, index))
        .chain(
            (0..counts.len())
                .rev()
                .map(|index| (LimitKind::Minimal, index)),
        );
    for (kind, index) in order {
        figures.limits[kind.slot(index, counts.len())] = measure_limit(
            settings,
            resources,
            fixture,
            kind,
            counts[index] as u32,
            run,
        )
        .await?;
    }

    let (server, _) = Server::start(server_config).await?;
    let keyed_clients = settings.client_counts[0];
    let phases = settings
        .client_counts
        .iter()
        .map(|clients| (*clients, false))
        .chain([(keyed_clients, true)]);
    for (clients, keyed) in phases {
        let label = if keyed { " with Idempotency-Key" } else { "" };
        let (create, phase_errors) =
            measure_create(settings, resources, fixture, &server, clients, keyed, label).await?;
        errors += phase_errors;
        match keyed {
            true => figures.create_keyed = create,
            false => figures.create.push(create),
        }
    }

    if let (0, Some(output)) = (run, &settings.perf) {
        profile_create(settings, fixture, &server, output).await?;
    }

    // Webhooks: the same load without and then with one endpoint subscribed to the events a
    // create sends (to a local receiver), back to back so that both meet the same machine.
    let (create, phase_errors) = measure_create(
        settings,
        resources,
        fixture,
        &server,
        keyed_clients,
        false,
        " without a webhook endpoint",
    )
    .await?;
    errors += phase_errors;
    figures.create_unsubscribed = create;
    let receiver = webhooks::Receiver::start().await?;
    let mut client = Client::connect(server.addr).await?;
    let endpoint = client
        .json(
            Method::POST,
            "/v1/webhooks/endpoints",
            Some(&fixture.webhook_token),
            Some(json!({"url": receiver.url(), "format": "raw",
                        "events": ["refund.created", "order.updated", "order.refunded"]})),
            StatusCode::CREATED,
        )
        .await?;
    let endpoint_id = endpoint["id"].as_str().context("endpoint id")?.to_owned();
    // The server closes a connection left idle through the phase: the endpoint is deleted
    // over a new one.
    drop(client);
    let (create, phase_errors) = measure_create(
        settings,
        resources,
        fixture,
        &server,
        keyed_clients,
        false,
        " with a webhook endpoint",
    )
    .await?;
    errors += phase_errors;
    figures.create_subscribed = create;
    let mut database = PgConnection::connect(&resources.database_url).await?;
    wait_for_deliveries(&mut database).await?;
    let deliveries = receiver.take();
    figures.deliveries = deliveries.arrivals;
    figures.deliveries_per_s = deliveries.per_second();
    figures.delivery_latency = Latency::of(&deliveries.latencies);
    eprintln!(
        "  webhooks: {} deliveries at {:.0}/s, event to arrival p50 {:.2} ms, p99 {:.2} ms",
        deliveries.arrivals,
        figures.deliveries_per_s,
        figures.delivery_latency.p50_ms,
        figures.delivery_latency.p99_ms
    );
    figures.paced =
        measure_paced_deliveries(settings, fixture, &server, &receiver, &mut database).await?;
    eprintln!(
        "  webhooks at a steady {:.0} creates/s: {:.0} deliveries/s, event to arrival p50 {:.2} ms, p99 {:.2} ms",
        figures.paced.creates_per_s,
        figures.paced.deliveries_per_s,
        figures.paced.latency.p50_ms,
        figures.paced.latency.p99_ms
    );
    let mut client = Client::connect(server.addr).await?;
    client
        .send(
            Method::DELETE,
            &format!("/v1/webhooks/endpoints/{endpoint_id}"),
            Some(&fixture.webhook_token),
            None,
        )
        .await?;
    sqlx::query("DELETE FROM webhook_deliveries")
        .execute(&mut database)
        .await?;
    sqlx::query("DELETE FROM webhook_events")
        .execute(&mut database)
        .await?;
    database.close().await?;
    drop(client);

    figures.peak_rss = server.peak_rss()? as f64 / MIB;
    eprintln!(
        "  peak RSS under the create load: {:.1} MiB",
        figures.peak_rss
    );

    // List latency.
    for (filter, filter_name) in LIST_FILTERS.iter().enumerate() {
        let mut row = Vec::new();
        for org in &fixture.list_orgs {
            let (path, expected) = list_path(filter, org);
            let histogram = list::measure(
                server.addr,
                &org.token,
                &path,
                settings.list_warmup,
                settings.list_requests,
                settings.list_requests.min(50),
                settings.list_budget,
                expected,
            )
            .await?;
            let latency = Latency::of(&histogram);
            eprintln!(
                "  list {} refunds, {}: p50 {:.2} ms, p99 {:.2} ms ({} requests{})",
                org.refunds,
                filter_name,
                latency.p50_ms,
                latency.p99_ms,
                histogram.len(),
                if (histogram.len() as usize) < settings.list_requests {
                    ", cut by the time budget"
                } else {
                    ""
                }
            );
            row.push(latency);
        }
        figures.list.push(row);
    }

    // The first page while the create load writes.
    let (create, under_load, written, phase_errors) =
        measure_list_under_load(settings, resources, fixture, &server).await?;
    errors += phase_errors;
    figures.create_during_list = create;
    figures.list_under_load = under_load;
    figures.list_written_under_load = written;

    stop_checked(server).await?;

    // The most clients again, on a server whose pool has a connection for each.
    let large_pool = ServerConfig {
        pool_size: settings.large_pool,
        ..server_config.clone()
    };
    wait_for_connections(resources, settings.large_pool).await?;
    let (server, _) = Server::start(&large_pool).await?;
    let clients = settings.client_counts.iter().copied().max().unwrap_or(1);
    let label = format!(", pool of {}", settings.large_pool);
    let (create, phase_errors) = measure_create(
        settings, resources, fixture, &server, clients, false, &label,
    )
    .await?;
    errors += phase_errors;
    figures.create_large_pool = create;
    stop_checked(server).await?;
    Ok((figures, errors))
}

/// Waits for the queue of webhook events to empty (the deliveries still queued when a load
/// stops count too), and fails if any event was not delivered.
async fn wait_for_deliveries(database: &mut PgConnection) -> Result<()> {
    let drain_started = Instant::now();
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE state = 'pending'")
                .fetch_one(&mut *database)
                .await?;
        if pending == 0 {
            break;
        }
        if drain_started.elapsed() > Duration::from_secs(120) {
            bail!("{pending} webhook events still pending 120 s after the load");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE state <> 'succeeded'")
            .fetch_one(&mut *database)
            .await?;
    if failed > 0 {
        bail!("{failed} webhook events were not delivered");
    }
    Ok(())
}

/// Sustained delivery: creates at a steady `PACED_CREATES_PER_S`, below what the server can
/// create, so that the figures are those of deliveries keeping up rather than of a queue
/// growing under a load that outruns them. The deliveries of the warm-up are not counted.
async fn measure_paced_deliveries(
    settings: &Settings,
    fixture: &Fixture,
    server: &Server,
    receiver: &webhooks::Receiver,
    database: &mut PgConnection,
) -> Result<Paced> {
    let load = create_load(
        settings,
        fixture,
        server,
        settings.client_counts[0],
        false,
        Some(PACED_CREATES_PER_S),
    );
    let forget_warmup = async {
        tokio::time::sleep(settings.warmup).await;
        receiver.take();
    };
    let (result, ()) = tokio::join!(load, forget_warmup);
    let result = result?;
    if result.errors > 0 {
        bail!(
            "{} errors at a steady {PACED_CREATES_PER_S} creates/s: {:?}",
            result.errors,
            result.error_samples
        );
    }
    wait_for_deliveries(database).await?;
    let deliveries = receiver.take();
    Ok(Paced {
        creates_per_s: result.throughput(),
        deliveries_per_s: deliveries.per_second(),
        latency: Latency::of(&deliveries.latencies),
    })
}

/// Stops the server, failing if it logged errors.
async fn stop_checked(server: Server) -> Result<()> {
    let (error_lines, samples) = server.error_lines();
    if error_lines > 0 {
        for sample in samples {
            eprintln!("    server log: {sample}");
        }
        bail!("the server logged {error_lines} error lines");
    }
    server.stop().await
}

/// The first client count's create load, and meanwhile, one after the other, the first page
/// (exact `total_count`) of the largest list organization, which nobody writes, and of the
/// create-load organization, which the load writes. Answers the load's figures, the two
/// latencies and the load's errors.
async fn measure_list_under_load(
    settings: &Settings,
    resources: &Resources,
    fixture: &Fixture,
    server: &Server,
) -> Result<(CreateFigures, Latency, Latency, u64)> {
    let clients = settings.client_counts[0];
    let largest = fixture
        .list_orgs
        .iter()
        .max_by_key(|org| org.refunds)
        .context("no list organization")?;
    let mut database = PgConnection::connect(&resources.database_url).await?;
    let written_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM refunds WHERE organization_id = $1")
            .bind(fixture.create_org)
            .fetch_one(&mut database)
            .await?;
    database.close().await?;
    let start = Instant::now() + settings.warmup;
    let end = start + settings.window;
    let path = "/v1/refunds/?limit=10";
    let (load, largest_page, written_page) = tokio::join!(
        create_load(settings, fixture, server, clients, false, None),
        list::measure_during(
            server.addr,
            &largest.token,
            path,
            start,
            end,
            list::Total::Exact(largest.refunds as i64),
        ),
        list::measure_during(
            server.addr,
            &fixture.create_token,
            path,
            start,
            end,
            list::Total::Growing(written_before),
        ),
    );
    let (load, largest_page, written_page) = (load?, largest_page?, written_page?);
    let create = CreateFigures {
        throughput: load.throughput(),
        latency: Latency::of(&load.latencies),
        requests: load.completed,
        ..CreateFigures::default()
    };
    let (under_load, written) = (Latency::of(&largest_page), Latency::of(&written_page));
    eprintln!(
        "  list under the create load ({clients} clients, {:.0} req/s, {} errors): \
         {} refunds p50 {:.2} ms, p99 {:.2} ms ({} requests); \
         the organization written p50 {:.2} ms, p99 {:.2} ms ({} requests)",
        create.throughput,
        load.errors,
        size_label(largest.refunds),
        under_load.p50_ms,
        under_load.p99_ms,
        largest_page.len(),
        written.p50_ms,
        written.p99_ms,
        written_page.len()
    );
    for sample in &load.error_samples {
        eprintln!("    error: {sample}");
    }
    if largest_page.is_empty() || written_page.is_empty() {
        bail!("no list request completed under the create load");
    }
    Ok((create, under_load, written, load.errors))
}

/// Waits until PostgreSQL has `needed` connections to spare (other work on the same server
/// may hold many for a while), for at most two minutes.
async fn wait_for_connections(resources: &Resources, needed: u32) -> Result<()> {
    let started = Instant::now();
    let mut database = PgConnection::connect(&resources.base_url).await?;
    let mut told = false;
    loop {
        // Beside this connection; superuser-reserved ones left out.
        let spare: i64 = sqlx::query_scalar(
            "SELECT current_setting('max_connections')::int \
                    - current_setting('superuser_reserved_connections')::int \
                    - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')",
        )
        .fetch_one(&mut database)
        .await?;
        if spare >= needed as i64 {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("PostgreSQL has {spare} connections to spare, {needed} needed");
        }
        if !told {
            eprintln!("  waiting for {needed} spare connections ({spare} now)");
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    database.close().await?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LimitKind {
    /// The server's own SQL, statement for statement (`pgbench::SCRIPT`).
    ServerSql,
    /// The four statements on scratch tables (`crate::minimal`).
    Minimal,
}

impl LimitKind {
    /// Where a run keeps this limit's figures at the `count_index`-th client count: the
    /// server's SQL at every count, then the minimal transaction at every count.
    fn slot(self, count_index: usize, counts: usize) -> usize {
        match self {
            LimitKind::ServerSql => count_index,
            LimitKind::Minimal => counts + count_index,
        }
    }

    fn label(self) -> &'static str {
        match self {
            LimitKind::ServerSql => "server's SQL",
            LimitKind::Minimal => "minimal transaction",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct LimitFigures {
    tps: f64,
    latency: Latency,
    transactions: u64,
    /// PostgreSQL CPU per transaction, µs.
    pg_cpu_us: f64,
    /// The share of the machine's CPU time (stolen time aside) that was busy.
    machine_busy: f64,
}

/// pgbench running one limit's script on `connections` connections: a warm-up, then the
/// measured window, with PostgreSQL's CPU over its middle half. pgbench must have made one
/// refund per transaction it reports.
async fn measure_limit(
    settings: &Settings,
    resources: &Resources,
    fixture: &Fixture,
    kind: LimitKind,
    connections: u32,
    run: usize,
) -> Result<LimitFigures> {
    let (name, text, defines, count_refunds) = match kind {
        LimitKind::ServerSql => (
            "server_sql",
            pgbench::SCRIPT,
            pgbench::server_sql_defines(
                &fixture.token_hash_hex,
                fixture.create_org,
                fixture.orders.len(),
            ),
            "SELECT count(*) FROM refunds WHERE organization_id = $1",
        ),
        LimitKind::Minimal => (
            "minimal",
            minimal::SCRIPT,
            vec![format!("norders={}", fixture.orders.len())],
            minimal::COUNT_REFUNDS,
        ),
    };
    let script = resources.temp_dir.join(format!("{name}.pgbench"));
    std::fs::write(&script, text)?;
    let binary = pgbench::find_binary();
    let log_prefix = resources
        .temp_dir
        .join(format!("pgbench_{name}_{connections}_run{run}"));
    let mut params = pgbench::PgbenchParams {
        binary: &binary,
        database_url: &resources.database_url,
        script: &script,
        clients: connections,
        threads: (std::thread::available_parallelism().map_or(1, |n| n.get()) as u32)
            .min(connections),
        duration: settings.warmup.max(Duration::from_secs(1)),
        defines: &defines,
        log_prefix: None,
    };
    wait_for_connections(resources, connections).await?;
    pgbench::run(&params)
        .await
        .with_context(|| format!("pgbench warm-up, {}", kind.label()))?;
    params.duration = settings.window;
    params.log_prefix = Some(&log_prefix);
    let mut database = PgConnection::connect(&resources.database_url).await?;
    let count = async |database: &mut PgConnection| -> Result<i64> {
        let query = sqlx::query_scalar(sqlx::AssertSqlSafe(count_refunds));
        let query = match kind {
            LimitKind::ServerSql => query.bind(fixture.create_org),
            LimitKind::Minimal => query,
        };
        Ok(query.fetch_one(database).await?)
    };
    let refunds_before = count(&mut database).await?;
    // PostgreSQL and machine CPU over the middle half of the run (pgbench's backends end
    // with it).
    let pg_sampler = async {
        let quarter = settings.window / 4;
        tokio::time::sleep(quarter.max(Duration::from_millis(500))).await;
        let before = (
            cpu::Backends::sample(&resources.database),
            cpu::Machine::sample(),
        );
        let started = Instant::now();
        tokio::time::sleep(settings.window / 2).await;
        (
            cpu::Backends::sample(&resources.database).since(&before.0),
            cpu::Machine::sample().busy_since(&before.1),
            started.elapsed(),
        )
    };
    wait_for_connections(resources, connections).await?;
    let (limit, (pg_cpu, machine_busy, sampled)) = tokio::join!(pgbench::run(&params), pg_sampler);
    let limit = limit.with_context(|| format!("pgbench, {}", kind.label()))?;
    if limit.failed > 0 {
        bail!(
            "pgbench, {}: {} failed transactions",
            kind.label(),
            limit.failed
        );
    }
    let refunds_after = count(&mut database).await?;
    database.close().await?;
    if limit.transactions == 0 || (refunds_after - refunds_before) as u64 != limit.transactions {
        bail!(
            "pgbench, {}: reported {} transactions but created {} refunds",
            kind.label(),
            limit.transactions,
            refunds_after - refunds_before
        );
    }
    let figures = LimitFigures {
        tps: limit.tps,
        latency: Latency::of(&limit.latencies),
        transactions: limit.transactions,
        pg_cpu_us: pg_cpu.as_secs_f64() * 1e6 / (limit.tps * sampled.as_secs_f64()).max(1.0),
        machine_busy,
    };
    eprintln!(
        "  pgbench, {}, {connections} connections: {:.0} tps, p50 {:.2} ms, p99 {:.2} ms, \
         {} transactions, machine {:.0} % busy",
        kind.label(),
        figures.tps,
        figures.latency.p50_ms,
        figures.latency.p99_ms,
        figures.transactions,
        figures.machine_busy * 100.0
    );
    Ok(figures)
}

// ---------------------------------------------------------------------------------------
// The whole benchmark

async fn run(settings: &Settings, resources: &Resources) -> Result<()> {
    let mut machine = machine();
    let load_at_start = load_average();
    std::fs::create_dir_all(&resources.temp_dir)?;

    let server_binary = match std::env::var_os("REFUNDS_SERVER_BIN") {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()?
            .parent()
            .context("no directory for the benchmark binary")?
            .join("refunds-server"),
    };
    if !server_binary.exists() {
        bail!(
            "{} not found (build it with cargo build --release)",
            server_binary.display()
        );
    }

    let mut admin = PgConnection::connect(&resources.base_url)
        .await
        .with_context(|| format!("connecting to {}", resources.base_url))?;
    machine.postgres = sqlx::query_scalar::<_, String>("SHOW server_version")
        .fetch_one(&mut admin)
        .await?;
    eprintln!("refunds-bench: creating database {}", resources.database);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        r#"CREATE DATABASE "{}""#,
        resources.database
    )))
    .execute(&mut admin)
    .await?;
    admin.close().await?;

    let server_config = ServerConfig {
        binary: server_binary.clone(),
        database_url: resources.database_url.clone(),
        admin_token: format!("bench-admin-{}", Uuid::new_v4().simple()),
        pool_size: settings.pool_size,
    };
    let mut database = PgConnection::connect(&resources.database_url).await?;
    let setup_started = Instant::now();
    let fixture = set_up(settings, resources, &server_config, &mut database).await?;
    database.close().await?;
    eprintln!(
        "- set-up took {:.0} s",
        setup_started.elapsed().as_secs_f64()
    );

    let mut runs = Vec::new();
    let mut errors = 0;
    for run in 0..settings.runs {
        let (figures, run_errors) =
            one_run(run, settings, resources, &server_config, &fixture).await?;
        errors += run_errors;
        runs.push(figures);
    }
    print_report(settings, &machine, &load_at_start, &runs);
    if errors > 0 {
        bail!("the server answered {errors} create requests with something else than 201");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Report

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn median_of(runs: &[RunFigures], field: impl Fn(&RunFigures) -> f64) -> f64 {
    median(&mut runs.iter().map(field).collect::<Vec<_>>())
}

fn verdict(met: bool) -> &'static str {
    if met { "yes" } else { "NO" }
}

fn size_label(size: u64) -> String {
    if size >= 1_000_000 && size.is_multiple_of(1_000_000) {
        format!("{}M", size / 1_000_000)
    } else if size >= 1_000 && size.is_multiple_of(1_000) {
        format!("{}k", size / 1_000)
    } else {
        size.to_string()
    }
}

/// One row of the report's table.
fn row(figure: &str, value: String, p50: String, p99: String, target: &str, met: Option<bool>) {
    println!(
        "{figure:<56} {value:>10} {p50:>9} {p99:>9}   {target:<32} {:>4}",
        met.map_or("", verdict)
    );
}

fn num(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
}

fn print_report(settings: &Settings, machine: &Machine, load_at_start: &str, runs: &[RunFigures]) {
    let m = |field: &dyn Fn(&RunFigures) -> f64| median_of(runs, field);
    let line = "-".repeat(126);
    let none = String::new;
    let kinds = [LimitKind::ServerSql, LimitKind::Minimal];
    let counts = &settings.client_counts;
    let limit_index = |kind: LimitKind, connections: usize| {
        let count_index = counts.iter().position(|c| *c == connections).unwrap_or(0);
        kind.slot(count_index, counts.len())
    };
    let smallest = counts[0];
    let largest = counts.iter().copied().max().unwrap_or(smallest);

    println!();
    println!(
        "refunds-server benchmark{}",
        if settings.quick {
            " (--quick: tiny sizes, checks the pipeline, not the figures)"
        } else {
            ""
        }
    );
    println!("{line}");
    println!(
        "machine: {} CPUs, {}, {} memory; PostgreSQL {}",
        machine.cpus, machine.model, machine.memory, machine.postgres
    );
    println!(
        "load average at start: {load_at_start}; at each run: {}; at end: {}",
        runs.iter()
            .map(|r| r.load_average.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        load_average()
    );
    println!(
        "{} run(s), every figure the median of the runs; load phases {} s after {} s warm-up; \
         server pool {} (and {} in the phase that says so)",
        runs.len(),
        settings.window.as_secs_f64(),
        settings.warmup.as_secs_f64(),
        settings.pool_size,
        settings.large_pool
    );
    println!(
        "create load: {} orders, random order per request, amounts 1-10; list organizations: {} refunds \
         ({} per order, 1000 customers)",
        settings.orders,
        settings
            .list_sizes
            .iter()
            .map(|s| size_label(*s))
            .collect::<Vec<_>>()
            .join(" / "),
        settings.refunds_per_order
    );
    println!(
        "limits, pgbench -M prepared on as many connections as it says, no server running:\n  \
         server's SQL: the create-refund SQL (token lookup, BEGIN, order lock, INSERT, UPDATE, \
         COMMIT), plus one PK lookup (bench_orders) to pick a random order;\n  \
         minimal transaction: BEGIN, UPDATE of the order's counters RETURNING what the refund \
         needs, INSERT, END, on scratch tables (limit_scratch: a primary key each, one index, \
         no triggers, no foreign keys)"
    );
    println!("{line}");
    row(
        "figure",
        "value".into(),
        "p50 ms".into(),
        "p99 ms".into(),
        "target",
        None,
    );
    println!("{line}");
    for kind in kinds {
        for connections in counts {
            let index = limit_index(kind, *connections);
            row(
                &format!("limit: {}, {connections} connections (tps)", kind.label()),
                num(m(&|r| r.limits[index].tps), 0),
                num(m(&|r| r.limits[index].latency.p50_ms), 2),
                num(m(&|r| r.limits[index].latency.p99_ms), 2),
                &format!(
                    "PostgreSQL CPU {:.0} µs/tx; machine {:.0} % busy",
                    m(&|r| r.limits[index].pg_cpu_us),
                    m(&|r| r.limits[index].machine_busy * 100.0)
                ),
                None,
            );
        }
    }
    // The server's create against each limit: throughput and p99 ratios, each the median of
    // the runs' ratios.
    let compare =
        |figures: &dyn Fn(&RunFigures) -> CreateFigures, kind: LimitKind, connections: usize| {
            let index = limit_index(kind, connections);
            let target = match kind {
                LimitKind::ServerSql => TARGET_THROUGHPUT_RATIO,
                LimitKind::Minimal => TARGET_MINIMAL_THROUGHPUT_RATIO,
            };
            let throughput = m(&|r| figures(r).throughput / r.limits[index].tps);
            let p99 = m(&|r| figures(r).latency.p99_ms / r.limits[index].latency.p99_ms);
            row(
                &format!("  vs {}, {connections} conn.: throughput", kind.label()),
                num(throughput, 2),
                none(),
                none(),
                &format!(">= {target}"),
                Some(throughput >= target),
            );
            row(
                &format!("  vs {}, {connections} conn.: p99", kind.label()),
                num(p99, 2),
                none(),
                none(),
                &format!("<= {TARGET_P99_RATIO}"),
                Some(p99 <= TARGET_P99_RATIO),
            );
        };
    let create_row = |label: String, figures: &dyn Fn(&RunFigures) -> CreateFigures| {
        row(
            &label,
            num(m(&|r| figures(r).throughput), 0),
            num(m(&|r| figures(r).latency.p50_ms), 2),
            num(m(&|r| figures(r).latency.p99_ms), 2),
            &format!(
                "CPU µs/req: server {:.0}, PG {:.0}; machine {:.0} % busy",
                m(&|r| figures(r).cpu_us_per_request),
                m(&|r| figures(r).pg_cpu_us_per_request),
                m(&|r| figures(r).machine_busy * 100.0)
            ),
            None,
        );
    };
    for (index, clients) in counts.iter().enumerate() {
        let figures = move |r: &RunFigures| r.create[index].clone();
        create_row(
            format!(
                "create, {clients} clients, pool {} (req/s)",
                settings.pool_size
            ),
            &figures,
        );
        // With more clients than connections, against the limit on as many connections as
        // the pool and on as many as the clients.
        let mut connection_counts = vec![settings.pool_size as usize];
        if *clients != settings.pool_size as usize {
            connection_counts.push(*clients);
        }
        for connections in connection_counts {
            if counts.contains(&connections) {
                for kind in kinds {
                    compare(&figures, kind, connections);
                }
            }
        }
    }
    let figures = |r: &RunFigures| r.create_large_pool.clone();
    create_row(
        format!(
            "create, {largest} clients, pool {} (req/s)",
            settings.large_pool
        ),
        &figures,
    );
    for kind in kinds {
        compare(&figures, kind, largest);
    }
    let keyed = m(&|r| r.create_keyed.throughput);
    row(
        &format!("create, {smallest} clients, Idempotency-Key (req/s)"),
        num(keyed, 0),
        num(m(&|r| r.create_keyed.latency.p50_ms), 2),
        num(m(&|r| r.create_keyed.latency.p99_ms), 2),
        "",
        None,
    );
    // Each run's own ratio, against the phase that follows the keyed one and differs from it
    // only by the key, so that the two meet the same machine: the first phase, with the
    // 64-client one between them, differed from that same load minutes later by up to 14 %
    // (faster, mostly).
    let ratio = m(&|r| r.create_keyed.throughput / r.create_unsubscribed.throughput);
    row(
        "  throughput / without a key (the next phase)",
        num(ratio, 2),
        none(),
        none(),
        &format!(">= {TARGET_KEYED_RATIO}"),
        Some(ratio >= TARGET_KEYED_RATIO),
    );
    row(
        "  throughput / without a key (the first phase)",
        num(
            m(&|r| r.create_keyed.throughput / r.create[0].throughput),
            2,
        ),
        none(),
        none(),
        "",
        None,
    );
    for (label, pick) in [
        ("without a webhook endpoint", false),
        ("with one subscribed", true),
    ] {
        let figures = |r: &RunFigures| match pick {
            true => r.create_subscribed.clone(),
            false => r.create_unsubscribed.clone(),
        };
        row(
            &format!("create, {smallest} clients, {label} (req/s)"),
            num(m(&|r| figures(r).throughput), 0),
            num(m(&|r| figures(r).latency.p50_ms), 2),
            num(m(&|r| figures(r).latency.p99_ms), 2),
            "",
            None,
        );
    }
    let ratio = m(&|r| r.create_subscribed.throughput / r.create_unsubscribed.throughput);
    row(
        "  throughput with / without an endpoint",
        num(ratio, 2),
        none(),
        none(),
        &format!(">= {TARGET_SUBSCRIBED_RATIO}"),
        Some(ratio >= TARGET_SUBSCRIBED_RATIO),
    );
    row(
        "webhook deliveries under the full create load (events/s)",
        num(m(&|r| r.deliveries_per_s), 0),
        none(),
        none(),
        "",
        None,
    );
    row(
        "  commit to receipt, the queue growing (ms)",
        none(),
        num(m(&|r| r.delivery_latency.p50_ms), 2),
        num(m(&|r| r.delivery_latency.p99_ms), 2),
        "",
        None,
    );
    let per_second = m(&|r| r.paced.deliveries_per_s);
    row(
        &format!(
            "webhook deliveries at a steady {:.0} creates/s (events/s)",
            m(&|r| r.paced.creates_per_s)
        ),
        num(per_second, 0),
        none(),
        none(),
        &format!(">= {TARGET_DELIVERIES_PER_S}"),
        Some(per_second >= TARGET_DELIVERIES_PER_S),
    );
    let p99 = m(&|r| r.paced.latency.p99_ms);
    row(
        "  commit to receipt (ms)",
        none(),
        num(m(&|r| r.paced.latency.p50_ms), 2),
        num(p99, 2),
        &format!("p99 < {TARGET_DELIVERY_P99_MS}"),
        Some(p99 < TARGET_DELIVERY_P99_MS),
    );
    let first = 0;
    let last = settings.list_sizes.len() - 1;
    for (filter, name) in LIST_FILTERS.iter().enumerate() {
        for (size_index, size) in settings.list_sizes.iter().enumerate() {
            row(
                &format!("list {}, {name}", size_label(*size)),
                none(),
                num(m(&|r| r.list[filter][size_index].p50_ms), 2),
                num(m(&|r| r.list[filter][size_index].p99_ms), 2),
                "",
                None,
            );
        }
        for (label, pick) in [("p50", 0), ("p99", 1)] {
            let get = |r: &RunFigures, i: usize| {
                let latency = r.list[filter][i];
                if pick == 0 {
                    latency.p50_ms
                } else {
                    latency.p99_ms
                }
            };
            let ratio = m(&|r| get(r, last)) / m(&|r| get(r, first));
            row(
                &format!(
                    "  {} / {} ({label})",
                    size_label(settings.list_sizes[last]),
                    size_label(settings.list_sizes[first])
                ),
                num(ratio, 2),
                none(),
                none(),
                &format!("<= {TARGET_LIST_RATIO}"),
                Some(ratio <= TARGET_LIST_RATIO),
            );
        }
    }
    let largest_list = settings.list_sizes.iter().copied().max().unwrap_or(0);
    let p99 = m(&|r| r.list_under_load.p99_ms);
    row(
        &format!(
            "list {}, first page, under the create load",
            size_label(largest_list)
        ),
        none(),
        num(m(&|r| r.list_under_load.p50_ms), 2),
        num(p99, 2),
        &format!("p99 < {TARGET_LIST_UNDER_LOAD_P99_MS}"),
        Some(p99 < TARGET_LIST_UNDER_LOAD_P99_MS),
    );
    row(
        "  the organization written, first page",
        none(),
        num(m(&|r| r.list_written_under_load.p50_ms), 2),
        num(m(&|r| r.list_written_under_load.p99_ms), 2),
        "",
        None,
    );
    row(
        &format!("  the create load meanwhile, {smallest} clients (req/s)"),
        num(m(&|r| r.create_during_list.throughput), 0),
        num(m(&|r| r.create_during_list.latency.p50_ms), 2),
        num(m(&|r| r.create_during_list.latency.p99_ms), 2),
        "",
        None,
    );
    let rss = m(&|r| r.peak_rss);
    row(
        "peak RSS under the create load (MiB)",
        num(rss, 1),
        none(),
        none(),
        &format!("< {TARGET_PEAK_RSS_MIB}"),
        Some(rss < TARGET_PEAK_RSS_MIB),
    );
    let start = m(&|r| r.start_ms);
    row(
        &format!(
            "start-to-ready (ms, median of {} per run)",
            settings.start_samples
        ),
        num(start, 1),
        none(),
        none(),
        &format!("< {TARGET_START_MS}"),
        Some(start < TARGET_START_MS),
    );
    println!("{line}");
    println!(
        "note: {largest} HTTP clients in a closed loop on a {pool}-connection pool queue for it, so by \
         Little's law their latency is about {largest}/throughput, ~{ratio:.0}x that of pgbench on \
         {pool} connections at equal throughput, before any server cost; pgbench on {largest} \
         connections, or the server on a pool of {large}, carry the same {largest} in flight.",
        pool = settings.pool_size,
        large = settings.large_pool,
        ratio = largest as f64 / settings.pool_size as f64,
    );
    if runs.len() > 1 {
        println!(
            "per run: create req/s ({}, {largest} on pool {}) | limits tps ({}) | list largest p50 ms:",
            counts
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" / "),
            settings.large_pool,
            kinds
                .iter()
                .flat_map(|kind| counts.iter().map(move |c| format!("{} {c}", kind.label())))
                .collect::<Vec<_>>()
                .join(" / ")
        );
        for (index, r) in runs.iter().enumerate() {
            println!(
                "  run {}: {} / {:.0} | {} | {:.2}",
                index + 1,
                r.create
                    .iter()
                    .map(|c| format!("{:.0}", c.throughput))
                    .collect::<Vec<_>>()
                    .join(" / "),
                r.create_large_pool.throughput,
                r.limits
                    .iter()
                    .map(|l| format!("{:.0}", l.tps))
                    .collect::<Vec<_>>()
                    .join(" / "),
                r.list[0][last].p50_ms
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h:1/db?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
