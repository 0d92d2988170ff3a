//! HTTP handlers of `/v1/orders/`: parse, call the service, answer.

use axum::Json;
use axum::extract::RawQuery;
use axum::routing::get;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::input::parse_order_list_query;
use super::model::{Order, OrderList};
use super::service;
use crate::auth::extract::OrdersRead;
use crate::http::extract::PathId;
use crate::polar::parse::path_uuid4;
use crate::polar::schema::{
    AuthFailure, HttpValidationError, OAuth2Error, PolarError, ResourceNotFound, enum_filter,
    limit, nullable_date_time, page, sorting_of, string_filter, uuid4_filter, uuid4_schema,
};
use crate::polar::{ApiError, ApiResult};
use crate::state::{AppState, Reader};

pub fn routes() -> OpenApiRouter<AppState> {
    // The bare path is served as well, not redirected, as for refunds.
    OpenApiRouter::new()
        .routes(routes!(list_orders))
        .routes(routes!(get_order))
        .route("/v1/orders", get(list_orders))
}

fn sorting() -> utoipa::openapi::schema::Schema {
    sorting_of("OrderSortProperty")
}

fn billing_type_filter() -> utoipa::openapi::schema::Schema {
    enum_filter("ProductBillingType")
}

fn status_filter() -> utoipa::openapi::schema::Schema {
    enum_filter("OrderStatus")
}

/// The query of `GET /v1/orders/`, as documented (parsed by `orders::input`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ListOrdersParams {
    /// Filter by organization ID.
    #[param(schema_with = uuid4_filter)]
    organization_id: Option<Vec<String>>,
    /// Filter by product ID.
    #[param(schema_with = uuid4_filter)]
    product_id: Option<Vec<String>>,
    /// Filter by product billing type. `recurring` will filter data corresponding to
    /// subscriptions creations or renewals. `one_time` will filter data corresponding to
    /// one-time purchases.
    #[param(schema_with = billing_type_filter)]
    product_billing_type: Option<Vec<String>>,
    /// Filter by discount ID.
    #[param(schema_with = uuid4_filter)]
    discount_id: Option<Vec<String>>,
    /// Filter by customer ID.
    #[param(schema_with = uuid4_filter)]
    customer_id: Option<Vec<String>>,
    /// Filter by customer external ID.
    #[param(schema_with = string_filter)]
    external_customer_id: Option<Vec<String>>,
    /// Filter by checkout ID.
    #[param(schema_with = uuid4_filter)]
    checkout_id: Option<Vec<String>>,
    /// Filter by subscription ID.
    #[param(schema_with = uuid4_filter)]
    subscription_id: Option<Vec<String>>,
    /// Filter by order status.
    #[param(schema_with = status_filter)]
    status: Option<Vec<String>>,
    /// Only include orders created after this date
    #[param(schema_with = nullable_date_time)]
    created_after: Option<String>,
    /// Only include orders created before this date
    #[param(schema_with = nullable_date_time)]
    created_before: Option<String>,
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
    /// Filter by metadata key-value pairs. It uses the `deepObject` style, e.g.
    /// `?metadata[key]=value`.
    #[param(style = DeepObject, value_type = Option<crate::polar::schema::MetadataQuery>)]
    metadata: Option<String>,
}

/// The id in the path of a single resource.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct OrderIdParam {
    /// The order ID.
    #[param(schema_with = uuid4_schema, required = true)]
    id: String,
}

/// List orders.
///
/// **Scopes**: `orders:read`
#[utoipa::path(
    get,
    path = "/v1/orders/",
    operation_id = "orders:list",
    tag = "orders",
    summary = "List Orders",
    params(ListOrdersParams),
    security(("pat" = ["orders:read"]), ("oat" = ["orders:read"])),
    responses(
        (status = 200, description = "Successful Response", body = OrderList),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "The token lacks `orders:read`.", body = OAuth2Error),
        (status = 422, description = "Validation Error", body = HttpValidationError),
        (status = 503, description = "The database is unavailable or the request timed out.", body = PolarError),
    ),
)]
async fn list_orders(
    reader: Reader,
    OrdersRead(principal): OrdersRead,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<OrderList>> {
    let query = parse_order_list_query(query.as_deref()).map_err(ApiError::RequestValidation)?;
    Ok(Json(
        service::list_orders(&reader, &principal, &query).await?,
    ))
}

/// Get an order by ID.
///
/// **Scopes**: `orders:read`
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    operation_id = "orders:get",
    tag = "orders",
    summary = "Get Order",
    params(OrderIdParam),
    security(("pat" = ["orders:read"]), ("oat" = ["orders:read"])),
    responses(
        (status = 200, description = "Successful Response", body = Order),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "The token lacks `orders:read`.", body = OAuth2Error),
        (status = 404, description = "Order not found.", body = ResourceNotFound),
        (status = 422, description = "Validation Error", body = HttpValidationError),
        (status = 503, description = "The database is unavailable or the request timed out.", body = PolarError),
    ),
)]
async fn get_order(
    reader: Reader,
    OrdersRead(principal): OrdersRead,
    PathId(id): PathId,
) -> ApiResult<Json<Order>> {
    let id = path_uuid4(&id, "id").map_err(ApiError::RequestValidation)?;
    Ok(Json(service::read_order(&reader, &principal, id).await?))
}
