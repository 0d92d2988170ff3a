//! Real `refunds-server` processes: started from the built binary on a port of their own,
//! killed (SIGKILL) or stopped (SIGTERM) on demand, and always killed when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub database_url: String,
    pub admin_token: String,
    /// `REFUNDS_REQUEST_TIMEOUT`, seconds.
    pub request_timeout: u64,
    /// `REFUNDS_SHUTDOWN_TIMEOUT`, seconds.
    pub shutdown_timeout: u64,
    /// `REFUNDS_DB_MAX_CONNECTIONS`.
    pub max_connections: u32,
}

pub struct Server {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub log: PathBuf,
    /// From spawning to the `listening` line.
    pub startup: Duration,
    exited: Option<ExitStatus>,
}

impl Server {
    /// Spawns `refunds-server serve --bind 127.0.0.1:0` and waits for its `listening` line.
    /// The process's output is appended to `log`.
    pub async fn start(binary: &Path, log: PathBuf, options: &ServerOptions) -> Result<Server> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let offset = file.metadata()?.len();
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--bind")
            .arg("127.0.0.1:0")
            .env("DATABASE_URL", &options.database_url)
            .env("REFUNDS_ADMIN_TOKEN", &options.admin_token)
            .env(
                "REFUNDS_REQUEST_TIMEOUT",
                options.request_timeout.to_string(),
            )
            .env(
                "REFUNDS_SHUTDOWN_TIMEOUT",
                options.shutdown_timeout.to_string(),
            )
            .env(
                "REFUNDS_DB_MAX_CONNECTIONS",
                options.max_connections.to_string(),
            )
            .env("REFUNDS_LOG_FORMAT", "human")
            .env("RUST_LOG", "warn,refunds_server=info")
            .env_remove("REFUNDS_DEMO")
            .env_remove("REFUNDS_BIND")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true);
        // The server dies with the driver, whatever way the driver ends.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let pid = child.id().context("child has no pid")?;
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "server exited at start-up ({status}); log tail:\n{}",
                    tail(&log, offset, 20)
                );
            }
            let text = read_from(&log, offset);
            if let Some(addr) = listening_address(&text) {
                return Ok(Server {
                    child,
                    pid,
                    addr,
                    base: format!("http://{addr}"),
                    log,
                    startup: started.elapsed(),
                    exited: None,
                });
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "server did not start listening within 60 s; log tail:\n{}",
                    tail(&log, offset, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn signal(&self, signal: libc::c_int) {
        if self.exited.is_none() {
            // SAFETY: sending a signal to our own child.
            unsafe {
                libc::kill(self.pid as libc::pid_t, signal);
            }
        }
    }

    /// SIGKILL, then reaps the process.
    pub async fn kill9(&mut self) -> Result<()> {
        self.signal(libc::SIGKILL);
        self.wait(Duration::from_secs(10))
            .await
            .context("not dead 10 s after SIGKILL")?;
        Ok(())
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exited {
            return Some(status);
        }
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.exited = Some(status);
                Some(status)
            }
            _ => None,
        }
    }

    pub fn is_running(&mut self) -> bool {
        if self.exited.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.exited = Some(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// (VmRSS, VmHWM) in KiB, from `/proc/<pid>/status`.
    pub fn memory_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find(|line| line.starts_with(name))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|value| value.parse::<u64>().ok())
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// The last `lines` lines the process logged.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, 0, lines)
    }
}

fn read_from(path: &Path, offset: u64) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = (offset as usize).min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

fn tail(path: &Path, offset: u64, lines: usize) -> String {
    let text = read_from(path, offset);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `... listening address=127.0.0.1:41234`
fn listening_address(log: &str) -> Option<SocketAddr> {
    log.lines()
        .filter(|line| line.contains("listening"))
        .find_map(|line| {
            let rest = line.split("address=").nth(1)?;
            let value = rest.split_whitespace().next()?.trim_matches('"');
            value.parse().ok()
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_listening_address() {
        let log = "2026-01-01T00:00:00Z  INFO refunds_server::startup: listening address=127.0.0.1:41234\n";
        assert_eq!(
            super::listening_address(log),
            Some("127.0.0.1:41234".parse().unwrap())
        );
    }
}
