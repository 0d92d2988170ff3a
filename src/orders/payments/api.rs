//! HTTP handlers of `/v1/payments/`: parse, call the service, answer.

use axum::Json;
use axum::extract::RawQuery;
use axum::routing::get;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::input::parse_payment_list_query;
use super::model::{Payment, PaymentList};
use super::service;
use crate::auth::extract::PaymentsRead;
use crate::http::extract::PathId;
use crate::polar::parse::path_uuid4;
use crate::polar::schema::{
    AuthFailure, HttpValidationError, OAuth2Error, PolarError, ResourceNotFound, enum_filter,
    limit, page, sorting_of, string_filter, uuid4_filter, uuid4_schema,
};
use crate::polar::{ApiError, ApiResult};
use crate::state::{AppState, Reader};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_payments))
        .routes(routes!(get_payment))
        .route("/v1/payments", get(list_payments))
}

fn sorting() -> utoipa::openapi::schema::Schema {
    sorting_of("PaymentSortProperty")
}

fn status_filter() -> utoipa::openapi::schema::Schema {
    enum_filter("PaymentStatus")
}

/// The query of `GET /v1/payments/`, as documented (parsed by `payments::input`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ListPaymentsParams {
    /// Filter by organization ID.
    #[param(schema_with = uuid4_filter)]
    organization_id: Option<Vec<String>>,
    /// Filter by checkout ID.
    #[param(schema_with = uuid4_filter)]
    checkout_id: Option<Vec<String>>,
    /// Filter by order ID.
    #[param(schema_with = uuid4_filter)]
    order_id: Option<Vec<String>>,
    /// Filter by customer ID.
    #[param(schema_with = uuid4_filter)]
    customer_id: Option<Vec<String>>,
    /// Filter by payment status.
    #[param(schema_with = status_filter)]
    status: Option<Vec<String>>,
    /// Filter by payment method.
    #[param(schema_with = string_filter)]
    method: Option<Vec<String>>,
    /// Filter by customer email.
    #[param(schema_with = string_filter)]
    customer_email: Option<Vec<String>>,
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

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct PaymentIdParam {
    /// The payment ID.
    #[param(schema_with = uuid4_schema, required = true)]
    id: String,
}

/// List payments.
///
/// **Scopes**: `payments:read`
#[utoipa::path(
    get,
    path = "/v1/payments/",
    operation_id = "payments:list",
    tag = "payments",
    summary = "List Payments",
    params(ListPaymentsParams),
    security(("pat" = ["payments:read"]), ("oat" = ["payments:read"])),
    responses(
        (status = 200, description = "Successful Response", body = PaymentList),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "The token lacks `payments:read`.", body = OAuth2Error),
        (status = 422, description = "Validation Error", body = HttpValidationError),
        (status = 503, description = "The database is unavailable or the request timed out.", body = PolarError),
    ),
)]
async fn list_payments(
    reader: Reader,
    PaymentsRead(principal): PaymentsRead,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<PaymentList>> {
    let query = parse_payment_list_query(query.as_deref()).map_err(ApiError::RequestValidation)?;
    Ok(Json(
        service::list_payments(&reader, &principal, &query).await?,
    ))
}

/// Get a payment by ID.
///
/// **Scopes**: `payments:read`
#[utoipa::path(
    get,
    path = "/v1/payments/{id}",
    operation_id = "payments:get",
    tag = "payments",
    summary = "Get Payment",
    params(PaymentIdParam),
    security(("pat" = ["payments:read"]), ("oat" = ["payments:read"])),
    responses(
        (status = 200, description = "Successful Response", body = Payment),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "The token lacks `payments:read`.", body = OAuth2Error),
        (status = 404, description = "Payment not found.", body = ResourceNotFound),
        (status = 422, description = "Validation Error", body = HttpValidationError),
        (status = 503, description = "The database is unavailable or the request timed out.", body = PolarError),
    ),
)]
async fn get_payment(
    reader: Reader,
    PaymentsRead(principal): PaymentsRead,
    PathId(id): PathId,
) -> ApiResult<Json<Payment>> {
    let id = path_uuid4(&id, "id").map_err(ApiError::RequestValidation)?;
    Ok(Json(service::read_payment(&reader, &principal, id).await?))
}
