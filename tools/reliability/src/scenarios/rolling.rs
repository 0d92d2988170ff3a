//! [rolling-restart]: three instances behind a round-robin TCP balancer that follows
//! `/readyz`, under create and list load; each instance is replaced in turn (a new one
//! started, the old one sent SIGTERM), twice over. No request may fail, and every
//! acknowledged refund must be stored and read back identical.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::Rng;
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use super::common::{Attempt, Logical, StopOnDrop, verify_logicals};
use crate::Ctx;
use crate::client::{self, Admin, OrderSpec, Outcome, RawConn, raw_request};
use crate::report::{Counts, Latencies, Report};

/// The instances' lame-duck phase: several health-check periods of the balancer.
const SHUTDOWN_DELAY: Duration = Duration::from_millis(1_000);
/// How often the balancer asks every instance for `/readyz`.
const HEALTH_CHECK_PERIOD: Duration = Duration::from_millis(100);
const INSTANCES: usize = 3;

/// A backend of the balancer: an instance's address and whether its `/readyz` said 200.
struct Backend {
    addr: SocketAddr,
    ready: AtomicBool,
}

/// A round-robin TCP balancer: each client connection goes to the next ready backend (the
/// one after, if that refuses), for the connection's whole life, as a layer-4 load
/// balancer with health checks does.
struct Balancer {
    addr: SocketAddr,
    backends: Arc<Mutex<Vec<Arc<Backend>>>>,
    /// Client connections it could not give to any backend.
    unrouted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Balancer {
    async fn start() -> Result<Balancer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let balancer = Balancer {
            addr: listener.local_addr()?,
            backends: Arc::default(),
            unrouted: Arc::default(),
            stop: Arc::default(),
        };
        let (backends, unrouted, stop) = (
            balancer.backends.clone(),
            balancer.unrouted.clone(),
            balancer.stop.clone(),
        );
        tokio::spawn(async move {
            let next = AtomicUsize::new(0);
            while !stop.load(Ordering::Relaxed) {
                let Ok(Ok((inbound, _))) =
                    tokio::time::timeout(Duration::from_millis(200), listener.accept()).await
                else {
                    continue;
                };
                let ready: Vec<SocketAddr> = backends
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|backend| backend.ready.load(Ordering::Relaxed))
                    .map(|backend| backend.addr)
                    .collect();
                let first = next.fetch_add(1, Ordering::Relaxed);
                let unrouted = unrouted.clone();
                tokio::spawn(async move {
                    let mut inbound = inbound;
                    for i in 0..ready.len() {
                        let target = ready[(first + i) % ready.len()];
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ = outbound.set_nodelay(true);
                            let _ = inbound.set_nodelay(true);
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                    unrouted.fetch_add(1, Ordering::Relaxed);
                });
            }
        });
        let (backends, stop) = (balancer.backends.clone(), balancer.stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let current: Vec<Arc<Backend>> = backends.lock().unwrap().clone();
                for backend in current {
                    let ready = readiness(backend.addr).await == Some(200);
                    backend.ready.store(ready, Ordering::Relaxed);
                }
                tokio::time::sleep(HEALTH_CHECK_PERIOD).await;
            }
        });
        Ok(balancer)
    }

    fn add(&self, addr: SocketAddr) {
        self.backends.lock().unwrap().push(Arc::new(Backend {
            addr,
            ready: AtomicBool::new(false),
        }));
    }

    fn remove(&self, addr: SocketAddr) {
        self.backends
            .lock()
            .unwrap()
            .retain(|backend| backend.addr != addr);
    }

    fn is_ready(&self, addr: SocketAddr) -> bool {
        self.backends
            .lock()
            .unwrap()
            .iter()
            .any(|backend| backend.addr == addr && backend.ready.load(Ordering::Relaxed))
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The status `/readyz` answers on a fresh connection, if any within half a second.
async fn readiness(addr: SocketAddr) -> Option<u16> {
    let probe = async {
        let mut conn = RawConn::connect(addr).await.ok()?;
        conn.write(&raw_request("GET", "/readyz", &[], None))
            .await
            .ok()?;
        conn.read_response(Duration::from_millis(500))
            .await
            .ok()
            .map(|response| response.status)
    };
    tokio::time::timeout(Duration::from_millis(500), probe)
        .await
        .ok()
        .flatten()
}

/// One client of the load: its own connection pool (one connection, as a closed-loop
/// client uses), creating refunds or listing them without pause.
async fn worker(
    base: String,
    token: String,
    orders: Vec<Uuid>,
    lists: bool,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> (Vec<Logical>, Vec<(Outcome, Duration)>) {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1)
        .build()
        .expect("http client");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut created = Vec::new();
    let mut listed = Vec::new();
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        if lists {
            let (outcome, latency) = client::send(
                http.get(format!("{base}/v1/refunds/?limit=10"))
                    .bearer_auth(&token),
            )
            .await;
            listed.push((outcome, latency));
        } else {
            let order = orders[rng.random_range(0..orders.len())];
            let mut logical = Logical::new(order, rng.random_range(1..=500), "other");
            let started = Instant::now();
            let (outcome, latency) = client::send(client::refund_request(
                &http,
                &base,
                &token,
                &logical.body(),
            ))
            .await;
            logical.attempts.push(Attempt {
                outcome,
                started,
                latency,
            });
            created.push(logical);
        }
    }
    (created, listed)
}

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let mut options = ctx.options();
    options.shutdown_delay_ms = SHUTDOWN_DELAY.as_millis() as u64;
    options.shutdown_timeout = 10;
    options.max_connections = 8;
    let balancer = Balancer::start().await?;
    let mut instances = Vec::new();
    for _ in 0..INSTANCES {
        let server = ctx.start_server("rolling", &options).await?;
        balancer.add(server.addr);
        instances.push(server);
    }
    let admin = Admin::new(&instances[0].url, &ctx.admin_token);
    let tenant = admin.tenant("rolling", 2).await?;
    let mut orders = Vec::new();
    for i in 0..20 {
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
    for server in &instances {
        wait_until(Duration::from_secs(10), || balancer.is_ready(server.addr))
            .await
            .context("an instance never became ready behind the balancer")?;
    }

    let base = format!("http://{}", balancer.addr);
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_workers = StopOnDrop(stop.clone());
    let (creators, listers) = (6, 2);
    let workers: Vec<_> = (0..creators + listers)
        .map(|i| {
            tokio::spawn(worker(
                base.clone(),
                tenant.token.clone(),
                orders.clone(),
                i >= creators,
                stop.clone(),
                ctx.seed ^ (i as u64 + 700),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_000)).await;

    let rounds = if ctx.full { 5 } else { 2 };
    let mut restarts = Latencies::default();
    for _ in 0..rounds {
        for slot in 0..INSTANCES {
            let started = Instant::now();
            let replacement = ctx.start_server("rolling", &options).await?;
            balancer.add(replacement.addr);
            wait_until(Duration::from_secs(10), || {
                balancer.is_ready(replacement.addr)
            })
            .await
            .context("a new instance never became ready behind the balancer")?;
            let mut old = std::mem::replace(&mut instances[slot], replacement);
            let status = old
                .stop(SHUTDOWN_DELAY + Duration::from_secs(15))
                .await
                .context("stopping an instance")?;
            balancer.remove(old.addr);
            report.check(
                status.success(),
                format!("an instance exited {status:?} after SIGTERM"),
            );
            restarts.push(started.elapsed());
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut created = Vec::new();
    let mut listed = Vec::new();
    for handle in workers {
        let (c, l) = handle.await.context("load worker")?;
        created.extend(c);
        listed.extend(l);
    }
    let mut creates = Counts::default();
    let mut lists = Counts::default();
    let mut latencies = Latencies::default();
    for logical in &created {
        creates.add(logical.attempts[0].outcome.label());
        latencies.push(logical.attempts[0].latency);
    }
    for (outcome, latency) in &listed {
        lists.add(outcome.label());
        latencies.push(*latency);
    }
    report.figure(format!(
        "{} instance replacements in {rounds} rounds, each {}",
        restarts.len(),
        restarts.summary()
    ));
    report.figure(format!(
        "creates through the balancer: {}",
        creates.summary()
    ));
    report.figure(format!("lists through the balancer: {}", lists.summary()));
    report.figure(format!("latency {}", latencies.summary()));
    let unrouted = balancer.unrouted.load(Ordering::Relaxed);
    report.check(
        unrouted == 0,
        format!("{unrouted} connections found no ready instance"),
    );
    report.check(
        creates.get("201") == created.len() && !created.is_empty(),
        format!("creates that did not answer 201: {}", creates.summary()),
    );
    report.check(
        lists.get("200") == listed.len() && !listed.is_empty(),
        format!("lists that did not answer 200: {}", lists.summary()),
    );
    if created.len() + listed.len() < 100 {
        bail!(
            "too little load went through: {}",
            created.len() + listed.len()
        );
    }
    let http = client::http_client(Duration::from_secs(30));
    verify_logicals(
        ctx,
        &http,
        &instances[0].url,
        tenant.org,
        &tenant.token,
        &created,
        report,
    )
    .await?;
    Ok(())
}

async fn wait_until(within: Duration, condition: impl Fn() -> bool) -> Result<()> {
    let started = Instant::now();
    while !condition() {
        if started.elapsed() > within {
            bail!("not within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
