//! [replica]: a real streaming replica. A second PostgreSQL cluster is made from the one the
//! suite uses with `pg_basebackup -R` (loopback replication allowed in its `pg_hba.conf`
//! for the time of the scenario), started on a free port, and a server is pointed at both.
//! Checked: lists are served by the replica (its `pg_stat_activity` shows them, and a
//! refund the replica has not replayed yet is not listed) while `Cache-Control: no-cache`
//! reads the primary; writes go to the primary; a replica lagging past the limit, or
//! stopped, is bypassed without a failed request (and `/readyz` and `/metrics` say so); a
//! replica that catches up or comes back is used again.
//!
//! Skipped, with the reason, where PostgreSQL is not local or its server binaries, its OS
//! user or the rights to run as it are missing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Row};
use tokio::process::{Child, Command};
use uuid::Uuid;

use super::common::{Attempt, Logical, StopOnDrop, verify_logicals};
use crate::Ctx;
use crate::client::{self, Admin, OrderSpec, Outcome};
use crate::report::{Counts, Report, ms};

/// `REFUNDS_READ_MAX_LAG_MS` of the scenario's server.
const MAX_LAG: Duration = Duration::from_millis(3_000);
/// Marks the line this scenario adds to `pg_hba.conf`, with the driver's pid.
const HBA_MARKER: &str = "# added by refunds-reliability replica scenario, pid";

/// What running a replica needs, or why it cannot run here.
struct Setup {
    bin_dir: PathBuf,
    uid: u32,
    gid: u32,
    hba_file: PathBuf,
    primary_data_dir: PathBuf,
    user: String,
    /// Settings a standby must have at least as high as its primary.
    standby_minimums: Vec<(String, String)>,
}

async fn setup(ctx: &Ctx) -> Result<std::result::Result<Setup, String>> {
    let options: PgConnectOptions = ctx.base_url.parse()?;
    if !matches!(options.get_host(), "127.0.0.1" | "localhost" | "::1") {
        return Ok(Err(format!(
            "PostgreSQL at {} is not on this machine",
            options.get_host()
        )));
    }
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&ctx.pool)
        .await?;
    let bin_dir = PathBuf::from(format!("/usr/lib/postgresql/{}/bin", version / 10_000));
    for tool in ["postgres", "pg_basebackup"] {
        if !bin_dir.join(tool).exists() {
            return Ok(Err(format!(
                "{} not found (PostgreSQL {} server binaries)",
                bin_dir.join(tool).display(),
                version / 10_000
            )));
        }
    }
    let Some((uid, gid)) = os_user("postgres") else {
        return Ok(Err("no postgres OS user to run a cluster as".into()));
    };
    let me = own_uid().unwrap_or(u32::MAX);
    if me != 0 && me != uid {
        return Ok(Err(
            "running a second cluster needs root or the postgres OS user".into(),
        ));
    }
    let hba_file: String = sqlx::query_scalar("SELECT current_setting('hba_file')")
        .fetch_one(&ctx.pool)
        .await?;
    let primary_data_dir: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(&ctx.pool)
        .await?;
    let hba_file = PathBuf::from(hba_file);
    if std::fs::OpenOptions::new()
        .append(true)
        .open(&hba_file)
        .is_err()
    {
        return Ok(Err(format!("{} is not writable", hba_file.display())));
    }
    let mut standby_minimums = Vec::new();
    for name in [
        "max_connections",
        "max_worker_processes",
        "max_wal_senders",
        "max_prepared_transactions",
        "max_locks_per_transaction",
    ] {
        let value: String = sqlx::query_scalar("SELECT current_setting($1)")
            .bind(name)
            .fetch_one(&ctx.pool)
            .await?;
        standby_minimums.push((name.to_owned(), value));
    }
    Ok(Ok(Setup {
        bin_dir,
        uid,
        gid,
        hba_file,
        primary_data_dir: PathBuf::from(primary_data_dir),
        user: options.get_username().to_owned(),
        standby_minimums,
    }))
}

/// uid and gid of an OS user, from /etc/passwd.
fn os_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&name) && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

fn own_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The primary's `pg_hba.conf` with loopback replication allowed for the suite's user;
/// restored (and reloaded) when dropped, whatever happened.
struct HbaChange {
    path: PathBuf,
    original: Vec<u8>,
    primary_data_dir: PathBuf,
}

impl HbaChange {
    fn apply(setup: &Setup) -> Result<HbaChange> {
        let current = std::fs::read_to_string(&setup.hba_file)?;
        // Lines left by a driver that was killed before it could restore the file.
        let original: String = current
            .lines()
            .filter(|line| {
                let Some((_, pid)) = line.split_once(HBA_MARKER) else {
                    return true;
                };
                pid.trim().parse().is_ok_and(pid_alive)
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let added = format!(
            "host replication {} 127.0.0.1/32 trust {HBA_MARKER} {}\n",
            setup.user,
            std::process::id()
        );
        // First, so that no earlier line refuses the connection.
        std::fs::write(&setup.hba_file, format!("{added}{original}"))?;
        let change = HbaChange {
            path: setup.hba_file.clone(),
            original: original.into_bytes(),
            primary_data_dir: setup.primary_data_dir.clone(),
        };
        change.reload();
        Ok(change)
    }

    /// SIGHUP to the primary's postmaster, as `pg_reload_conf()` does.
    fn reload(&self) {
        let pid = std::fs::read_to_string(self.primary_data_dir.join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok());
        if let Some(pid) = pid {
            let _ = std::process::Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status();
        }
    }
}

impl Drop for HbaChange {
    fn drop(&mut self) {
        if let Err(error) = std::fs::write(&self.path, &self.original) {
            eprintln!(
                "could not restore {}: {error}; remove the line with \"{HBA_MARKER}\"",
                self.path.display()
            );
        }
        self.reload();
    }
}

/// The replica cluster: its data directory and, while it runs, its postmaster (a child of
/// this process, killed with it). Dropping it stops the cluster and removes the directory.
struct Replica {
    dir: PathBuf,
    port: u16,
    log: PathBuf,
    args: Vec<String>,
    bin_dir: PathBuf,
    uid: u32,
    gid: u32,
    child: Option<Child>,
}

impl Replica {
    async fn create(ctx: &Ctx, setup: &Setup, report: &mut Report) -> Result<Replica> {
        let dir = ctx.workdir.join("replica");
        std::fs::create_dir_all(&dir)?;
        std::os::unix::fs::chown(&dir, Some(setup.uid), Some(setup.gid))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut args: Vec<String> = vec!["-D".into(), dir.display().to_string()];
        let mut settings: Vec<(String, String)> = vec![
            ("port".into(), port.to_string()),
            ("listen_addresses".into(), "127.0.0.1".into()),
            ("unix_socket_directories".into(), dir.display().to_string()),
            (
                "hba_file".into(),
                dir.join("pg_hba.conf").display().to_string(),
            ),
            (
                "ident_file".into(),
                dir.join("pg_ident.conf").display().to_string(),
            ),
            ("external_pid_file".into(), String::new()),
            ("shared_buffers".into(), "32MB".into()),
            ("fsync".into(), "off".into()),
            ("ssl".into(), "off".into()),
            ("logging_collector".into(), "off".into()),
            ("hot_standby".into(), "on".into()),
            ("cluster_name".into(), "refunds-reliability-replica".into()),
        ];
        settings.extend(setup.standby_minimums.iter().cloned());
        for (name, value) in settings {
            args.push("-c".into());
            args.push(format!("{name}={value}"));
        }
        let mut replica = Replica {
            log: ctx.workdir.join("replica.log"),
            dir,
            port,
            args,
            bin_dir: setup.bin_dir.clone(),
            uid: setup.uid,
            gid: setup.gid,
            child: None,
        };

        let started = Instant::now();
        let mut backup = replica.command("pg_basebackup");
        backup
            .args(["-d", &ctx.base_url, "-D"])
            .arg(&replica.dir)
            .args(["-R", "-X", "stream", "--checkpoint=fast", "--no-sync"]);
        let output = tokio::time::timeout(Duration::from_secs(180), backup.output())
            .await
            .context("pg_basebackup did not finish within 180 s")??;
        if !output.status.success() {
            bail!(
                "pg_basebackup failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        report.figure(format!(
            "pg_basebackup -R of the primary: {} ({} MiB)",
            ms(started.elapsed()),
            dir_size(&replica.dir) / (1024 * 1024)
        ));
        // The Debian layout keeps configuration outside the data directory: give the
        // replica its own (trust on loopback only).
        for (name, text) in [
            ("postgresql.conf", ""),
            (
                "pg_hba.conf",
                "local all all trust\nhost all all 127.0.0.1/32 trust\n",
            ),
            ("pg_ident.conf", ""),
        ] {
            let path = replica.dir.join(name);
            if name != "postgresql.conf" || !path.exists() {
                std::fs::write(&path, text)?;
                std::os::unix::fs::chown(&path, Some(setup.uid), Some(setup.gid))?;
            }
        }
        replica.start().await?;
        Ok(replica)
    }

    fn command(&self, tool: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(tool));
        command
            .uid(self.uid)
            .gid(self.gid)
            .current_dir("/")
            .env("HOME", &self.dir)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        command
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    async fn start(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut command = self.command("postgres");
        command
            .args(&self.args)
            .stdout(log.try_clone()?)
            .stderr(log);
        refunds_server_process::die_with_parent(&mut command);
        self.child = Some(command.spawn().context("starting the replica")?);
        let started = Instant::now();
        loop {
            if let Ok(options) = self.url("postgres").parse::<PgConnectOptions>()
                && let Ok(mut conn) = options.connect().await
            {
                let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                    .fetch_one(&mut conn)
                    .await?;
                if !standby {
                    bail!("the replica is not in recovery");
                }
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "the replica exited at start-up ({status}); see {}",
                    self.log.display()
                );
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the replica did not accept connections within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fast shutdown (SIGINT): sessions are cut, as when a replica goes down.
    async fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .is_err()
        {
            child.kill().await?;
            bail!("the replica did not stop within 30 s of SIGINT; killed");
        }
        Ok(())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status();
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while !matches!(child.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(|entry| entry.ok())
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let setup = match setup(ctx).await? {
        Ok(setup) => setup,
        Err(why) => {
            report.skip(why);
            return Ok(());
        }
    };
    let _hba = HbaChange::apply(&setup)?;
    // The postmaster rereads its configuration asynchronously after SIGHUP.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Kept until the end: the replica streams from the primary over the same permission.
    // Declared after it, the replica is stopped (dropped) first.
    let mut replica = Replica::create(ctx, &setup, report).await?;
    let database = ctx
        .db_url
        .parse::<PgConnectOptions>()?
        .get_database()
        .context("the suite's database name")?
        .to_owned();
    let replica_url = replica.url(&database);
    let on_replica = PgPoolOptions::new()
        .max_connections(2)
        .connect(&replica_url)
        .await
        .context("connecting to the replica")?;

    let mut options = ctx.options();
    options.read_replica = Some((replica_url.clone(), MAX_LAG.as_millis() as u64));
    let server = ctx.start_server("replica", &options).await?;
    let admin = Admin::new(&server.url, &ctx.admin_token);
    let tenant = admin.tenant("replica", 2).await?;
    let mut orders = Vec::new();
    for i in 0..10 {
        orders.push(
            admin
                .order(
                    tenant.org,
                    tenant.customers[i % 2],
                    OrderSpec::simple(100_000_000, if i % 2 == 0 { 0 } else { 10_000_000 }),
                )
                .await?,
        );
    }
    let http = client::http_client(Duration::from_secs(30));
    let api = Api {
        http: &http,
        base: &server.url,
        token: &tenant.token,
    };

    // Caught up: lists go to the replica, writes to the primary.
    let status = wait_for_replica(&api, |status| status["in_use"] == true).await?;
    report.figure(format!("replica in use: {status}"));
    let mut created = Vec::new();
    for order in orders.iter().take(5) {
        created.push(api.create(*order, 100).await);
    }
    let replica_reads_before = api.metric("refunds_db_reads_total", "replica").await;
    for _ in 0..20 {
        let (status, _) = api.list("?limit=5", false).await;
        report.check(status == 200, format!("a list answered {status}"));
    }
    let replica_reads =
        api.metric("refunds_db_reads_total", "replica").await - replica_reads_before;
    let sessions = server_sessions(&on_replica, &database).await?;
    let on_primary = server_sessions(&ctx.pool, &database).await?;
    report.figure(format!(
        "20 lists: {replica_reads} read the replica; server sessions on the replica: {} \
         ({} last ran the list), on the primary: {} ({} last ran the list)",
        sessions.total, sessions.listing, on_primary.total, on_primary.listing
    ));
    report.check(replica_reads == 20.0, "lists did not all read the replica");
    report.check(
        sessions.listing > 0,
        "the replica's pg_stat_activity shows no server session that ran the list",
    );
    report.check(
        on_primary.listing == 0,
        "a server session on the primary ran the list",
    );
    let acknowledged = created
        .iter()
        .filter(|l| l.acknowledged().len() == 1)
        .count();
    report.check(
        acknowledged == created.len(),
        "refunds were not created on the primary",
    );

    // Replay paused: the replica falls behind. A refund it has not replayed is not listed
    // (the list really reads the replica), unless the client asks for fresh data; once the
    // lag passes the limit, the primary serves the lists.
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&on_replica)
        .await?;
    let paused = Instant::now();
    let unreplayed = api.create(orders[6], 100).await;
    created.push(unreplayed.clone());
    let id = unreplayed
        .acknowledged()
        .first()
        .and_then(|body| body["id"].as_str().map(str::to_owned))
        .context("the refund made while replay is paused")?;
    let (_, stale) = api.list(&format!("?id={id}"), false).await;
    let (_, fresh) = api.list(&format!("?id={id}"), true).await;
    let counted = |body: &Value| body["pagination"]["total_count"].as_i64();
    report.figure(format!(
        "replay paused, a new refund listed {} after its creation: from the replica {:?}, with \
         Cache-Control: no-cache {:?}",
        ms(paused.elapsed()),
        counted(&stale),
        counted(&fresh)
    ));
    let stale_in_time = paused.elapsed() < MAX_LAG;
    report.check(
        !stale_in_time || counted(&stale) == Some(0),
        "a refund the replica had not replayed was listed from the replica",
    );
    report.check(
        counted(&fresh) == Some(1),
        "Cache-Control: no-cache did not read the primary",
    );
    let status = wait_for_replica(&api, |status| status["in_use"] == false).await?;
    report.figure(format!(
        "bypassed {} after replay paused (limit {}): {status}",
        ms(paused.elapsed()),
        ms(MAX_LAG)
    ));
    report.check(
        status["bypassed_because"] == "lagging"
            && status["lag_ms"]
                .as_u64()
                .is_some_and(|lag| lag as u128 >= MAX_LAG.as_millis()),
        format!("/readyz while lagging: {status}"),
    );
    report.check(
        api.metric("refunds_db_replica_in_use", "").await == 0.0,
        "/metrics says the lagging replica is in use",
    );
    let (_, bypassed) = api.list(&format!("?id={id}"), false).await;
    report.check(
        counted(&bypassed) == Some(1),
        "with the replica bypassed, the list does not show the new refund",
    );
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&on_replica)
        .await?;
    let resumed = Instant::now();
    wait_for_replica(&api, |status| status["in_use"] == true).await?;
    report.figure(format!(
        "in use again {} after replay resumed",
        ms(resumed.elapsed())
    ));
    let before = api.metric("refunds_db_reads_total", "replica").await;
    let (_, caught_up) = api.list(&format!("?id={id}"), false).await;
    report.check(
        counted(&caught_up) == Some(1)
            && api.metric("refunds_db_reads_total", "replica").await == before + 1.0,
        "the caught-up replica did not serve the new refund",
    );
    drop(on_replica);

    // The replica stops under load, then comes back.
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_load = StopOnDrop(stop.clone());
    let listers: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(list_load(
                http.clone(),
                server.url.clone(),
                tenant.token.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let creators: Vec<_> = (0..2)
        .map(|i| {
            tokio::spawn(create_load(
                http.clone(),
                server.url.clone(),
                tenant.token.clone(),
                orders.clone(),
                stop.clone(),
                i,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let stopped = Instant::now();
    replica.stop().await?;
    let status = wait_for_replica(&api, |status| status["in_use"] == false).await?;
    report.figure(format!(
        "replica stopped: bypassed after {}: {status}",
        ms(stopped.elapsed())
    ));
    report.check(
        status["bypassed_because"] == "unreachable",
        format!("/readyz with the replica stopped: {status}"),
    );
    let primary_reads = api.metric("refunds_db_reads_total", "primary").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let served_by_primary = api.metric("refunds_db_reads_total", "primary").await - primary_reads;
    report.check(
        served_by_primary > 0.0,
        "with the replica stopped, the primary served no list",
    );
    let restarted = Instant::now();
    replica.start().await?;
    wait_for_replica(&api, |status| status["in_use"] == true).await?;
    report.figure(format!(
        "replica restarted: in use again {} after its start",
        ms(restarted.elapsed())
    ));
    let replica_reads = api.metric("refunds_db_reads_total", "replica").await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    report.check(
        api.metric("refunds_db_reads_total", "replica").await > replica_reads,
        "the restarted replica serves no list",
    );
    stop.store(true, Ordering::Relaxed);
    let mut lists = Counts::default();
    for handle in listers {
        for label in handle.await? {
            lists.add(label);
        }
    }
    let mut creates = Counts::default();
    for handle in creators {
        for logical in handle.await? {
            creates.add(logical.attempts[0].outcome.label());
            created.push(logical);
        }
    }
    let fallbacks = api.metric("refunds_db_replica_fallbacks_total", "").await;
    report.figure(format!(
        "under load through the stop and restart: lists {}; creates {}; reads retried on the \
         primary after failing on the replica: {fallbacks}",
        lists.summary(),
        creates.summary()
    ));
    report.check(
        lists.get("200") == lists.total() && lists.total() > 0,
        format!(
            "lists failed while the replica went away: {}",
            lists.summary()
        ),
    );
    report.check(
        creates.get("201") == creates.total() && creates.total() > 0,
        format!(
            "creates failed while the replica went away: {}",
            creates.summary()
        ),
    );
    verify_logicals(
        ctx,
        &http,
        &server.url,
        tenant.org,
        &tenant.token,
        &created,
        report,
    )
    .await?;
    drop(server);
    replica.stop().await?;
    Ok(())
}

struct Api<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    token: &'a str,
}

impl Api<'_> {
    async fn create(&self, order: Uuid, amount: i64) -> Logical {
        let mut logical = Logical::new(order, amount, "other");
        let started = Instant::now();
        let (outcome, latency) = client::send(client::refund_request(
            self.http,
            self.base,
            self.token,
            &logical.body(),
        ))
        .await;
        logical.attempts.push(Attempt {
            outcome,
            started,
            latency,
        });
        logical
    }

    async fn list(&self, query: &str, fresh: bool) -> (u16, Value) {
        let mut request = self
            .http
            .get(format!("{}/v1/refunds/{query}", self.base))
            .bearer_auth(self.token);
        if fresh {
            request = request.header("cache-control", "no-cache");
        }
        match client::send(request).await.0 {
            Outcome::Answer(status, body) => {
                (status, serde_json::from_str(&body).unwrap_or(Value::Null))
            }
            Outcome::Transport(_) => (0, Value::Null),
        }
    }

    async fn readiness(&self) -> Value {
        match client::send(self.http.get(format!("{}/readyz", self.base)))
            .await
            .0
            .json()
        {
            Some(body) => body["read_replica"].clone(),
            None => Value::Null,
        }
    }

    /// The sum of a metric's samples whose `database` label is `database` (any, if empty).
    async fn metric(&self, name: &str, database: &str) -> f64 {
        let text = match client::send(self.http.get(format!("{}/metrics", self.base)))
            .await
            .0
        {
            Outcome::Answer(_, text) => text,
            Outcome::Transport(_) => String::new(),
        };
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter(|line| {
                line.split(['{', ' ']).next() == Some(name)
                    && (database.is_empty() || line.contains(&format!("database=\"{database}\"")))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

async fn wait_for_replica(api: &Api<'_>, done: impl Fn(&Value) -> bool) -> Result<Value> {
    let started = Instant::now();
    loop {
        let status = api.readiness().await;
        if done(&status) {
            return Ok(status);
        }
        if started.elapsed() > Duration::from_secs(20) {
            bail!("/readyz still says {status} after 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Sessions {
    total: i64,
    listing: i64,
}

/// The server's sessions on a database, and how many last ran the refunds list.
async fn server_sessions(pool: &PgPool, database: &str) -> Result<Sessions> {
    let row = sqlx::query(
        "SELECT count(*) AS total, \
                count(*) FILTER (WHERE query LIKE '%FROM refunds r LEFT JOIN disputes d%') AS listing \
         FROM pg_stat_activity WHERE datname = $1 AND application_name = 'refunds-server'",
    )
    .bind(database)
    .fetch_one(pool)
    .await?;
    Ok(Sessions {
        total: row.get("total"),
        listing: row.get("listing"),
    })
}

async fn list_load(
    http: reqwest::Client,
    base: String,
    token: String,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let mut labels = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let (outcome, _) = client::send(
            http.get(format!("{base}/v1/refunds/?limit=10&sorting=-amount"))
                .bearer_auth(&token),
        )
        .await;
        labels.push(outcome.label());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    labels
}

async fn create_load(
    http: reqwest::Client,
    base: String,
    token: String,
    orders: Vec<Uuid>,
    stop: Arc<AtomicBool>,
    worker: usize,
) -> Vec<Logical> {
    let mut done = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut i = worker;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let api = Api {
            http: &http,
            base: &base,
            token: &token,
        };
        done.push(api.create(orders[i % orders.len()], 50).await);
        i += 2;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done
}
