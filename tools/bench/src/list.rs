//! List latency: sequential requests for the first page of an organization's refunds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};

use crate::http::Client;
use crate::load::new_histogram;

/// Requests `path` `warmup` times unrecorded, then `count` times recorded; every answer must
/// be a 200 whose `total_count` is `expected_total` (when given) and that holds a full
/// first page. Stops early, with at least `min_count` recorded requests, once `budget` has
/// passed.
#[allow(clippy::too_many_arguments)]
pub async fn measure(
    addr: SocketAddr,
    authorization: &HeaderValue,
    path: &str,
    warmup: usize,
    count: usize,
    min_count: usize,
    budget: Duration,
    expected_total: Option<i64>,
) -> Result<Histogram<u64>> {
    let mut client = Client::connect(addr).await?;
    let mut histogram = new_histogram();
    let started_case = Instant::now();
    for index in 0..warmup + count {
        if index >= warmup + min_count && started_case.elapsed() > budget {
            break;
        }
        let started = Instant::now();
        let (status, body) = tokio::time::timeout(
            Duration::from_secs(60),
            client.send(Method::GET, path, Some(authorization), None),
        )
        .await
        .with_context(|| format!("GET {path} timed out"))??;
        let elapsed = started.elapsed();
        if status != StatusCode::OK {
            bail!(
                "GET {path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        if index == 0 || index == warmup {
            let page: serde_json::Value = serde_json::from_slice(&body)?;
            let total = page["pagination"]["total_count"]
                .as_i64()
                .with_context(|| format!("GET {path}: no total_count"))?;
            let items = page["items"].as_array().map_or(0, Vec::len) as i64;
            if let Some(expected) = expected_total
                && total != expected
            {
                bail!("GET {path}: total_count {total}, expected {expected}");
            }
            if items != total.min(10) {
                bail!("GET {path}: {items} items for a total of {total}");
            }
        }
        if index >= warmup {
            histogram.saturating_record((elapsed.as_micros() as u64).max(1));
        }
    }
    Ok(histogram)
}

/// What a first page read under concurrent writes must say of the total.
#[derive(Debug, Clone, Copy)]
pub enum Total {
    /// Nobody writes this organization's refunds: always exactly this.
    Exact(i64),
    /// The load writes this organization's refunds: never below this nor below the total
    /// of an earlier answer.
    Growing(i64),
}

/// Requests `path` one after the other from now until `end`, recording those sent after
/// `start`; every answer must be a 200 with a full first page and a `total_count` that
/// `total` allows.
pub async fn measure_during(
    addr: SocketAddr,
    authorization: &HeaderValue,
    path: &str,
    start: Instant,
    end: Instant,
    total: Total,
) -> Result<Histogram<u64>> {
    let mut client = Client::connect(addr).await?;
    let mut histogram = new_histogram();
    let mut floor = match total {
        Total::Exact(expected) | Total::Growing(expected) => expected,
    };
    while Instant::now() < end {
        let started = Instant::now();
        let (status, body) = tokio::time::timeout(
            Duration::from_secs(60),
            client.send(Method::GET, path, Some(authorization), None),
        )
        .await
        .with_context(|| format!("GET {path} timed out"))??;
        let elapsed = started.elapsed();
        if status != StatusCode::OK {
            bail!(
                "GET {path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        let seen = page["pagination"]["total_count"]
            .as_i64()
            .with_context(|| format!("GET {path}: no total_count"))?;
        let items = page["items"].as_array().map_or(0, Vec::len) as i64;
        match total {
            Total::Exact(expected) if seen != expected => {
                bail!("GET {path} under load: total_count {seen}, expected {expected}")
            }
            Total::Growing(_) if seen < floor => {
                bail!("GET {path} under load: total_count {seen} after {floor}")
            }
            _ => floor = seen,
        }
        if items != seen.min(10) {
            bail!("GET {path}: {items} items for a total of {seen}");
        }
        if started >= start && Instant::now() <= end {
            histogram.saturating_record((elapsed.as_micros() as u64).max(1));
        }
    }
    Ok(histogram)
}
