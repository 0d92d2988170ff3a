//! The webhook side of the benchmark: a receiver on 127.0.0.1 that measures, for every
//! delivery, the time from the event's timestamp (taken in the refund's transaction, just
//! before it commits) to its arrival, and counts the arrivals.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::load::new_histogram;

#[derive(Default)]
struct Seen {
    arrivals: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    latencies: Option<Histogram<u64>>,
}

/// What the receiver saw since the last `take`.
pub struct Deliveries {
    pub arrivals: u64,
    /// From the first arrival to the last.
    pub span: Duration,
    /// Event timestamp to arrival, microseconds.
    pub latencies: Histogram<u64>,
}

impl Deliveries {
    pub fn per_second(&self) -> f64 {
        self.arrivals as f64 / self.span.as_secs_f64().max(1e-3)
    }
}

pub struct Receiver {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

/// Microseconds since the Unix epoch of an RFC 3339 UTC timestamp as Polar writes it
/// (`2026-01-02T03:04:05.123456Z`).
fn timestamp_micros(text: &str) -> Option<i64> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut date_parts = date.split('-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (
        date_parts.next()??,
        date_parts.next()??,
        date_parts.next()??,
    );
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut clock_parts = clock.split(':').map(|part| part.parse::<i64>().ok());
    let (hour, minute, second) = (
        clock_parts.next()??,
        clock_parts.next()??,
        clock_parts.next()??,
    );
    let micros: i64 = format!("{fraction:0<6}")[..6].parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000) + micros)
}

/// The `timestamp` of a payload, which Polar writes second, after `type`: read without
/// parsing the rest, so that the receiver costs the machine it shares with the server as
/// little as it can.
fn payload_timestamp(body: &[u8]) -> Option<&str> {
    const KEY: &str = r#","timestamp":""#;
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(KEY)? + KEY.len();
    let length = text[start..].find('"')?;
    Some(&text[start..start + length])
}

impl Receiver {
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let body = request.into_body().collect().await?.to_bytes();
                            let arrived = SystemTime::now()
                                .duration_since(UNIX_EPOCH)
                                .map_or(0, |since| since.as_micros() as i64);
                            let sent = payload_timestamp(&body).and_then(timestamp_micros);
                            let mut seen = seen.lock().unwrap();
                            let now = Instant::now();
                            seen.arrivals += 1;
                            seen.first.get_or_insert(now);
                            seen.last = Some(now);
                            if let Some(sent) = sent {
                                let latencies = seen.latencies.get_or_insert_with(new_histogram);
                                let _ = latencies.record((arrived - sent).max(1) as u64);
                            }
                            Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from_static(
                                b"ok",
                            ))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, seen })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// What arrived since the last call, and starts counting afresh.
    pub fn take(&self) -> Deliveries {
        let seen = std::mem::take(&mut *self.seen.lock().unwrap());
        Deliveries {
            arrivals: seen.arrivals,
            span: match (seen.first, seen.last) {
                (Some(first), Some(last)) => last - first,
                _ => Duration::ZERO,
            },
            latencies: seen.latencies.unwrap_or_else(new_histogram),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{payload_timestamp, timestamp_micros};

    #[test]
    fn finds_the_timestamp_of_a_payload() {
        let body = br#"{"type":"refund.created","timestamp":"2026-01-02T03:04:05.5Z","api_version":"2026-10","data":{"timestamp":"no"}}"#;
        assert_eq!(payload_timestamp(body), Some("2026-01-02T03:04:05.5Z"));
        assert_eq!(payload_timestamp(br#"{"type":"x"}"#), None);
    }

    #[test]
    fn reads_polar_timestamps() {
        assert_eq!(timestamp_micros("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(
            timestamp_micros("2026-01-02T03:04:05.123456Z"),
            Some(1_767_323_045_123_456)
        );
        assert_eq!(
            timestamp_micros("2026-01-02T03:04:05.5Z"),
            Some(1_767_323_045_500_000)
        );
    }
}
