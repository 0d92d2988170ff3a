//! HTTP handlers of `/v1/refunds/`: parse, call the service, answer.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use super::input::{BodyError, parse_list_query, parse_refund_create};
use super::model::Refund;
use super::service::{self, RefundList};
use crate::AppState;
use crate::error::{Error, Result};
use crate::http::extract::{RawBody, RefundsRead, RefundsWrite};

pub fn routes() -> Router<AppState> {
    // The bare path is served as well, not redirected: one official SDK build does not
    // follow redirects, and curl users POST to it.
    let refunds = get(list_refunds).post(create_refund);
    Router::new()
        .route("/v1/refunds/", refunds.clone())
        .route("/v1/refunds", refunds)
}

async fn create_refund(
    State(state): State<AppState>,
    RefundsWrite(principal): RefundsWrite,
    body: RawBody,
) -> Result<(StatusCode, Json<Refund>)> {
    let input = parse_refund_create(body.content_type.as_deref(), &body.bytes)?;
    let created = service::create_refund(&state, &principal, input).await;
    let outcome = match &created {
        Ok(refund) => refund.status.as_str(),
        Err(error) => error.kind(),
    };
    metrics::counter!("refunds_created_total", "outcome" => outcome).increment(1);
    Ok((StatusCode::CREATED, Json(created?)))
}

async fn list_refunds(
    State(state): State<AppState>,
    RefundsRead(principal): RefundsRead,
    RawQuery(query): RawQuery,
) -> Result<Json<RefundList>> {
    let query = parse_list_query(query.as_deref()).map_err(Error::RequestValidation)?;
    Ok(Json(
        service::list_refunds(&state, &principal, &query).await?,
    ))
}

impl From<BodyError> for Error {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::Invalid(issues) => Error::RequestValidation(issues),
            BodyError::Unreadable => Error::UnreadableBody,
        }
    }
}
