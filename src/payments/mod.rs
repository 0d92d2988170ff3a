//! The payment processor that carries out refunds, in its own terms: what it was asked and
//! what it answered. The refund flow (reserve, call, settle or release) lives with refunds;
//! this module only talks to processors.

use async_trait::async_trait;
use uuid::Uuid;

/// A refund as the processor is asked to make it. `refund_id` is the processor's
/// idempotency key, so asking twice for the same refund refunds once.
#[derive(Debug, Clone)]
pub struct ProcessorRefund {
    pub refund_id: Uuid,
    pub payment_id: Uuid,
    pub amount: i64,
    pub tax_amount: i64,
    pub currency: String,
}

/// Where the processor says the refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessorRefundState {
    Succeeded,
    /// Accepted; the outcome follows later.
    Pending,
    /// Accepted, then refused (the card network declined it, for example).
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorOutcome {
    pub state: ProcessorRefundState,
    /// The processor's id for the refund.
    pub processor_id: String,
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
}

/// The built-in simulated processor: every refund settles at once as `succeeded`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SandboxProcessor;

#[async_trait]
impl PaymentProcessor for SandboxProcessor {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn answers_in_process(&self) -> bool {
        true
    }

    async fn refund(&self, request: &ProcessorRefund) -> Result<ProcessorOutcome, ProcessorError> {
        Ok(ProcessorOutcome {
            state: ProcessorRefundState::Succeeded,
            processor_id: format!("sandbox_re_{}", request.refund_id.simple()),
        })
    }
}
