//! The one error every service returns. It names what went wrong in the domain's terms;
//! each API surface maps it to its own wire body in one place of its own.

use serde_json::Value;
use uuid::Uuid;

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

    /// A well-formed input that a rule of the service refuses: `field` of the request, the
    /// reason in words, and the value that was refused.
    #[error("{field}: {message}")]
    InvalidField {
        field: &'static str,
        message: String,
        input: Value,
    },

    /// Like `InvalidField`, with the kind of fault Polar names (`missing`,
    /// `organization_token`, ...).
    #[error("{field}: {message}")]
    RejectedField {
        kind: &'static str,
        field: &'static str,
        message: &'static str,
        input: Value,
    },

    #[error("order {0} not found")]
    OrderNotFound(Uuid),
    /// The requested amount is more than the order has left to refund; `remaining` is what
    /// is left, in the request's terms (net, or net and tax together).
    #[error("refund amount exceeds refundable amount ({remaining} left)")]
    OverRefund { remaining: i64 },
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
    /// The idempotency key is held by a request that has not finished yet.
    #[error("idempotency key in use")]
    IdempotencyKeyInUse,
    /// The idempotency key was first used for a different request; holds the key.
    #[error("idempotency key reused for a different request")]
    IdempotencyKeyReused(String),
    /// A resource read through Polar's API that does not exist or that the caller may not see.
    #[error("resource not found")]
    ResourceNotFound,
    /// A setup operation (CLI, admin API) named something that does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A setup operation would create a duplicate of something unique.
    #[error("{0}")]
    Conflict(String),

    /// A refund asked to make a move its status does not allow.
    #[error("refund {refund_id} is {current:?} and cannot become {requested:?}")]
    InvalidRefundMove {
        refund_id: Uuid,
        current: super::RefundStatus,
        requested: super::RefundStatus,
    },

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
            Error::InvalidField { .. } | Error::RejectedField { .. } => "rejected_request",
            Error::OrderNotFound(_) => "order_not_found",
            Error::OverRefund { .. } => "over_refund",
            Error::RefundsBlocked(_) => "refunds_blocked",
            Error::RefundedAlready(_) => "refunded_already",
            Error::RefundDisputedPayment(_) => "disputed_payment",
            Error::RevokeSubscriptionBenefitsProhibited => "revoke_benefits_prohibited",
            Error::RefundUnknownPayment(_) => "unknown_payment",
            Error::IdempotencyKeyInUse => "idempotency_key_in_use",
            Error::IdempotencyKeyReused(_) => "idempotency_key_reused",
            Error::NotFound(_) => "not_found",
            Error::ResourceNotFound => "resource_not_found",
            Error::Conflict(_) => "conflict",
            Error::InvalidRefundMove { .. } => "invalid_refund_move",
            Error::Processor(_) => "processor_error",
            Error::NotReady(_) => "not_ready",
            Error::DatabaseUnavailable(_) => "database_unavailable",
            Error::Database(_) => "database_error",
            Error::Corrupt(_) => "corrupt_data",
        }
    }

    /// A single input refused by a rule of the service.
    pub fn invalid_field(field: &'static str, message: &str, input: Value) -> Self {
        Error::InvalidField {
            field,
            message: message.to_owned(),
            input,
        }
    }

    /// A unique constraint refused an insert: the thing already exists.
    pub fn unique_violation(error: sqlx::Error, conflict: impl FnOnce() -> String) -> Self {
        match error {
            sqlx::Error::Database(ref db) if db.is_unique_violation() => {
                Error::Conflict(conflict())
            }
            other => other.into(),
        }
    }

    /// A foreign key refused an insert: what it names does not exist.
    pub fn missing_reference(error: sqlx::Error, what: &'static str) -> Self {
        match error {
            sqlx::Error::Database(ref db) if db.is_foreign_key_violation() => Error::NotFound(what),
            other => other.into(),
        }
    }
}
