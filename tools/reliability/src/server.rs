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
}

/// Starts `refunds-server serve` with `options`; its output is appended to `log`.
pub async fn start(binary: &Path, log: PathBuf, options: &ServerOptions) -> Result<ServerProcess> {
    ServerCommand::new(binary, &["serve"])
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
        .log_file(log)
        .start()
        .await
}
