//! Settings read from the command line and the environment.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/refunds";
pub const DEFAULT_BIND: &str = "127.0.0.1:8000";

#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseConfig {
    /// PostgreSQL connection URL; the database is created if it does not exist.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Most connections one server process opens to PostgreSQL.
    #[arg(long, env = "REFUNDS_DB_MAX_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_max_connections: u32,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Address and port to listen on.
    #[arg(long, env = "REFUNDS_BIND", default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// Seconds to let in-flight requests finish after SIGTERM or SIGINT.
    #[arg(long, env = "REFUNDS_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout: u64,
    /// Milliseconds between SIGTERM and closing the listener: /readyz answers 503 at once
    /// (load balancers move traffic away) while every request is still served.
    #[arg(long, env = "REFUNDS_SHUTDOWN_DELAY_MS", default_value_t = 2000)]
    pub shutdown_delay_ms: u64,
    /// PostgreSQL URL of a read replica for list and get requests; unset: the primary
    /// serves everything.
    #[arg(long, env = "REFUNDS_DATABASE_READ_URL", hide_env_values = true)]
    pub database_read_url: Option<String>,
    /// Replication lag (milliseconds) beyond which reads go to the primary instead.
    #[arg(long, env = "REFUNDS_READ_MAX_LAG_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    pub read_max_lag_ms: u64,
    /// Seconds a request may take before it answers 503.
    #[arg(long, env = "REFUNDS_REQUEST_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,
    /// Seed demo data on an empty database (or issue new demo tokens) and print how to use it.
    #[arg(long, env = "REFUNDS_DEMO")]
    pub demo: bool,
    /// Bearer token of the /admin/ API; the admin API answers 404 when it is not set.
    #[arg(long, env = "REFUNDS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Seconds an idempotency key is remembered after its first use.
    #[arg(long, env = "REFUNDS_IDEMPOTENCY_KEY_TTL", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub idempotency_key_ttl: u64,
    /// Milliseconds a token's principal may be answered from memory instead of the
    /// database (revocations and membership changes reach every process at once anyway);
    /// 0 looks every token up.
    #[arg(long, env = "REFUNDS_TOKEN_CACHE_TTL_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(..=3_600_000))]
    pub token_cache_ttl_ms: u64,
    #[command(flatten)]
    pub processor: ProcessorConfig,
    #[command(flatten)]
    pub webhooks: WebhookConfig,
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// The payment processor that carries out refunds, and how refunds left without an answer
/// are recovered.
#[derive(Debug, Clone, clap::Args)]
pub struct ProcessorConfig {
    /// `sandbox` (simulated, in-process) or `stripe`.
    #[arg(long, env = "REFUNDS_PROCESSOR", default_value = "sandbox")]
    pub processor: ProcessorKind,
    /// Stripe secret API key (`sk_…` or `rk_…`); required with `--processor stripe`.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<Secret>,
    /// Signing secret of the Stripe webhook endpoint (`whsec_…`); required with `--processor stripe`.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<Secret>,
    /// Stripe's API: scheme, host and port, without `/v1`.
    #[arg(
        long,
        env = "STRIPE_API_BASE",
        default_value = "https://api.stripe.com"
    )]
    pub stripe_api_base: String,
    /// Milliseconds a call to Stripe may take before it counts as unanswered.
    #[arg(long, env = "STRIPE_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub stripe_timeout_ms: u64,
    /// Milliseconds a refund may wait for the processor's first answer before the recovery
    /// worker asks again.
    #[arg(long, env = "REFUNDS_RECOVERY_AFTER_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub recovery_after_ms: u64,
    /// Milliseconds between two looks of the recovery worker.
    #[arg(long, env = "REFUNDS_RECOVERY_INTERVAL_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub recovery_interval_ms: u64,
    /// When set, pending sandbox refunds succeed by themselves after this many milliseconds.
    #[arg(long, env = "REFUNDS_SANDBOX_SETTLE_AFTER_MS")]
    pub sandbox_settle_after_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProcessorKind {
    Sandbox,
    Stripe,
}

/// A secret setting: never shown by `Debug`, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl FromStr for Secret {
    type Err = &'static str;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "" => Err("must not be empty"),
            value => Ok(Self(value.to_owned())),
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct WebhookConfig {
    /// Let webhook endpoints be `http` URLs and private or loopback addresses (sandboxes; on
    /// in demo mode).
    #[arg(long, env = "REFUNDS_WEBHOOK_ALLOW_PRIVATE_URLS")]
    pub webhook_allow_private_urls: bool,
    /// Milliseconds an endpoint may take to answer a delivery.
    #[arg(long, env = "REFUNDS_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_timeout_ms: u64,
    /// Milliseconds before the first retry of a failed delivery; each later retry waits
    /// twice as long (at most 20 minutes), jittered to between half and all of it.
    #[arg(long, env = "REFUNDS_WEBHOOK_RETRY_BASE_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_retry_base_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret: Secret = "sk_test_very_secret".parse().unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(…)");
        assert_eq!(secret.expose(), "sk_test_very_secret");
        assert!("  ".parse::<Secret>().is_err());
    }
}
