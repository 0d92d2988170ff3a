//! The domain core: money and the order's counters, the states of refunds, orders and
//! disputes, and the one error every service returns. It knows nothing of HTTP or of any
//! API surface's wire shapes.

pub mod error;
pub mod money;
pub mod status;

pub use error::{Error, Result};

/// Secrets (access tokens, the admin token) are stored and compared only as this hash.
pub fn hash_token(token: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes()).to_vec()
}
pub use money::{OrderAmounts, RefundSplit, RequestedAmount};
pub use status::{
    BillingReason, DisputeStatus, OrderStatus, PaymentStatus, PaymentTrigger, RecurringInterval,
    RefundFailureReason, RefundReason, RefundStatus, SandboxRefundOutcome,
};
