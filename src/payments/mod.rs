//! The payment processor that carries out refunds.

use uuid::Uuid;

use crate::domain::RefundStatus;

/// A refund as the processor is asked to make it. `refund_id` is the processor's
/// idempotency key.
#[derive(Debug, Clone)]
pub struct ProcessorRefund {
    pub refund_id: Uuid,
    pub payment_id: Uuid,
    pub amount: i64,
    pub tax_amount: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorOutcome {
    pub status: RefundStatus,
    pub processor_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessorError {
    #[error("the charge is already refunded")]
    AlreadyRefunded,
    #[error("the charge is disputed")]
    Disputed,
    #[error("{0}")]
    Other(String),
}

/// Carries out a refund. Implementations called while the order row is locked must answer
/// at once: an outside processor needs the two-phase flow (reserve as pending, call, settle).
pub trait PaymentProcessor: Send + Sync + 'static {
    /// The name stored with each refund it makes.
    fn name(&self) -> &'static str;
    fn refund(&self, request: &ProcessorRefund) -> Result<ProcessorOutcome, ProcessorError>;
}

/// The built-in simulated processor: every refund settles at once as `succeeded`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SandboxProcessor;

impl PaymentProcessor for SandboxProcessor {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn refund(&self, request: &ProcessorRefund) -> Result<ProcessorOutcome, ProcessorError> {
        Ok(ProcessorOutcome {
            status: RefundStatus::Succeeded,
            processor_id: format!("sandbox_re_{}", request.refund_id.simple()),
        })
    }
}
