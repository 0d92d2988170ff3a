//! The single place where errors become HTTP answers, in Polar's body shapes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::Error;

const INVALID_TOKEN_DESCRIPTION: &str =
    "The access token provided is expired, revoked, malformed, or invalid for other reasons.";
const INSUFFICIENT_SCOPE_DESCRIPTION: &str =
    "The request requires higher privileges than provided by the access token.";

/// `{"error": name, "detail": detail}`, the body of every Polar exception.
fn polar(status: StatusCode, name: &str, detail: impl Into<Value>) -> Response {
    json_response(status, json!({ "error": name, "detail": detail.into() }))
}

pub fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn with_www_authenticate(mut response: Response, value: String) -> Response {
    let value = HeaderValue::from_str(&value).expect("challenge is ASCII");
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, value);
    response
}

/// OAuth's token errors forbid caching on their own terms, as Polar's OAuth library sends them.
fn oauth_error(status: StatusCode, body: Value, challenge: String) -> Response {
    let mut response = with_www_authenticate(json_response(status, body), challenge);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Framework answers that carry only `detail`, like Starlette's 404 and 405.
pub fn detail_only(status: StatusCode, detail: &str) -> Response {
    json_response(status, json!({ "detail": detail }))
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::InvalidToken => oauth_error(
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_token", "error_description": INVALID_TOKEN_DESCRIPTION}),
                format!(
                    r#"Bearer realm="polar", error="invalid_token", error_description="{INVALID_TOKEN_DESCRIPTION}""#
                ),
            ),
            Error::Unauthorized => with_www_authenticate(
                polar(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized"),
                r#"Bearer realm="polar""#.to_owned(),
            ),
            Error::InsufficientScope(scopes) => oauth_error(
                StatusCode::FORBIDDEN,
                json!({"error": "insufficient_scope", "error_description": INSUFFICIENT_SCOPE_DESCRIPTION}),
                format!(
                    r#"Bearer realm="polar", scope="{}", error="insufficient_scope", error_description="{INSUFFICIENT_SCOPE_DESCRIPTION}""#,
                    scopes.join(" ")
                ),
            ),
            Error::RequestValidation(issues) => json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "RequestValidationError", "detail": issues}),
            ),
            Error::PolarRequestValidation(issues) => json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "PolarRequestValidationError", "detail": issues}),
            ),
            Error::UnreadableBody => detail_only(
                StatusCode::BAD_REQUEST,
                "There was an error parsing the body",
            ),
            Error::PayloadTooLarge => polar(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestBodyTooLarge",
                "Request body is too large",
            ),
            Error::OrderNotFound(order_id) => {
                Error::invalid_field("order_id", "Order not found", json!(order_id)).into_response()
            }
            Error::OverRefund(amount) => {
                Error::invalid_field("amount", "Refund amount exceeds refundable amount", amount)
                    .into_response()
            }
            Error::RefundsBlocked(order_id) => polar(
                StatusCode::FORBIDDEN,
                "RefundsBlocked",
                format!("Refunds are blocked for order: {order_id}"),
            ),
            Error::RefundedAlready(order_id) => polar(
                StatusCode::FORBIDDEN,
                "RefundedAlready",
                format!("Order is already fully refunded: {order_id}"),
            ),
            Error::RefundDisputedPayment(order_id) => polar(
                StatusCode::FORBIDDEN,
                "RefundDisputedPayment",
                format!("Refund cannot be issued for order with disputed payment: {order_id}"),
            ),
            Error::RevokeSubscriptionBenefitsProhibited => polar(
                StatusCode::BAD_REQUEST,
                "RevokeSubscriptionBenefitsProhibited",
                "Subscription benefits can only be revoked upon cancellation",
            ),
            Error::RefundUnknownPayment(order_id) => polar(
                StatusCode::NOT_FOUND,
                "RefundUnknownPayment",
                format!("Refund issued for unknown order: {order_id}"),
            ),
            Error::NotFound(what) => polar(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("{what} not found"),
            ),
            Error::Conflict(detail) => polar(StatusCode::CONFLICT, "Conflict", detail),
            Error::NotReady(reason) => {
                tracing::warn!(reason, "not ready");
                service_unavailable()
            }
            Error::DatabaseUnavailable(ref cause) => {
                tracing::error!(error = %cause, "database unavailable");
                service_unavailable()
            }
            Error::Processor(_) | Error::Database(_) | Error::Corrupt(_) => {
                tracing::error!(error = %self, "request failed");
                internal_error()
            }
        }
    }
}

fn service_unavailable() -> Response {
    polar(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "The service is temporarily unavailable, try again shortly",
    )
}

/// The answer to any failure whose cause must stay in the logs, not on the wire.
pub fn internal_error() -> Response {
    polar(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerError",
        "Internal Server Error",
    )
}
