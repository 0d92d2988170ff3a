//! Operational routes: liveness, readiness and Prometheus metrics.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::Error;
use crate::polar::error::ApiError;
use crate::polar::schema::PolarError;
use crate::state::{AppState, ReplicaStatus};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(readiness))
        .routes(routes!(metrics))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Status {
    /// Always `ok`.
    status: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Always `ok`.
    status: String,
    /// Present when a read replica is configured: whether lists read from it now. A
    /// replica that is down or lagging is bypassed (the primary serves the reads), so the
    /// instance stays ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    read_replica: Option<ReplicaStatus>,
}

/// The process is up and answering.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Up.", body = Status)))]
async fn health() -> Json<Status> {
    Json(Status {
        status: "ok".into(),
    })
}

/// PostgreSQL answers, every known migration is applied, and the process is not stopping.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve.", body = Readiness),
        (status = 503, description = "PostgreSQL is unreachable or not migrated, or the process is shutting down.", body = PolarError),
    ),
)]
async fn readiness(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    if state.lame_duck.load(Ordering::Relaxed) {
        return Err(Error::NotReady("the server is shutting down").into());
    }
    let latest = super::MIGRATOR
        .iter()
        .map(|migration| migration.version)
        .max()
        .unwrap_or_default();
    let query = sqlx::query_scalar!("SELECT max(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(&state.pool);
    // A probe must answer quickly, not wait out the pool's timeout while PostgreSQL is away.
    let applied: Option<i64> = tokio::time::timeout(Duration::from_secs(1), query)
        .await
        .map_err(|_| Error::NotReady("the database did not answer within a second"))?
        .map_err(|error| match error {
            // PostgreSQL answered, but without the migrations table.
            sqlx::Error::Database(_) => Error::NotReady("database migrations are not applied"),
            other => Error::DatabaseUnavailable(other),
        })?;
    if applied.unwrap_or_default() < latest {
        return Err(Error::NotReady("database migrations are not applied").into());
    }
    Ok(Json(Readiness {
        status: "ok".into(),
        read_replica: state.replica.as_ref().map(|replica| replica.status()),
    }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "The metrics.", body = String, content_type = "text/plain")),
)]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    metrics::gauge!("refunds_db_pool_connections").set(state.pool.size() as f64);
    metrics::gauge!("refunds_db_pool_idle_connections").set(state.pool.num_idle() as f64);
    metrics::gauge!("refunds_db_pool_max_connections")
        .set(state.pool.options().get_max_connections() as f64);
    if let Some(replica) = &state.replica {
        let pool = replica.pool();
        metrics::gauge!("refunds_db_replica_pool_connections").set(pool.size() as f64);
        metrics::gauge!("refunds_db_replica_pool_idle_connections").set(pool.num_idle() as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
