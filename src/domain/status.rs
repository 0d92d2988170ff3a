//! The states of refunds, orders and disputes, and why a refund was made. Each is stored as
//! its snake_case name in a `text` column (which a CHECK constraint keeps to these names)
//! and written the same way on the wire.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! derive_state {
    ($(#[$meta:meta])* pub enum $name:ident { $($variant:ident),+ $(,)? }) => {
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            Serialize,
            Deserialize,
            ToSchema,
            sqlx::Type,
            strum::IntoStaticStr,
            strum::EnumString,
        )]
        #[serde(rename_all = "snake_case")]
        #[sqlx(type_name = "text", rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        $(#[$meta])*
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// The name as stored and sent.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }
    };
}

derive_state! {
    /// Why a refund was made. `DisputePrevention` is reserved for refunds the server issues
    /// itself; clients may send any other reason.
    pub enum RefundReason {
        Duplicate,
        Fraudulent,
        CustomerRequest,
        ServiceDisruption,
        SatisfactionGuarantee,
        DisputePrevention,
        Other,
    }
}

derive_state! {
    pub enum RefundStatus {
        Pending,
        Succeeded,
        Failed,
        Canceled,
    }
}

derive_state! {
    /// Why a processor failed a refund (Polar's `RefundFailureReason`).
    pub enum RefundFailureReason {
        Unknown,
        Declined,
        CardExpired,
        CardLost,
        Disputed,
        InsufficientFunds,
        MerchantRequest,
    }
}

derive_state! {
    /// What the sandbox processor answers for an order's next refunds.
    pub enum SandboxRefundOutcome {
        Succeeded,
        Pending,
        Failed,
    }
}

derive_state! {
    pub enum DisputeStatus {
        Prevented,
        EarlyWarning,
        NeedsResponse,
        UnderReview,
        Lost,
        Won,
    }
}

derive_state! {
    pub enum OrderStatus {
        Draft,
        Pending,
        Paid,
        Refunded,
        PartiallyRefunded,
        Void,
    }
}

derive_state! {
    /// Why an order was billed (Polar's `OrderBillingReason`).
    #[schema(as = OrderBillingReason)]
    pub enum BillingReason {
        Purchase,
        SubscriptionCreate,
        SubscriptionCycle,
        SubscriptionUpdate,
        SubscriptionMeterCycle,
    }
}

derive_state! {
    /// How often a recurring product bills.
    pub enum RecurringInterval {
        Day,
        Week,
        Month,
        Year,
    }
}

derive_state! {
    pub enum PaymentStatus {
        Pending,
        Succeeded,
        Failed,
    }
}

derive_state! {
    /// What started a payment attempt (Polar's `PaymentTrigger`).
    pub enum PaymentTrigger {
        Purchase,
        SubscriptionCycle,
        RetryDunning,
        RetryCustomer,
        RetryPaymentMethodUpdate,
        RetryAdmin,
    }
}

impl RefundStatus {
    /// The moves a refund may make: a pending one settles, fails or is canceled; a succeeded
    /// one may still be reversed (failed or canceled) by the processor.
    pub fn may_move_to(self, to: RefundStatus) -> bool {
        use RefundStatus::*;
        matches!(
            (self, to),
            (Pending, Succeeded | Failed | Canceled) | (Succeeded, Failed | Canceled)
        )
    }
}

impl DisputeStatus {
    pub fn is_resolved(self) -> bool {
        matches!(self, DisputeStatus::Won | DisputeStatus::Lost)
    }

    pub fn is_closed(self) -> bool {
        matches!(
            self,
            DisputeStatus::Prevented | DisputeStatus::Won | DisputeStatus::Lost
        )
    }
}

impl OrderStatus {
    /// Polar's `Order.update_refunds`: the status follows the refunded net amount only.
    pub fn after_refunds(refunded_amount: i64, refundable_total: i64) -> Self {
        if refunded_amount == 0 {
            OrderStatus::Paid
        } else if refunded_amount >= refundable_total {
            OrderStatus::Refunded
        } else {
            OrderStatus::PartiallyRefunded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_and_write_their_snake_case_names() {
        assert_eq!(RefundReason::CustomerRequest.as_str(), "customer_request");
        assert_eq!(
            "partially_refunded".parse::<OrderStatus>(),
            Ok(OrderStatus::PartiallyRefunded)
        );
        assert_eq!(
            serde_json::to_value(DisputeStatus::EarlyWarning).unwrap(),
            "early_warning"
        );
        assert!("Succeeded".parse::<RefundStatus>().is_err());
    }

    #[test]
    fn refunds_move_forward_only() {
        use RefundStatus::*;
        for to in [Succeeded, Failed, Canceled] {
            assert!(Pending.may_move_to(to));
        }
        assert!(Succeeded.may_move_to(Failed));
        assert!(Succeeded.may_move_to(Canceled));
        for from in [Failed, Canceled] {
            for to in [Pending, Succeeded, Failed, Canceled] {
                assert!(!from.may_move_to(to), "{from:?} -> {to:?}");
            }
        }
        assert!(!Succeeded.may_move_to(Pending));
        assert!(!Succeeded.may_move_to(Succeeded));
        assert!(!Pending.may_move_to(Pending));
    }

    #[test]
    fn the_order_status_follows_the_refunded_net_amount() {
        assert_eq!(OrderStatus::after_refunds(0, 100), OrderStatus::Paid);
        assert_eq!(
            OrderStatus::after_refunds(1, 100),
            OrderStatus::PartiallyRefunded
        );
        assert_eq!(OrderStatus::after_refunds(100, 100), OrderStatus::Refunded);
    }
}
