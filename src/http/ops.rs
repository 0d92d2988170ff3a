//! Operational routes: liveness, readiness and Prometheus metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::Error;
use crate::http::openapi::PolarError;

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

/// The process is up and answering.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Up.", body = Status)))]
async fn health() -> Json<Status> {
    Json(Status {
        status: "ok".into(),
    })
}

/// PostgreSQL answers and every migration this build knows has been applied.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve.", body = Status),
        (status = 503, description = "PostgreSQL is unreachable or not migrated.", body = PolarError),
    ),
)]
async fn readiness(State(state): State<AppState>) -> Result<Json<Status>, Error> {
    let latest = crate::startup::MIGRATOR
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
        return Err(Error::NotReady("database migrations are not applied"));
    }
    Ok(Json(Status {
        status: "ok".into(),
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
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Counts requests and their latency by route template and status.
pub async fn record_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("refunds_http_requests_total", &labels).increment(1);
    metrics::histogram!("refunds_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Answers 503 in Polar's shape when a request takes longer than the configured timeout.
pub async fn enforce_timeout(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout = ?state.request_timeout, "request timed out");
            crate::http::error::json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "RequestTimeout", "detail": "The request took too long to complete"}),
            )
        }
    }
}
