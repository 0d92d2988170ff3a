//! Where the server's batches of creates spend their time, from its `/metrics`: the
//! histograms of creates per batch and of each stage's duration, read before and after a
//! window.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use hyper::{Method, StatusCode};

use crate::http::Client;

/// The sums and counts of the batch histograms at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    batches: f64,
    creates: f64,
    wait: Stage,
    read: Stage,
    order: Stage,
    write: Stage,
}

#[derive(Debug, Clone, Copy, Default)]
struct Stage {
    seconds: f64,
    count: f64,
}

/// Per batch (per create for the wait) over a window: means, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchStages {
    pub creates_per_batch: f64,
    pub wait_ms: f64,
    pub read_ms: f64,
    /// Over the batches that read Polar's `Order` after their orders, if any did.
    pub order_ms: Option<f64>,
    pub write_ms: f64,
}

impl Totals {
    pub async fn read(addr: SocketAddr) -> Result<Totals> {
        let mut client = Client::connect(addr).await?;
        let (status, body) = client.send(Method::GET, "/metrics", None, None).await?;
        if status != StatusCode::OK {
            anyhow::bail!("/metrics answered {status}");
        }
        let text = std::str::from_utf8(&body).context("/metrics is not UTF-8")?;
        let value = |name: &str, labels: &str| -> f64 {
            text.lines()
                .filter(|line| line.starts_with(name) && line.contains(labels))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let stage = |stage: &str| {
            let labels = format!("stage=\"{stage}\"");
            Stage {
                seconds: value("refunds_batch_stage_duration_seconds_sum", &labels),
                count: value("refunds_batch_stage_duration_seconds_count", &labels),
            }
        };
        Ok(Totals {
            batches: value("refunds_batch_creates_count", ""),
            creates: value("refunds_batch_creates_sum", ""),
            wait: stage("wait"),
            read: stage("read"),
            order: stage("order"),
            write: stage("write"),
        })
    }

    pub fn since(&self, before: &Totals) -> BatchStages {
        let mean_ms = |now: Stage, then: Stage| {
            (now.seconds - then.seconds) * 1e3 / (now.count - then.count).max(1.0)
        };
        BatchStages {
            creates_per_batch: (self.creates - before.creates)
                / (self.batches - before.batches).max(1.0),
            wait_ms: mean_ms(self.wait, before.wait),
            read_ms: mean_ms(self.read, before.read),
            order_ms: (self.order.count > before.order.count)
                .then(|| mean_ms(self.order, before.order)),
            write_ms: mean_ms(self.write, before.write),
        }
    }
}
