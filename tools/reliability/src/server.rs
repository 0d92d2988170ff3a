//! The settings the scenarios vary, turned into a `refunds-server` process.

use std::path::{Path, PathBuf};

use anyhow::Result;
use refunds_server_process::{ServerCommand, ServerProcess};

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
    /// `REFUNDS_SHUTDOWN_DELAY_MS`: the lame-duck phase after SIGTERM.
    pub shutdown_delay_ms: u64,
    /// `REFUNDS_DATABASE_READ_URL`, and `REFUNDS_READ_MAX_LAG_MS`.
    pub read_replica: Option<(String, u64)>,
    /// Further settings, as environment variables.
    pub env: Vec<(&'static str, String)>,
}

/// Starts `refunds-server serve` with `options`; its output is appended to `log`.
pub async fn start(binary: &Path, log: PathBuf, options: &ServerOptions) -> Result<ServerProcess> {
    let mut command = ServerCommand::new(binary, &["serve"]);
    command = match &options.read_replica {
        Some((url, max_lag_ms)) => command
            .env("REFUNDS_DATABASE_READ_URL", url)
            .env("REFUNDS_READ_MAX_LAG_MS", max_lag_ms.to_string()),
        None => command.env_remove("REFUNDS_DATABASE_READ_URL"),
    };
    for (key, value) in &options.env {
        command = command.env(key, value);
    }
    command
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
        .env(
            "REFUNDS_SHUTDOWN_DELAY_MS",
            options.shutdown_delay_ms.to_string(),
        )
        .env("REFUNDS_LOG_FORMAT", "human")
        .env("RUST_LOG", "warn,refunds_server=info")
        .env_remove("REFUNDS_DEMO")
        .env_remove("REFUNDS_BIND")
        .log_file(log)
        .start()
        .await
}
