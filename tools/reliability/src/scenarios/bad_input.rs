//! [bad-input]: oversized, deeply nested, huge and invalid bodies, slow bodies and slow
//! headers, idle connections and thousands of bad tokens, while a prober measures valid
//! requests and a sampler watches the server's memory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures::StreamExt;
use rand::Rng;
use rand::distr::Alphanumeric;
use refunds_server_process::{Memory, memory};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::common::StopOnDrop;
use crate::Ctx;
use crate::client::{self, Admin, OrderSpec, Outcome, RawConn, raw_request};
use crate::report::{Counts, Latencies, Report, ms};

const MIB: usize = 1024 * 1024;
const MEMORY_LIMIT_KIB: u64 = 256 * 1024;

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let request_timeout = 3u64;
    let mut options = ctx.options();
    options.request_timeout = request_timeout;
    let server = ctx.start_server("bad-input", &options).await?;
    let addr = server.addr;
    let base = server.url.clone();
    let admin = Admin::new(&base, &ctx.admin_token);
    let tenant = admin.tenant("badinput", 1).await?;
    let order = admin
        .order(
            tenant.org,
            tenant.customers[0],
            OrderSpec::simple(1_000_000_000, 0),
        )
        .await?;
    let token = tenant.token.clone();
    let http = client::http_client(Duration::from_secs(60));
    let rss_start = server.memory().unwrap_or_default().resident_kib;
    let mut peak = 0u64;

    // Memory sampler and valid-request prober, for the whole scenario.
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_helpers = StopOnDrop(stop.clone());
    let pid = server.pid;
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut max_rss = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Some(memory) = memory(pid) {
                    max_rss = max_rss.max(memory.resident_kib);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            max_rss
        })
    };
    let prober = {
        let (stop, http, base, token) = (stop.clone(), http.clone(), base.clone(), token.clone());
        tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut counts = Counts::default();
            let mut failures = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < 100_000 {
                n += 1;
                let (request, expected) = if n.is_multiple_of(2) {
                    (
                        http.get(format!("{base}/v1/refunds/?limit=5"))
                            .bearer_auth(&token),
                        200,
                    )
                } else {
                    let marker = Uuid::new_v4().simple().to_string();
                    (
                        client::refund_request(
                            &http,
                            &base,
                            &token,
                            &client::refund_body(order, 1, "other", &marker),
                        ),
                        201,
                    )
                };
                let (outcome, latency) = client::send(request).await;
                latencies.push(latency);
                counts.add(outcome.label());
                if outcome.status() != Some(expected) && failures.len() < 5 {
                    failures.push(format!("valid request answered {}", outcome.label()));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (latencies, counts, failures)
        })
    };

    // 1. Oversized bodies.
    let mut phase = Phase::new("oversized bodies (11 MiB, content-length and chunked)", pid);
    let big = Arc::new(vec![b'x'; 11 * MIB]);
    let results = run_concurrently(12, 4, |i| {
        let (big, token) = (big.clone(), token.clone());
        async move { send_large(addr, &token, &big, i % 3 == 2).await }
    })
    .await;
    for outcome in results {
        phase.expect(&outcome, &[413]);
    }
    peak = peak.max(phase.finish(report));

    // 2. Deep JSON.
    let mut phase = Phase::new("deep JSON (100,000 nested arrays / objects)", pid);
    let depth = 100_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let in_metadata = format!(
        "{{\"order_id\":\"{order}\",\"reason\":\"other\",\"amount\":1,\"metadata\":{{\"k\":{arrays}}}}}"
    );
    let bodies = [arrays.clone(), objects, in_metadata];
    for round in 0..5 {
        for body in &bodies {
            let (outcome, _) = client::send(
                http.post(format!("{base}/v1/refunds/"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone()),
            )
            .await;
            phase.expect(&outcome, &[400, 422]);
        }
        // The admin API reads JSON through another path.
        let (outcome, _) = client::send(
            http.post(format!("{base}/admin/customers"))
                .bearer_auth(&ctx.admin_token)
                .header("content-type", "application/json")
                .body(arrays.clone()),
        )
        .await;
        phase.expect(&outcome, &[400, 422]);
        let _ = round;
    }
    peak = peak.max(phase.finish(report));

    // 3. Huge JSON, just under the 10 MiB limit.
    let size = 10 * MIB - 4 * 1024;
    let huge_array = fill("[", "0,", "0]", size);
    let huge_object = {
        let mut text = String::from("{");
        let mut i = 0usize;
        while text.len() < size - 32 {
            text.push_str(&format!("\"k{i}\":0,"));
            i += 1;
        }
        text.push_str("\"end\":0}");
        text
    };
    let huge_string = format!("\"{}\"", "x".repeat(size - 2));
    let huge_metadata = format!(
        "{{\"order_id\":\"{order}\",\"reason\":\"other\",\"amount\":1,\"metadata\":{{\"k\":\"{}\"}}}}",
        "y".repeat(size - 200)
    );
    let huge_comment = format!(
        "{{\"order_id\":\"{order}\",\"reason\":\"other\",\"amount\":1,\"comment\":\"{}\"}}",
        "z".repeat(size - 200)
    );
    let huge: Vec<Arc<String>> = [
        huge_array,
        huge_object,
        huge_string,
        huge_metadata,
        huge_comment,
    ]
    .into_iter()
    .map(Arc::new)
    .collect();
    let kinds = [
        "array of 5M zeros",
        "object of 600k keys",
        "a string",
        "a metadata value",
        "a valid refund whose comment is 10 MiB",
    ];
    for (index, body) in huge.iter().enumerate() {
        // The comment has no length limit in Polar's contract: the last body is a valid refund.
        let expected: &[u16] = if index == huge.len() - 1 {
            &[201]
        } else {
            &[400, 413, 422]
        };
        let mut phase = Phase::new(
            &format!("huge JSON, {} (4 requests, 2 at a time)", kinds[index]),
            pid,
        );
        let results = run_concurrently(4, 2, |_| {
            let (http, base, token, body) =
                (http.clone(), base.clone(), token.clone(), body.clone());
            async move {
                client::send(
                    http.post(format!("{base}/v1/refunds/"))
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(body.as_ref().clone()),
                )
                .await
            }
        })
        .await;
        let mut largest = 0;
        for (outcome, latency) in results {
            if let Outcome::Answer(_, text) = &outcome {
                largest = largest.max(text.len());
            }
            phase.latency.push(latency);
            phase.expect(&outcome, expected);
        }
        phase.note(format!(
            "answer body {:.1} MiB",
            largest as f64 / MIB as f64
        ));
        peak = peak.max(phase.finish(report));
    }
    drop(huge);

    // 4. Invalid UTF-8.
    let mut phase = Phase::new("invalid UTF-8 (bodies and an Authorization header)", pid);
    let invalid: Vec<u8> = [
        b"{\"order_id\": \"".as_slice(),
        &[0xff, 0xfe, 0xc3, 0x28],
        b"\", \"reason\": \"other\", \"amount\": 1}",
    ]
    .concat();
    for _ in 0..50 {
        let (outcome, _) = client::send(
            http.post(format!("{base}/v1/refunds/"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(invalid.clone()),
        )
        .await;
        phase.expect(&outcome, &[400]);
        let (outcome, _) = client::send(
            http.post(format!("{base}/admin/orders"))
                .bearer_auth(&ctx.admin_token)
                .header("content-type", "application/json")
                .body(invalid.clone()),
        )
        .await;
        phase.expect(&outcome, &[400, 422]);
    }
    for _ in 0..50 {
        let mut header = b"authorization: Bearer polar_oat_".to_vec();
        header.extend_from_slice(&[0xff, 0xfe, 0x80]);
        let mut request = b"GET /v1/refunds/ HTTP/1.1\r\nhost: 127.0.0.1\r\n".to_vec();
        request.extend_from_slice(&header);
        request.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
        phase.expect(&raw_exchange(addr, &request).await, &[400, 401]);
    }
    peak = peak.max(phase.finish(report));

    // 5. Slow bodies: headers at once, then a byte every 250 ms. The request timeout must
    //    cut them with 503.
    let mut phase = Phase::new(
        &format!(
            "slow bodies (40 connections trickling 1 byte / 250 ms; request timeout {request_timeout} s)"
        ),
        pid,
    );
    let results = run_concurrently(40, 40, |_| {
        let token = token.clone();
        async move { slow_body(addr, &token, Duration::from_secs(request_timeout + 10)).await }
    })
    .await;
    let mut slow_latency = Latencies::default();
    for (outcome, latency) in &results {
        slow_latency.push(*latency);
        phase.expect(outcome, &[503]);
    }
    phase.note(format!("cut after {}", slow_latency.summary()));
    let cut_limit = Duration::from_secs(request_timeout) + Duration::from_millis(1_500);
    phase.require(
        slow_latency.max() <= cut_limit,
        format!(
            "a slow body was not cut within the request timeout: {}",
            ms(slow_latency.max())
        ),
    );
    peak = peak.max(phase.finish(report));

    // 6. Slow headers and idle connections (no request timeout covers them: reported as a
    //    weakness when they are never cut).
    let mut phase = Phase::new(
        "slow headers (20 connections) and 300 idle connections",
        pid,
    );
    let idle = {
        let mut conns = Vec::new();
        for _ in 0..300 {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(conn) => conns.push(conn),
                Err(error) => {
                    phase.require(false, format!("opening idle connections: {error}"));
                    break;
                }
            }
        }
        conns
    };
    let hold = Duration::from_secs(8);
    let results = run_concurrently(20, 20, |_| async move { slow_headers(addr, hold).await }).await;
    let mut never_cut = 0;
    for (outcome, _) in &results {
        if matches!(outcome, Outcome::Transport(kind) if kind == "still open") {
            never_cut += 1;
        }
        phase.counts.add(outcome.label());
    }
    let idle_open = idle.len();
    drop(idle);
    phase.note(format!(
        "{idle_open} idle connections held for the duration"
    ));
    peak = peak.max(phase.finish(report));
    if never_cut > 0 {
        report.warn(format!(
            "{never_cut} of 20 connections trickling their headers were still open after {} s: \
             nothing bounds the time to receive a request head (no header read timeout), so \
             slow-header clients can hold connections (and a graceful shutdown) indefinitely",
            hold.as_secs()
        ));
    }

    // 7. Requests held past the request timeout inside their transaction (the order's row
    //    lock is held meanwhile): 503 for each, none of them takes effect, and the order
    //    takes refunds again at once when the lock goes.
    let mut phase = Phase::new(
        &format!("requests held past the request timeout ({request_timeout} s) by a row lock"),
        pid,
    );
    let locked = admin
        .order(
            tenant.org,
            tenant.customers[0],
            OrderSpec::simple(100_000, 0),
        )
        .await?;
    let mut lock = ctx.pool.begin().await?;
    sqlx::query("SELECT id FROM orders WHERE id = $1 FOR UPDATE")
        .bind(locked)
        .execute(&mut *lock)
        .await?;
    let markers: Vec<String> = (0..10)
        .map(|_| Uuid::new_v4().simple().to_string())
        .collect();
    let results = run_concurrently(markers.len(), markers.len(), |i| {
        let (http, base, token, marker) = (
            http.clone(),
            base.clone(),
            token.clone(),
            markers[i].clone(),
        );
        async move {
            client::send(client::refund_request(
                &http,
                &base,
                &token,
                &client::refund_body(locked, 100, "other", &marker),
            ))
            .await
        }
    })
    .await;
    let mut held_latency = Latencies::default();
    for (outcome, latency) in &results {
        held_latency.push(*latency);
        phase.expect(outcome, &[503]);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    lock.commit().await?;
    let after = Instant::now();
    let (outcome, _) = client::send(client::refund_request(
        &http,
        &base,
        &token,
        &client::refund_body(locked, 100, "other", &Uuid::new_v4().simple().to_string()),
    ))
    .await;
    let after_latency = after.elapsed();
    phase.require(
        outcome.status() == Some(201) && after_latency < Duration::from_secs(1),
        format!(
            "after the lock went, a refund of the order answered {} in {}",
            outcome.label(),
            ms(after_latency)
        ),
    );
    let stored = crate::db::refunds_by_marker(&ctx.pool, tenant.org).await?;
    let took_effect = markers.iter().filter(|m| stored.contains_key(*m)).count();
    phase.require(
        took_effect == 0,
        format!("{took_effect} requests answered 503 took effect"),
    );
    phase.note(format!(
        "503 after {}; {took_effect} took effect; next refund {} in {}",
        held_latency.summary(),
        outcome.label(),
        ms(after_latency)
    ));
    peak = peak.max(phase.finish(report));

    // 8. Thousands of bad tokens.
    let mut phase = Phase::new("bad tokens (3,000 requests, 32 at a time)", pid);
    let mut rng = ctx.rng("bad-tokens");
    let headers: Vec<String> = (0..3_000).map(|i| bad_authorization(&mut rng, i)).collect();
    let results = futures::stream::iter(headers.into_iter().enumerate())
        .map(|(i, header)| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let request = if i % 2 == 0 {
                    http.get(format!("{base}/v1/refunds/"))
                } else {
                    http.post(format!("{base}/v1/refunds/"))
                        .json(&json!({"order_id": Uuid::new_v4(), "reason": "other", "amount": 1}))
                };
                client::send(request.header("authorization", header)).await
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    for (outcome, latency) in results {
        phase.latency.push(latency);
        phase.expect(&outcome, &[401, 403]);
    }
    peak = peak.max(phase.finish(report));

    // The verdict on memory and responsiveness.
    stop.store(true, Ordering::Relaxed);
    let max_rss = sampler.await.unwrap_or_default();
    let (latencies, counts, failures) = prober.await?;
    let Memory {
        resident_kib: rss_end,
        peak_kib: hwm,
    } = memory(pid).unwrap_or_default();
    let peak = peak.max(hwm).max(max_rss);
    report.figure(format!(
        "server memory: VmRSS {} MiB at start, {} MiB at the end; peak (VmHWM over the phases) {} MiB; limit {} MiB",
        rss_start / 1024,
        rss_end / 1024,
        peak / 1024,
        MEMORY_LIMIT_KIB / 1024
    ));
    report.check(
        peak <= MEMORY_LIMIT_KIB,
        format!("the server's resident memory reached {} MiB", peak / 1024),
    );
    report.figure(format!(
        "valid requests during the abuse: {}; latency {}",
        counts.summary(),
        latencies.summary()
    ));
    report.check(
        failures.is_empty() && latencies.len() > 20,
        format!("valid requests failed during the abuse: {failures:?}"),
    );
    report.check(
        latencies.quantile(0.99) <= Duration::from_secs(1),
        format!(
            "valid requests were slow during the abuse: p99 {}",
            ms(latencies.quantile(0.99))
        ),
    );
    let (health, _) = client::send(http.get(format!("{base}/healthz"))).await;
    report.check(
        health.status() == Some(200),
        format!("/healthz after the abuse: {}", health.label()),
    );
    Ok(())
}

struct Phase {
    name: String,
    pid: u32,
    started: Instant,
    counts: Counts,
    latency: Latencies,
    unexpected: Vec<String>,
    notes: Vec<String>,
}

impl Phase {
    /// Starts a phase; the server's peak RSS is reset so that the phase reports its own.
    fn new(name: &str, pid: u32) -> Self {
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        Self {
            name: name.to_owned(),
            pid,
            started: Instant::now(),
            counts: Counts::default(),
            latency: Latencies::default(),
            unexpected: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn expect(&mut self, outcome: &Outcome, statuses: &[u16]) {
        self.counts.add(outcome.label());
        if !outcome.status().is_some_and(|s| statuses.contains(&s)) {
            let body = match outcome {
                Outcome::Answer(_, body) => body.chars().take(200).collect(),
                Outcome::Transport(error) => error.clone(),
            };
            self.unexpected.push(format!(
                "{} (expected {statuses:?}): {body}",
                outcome.label()
            ));
        }
    }

    fn require(&mut self, ok: bool, what: String) {
        if !ok {
            self.unexpected.push(what);
        }
    }

    fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Prints the phase; answers the server's peak RSS during it (KiB).
    fn finish(self, report: &mut Report) -> u64 {
        let peak = memory(self.pid).unwrap_or_default().peak_kib;
        let mut line = format!(
            "{}: {} in {}; server peak RSS {} MiB",
            self.name,
            self.counts.summary(),
            ms(self.started.elapsed()),
            peak / 1024
        );
        if self.latency.len() > 0 {
            line.push_str(&format!("; latency {}", self.latency.summary()));
        }
        for note in &self.notes {
            line.push_str(&format!("; {note}"));
        }
        report.figure(line);
        if !self.unexpected.is_empty() {
            report.fail(format!(
                "{}: {} unexpected outcomes, first: {}",
                self.name,
                self.unexpected.len(),
                self.unexpected[0]
            ));
        }
        peak
    }
}

fn fill(open: &str, item: &str, close: &str, size: usize) -> String {
    let mut text = String::with_capacity(size);
    text.push_str(open);
    while text.len() + item.len() + close.len() <= size {
        text.push_str(item);
    }
    text.push_str(close);
    text
}

/// Runs `count` futures made by `make`, at most `parallel` at a time, each on a task.
async fn run_concurrently<F, Fut, T>(count: usize, parallel: usize, make: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    futures::stream::iter(0..count)
        .map(|i| tokio::spawn(make(i)))
        .buffer_unordered(parallel.max(1))
        .filter_map(|joined| async move { joined.ok() })
        .collect()
        .await
}

/// One request on a fresh connection, answered or not.
async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Outcome {
    let mut conn = match RawConn::connect(addr).await {
        Ok(conn) => conn,
        Err(error) => return Outcome::Transport(format!("connect: {error}")),
    };
    if let Err(error) = conn.write(request).await {
        return Outcome::Transport(format!("write: {error}"));
    }
    match conn.read_response(Duration::from_secs(20)).await {
        Ok(response) => Outcome::Answer(
            response.status,
            String::from_utf8_lossy(&response.body).into_owned(),
        ),
        Err(error) => Outcome::Transport(format!("{error:#}")),
    }
}

/// POSTs an oversized body (with content-length, or chunked) while reading the answer:
/// the server may answer before it has read the body.
async fn send_large(addr: SocketAddr, token: &str, body: &Arc<Vec<u8>>, chunked: bool) -> Outcome {
    let stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(error) => return Outcome::Transport(format!("connect: {error}")),
    };
    let (mut reader, mut writer) = stream.into_split();
    let framing = if chunked {
        "transfer-encoding: chunked".to_owned()
    } else {
        format!("content-length: {}", body.len())
    };
    let head = format!(
        "POST /v1/refunds/ HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\n{framing}\r\n\r\n"
    );
    let body = body.clone();
    let writing = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        if chunked {
            for chunk in body.chunks(64 * 1024) {
                writer
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                writer.write_all(chunk).await?;
                writer.write_all(b"\r\n").await?;
            }
            writer.write_all(b"0\r\n\r\n").await?;
        } else {
            writer.write_all(&body).await?;
        }
        std::io::Result::Ok(writer)
    });
    let mut buffer = Vec::new();
    let response = tokio::time::timeout(
        Duration::from_secs(30),
        client::read_response(&mut reader, &mut buffer),
    )
    .await;
    writing.abort();
    match response {
        Ok(Ok(response)) => Outcome::Answer(
            response.status,
            String::from_utf8_lossy(&response.body).into_owned(),
        ),
        Ok(Err(error)) => Outcome::Transport(format!("{error:#}")),
        Err(_) => Outcome::Transport("timeout".into()),
    }
}

/// Sends a request head at once, then its body a byte every 250 ms; answers what the server
/// said and how long after the head it said it.
async fn slow_body(addr: SocketAddr, token: &str, limit: Duration) -> (Outcome, Duration) {
    let started = Instant::now();
    let stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(error) => {
            return (
                Outcome::Transport(format!("connect: {error}")),
                started.elapsed(),
            );
        }
    };
    let (mut reader, mut writer) = stream.into_split();
    let body = vec![b' '; 500];
    let head = raw_request(
        "POST",
        "/v1/refunds/",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("content-type", "application/json"),
        ],
        Some(&body),
    );
    let head = head[..head.len() - body.len()].to_vec();
    let sent = Instant::now();
    let writing = tokio::spawn(async move {
        writer.write_all(&head).await?;
        for _ in 0..body.len() {
            tokio::time::sleep(Duration::from_millis(250)).await;
            writer.write_all(b" ").await?;
        }
        std::io::Result::Ok(())
    });
    let mut buffer = Vec::new();
    let response =
        tokio::time::timeout(limit, client::read_response(&mut reader, &mut buffer)).await;
    writing.abort();
    let outcome = match response {
        Ok(Ok(response)) => Outcome::Answer(
            response.status,
            String::from_utf8_lossy(&response.body).into_owned(),
        ),
        Ok(Err(error)) => Outcome::Transport(format!("{error:#}")),
        Err(_) => Outcome::Transport("never cut".into()),
    };
    (outcome, sent.elapsed())
}

/// Trickles a request head a byte every 400 ms for `hold`; answers "still open" when the
/// server neither answered nor closed the connection by then.
async fn slow_headers(addr: SocketAddr, hold: Duration) -> (Outcome, Duration) {
    let started = Instant::now();
    let stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(error) => {
            return (
                Outcome::Transport(format!("connect: {error}")),
                started.elapsed(),
            );
        }
    };
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        writer.write_all(b"GET /v1/refunds/ HTTP/1.1\r\n").await?;
        loop {
            tokio::time::sleep(Duration::from_millis(400)).await;
            writer.write_all(b"x").await?;
        }
        #[allow(unreachable_code)]
        std::io::Result::Ok(())
    });
    let mut buffer = Vec::new();
    let response =
        tokio::time::timeout(hold, client::read_response(&mut reader, &mut buffer)).await;
    writing.abort();
    let outcome = match response {
        Ok(Ok(response)) => Outcome::Answer(
            response.status,
            String::from_utf8_lossy(&response.body).into_owned(),
        ),
        Ok(Err(error)) => Outcome::Transport(format!("closed: {error:#}")),
        Err(_) => Outcome::Transport("still open".into()),
    };
    (outcome, started.elapsed())
}

fn alphanumeric(rng: &mut impl Rng, n: usize) -> String {
    (0..n).map(|_| rng.sample(Alphanumeric) as char).collect()
}

fn bad_authorization(rng: &mut impl Rng, i: usize) -> String {
    match i % 8 {
        0..=2 => format!("Bearer polar_oat_{}", alphanumeric(rng, 43)),
        3 => format!("Bearer polar_pat_{}", alphanumeric(rng, 43)),
        4 => format!("Bearer {}", alphanumeric(rng, 20)),
        5 => format!("Bearer polar_oat_{}", alphanumeric(rng, 8_000)),
        6 => "Bearer ".to_owned(),
        _ => format!("bearer polar_oat_{}", alphanumeric(rng, 5)),
    }
}
