//! The payment processors that carry out refunds, in their own terms: what they were asked
//! and what they answered. The refund flow (reserve, call, settle or release, recover) lives
//! with refunds; this module only talks to processors.

pub mod stripe;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{RefundFailureReason, RefundReason, SandboxRefundOutcome};

/// A refund as the processor is asked to make it. `refund_id` is the processor's
/// idempotency key, so asking twice for the same refund refunds once. It is stored with the
/// refund, so that asking again sends exactly the same request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessorRefund {
    pub refund_id: Uuid,
    pub order_id: Uuid,
    pub payment_id: Uuid,
    /// The processor's id of the charge being refunded.
    pub charge_id: String,
    /// The net amount asked for, as Polar's API takes it (a gross request's net share).
    pub requested_amount: i64,
    pub amount: i64,
    pub tax_amount: i64,
    pub currency: String,
    pub reason: RefundReason,
    pub revoke_benefits: bool,
    /// What the sandbox answers for this order; other processors ignore it.
    pub sandbox_outcome: SandboxRefundOutcome,
}

/// Where the processor says the refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessorRefundState {
    Succeeded,
    /// Accepted; the outcome follows later.
    Pending,
    /// Accepted, then refused (the card network declined it, for example).
    Failed,
    Canceled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorOutcome {
    pub state: ProcessorRefundState,
    /// The processor's id for the refund.
    pub processor_id: String,
    pub failure_reason: Option<RefundFailureReason>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessorError {
    /// Refused: the charge is already refunded. Nothing was refunded.
    #[error("the charge is already refunded")]
    AlreadyRefunded,
    /// Refused: the charge is disputed. Nothing was refunded.
    #[error("the charge is disputed")]
    Disputed,
    /// Refused for another reason. Nothing was refunded.
    #[error("{0}")]
    Other(String),
    /// No answer (a timeout, a broken connection, a server error): the refund may or may not
    /// have been made, and asking again with the same refund id finds out.
    #[error("no answer from the processor: {0}")]
    Unavailable(String),
}

/// How long a processor remembers an idempotency key (Stripe: 24 hours). Past it, asking
/// again could refund twice, so a refund left without an answer is looked up instead.
pub const IDEMPOTENCY_KEY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

#[async_trait]
pub trait PaymentProcessor: Send + Sync + 'static {
    /// The name stored with each refund it makes.
    fn name(&self) -> &'static str;

    /// Whether the processor answers without leaving the process. Only such a processor may
    /// be called inside the transaction that holds the order's row lock; any other is called
    /// between a transaction that reserves the amount and one that settles it.
    fn answers_in_process(&self) -> bool {
        false
    }

    async fn refund(&self, request: &ProcessorRefund) -> Result<ProcessorOutcome, ProcessorError>;

    /// Looks for a refund made for `request` without making one (the idempotency key has
    /// expired): `None` when the processor has none.
    async fn find_refund(
        &self,
        request: &ProcessorRefund,
    ) -> Result<Option<ProcessorOutcome>, ProcessorError> {
        let _ = request;
        Ok(None)
    }
}

/// The built-in simulated processor: refunds succeed at once, unless the order was told
/// (through the admin API) to answer `pending` or `failed`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SandboxProcessor;

pub const SANDBOX: &str = "sandbox";

#[async_trait]
impl PaymentProcessor for SandboxProcessor {
    fn name(&self) -> &'static str {
        SANDBOX
    }

    fn answers_in_process(&self) -> bool {
        true
    }

    async fn refund(&self, request: &ProcessorRefund) -> Result<ProcessorOutcome, ProcessorError> {
        let (state, failure_reason) = match request.sandbox_outcome {
            SandboxRefundOutcome::Succeeded => (ProcessorRefundState::Succeeded, None),
            SandboxRefundOutcome::Pending => (ProcessorRefundState::Pending, None),
            SandboxRefundOutcome::Failed => (
                ProcessorRefundState::Failed,
                Some(RefundFailureReason::Declined),
            ),
        };
        Ok(ProcessorOutcome {
            state,
            processor_id: format!("sandbox_re_{}", request.refund_id.simple()),
            failure_reason,
        })
    }
}
