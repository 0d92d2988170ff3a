//! The server under test as a child process: spawned from the release binary, found by the
//! `listening address=…` line of its log, stopped with SIGTERM (SIGKILL if it lingers).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hyper::{Method, StatusCode};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::http::Client;

/// Where the server writes its log: the last lines (for diagnostics) and a count of errors.
#[derive(Default)]
pub struct LogTail {
    pub lines: VecDeque<String>,
    pub error_lines: u64,
    pub first_errors: Vec<String>,
}

pub struct ServerConfig {
    pub binary: PathBuf,
    pub database_url: String,
    pub admin_token: String,
    pub pool_size: u32,
}

pub struct Server {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<LogTail>>,
}

/// Environment variables of the server this benchmark sets itself; the rest is inherited
/// (`RUST_LOG` included, so the server logs as it would by default, one line per request).
fn server_command(config: &ServerConfig) -> Command {
    let mut command = Command::new(&config.binary);
    crate::die_with_parent(&mut command);
    // A RUST_LOG of the caller's must still let through the line that gives the address.
    if let Ok(filter) = std::env::var("RUST_LOG")
        && !filter.trim().is_empty()
    {
        command.env("RUST_LOG", format!("{filter},refunds_server::startup=info"));
    }
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", &config.database_url)
        .env("REFUNDS_DB_MAX_CONNECTIONS", config.pool_size.to_string())
        .env("REFUNDS_ADMIN_TOKEN", &config.admin_token)
        .env("REFUNDS_LOG_FORMAT", "human")
        .env_remove("REFUNDS_BIND")
        .env_remove("REFUNDS_DEMO")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

fn listening_address(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening") {
        return None;
    }
    let start = line.find("address=")? + "address=".len();
    line[start..].split_whitespace().next()?.parse().ok()
}

impl Server {
    /// Spawns the server and returns once it has printed its address, with the instant
    /// just before the spawn.
    pub async fn spawn(config: &ServerConfig) -> Result<(Server, Instant)> {
        let mut command = server_command(config);
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("spawning {}", config.binary.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("the server exited at once"))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(LogTail::default()));
        let (address_tx, address_rx) = oneshot::channel();
        tokio::spawn(read_log(stderr, log.clone(), address_tx));
        let addr = match tokio::time::timeout(Duration::from_secs(60), address_rx).await {
            Ok(Ok(addr)) => addr,
            outcome => {
                let _ = child.start_kill();
                let tail = log
                    .lock()
                    .unwrap()
                    .lines
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>();
                bail!(
                    "the server did not print its address ({}); last log lines:\n{}",
                    if outcome.is_err() {
                        "timed out after 60 s"
                    } else {
                        "it exited"
                    },
                    tail.join("\n")
                );
            }
        };
        Ok((
            Server {
                child,
                pid,
                addr,
                log,
            },
            spawned,
        ))
    }

    /// Spawns the server and waits for its first 200 from `/readyz`; returns the server and
    /// the time from spawn to that answer.
    pub async fn start(config: &ServerConfig) -> Result<(Server, Duration)> {
        let (mut server, spawned) = Server::spawn(config).await?;
        let deadline = spawned + Duration::from_secs(60);
        loop {
            if let Ok(mut client) = Client::connect(server.addr).await
                && let Ok(Ok((status, _))) = tokio::time::timeout(
                    Duration::from_secs(5),
                    client.send(Method::GET, "/readyz", None, None),
                )
                .await
                && status == StatusCode::OK
            {
                return Ok((server, spawned.elapsed()));
            }
            if Instant::now() > deadline {
                server.kill().await;
                bail!("the server was not ready within 60 s");
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                bail!("the server exited before it was ready: {status}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// SIGTERM, then SIGKILL after 15 s. Fails if the server had already died.
    pub async fn stop(mut self) -> Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!("the server had exited during the benchmark: {status}");
        }
        // SAFETY: kill(2) with the pid of our own, not yet reaped, child.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(_) => Ok(()),
            Err(_) => {
                self.kill().await;
                bail!("the server did not stop within 15 s of SIGTERM; killed")
            }
        }
    }

    async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }

    /// Peak resident set size (VmHWM) in bytes.
    pub fn peak_rss(&self) -> Result<u64> {
        proc_status_kib(self.pid, "VmHWM:").map(|kib| kib * 1024)
    }

    /// User plus system CPU time the process has used so far.
    pub fn cpu_time(&self) -> Result<Duration> {
        crate::cpu::process(self.pid)
    }

    pub fn error_lines(&self) -> (u64, Vec<String>) {
        let log = self.log.lock().unwrap();
        (log.error_lines, log.first_errors.clone())
    }
}

fn proc_status_kib(pid: u32, key: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with(key))
        .ok_or_else(|| anyhow!("{key} missing from /proc/{pid}/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("bad {key} line"))?
        .parse()?)
}

async fn read_log(
    stderr: tokio::process::ChildStderr,
    log: Arc<Mutex<LogTail>>,
    address_tx: oneshot::Sender<SocketAddr>,
) {
    let mut address_tx = Some(address_tx);
    let mut reader = BufReader::with_capacity(64 * 1024, stderr);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if address_tx.is_some()
            && let Some(addr) = listening_address(&line)
        {
            let _ = address_tx.take().unwrap().send(addr);
        }
        let mut log = log.lock().unwrap();
        if line.contains(" ERROR ") || line.contains("panicked") {
            log.error_lines += 1;
            if log.first_errors.len() < 5 {
                log.first_errors.push(line.trim_end().to_owned());
            }
        }
        if log.lines.len() == 30 {
            log.lines.pop_front();
        }
        log.lines.push_back(line.trim_end().to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_listening_address() {
        let line = "2026-01-01T00:00:00.000000Z  INFO refunds_server::startup: listening address=127.0.0.1:43125\n";
        assert_eq!(
            listening_address(line),
            Some("127.0.0.1:43125".parse().unwrap())
        );
        assert_eq!(listening_address("INFO migrations applied"), None);
    }
}
