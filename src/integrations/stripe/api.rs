//! `POST /v1/integrations/stripe/webhook`: Stripe's signed events.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service;
use crate::payments::stripe::{SignatureError, StripeEvent, verify_signature};
use crate::polar::ApiError;
use crate::polar::error::detail_only;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stripe_webhook))
}

/// Receive a Stripe event.
///
/// Verifies `Stripe-Signature` with the endpoint's signing secret, handles each event once
/// (by its id) and answers 202. Not part of Polar's public API.
#[utoipa::path(
    post,
    path = "/v1/integrations/stripe/webhook",
    tag = "integrations",
    summary = "Stripe webhook",
    request_body(content = String, content_type = "application/json", description = "A Stripe event."),
    responses(
        (status = 202, description = "Received (handled now, or before)."),
        (status = 400, description = "No `Stripe-Signature` header, or the body is not an event."),
        (status = 401, description = "The signature does not match, or its timestamp is too old."),
        (status = 404, description = "The server is not connected to Stripe."),
        (status = 503, description = "The database is unavailable; Stripe delivers the event again."),
    ),
)]
async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(secret) = &state.stripe_webhook_secret else {
        return detail_only(StatusCode::NOT_FOUND, "Not Found");
    };
    let signature = headers
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    match verify_signature(signature, &body, secret, now) {
        Ok(()) => {}
        Err(SignatureError::Missing) => {
            return detail_only(StatusCode::BAD_REQUEST, "Missing Stripe-Signature header");
        }
        Err(refused) => {
            tracing::warn!(%refused, "a Stripe webhook with a bad signature");
            return detail_only(StatusCode::UNAUTHORIZED, "Invalid signature");
        }
    }
    let event: StripeEvent = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(_) => return detail_only(StatusCode::BAD_REQUEST, "Not a Stripe event"),
    };
    match service::handle_event(&state, event).await {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({"received": true}))).into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}
