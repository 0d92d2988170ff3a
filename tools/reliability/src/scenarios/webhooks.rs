//! [webhooks]: deliveries from the outbox to a real receiver on another socket.
//!
//! 1. The receiver answers 500, then hangs past the delivery timeout, then recovers: every
//!    event arrives, each `webhook-id` at least once, and per endpoint the first arrivals
//!    come in the order the events were created.
//! 2. The server is SIGKILLed 5 times while clients create refunds (some refused as
//!    over-refunds): the `refund.created` ids received are exactly the refunds in the
//!    database, so nothing committed is lost and nothing refused or rolled back is sent.
//! 3. Three instances share the queue: no event is delivered twice while all are healthy.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::Rng;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::Ctx;
use crate::client::{self, Admin, OrderSpec};
use crate::report::{Latencies, Report, ms};
use crate::server::ServerOptions;

const ANSWER_OK: u8 = 0;
const ANSWER_500: u8 = 1;
const HANG: u8 = 2;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Arrival {
    path: String,
    webhook_id: String,
    body: Value,
}

/// A webhook receiver on 127.0.0.1: records every request, then answers as `mode` says.
struct Receiver {
    base: String,
    mode: Arc<AtomicU8>,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
}

impl Receiver {
    async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let mode = Arc::new(AtomicU8::new(ANSWER_OK));
        let arrivals: Arc<Mutex<Vec<Arrival>>> = Arc::default();
        let (loop_mode, loop_arrivals) = (mode.clone(), arrivals.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (mode, arrivals) = (loop_mode.clone(), loop_arrivals.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, mode, arrivals).await;
                });
            }
        });
        Ok(Self {
            base,
            mode,
            arrivals,
        })
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn arrivals(&self, path: &str) -> Vec<Arrival> {
        self.arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|arrival| arrival.path == path)
            .cloned()
            .collect()
    }
}

/// One request per connection, answered with `Connection: close`.
async fn serve(
    mut stream: tokio::net::TcpStream,
    mode: Arc<AtomicU8>,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
) -> Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_len, path, webhook_id, length) = loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            bail!("closed before the head");
        }
        buffer.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(head_len) = request.parse(&buffer)? {
            let header = |name: &str| {
                request
                    .headers
                    .iter()
                    .find(|header| header.name.eq_ignore_ascii_case(name))
                    .map(|header| String::from_utf8_lossy(header.value).into_owned())
            };
            let length: usize = header("content-length").unwrap_or_default().parse()?;
            break (
                head_len,
                request.path.unwrap_or_default().to_owned(),
                header("webhook-id").unwrap_or_default(),
                length,
            );
        }
    };
    while buffer.len() < head_len + length {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            bail!("closed before the body");
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let body = serde_json::from_slice(&buffer[head_len..head_len + length])?;
    arrivals.lock().unwrap().push(Arrival {
        path,
        webhook_id,
        body,
    });
    let answer: &[u8] = match mode.load(Ordering::SeqCst) {
        ANSWER_OK => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
        ANSWER_500 => b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\ndown",
        _ => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            return Ok(());
        }
    };
    stream.write_all(answer).await?;
    Ok(())
}

/// A server whose deliveries may go to the local receiver, time out after 500 ms and are
/// retried after 50 ms, doubling.
fn options(ctx: &Ctx) -> ServerOptions {
    let mut options = ctx.options();
    options.extra_env = [
        ("REFUNDS_WEBHOOK_ALLOW_PRIVATE_URLS", "true"),
        ("REFUNDS_WEBHOOK_TIMEOUT_MS", "500"),
        ("REFUNDS_WEBHOOK_RETRY_BASE_MS", "50"),
    ]
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .to_vec();
    options
}

const EVENTS: [&str; 3] = ["refund.created", "order.updated", "order.refunded"];

/// An organization with an endpoint at `receiver/path`; answers its token and endpoint id.
async fn subscribed_tenant(
    admin: &Admin,
    base: &str,
    label: &str,
    url: &str,
) -> Result<(client::Tenant, Uuid)> {
    let mut tenant = admin.tenant(label, 2).await?;
    tenant.token = admin
        .organization_token(
            tenant.org,
            &["refunds:read", "refunds:write", "webhooks:write"],
        )
        .await?;
    let response = client::http_client(Duration::from_secs(10))
        .post(format!("{base}/v1/webhooks/endpoints"))
        .bearer_auth(&tenant.token)
        .json(&json!({"url": url, "format": "raw", "events": EVENTS}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if status != 201 {
        bail!("creating the endpoint answered {status}: {body}");
    }
    let id = body["id"].as_str().context("endpoint id")?.parse()?;
    Ok((tenant, id))
}

/// Waits until no event of the endpoint is pending; answers the events in creation order
/// with their states.
async fn drained(ctx: &Ctx, endpoint: Uuid, within: Duration) -> Result<Vec<(Uuid, String)>> {
    let deadline = Instant::now() + within;
    loop {
        let events: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT id, state FROM webhook_events WHERE endpoint_id = $1 ORDER BY seq",
        )
        .bind(endpoint)
        .fetch_all(&ctx.pool)
        .await?;
        if events.iter().all(|(_, state)| state != "pending") || Instant::now() > deadline {
            return Ok(events);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks that every event arrived, and that first arrivals follow creation order.
fn check_arrivals(
    report: &mut Report,
    label: &str,
    events: &[(Uuid, String)],
    arrivals: &[Arrival],
) -> HashMap<String, usize> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut first_order = Vec::new();
    for arrival in arrivals {
        let count = counts.entry(arrival.webhook_id.clone()).or_default();
        if *count == 0 {
            first_order.push(arrival.webhook_id.clone());
        }
        *count += 1;
    }
    let created: Vec<String> = events.iter().map(|(id, _)| id.to_string()).collect();
    let missing = created
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .count();
    let not_succeeded = events
        .iter()
        .filter(|(_, state)| state != "succeeded")
        .count();
    report.check(
        missing == 0,
        format!(
            "{label}: {missing} of {} events never arrived",
            created.len()
        ),
    );
    report.check(
        not_succeeded == 0,
        format!("{label}: {not_succeeded} events not delivered successfully"),
    );
    report.check(
        first_order == created,
        format!("{label}: first arrivals are not in creation order"),
    );
    counts
}

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let receiver = Receiver::start().await?;
    flaky_receiver(ctx, report, &receiver).await?;
    kills(ctx, report, &receiver).await?;
    three_instances(ctx, report, &receiver).await?;
    Ok(())
}

async fn flaky_receiver(ctx: &Ctx, report: &mut Report, receiver: &Receiver) -> Result<()> {
    let mut server = ctx.start_server("webhooks-flaky", &options(ctx)).await?;
    let admin = Admin::new(&server.url, &ctx.admin_token);
    let path = "/flaky";
    let url = format!("{}{path}", receiver.base);
    let (tenant, endpoint) = subscribed_tenant(&admin, &server.url, "wh-flaky", &url).await?;
    let order = admin
        .order(
            tenant.org,
            tenant.customers[0],
            OrderSpec::simple(1_000_000, 0),
        )
        .await?;
    let http = client::http_client(Duration::from_secs(10));
    let started = Instant::now();
    receiver.set(ANSWER_500);
    for i in 0..30 {
        if i == 10 {
            receiver.set(HANG);
        }
        if i == 20 {
            receiver.set(ANSWER_OK);
        }
        let body = client::refund_body(order, 10, "customer_request", &Uuid::new_v4().to_string());
        let (outcome, _) = client::send(client::refund_request(
            &http,
            &server.url,
            &tenant.token,
            &body,
        ))
        .await;
        report.check(
            outcome.status() == Some(201),
            format!("flaky: create answered {}", outcome.label()),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = drained(ctx, endpoint, Duration::from_secs(60)).await?;
    let arrivals = receiver.arrivals(path);
    let counts = check_arrivals(report, "flaky", &events, &arrivals);
    let retried = counts.values().filter(|count| **count > 1).count();
    report.figure(format!(
        "flaky receiver (500, then hanging past the timeout, then well): {} events, {} arrivals, {retried} events needed retries, all delivered {}",
        events.len(),
        arrivals.len(),
        ms(started.elapsed())
    ));
    report.check(retried > 0, "flaky: no event needed a retry");
    server.stop(Duration::from_secs(10)).await?;
    Ok(())
}

async fn kills(ctx: &Ctx, report: &mut Report, receiver: &Receiver) -> Result<()> {
    let options = options(ctx);
    let mut server = ctx.start_server("webhooks-crash", &options).await?;
    let admin = Admin::new(&server.url, &ctx.admin_token);
    let path = "/crash";
    let url = format!("{}{path}", receiver.base);
    let (tenant, endpoint) = subscribed_tenant(&admin, &server.url, "wh-crash", &url).await?;
    let mut orders = Vec::new();
    for i in 0..6 {
        // Small orders run out: past three refunds the fourth is an over-refund, refused
        // (its transaction rolls back).
        let net = if i < 4 { 10_000_000 } else { 350 };
        orders.push(
            admin
                .order(
                    tenant.org,
                    tenant.customers[i % 2],
                    OrderSpec::simple(net, 0),
                )
                .await?,
        );
    }
    let target: Arc<RwLock<Option<String>>> = Arc::new(RwLock::new(Some(server.url.clone())));
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..6 {
        let (target, stop, refused, orders, token) = (
            target.clone(),
            stop.clone(),
            refused.clone(),
            orders.clone(),
            tenant.token.clone(),
        );
        workers.push(tokio::spawn(async move {
            let http = client::http_client(Duration::from_secs(10));
            let mut n = worker;
            while !stop.load(Ordering::SeqCst) {
                let Some(base) = target.read().await.clone() else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                n += 1;
                let body = client::refund_body(orders[n % orders.len()], 100, "other", "crash");
                let (outcome, _) =
                    client::send(client::refund_request(&http, &base, &token, &body)).await;
                if matches!(outcome.status(), Some(403 | 422)) {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    let mut rng = ctx.rng("webhooks-crash");
    let mut restarts = Latencies::default();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(600..1_200))).await;
        *target.write().await = None;
        server.kill().await?;
        let down = Instant::now();
        server = ctx.start_server("webhooks-crash", &options).await?;
        restarts.push(down.elapsed());
        *target.write().await = Some(server.url.clone());
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await?;
    }
    // Leases held by a killed instance run out after the timeout plus the margin.
    let events = drained(ctx, endpoint, Duration::from_secs(60)).await?;
    let arrivals = receiver.arrivals(path);
    let refunds: HashSet<String> =
        sqlx::query_scalar::<_, Uuid>("SELECT id FROM refunds WHERE organization_id = $1")
            .bind(tenant.org)
            .fetch_all(&ctx.pool)
            .await?
            .into_iter()
            .map(|id| id.to_string())
            .collect();
    let announced: HashSet<String> = arrivals
        .iter()
        .filter(|arrival| arrival.body["type"] == "refund.created")
        .filter_map(|arrival| arrival.body["data"]["id"].as_str().map(str::to_owned))
        .collect();
    let lost = refunds.difference(&announced).count();
    let phantom = announced.difference(&refunds).count();
    let missing = events
        .iter()
        .filter(|(id, _)| {
            !arrivals
                .iter()
                .any(|arrival| arrival.webhook_id == id.to_string())
        })
        .count();
    let repeated = arrivals.len()
        - arrivals
            .iter()
            .map(|arrival| &arrival.webhook_id)
            .collect::<HashSet<_>>()
            .len();
    report.figure(format!(
        "5 SIGKILLs under load: {} refunds committed, {} over-refunds refused, {} events, {} arrivals ({repeated} repeats of events cut off by a kill); restart {}",
        refunds.len(),
        refused.load(Ordering::SeqCst),
        events.len(),
        arrivals.len(),
        restarts.summary()
    ));
    report.check(!refunds.is_empty(), "kills: no refund was committed");
    report.check(
        refused.load(Ordering::SeqCst) > 0,
        "kills: no over-refund was refused",
    );
    report.check(
        lost == 0,
        format!("kills: {lost} committed refunds never announced"),
    );
    report.check(
        phantom == 0,
        format!("kills: {phantom} refund.created for refunds that do not exist"),
    );
    report.check(
        missing == 0,
        format!("kills: {missing} events never arrived"),
    );
    server.stop(Duration::from_secs(10)).await?;
    Ok(())
}

async fn three_instances(ctx: &Ctx, report: &mut Report, receiver: &Receiver) -> Result<()> {
    let options = options(ctx);
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(ctx.start_server("webhooks-three", &options).await?);
    }
    let admin = Admin::new(&servers[0].url, &ctx.admin_token);
    let path = "/three";
    let url = format!("{}{path}", receiver.base);
    let (tenant, endpoint) = subscribed_tenant(&admin, &servers[0].url, "wh-three", &url).await?;
    let mut orders = Vec::new();
    for i in 0..6 {
        orders.push(
            admin
                .order(
                    tenant.org,
                    tenant.customers[i % 2],
                    OrderSpec::simple(10_000_000, 0),
                )
                .await?,
        );
    }
    let bases: Vec<String> = servers.iter().map(|server| server.url.clone()).collect();
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..6usize {
        let (bases, orders, token) = (bases.clone(), orders.clone(), tenant.token.clone());
        workers.push(tokio::spawn(async move {
            let http = client::http_client(Duration::from_secs(10));
            let mut created = 0;
            for n in 0..40usize {
                let body = client::refund_body(orders[worker], 10, "other", "three");
                let base = &bases[(worker + n) % bases.len()];
                let (outcome, _) =
                    client::send(client::refund_request(&http, base, &token, &body)).await;
                created += usize::from(outcome.status() == Some(201));
            }
            created
        }));
    }
    let mut created = 0;
    for worker in workers {
        created += worker.await?;
    }
    let events = drained(ctx, endpoint, Duration::from_secs(60)).await?;
    let arrivals = receiver.arrivals(path);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for arrival in &arrivals {
        *counts.entry(arrival.webhook_id.as_str()).or_default() += 1;
    }
    let twice = counts.values().filter(|count| **count > 1).count();
    let delivered_by: Vec<(i64,)> = sqlx::query_as(
        "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 GROUP BY event_id HAVING count(*) > 1",
    )
    .bind(endpoint)
    .fetch_all(&ctx.pool)
    .await?;
    report.figure(format!(
        "three instances: {created} refunds, {} events, {} arrivals, {twice} delivered twice, drained {}",
        events.len(),
        arrivals.len(),
        ms(started.elapsed())
    ));
    report.check(
        created == 240,
        format!("three: {created} of 240 creates answered 201"),
    );
    report.check(
        events.len() == created * 3,
        "three: not three events per refund",
    );
    report.check(twice == 0, format!("three: {twice} events delivered twice"));
    report.check(
        delivered_by.is_empty(),
        "three: an event has two deliveries recorded",
    );
    report.check(
        events.iter().all(|(_, state)| state == "succeeded"),
        "three: events not delivered",
    );
    for mut server in servers {
        server.stop(Duration::from_secs(10)).await?;
    }
    Ok(())
}
