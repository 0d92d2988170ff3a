//! What every handler shares: the database, the payment processor and the settings a
//! request needs. Cheap to clone.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::postgres::PgPool;

use crate::payments::{PaymentProcessor, SandboxProcessor};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub processor: Arc<dyn PaymentProcessor>,
    pub metrics: PrometheusHandle,
    /// Longest a request may take before it answers 503.
    pub request_timeout: Duration,
    /// SHA-256 of `REFUNDS_ADMIN_TOKEN`; `None` switches the admin API off.
    pub admin_token_hash: Option<Arc<[u8]>>,
    /// How long an idempotency key is remembered.
    pub idempotency_key_lifetime: Duration,
}

impl AppState {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            processor: Arc::new(SandboxProcessor),
            metrics: crate::telemetry::metrics(),
            request_timeout: Duration::from_secs(30),
            admin_token_hash: None,
            idempotency_key_lifetime: Duration::from_secs(24 * 60 * 60),
        }
    }

    pub fn with_admin_token(mut self, token: Option<&str>) -> Self {
        self.admin_token_hash = token.map(|token| crate::domain::hash_token(token).into());
        self
    }
}
