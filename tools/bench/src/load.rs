//! The create-refund load: C clients, each on its own keep-alive connection, POSTing small
//! refunds on random orders, either in a closed loop (each sends its next request when the
//! last is answered) or paced (each sends on a fixed schedule, whatever the answers take).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::http::Client;

/// No request may take longer than this (the server's own timeout is 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(35);
/// Bounds each client's loop on top of the deadline.
const MAX_REQUESTS_PER_CLIENT: u64 = 10_000_000;

pub struct LoadResult {
    /// 201s completed inside the measured window.
    pub completed: u64,
    /// Anything but a 201, warm-up included: non-201 answers, timeouts, broken connections.
    pub errors: u64,
    pub error_samples: Vec<String>,
    pub window: Duration,
    /// Latencies in microseconds of the requests completed inside the window.
    pub latencies: Histogram<u64>,
}

impl LoadResult {
    pub fn throughput(&self) -> f64 {
        self.completed as f64 / self.window.as_secs_f64()
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 µs to 100 s, 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid bounds")
}

struct ClientResult {
    completed: u64,
    errors: u64,
    error_samples: Vec<String>,
    latencies: Histogram<u64>,
}

/// Runs `clients` clients for `warmup` (not recorded) then `window` (recorded): a request
/// counts if it completes inside the window. With `keyed`, every request carries an
/// `Idempotency-Key` of its own. With `rate`, the clients together start that many
/// requests a second, evenly spread (a client that falls behind catches up at once).
#[allow(clippy::too_many_arguments)]
pub async fn create_refunds(
    addr: SocketAddr,
    authorization: HeaderValue,
    orders: Arc<Vec<Uuid>>,
    clients: usize,
    keyed: bool,
    warmup: Duration,
    window: Duration,
    rate: Option<f64>,
) -> Result<LoadResult> {
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(Client::connect(addr).await?);
    }
    let started = Instant::now();
    let measure_start = started + warmup;
    let measure_end = measure_start + window;
    // Each client's requests are `clients / rate` apart, the clients offset from each other.
    let interval = rate.map(|rate| Duration::from_secs_f64(clients as f64 / rate));
    let mut tasks = Vec::with_capacity(clients);
    for (index, connection) in connections.into_iter().enumerate() {
        let authorization = authorization.clone();
        let orders = orders.clone();
        let schedule = interval.map(|interval| Schedule {
            first: started + interval.mul_f64(index as f64 / clients as f64),
            interval,
        });
        tasks.push(tokio::spawn(run_client(
            index as u64,
            addr,
            connection,
            authorization,
            orders,
            keyed,
            schedule,
            measure_start,
            measure_end,
        )));
    }
    let mut result = LoadResult {
        completed: 0,
        errors: 0,
        error_samples: Vec::new(),
        window,
        latencies: new_histogram(),
    };
    for task in tasks {
        let client = task.await?;
        result.completed += client.completed;
        result.errors += client.errors;
        result.latencies.add(&client.latencies)?;
        for sample in client.error_samples {
            if result.error_samples.len() < 5 {
                result.error_samples.push(sample);
            }
        }
    }
    Ok(result)
}

/// When a paced client sends its requests.
struct Schedule {
    first: Instant,
    interval: Duration,
}

#[allow(clippy::too_many_arguments)]
async fn run_client(
    index: u64,
    addr: SocketAddr,
    mut connection: Client,
    authorization: HeaderValue,
    orders: Arc<Vec<Uuid>>,
    keyed: bool,
    schedule: Option<Schedule>,
    measure_start: Instant,
    measure_end: Instant,
) -> ClientResult {
    let mut rng = SmallRng::seed_from_u64(0x5eed_0000 + index + rand::random::<u32>() as u64);
    let mut result = ClientResult {
        completed: 0,
        errors: 0,
        error_samples: Vec::new(),
        latencies: new_histogram(),
    };
    let error = |result: &mut ClientResult, message: String| {
        result.errors += 1;
        if result.error_samples.len() < 3 {
            result.error_samples.push(message);
        }
    };
    for sent in 0..MAX_REQUESTS_PER_CLIENT {
        if let Some(schedule) = &schedule {
            let due = schedule.first + schedule.interval.mul_f64(sent as f64);
            if due >= measure_end {
                break;
            }
            tokio::time::sleep_until(due.into()).await;
        }
        if Instant::now() >= measure_end {
            break;
        }
        let order_id = orders[rng.random_range(0..orders.len())];
        let amount: u32 = rng.random_range(1..=10);
        let body =
            format!(r#"{{"order_id":"{order_id}","reason":"customer_request","amount":{amount}}}"#);
        let key = keyed.then(|| {
            let key = Uuid::new_v4().simple().to_string();
            ("idempotency-key", HeaderValue::from_str(&key).expect("hex"))
        });
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            REQUEST_TIMEOUT,
            connection.send_with(
                Method::POST,
                "/v1/refunds/",
                Some(&authorization),
                key,
                Some(body),
            ),
        )
        .await;
        let finished = Instant::now();
        match outcome {
            Ok(Ok((StatusCode::CREATED, _))) => {
                if finished >= measure_start && finished <= measure_end {
                    let micros = (finished - started).as_micros() as u64;
                    result.latencies.saturating_record(micros.max(1));
                    result.completed += 1;
                }
            }
            Ok(Ok((status, body))) => error(
                &mut result,
                format!("{status}: {}", String::from_utf8_lossy(&body)),
            ),
            Ok(Err(failure)) => {
                error(&mut result, format!("request failed: {failure:#}"));
                match Client::connect(addr).await {
                    Ok(fresh) => connection = fresh,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            Err(_) => {
                error(&mut result, format!("no answer within {REQUEST_TIMEOUT:?}"));
                if let Ok(fresh) = Client::connect(addr).await {
                    connection = fresh;
                }
            }
        }
    }
    result
}
