//! Orders as the API shows them.

use uuid::Uuid;

use crate::domain::OrderStatus;

/// An order as the admin API shows it, with Polar's Order field names.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub customer_id: Uuid,
    pub subscription_id: Option<Uuid>,
    #[schema(value_type = String)]
    pub status: OrderStatus,
    pub net_amount: i64,
    pub tax_amount: i64,
    pub applied_balance_amount: i64,
    pub refunded_amount: i64,
    pub refunded_tax_amount: i64,
    pub refundable_amount: i64,
    pub refundable_tax_amount: i64,
    pub currency: String,
    pub refunds_blocked: bool,
}
