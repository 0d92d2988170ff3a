//! The single place where failures become answers in Medusa's shapes: `{"code"?, "type",
//! "message"}` with the statuses of Medusa's error handler, and the bare `Unauthorized` that
//! Medusa's authentication answers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::model::ErrorBody;
use crate::domain::Error;

/// What the Medusa route answers when it cannot answer with success.
#[derive(Debug)]
pub enum MedusaError {
    /// No credentials, or none that may refund: a plain-text 401.
    Unauthorized,
    /// The request is malformed: 400 `invalid_data`.
    InvalidData(String),
    /// A rule refuses the refund: 400 `not_allowed`.
    NotAllowed(String),
    /// 404 `not_found`.
    NotFound(String),
    /// Another request holds what this one needs: 409 `conflict`, to retry.
    Conflict,
    /// The idempotency key was used for another request: 422 `duplicate_error`.
    Duplicate(String),
    PayloadTooLarge,
    /// The processor refused or failed: 500 `unexpected_state`.
    Unexpected(String),
    /// The database is unavailable or not ready: 503, to retry.
    Unavailable,
    /// A failure whose cause stays in the logs.
    Internal,
}

/// Medusa's words for the message of a 409.
const CONFLICT_MESSAGE: &str = "The request conflicted with another request. You may retry the request with the provided Idempotency-Key.";

impl MedusaError {
    /// A failure answered to the client: its cause, when it is the server's, goes to the log
    /// (never on the wire), then it is mapped as `from_domain` does.
    pub fn answering(error: Error, payment: &str) -> Self {
        match &error {
            Error::Processor(cause) => tracing::error!(%cause, "the processor failed a refund"),
            Error::NotReady(reason) => tracing::warn!(reason, "not ready"),
            Error::DatabaseUnavailable(cause) => {
                tracing::error!(error = %cause, "database unavailable")
            }
            Error::Database(_) | Error::Corrupt(_) => tracing::error!(%error, "request failed"),
            _ => {}
        }
        Self::from_domain(&error, payment)
    }

    /// The domain's errors in Medusa's terms, for a refund of `payment` (the id as the
    /// caller wrote it).
    pub fn from_domain(error: &Error, payment: &str) -> Self {
        match error {
            Error::InvalidToken | Error::Unauthorized | Error::InsufficientScope(_) => {
                MedusaError::Unauthorized
            }
            Error::InvalidField { field, message, .. } => {
                MedusaError::InvalidData(format!("{field} {message}"))
            }
            Error::RejectedField { field, message, .. } => {
                MedusaError::InvalidData(format!("{field} {message}"))
            }
            Error::OrderNotFound(_) | Error::ResourceNotFound | Error::NotFound(_) => {
                MedusaError::not_found(payment)
            }
            Error::OverRefund { remaining } => MedusaError::NotAllowed(format!(
                "Only {remaining} can be refunded from Payment {payment}"
            )),
            Error::RefundsBlocked(order_id) => MedusaError::NotAllowed(format!(
                "Refunds are blocked for order {order_id} of Payment {payment}"
            )),
            Error::RefundedAlready(order_id) => MedusaError::NotAllowed(format!(
                "Payment {payment} is already fully refunded (order {order_id})"
            )),
            Error::RefundDisputedPayment(_) => MedusaError::NotAllowed(format!(
                "Payment {payment} is disputed and cannot be refunded while the dispute is open"
            )),
            Error::RevokeSubscriptionBenefitsProhibited => MedusaError::NotAllowed(
                "Subscription benefits can only be revoked upon cancellation".to_owned(),
            ),
            Error::RefundUnknownPayment(_) => {
                MedusaError::NotAllowed(format!("Payment {payment} is not captured"))
            }
            Error::IdempotencyKeyInUse | Error::Conflict(_) | Error::InvalidRefundMove { .. } => {
                MedusaError::Conflict
            }
            Error::IdempotencyKeyReused(key) => MedusaError::Duplicate(format!(
                "Idempotency-Key {key} was already used for a different request"
            )),
            Error::Processor(_) => {
                MedusaError::Unexpected(format!("Failed to refund Payment {payment}"))
            }
            Error::NotReady(_) | Error::DatabaseUnavailable(_) => MedusaError::Unavailable,
            Error::Database(_) | Error::Corrupt(_) => MedusaError::Internal,
        }
    }

    pub fn not_found(payment: &str) -> Self {
        MedusaError::NotFound(format!("Payment with id {payment} was not found"))
    }

    /// The status and body of every answer but the plain-text 401.
    pub fn answer(&self) -> Option<(StatusCode, ErrorBody)> {
        let body = |code, kind, message: &str| ErrorBody {
            code,
            kind,
            message: message.to_owned(),
        };
        Some(match self {
            MedusaError::Unauthorized => return None,
            MedusaError::InvalidData(message) => {
                (StatusCode::BAD_REQUEST, body(None, "invalid_data", message))
            }
            MedusaError::NotAllowed(message) => {
                (StatusCode::BAD_REQUEST, body(None, "not_allowed", message))
            }
            MedusaError::NotFound(message) => {
                (StatusCode::NOT_FOUND, body(None, "not_found", message))
            }
            MedusaError::Conflict => (
                StatusCode::CONFLICT,
                body(Some("invalid_state_error"), "conflict", CONFLICT_MESSAGE),
            ),
            MedusaError::Duplicate(message) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                body(Some("invalid_request_error"), "duplicate_error", message),
            ),
            MedusaError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                body(
                    None,
                    "invalid_data",
                    &format!(
                        "The request body is larger than {} bytes",
                        crate::polar::error::MAX_BODY_BYTES
                    ),
                ),
            ),
            MedusaError::Unexpected(message) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                body(None, "unexpected_state", message),
            ),
            MedusaError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                body(
                    Some("api_error"),
                    "database_error",
                    "The service is temporarily unavailable, try again shortly",
                ),
            ),
            MedusaError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                body(
                    Some("unknown_error"),
                    "unknown_error",
                    "An unknown error occurred.",
                ),
            ),
        })
    }

    /// Whether an idempotency key keeps this answer: refusals that follow from the request
    /// and the stored data, not conflicts or failures, which a retry should run again.
    pub fn is_kept(&self) -> bool {
        matches!(
            self,
            MedusaError::InvalidData(_) | MedusaError::NotAllowed(_) | MedusaError::NotFound(_)
        )
    }
}

impl IntoResponse for MedusaError {
    fn into_response(self) -> Response {
        let Some((status, body)) = self.answer() else {
            // Medusa's authentication (passport) ends the response with the status text.
            return (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Unauthorized",
            )
                .into_response();
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::CONFLICT {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
