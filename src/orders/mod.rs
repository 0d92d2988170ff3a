//! Orders as the refund service sees them, and creating paid orders for sandboxes.

pub mod repo;
pub mod service;

use crate::refunds::model::string_enum;

string_enum!(OrderStatus {
    Draft => "draft",
    Pending => "pending",
    Paid => "paid",
    Refunded => "refunded",
    PartiallyRefunded => "partially_refunded",
    Void => "void",
});

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
