//! The OpenAPI description of the refunds routes where the code cannot derive it: the query
//! and the error bodies, which are parsed and written by hand in Polar's shapes.

use utoipa::IntoParams;
use utoipa::openapi::schema::{AnyOfBuilder, Schema, Type};

use crate::polar::schema::{
    any_of, limit, optional_bool, page, schema, sorting_of, string_filter, typed, uuid4_filter,
};

schema!(
    /// A refused body: subscription benefits cannot be revoked (Polar's body), or the body
    /// is not UTF-8 (FastAPI's `{"detail"}`).
    CreateBadRequest = any_of(&["PolarError", "DetailOnly"])
);
schema!(
    /// A 403 on create. Polar declares only `RefundedAlready`, but answers the other
    /// refusals (`RefundsBlocked`, `RefundDisputedPayment`, `insufficient_scope`) with 403 too.
    CreateForbidden = any_of(&["RefundedAlready", "PolarError", "OAuth2Error"])
);

fn sorting() -> Schema {
    sorting_of("RefundSortProperty")
}

/// The query of `GET /v1/refunds/`, as documented (parsed by `refunds::input`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListRefundsParams {
    /// Filter by refund ID.
    #[param(schema_with = uuid4_filter)]
    id: Option<Vec<String>>,
    /// Filter by organization ID.
    #[param(schema_with = uuid4_filter)]
    organization_id: Option<Vec<String>>,
    /// Filter by order ID.
    #[param(schema_with = uuid4_filter)]
    order_id: Option<Vec<String>>,
    /// Filter by subscription ID.
    #[param(schema_with = uuid4_filter)]
    subscription_id: Option<Vec<String>>,
    /// Filter by customer ID.
    #[param(schema_with = uuid4_filter)]
    customer_id: Option<Vec<String>>,
    /// Filter by customer external ID.
    #[param(schema_with = string_filter)]
    external_customer_id: Option<Vec<String>>,
    /// Filter by `succeeded`.
    #[param(schema_with = optional_bool)]
    succeeded: Option<bool>,
    /// Page number, defaults to 1.
    #[param(schema_with = page)]
    page: Option<i64>,
    /// Size of a page, defaults to 10. Maximum is 100.
    #[param(schema_with = limit)]
    limit: Option<i64>,
    /// Sorting criterion. Several criteria can be used simultaneously and will be applied in
    /// order. Add a minus sign `-` before the criteria name to sort by descending order.
    #[param(schema_with = sorting)]
    sorting: Option<Vec<String>>,
}

pub fn nullable_dispute() -> Schema {
    AnyOfBuilder::new()
        .item(utoipa::openapi::Ref::from_schema_name("RefundDispute"))
        .item(typed(Type::Null))
        .build()
        .into()
}
