//! The server under test, started through the shared launcher: ready once `/readyz`
//! answers 200, its log watched for errors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hyper::{Method, StatusCode};
use refunds_server_process::{ServerCommand, ServerProcess};

use crate::http::Client;

/// The error lines of the server's log.
#[derive(Default)]
struct ErrorLines {
    count: u64,
    first: Vec<String>,
}

#[derive(Clone)]
pub struct ServerConfig {
    pub binary: PathBuf,
    pub database_url: String,
    pub admin_token: String,
    pub pool_size: u32,
}

pub struct Server {
    process: ServerProcess,
    pub addr: SocketAddr,
    errors: Arc<Mutex<ErrorLines>>,
}

impl Server {
    /// Spawns the server and waits for its first 200 from `/readyz`; returns the server and
    /// the time from spawn to that answer.
    pub async fn start(config: &ServerConfig) -> Result<(Server, Duration)> {
        let errors = Arc::new(Mutex::new(ErrorLines::default()));
        let seen = errors.clone();
        // Everything else is inherited (`RUST_LOG` included, so the server logs as it would
        // by default, one line per request).
        let mut process = ServerCommand::new(&config.binary, &["serve"])
            .env("DATABASE_URL", &config.database_url)
            .env("REFUNDS_DB_MAX_CONNECTIONS", config.pool_size.to_string())
            .env("REFUNDS_ADMIN_TOKEN", &config.admin_token)
            .env("REFUNDS_LOG_FORMAT", "human")
            // The webhook phase delivers to a receiver on 127.0.0.1.
            .env("REFUNDS_WEBHOOK_ALLOW_PRIVATE_URLS", "true")
            .env_remove("REFUNDS_BIND")
            .env_remove("REFUNDS_DEMO")
            .on_line(move |_, line| {
                if line.contains(" ERROR ") || line.contains("panicked") {
                    let mut errors = seen.lock().unwrap();
                    errors.count += 1;
                    if errors.first.len() < 5 {
                        errors.first.push(line.to_owned());
                    }
                }
            })
            .start()
            .await?;
        let deadline = process.spawned + Duration::from_secs(60);
        loop {
            if let Ok(mut client) = Client::connect(process.addr).await
                && let Ok(Ok((status, _))) = tokio::time::timeout(
                    Duration::from_secs(5),
                    client.send(Method::GET, "/readyz", None, None),
                )
                .await
                && status == StatusCode::OK
            {
                let ready_after = process.spawned.elapsed();
                let addr = process.addr;
                return Ok((
                    Server {
                        process,
                        addr,
                        errors,
                    },
                    ready_after,
                ));
            }
            if Instant::now() > deadline {
                let _ = process.kill().await;
                bail!("the server was not ready within 60 s");
            }
            if let Some(status) = process.exited() {
                bail!("the server exited before it was ready: {status}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// SIGTERM, then SIGKILL after 15 s. Fails if the server had already died.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(status) = self.process.exited() {
            bail!("the server had exited during the benchmark: {status}");
        }
        self.process.stop(Duration::from_secs(15)).await?;
        Ok(())
    }

    /// Peak resident set size (VmHWM) in bytes.
    pub fn peak_rss(&self) -> Result<u64> {
        let memory = self
            .process
            .memory()
            .with_context(|| format!("no VmHWM in /proc/{}/status", self.process.pid))?;
        Ok(memory.peak_kib * 1024)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid
    }

    /// User plus system CPU time the process has used so far.
    pub fn cpu_time(&self) -> Result<Duration> {
        crate::cpu::process(self.process.pid)
    }

    pub fn error_lines(&self) -> (u64, Vec<String>) {
        let errors = self.errors.lock().unwrap();
        (errors.count, errors.first.clone())
    }
}
