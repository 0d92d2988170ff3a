//! What every handler shares: the database (the primary, and a read replica when one is
//! configured), the payment processor and the settings a request needs. Cheap to clone.

mod replica;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::postgres::PgPool;

use crate::auth::cache::TokenCache;
use crate::payments::{PaymentProcessor, SandboxProcessor};

pub use replica::{ReadReplica, Reader, ReplicaStatus, snapshot};

#[derive(Clone)]
pub struct AppState {
    /// The primary: every write, and every read that a write depends on.
    pub pool: PgPool,
    /// Where read-only requests read when it is well; see `AppState::reader`.
    pub replica: Option<Arc<ReadReplica>>,
    pub processor: Arc<dyn PaymentProcessor>,
    pub metrics: PrometheusHandle,
    /// Longest a request may take before it answers 503.
    pub request_timeout: Duration,
    /// SHA-256 of `REFUNDS_ADMIN_TOKEN`; `None` switches the admin API off.
    pub admin_token_hash: Option<Arc<[u8]>>,
    /// How long an idempotency key is remembered.
    pub idempotency_key_lifetime: Duration,
    /// How long a refund may wait for an outside processor's first answer before the
    /// recovery worker asks again.
    pub recovery_after: Duration,
    /// The signing secret of Stripe's webhooks; `None` switches the endpoint off.
    pub stripe_webhook_secret: Option<crate::config::Secret>,
    /// Set when the process has been told to stop: readiness answers 503 so that load
    /// balancers move traffic away while requests are still served, and every answer
    /// closes its connection so that clients reconnect elsewhere.
    pub lame_duck: Arc<AtomicBool>,
    /// Webhook endpoints may be `http` URLs of private addresses (sandboxes).
    pub webhook_allow_private_urls: bool,
    /// Principals of recently used tokens; disabled unless a listener keeps it in step
    /// with the database (see `auth::cache`).
    pub token_cache: Arc<TokenCache>,
}

impl AppState {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            replica: None,
            processor: Arc::new(SandboxProcessor),
            metrics: crate::telemetry::metrics(),
            request_timeout: Duration::from_secs(30),
            admin_token_hash: None,
            idempotency_key_lifetime: Duration::from_secs(24 * 60 * 60),
            recovery_after: Duration::from_secs(30),
            stripe_webhook_secret: None,
            lame_duck: Arc::default(),
            webhook_allow_private_urls: false,
            token_cache: Arc::new(TokenCache::disabled()),
        }
    }

    pub fn with_admin_token(mut self, token: Option<&str>) -> Self {
        self.admin_token_hash = token.map(|token| crate::domain::hash_token(token).into());
        self
    }
}
