//! The one error type of the server. `http::error` maps each variant to its HTTP answer.

use serde_json::Value;
use uuid::Uuid;

use crate::http::validation::ValidationIssue;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bearer token that is unknown, expired, revoked or malformed.
    #[error("invalid access token")]
    InvalidToken,
    /// No credentials, or credentials of a kind this route does not accept.
    #[error("unauthorized")]
    Unauthorized,
    /// The token is valid but lacks every one of these scopes.
    #[error("insufficient scope, need one of {0:?}")]
    InsufficientScope(&'static [&'static str]),

    /// The request's shape is wrong (framework-level validation).
    #[error("invalid request")]
    RequestValidation(Vec<ValidationIssue>),
    /// The request is well formed but a rule of the service rejects it.
    #[error("request rejected by validation: {0:?}")]
    PolarRequestValidation(Vec<ValidationIssue>),
    /// The body is not UTF-8 text.
    #[error("unreadable request body")]
    UnreadableBody,
    #[error("request body too large")]
    PayloadTooLarge,

    #[error("order {0} not found")]
    OrderNotFound(Uuid),
    #[error("refund amount {0} exceeds refundable amount")]
    OverRefund(Value),
    #[error("refunds are blocked for order {0}")]
    RefundsBlocked(Uuid),
    #[error("order {0} is already fully refunded")]
    RefundedAlready(Uuid),
    #[error("order {0} has a disputed payment")]
    RefundDisputedPayment(Uuid),
    #[error("subscription benefits can only be revoked upon cancellation")]
    RevokeSubscriptionBenefitsProhibited,
    #[error("order {0} has no succeeded payment")]
    RefundUnknownPayment(Uuid),
    /// A setup operation (CLI, admin API) named something that does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A setup operation would create a duplicate of something unique.
    #[error("{0}")]
    Conflict(String),

    #[error("payment processor error: {0}")]
    Processor(String),
    /// The service cannot serve yet (for example, migrations are missing).
    #[error("not ready: {0}")]
    NotReady(&'static str),
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        let unavailable = match &error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Io(_) => true,
            // The server is shutting down or restarting (57P01-57P03), the connection broke
            // (class 08), or there are too many connections (53300): all pass by themselves.
            sqlx::Error::Database(database) => database.code().is_some_and(|code| {
                code.starts_with("57P") || code.starts_with("08") || code == "53300"
            }),
            _ => false,
        };
        if unavailable {
            Error::DatabaseUnavailable(error)
        } else {
            Error::Database(error)
        }
    }
}

impl Error {
    /// A short stable name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidToken => "invalid_token",
            Error::Unauthorized => "unauthorized",
            Error::InsufficientScope(_) => "insufficient_scope",
            Error::RequestValidation(_) => "invalid_request",
            Error::PolarRequestValidation(_) => "rejected_request",
            Error::UnreadableBody => "unreadable_body",
            Error::PayloadTooLarge => "payload_too_large",
            Error::OrderNotFound(_) => "order_not_found",
            Error::OverRefund(_) => "over_refund",
            Error::RefundsBlocked(_) => "refunds_blocked",
            Error::RefundedAlready(_) => "refunded_already",
            Error::RefundDisputedPayment(_) => "disputed_payment",
            Error::RevokeSubscriptionBenefitsProhibited => "revoke_benefits_prohibited",
            Error::RefundUnknownPayment(_) => "unknown_payment",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Processor(_) => "processor_error",
            Error::NotReady(_) => "not_ready",
            Error::DatabaseUnavailable(_) => "database_unavailable",
            Error::Database(_) => "database_error",
            Error::Corrupt(_) => "corrupt_data",
        }
    }

    /// A single-field validation failure raised by a service, in Polar's shape.
    pub fn invalid_field(field: &str, msg: &str, input: Value) -> Self {
        Error::PolarRequestValidation(vec![ValidationIssue::new(
            "value_error",
            crate::loc!["body", field],
            msg,
            input,
        )])
    }
}
