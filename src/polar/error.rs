//! The single place where failures become answers in Polar's shapes: the domain's errors
//! and the request-parsing failures of any Polar-shaped route.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::parse::BodyError;
use super::validation::ValidationIssue;

/// Marks an answer Polar gives before its caching policy applies (an oversized body, an
/// unknown version): the layer that forbids caching leaves it as it is.
#[derive(Clone, Copy)]
pub struct BeforeCachingPolicy;

pub fn refused_before_caching_policy(mut response: Response) -> Response {
    response.extensions_mut().insert(BeforeCachingPolicy);
    response
}

/// The request header that names an idempotency key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// Polar's `API_MAX_REQUEST_BODY_SIZE`.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
use crate::domain::Error;

/// What a Polar-shaped route answers when it cannot answer with success.
#[derive(Debug)]
pub enum ApiError {
    /// A service refused or failed.
    Domain(Error),
    /// The request's shape is wrong: FastAPI's `RequestValidationError`.
    RequestValidation(Vec<ValidationIssue>),
    /// The request is well formed but a rule refused it: Polar's
    /// `PolarRequestValidationError`.
    Rejected(Vec<ValidationIssue>),
    /// The body is not text that JSON can be read from.
    UnreadableBody,
    PayloadTooLarge,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// Polar's over-refund answer, which echoes `amount` exactly as the client sent it.
    pub fn over_refund(amount_input: Value) -> Self {
        ApiError::Rejected(vec![rejected_issue(
            "amount",
            "Refund amount exceeds refundable amount",
            amount_input,
        )])
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError::Domain(error)
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::Invalid(issues) => ApiError::RequestValidation(issues),
            BodyError::Unreadable => ApiError::UnreadableBody,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Domain(error.into())
    }
}

const INVALID_TOKEN_DESCRIPTION: &str =
    "The access token provided is expired, revoked, malformed, or invalid for other reasons.";
const INSUFFICIENT_SCOPE_DESCRIPTION: &str =
    "The request requires higher privileges than provided by the access token.";

/// `{"error": name, "detail": detail}`, the body of every Polar exception.
fn polar(status: StatusCode, name: &str, detail: impl Into<Value>) -> Response {
    let (status, body) = polar_body(status, name, detail);
    json_response(status, body)
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

impl ApiError {
    /// The status and body of an answer that is nothing but a JSON body: no headers of its
    /// own and nothing to log. Such an answer can be kept and sent again byte for byte.
    pub fn plain_answer(&self) -> Option<(StatusCode, Value)> {
        match self {
            ApiError::Domain(error) => refusal_answer(error),
            ApiError::RequestValidation(issues) => Some((
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "RequestValidationError", "detail": issues}),
            )),
            ApiError::Rejected(issues) => Some((
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "PolarRequestValidationError", "detail": issues}),
            )),
            ApiError::UnreadableBody | ApiError::PayloadTooLarge => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some((status, body)) = self.plain_answer() {
            return json_response(status, body);
        }
        match self {
            ApiError::Domain(error) => domain_response(error),
            ApiError::UnreadableBody => detail_only(
                StatusCode::BAD_REQUEST,
                "There was an error parsing the body",
            ),
            ApiError::PayloadTooLarge => refused_before_caching_policy(polar(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestBodyTooLarge",
                format!(
                    "Request body exceeded the maximum allowed size of {MAX_BODY_BYTES} bytes."
                ),
            )),
            ApiError::RequestValidation(_) | ApiError::Rejected(_) => {
                unreachable!("validation failures are plain answers")
            }
        }
    }
}

fn rejected_issue(field: &str, message: &str, input: Value) -> ValidationIssue {
    ValidationIssue::new("value_error", crate::loc!["body", field], message, input)
}

fn rejected(issue: ValidationIssue) -> (StatusCode, Value) {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"error": "PolarRequestValidationError", "detail": [issue]}),
    )
}

/// `{"error": name, "detail": detail}` as a status and body.
fn polar_body(status: StatusCode, name: &str, detail: impl Into<Value>) -> (StatusCode, Value) {
    (status, json!({ "error": name, "detail": detail.into() }))
}

/// The domain's refusals: answers that depend only on the request and the stored data, as
/// a status and body.
pub fn refusal_answer(error: &Error) -> Option<(StatusCode, Value)> {
    let answer = match error {
        Error::InvalidField {
            field,
            message,
            input,
        } => rejected(rejected_issue(field, message, input.clone())),
        Error::RejectedField {
            kind,
            field,
            message,
            input,
        } => rejected(ValidationIssue::new(
            kind,
            crate::loc!["body", *field],
            *message,
            input.clone(),
        )),
        Error::OrderNotFound(order_id) => rejected(rejected_issue(
            "order_id",
            "Order not found",
            json!(order_id),
        )),
        // Without the request at hand the amount cannot be echoed; the refunds routes
        // answer with `ApiError::over_refund` instead.
        Error::OverRefund { .. } => return ApiError::over_refund(Value::Null).plain_answer(),
        Error::RefundsBlocked(order_id) => polar_body(
            StatusCode::FORBIDDEN,
            "RefundsBlocked",
            format!("Refunds are blocked for order: {order_id}"),
        ),
        Error::RefundedAlready(order_id) => polar_body(
            StatusCode::FORBIDDEN,
            "RefundedAlready",
            format!("Order is already fully refunded: {order_id}"),
        ),
        Error::RefundDisputedPayment(order_id) => polar_body(
            StatusCode::FORBIDDEN,
            "RefundDisputedPayment",
            format!("Refund cannot be issued for order with disputed payment: {order_id}"),
        ),
        Error::RevokeSubscriptionBenefitsProhibited => polar_body(
            StatusCode::BAD_REQUEST,
            "RevokeSubscriptionBenefitsProhibited",
            "Subscription benefits can only be revoked upon cancellation",
        ),
        Error::RefundUnknownPayment(order_id) => polar_body(
            StatusCode::NOT_FOUND,
            "RefundUnknownPayment",
            format!("Refund issued for unknown order: {order_id}"),
        ),
        Error::ResourceNotFound => {
            polar_body(StatusCode::NOT_FOUND, "ResourceNotFound", "Not found")
        }
        Error::NotFound(what) => polar_body(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("{what} not found"),
        ),
        Error::Conflict(detail) => polar_body(StatusCode::CONFLICT, "Conflict", detail.clone()),
        Error::InvalidRefundMove {
            current, requested, ..
        } => rejected(rejected_issue(
            "status",
            &format!(
                "The refund is {} and cannot become {}",
                current.as_str(),
                requested.as_str()
            ),
            json!(requested.as_str()),
        )),
        Error::IdempotencyKeyReused(key) => rejected(ValidationIssue::new(
            "idempotency_key_reused",
            crate::loc!["header", IDEMPOTENCY_KEY_HEADER],
            "This idempotency key was already used for a different request",
            json!(key),
        )),
        Error::InvalidToken
        | Error::Unauthorized
        | Error::InsufficientScope(_)
        | Error::IdempotencyKeyInUse
        | Error::Processor(_)
        | Error::NotReady(_)
        | Error::DatabaseUnavailable(_)
        | Error::Database(_)
        | Error::Corrupt(_) => return None,
    };
    Some(answer)
}

/// The answers that carry headers of their own or must be logged.
fn domain_response(error: Error) -> Response {
    match error {
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
        Error::IdempotencyKeyInUse => {
            let mut response = polar(
                StatusCode::CONFLICT,
                "IdempotencyKeyInUse",
                "A request with this idempotency key is still in progress; retry shortly",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Error::NotReady(reason) => {
            tracing::warn!(reason, "not ready");
            service_unavailable()
        }
        Error::DatabaseUnavailable(cause) => {
            tracing::error!(error = %cause, "database unavailable");
            service_unavailable()
        }
        error @ (Error::Processor(_) | Error::Database(_) | Error::Corrupt(_)) => {
            tracing::error!(%error, "request failed");
            internal_error()
        }
        plain => unreachable!("{} is a plain answer", plain.kind()),
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
