//! HTTP handlers of `/v1/refunds/`: parse, call the service, answer.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{CreateBadRequest, CreateForbidden, ListRefundsParams};
use super::input::{parse_list_query, parse_refund_create};
use super::model::Refund;
use super::service::{self, RefundList};
use crate::auth::extract::{RefundsRead, RefundsWrite};
use crate::domain::Error;
use crate::http::extract::RawBody;
use crate::polar::schema::{
    AuthFailure, HttpValidationError, OAuth2Error, PolarError, metadata_input, uuid4_schema,
};
use crate::polar::{ApiError, ApiResult};
use crate::state::{AppState, Reader};

pub fn routes() -> OpenApiRouter<AppState> {
    // The bare path is served as well, not redirected: one official SDK build does not
    // follow redirects, and curl users POST to it.
    OpenApiRouter::new()
        .routes(routes!(list_refunds, create_refund))
        .route("/v1/refunds", get(list_refunds).post(create_refund))
}

/// Reason for the refund.
// The reasons a client may give: `dispute_prevention` is the server's own.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
enum ManualRefundReason {
    Duplicate,
    Fraudulent,
    CustomerRequest,
    ServiceDisruption,
    SatisfactionGuarantee,
    Other,
}

// The body of `POST /v1/refunds/` as documented; `refunds::input` parses it.
#[derive(ToSchema)]
#[schema(as = RefundCreate)]
#[allow(dead_code)]
struct RefundCreateBody {
    #[schema(schema_with = metadata_input, required = false)]
    metadata: (),
    #[schema(schema_with = uuid4_schema)]
    order_id: String,
    #[schema(inline)]
    reason: ManualRefundReason,
    /// Amount to refund in cents. Minimum is 1.
    #[schema(exclusive_minimum = 0)]
    amount: i64,
    /// An internal comment about the refund.
    comment: Option<String>,
    /// Should this refund trigger the associated customer benefits to be revoked?
    ///
    /// **Note:**
    /// Only allowed in case the `order` is a one-time purchase.
    /// Subscriptions automatically revoke customer benefits once the
    /// subscription itself is revoked, i.e fully canceled.
    #[schema(default = false, required = false)]
    revoke_benefits: bool,
}

/// Create a refund.
///
/// **Scopes**: `refunds:write`
#[utoipa::path(
    post,
    path = "/v1/refunds/",
    operation_id = "refunds:create",
    tag = "refunds",
    summary = "Create Refund",
    request_body(content = RefundCreateBody, content_type = "application/json"),
    security(("pat" = ["refunds:write"]), ("oat" = ["refunds:write"])),
    responses(
        (status = 201, description = "Refund created.", body = Refund),
        (status = 400, description = "Benefits of a subscription cannot be revoked by a refund, or the body is not UTF-8.", body = CreateBadRequest),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "Order is already fully refunded, refunds are blocked, the payment is disputed, or the token lacks `refunds:write`.", body = CreateForbidden),
        (status = 404, description = "The order has no succeeded payment.", body = PolarError),
        (status = 413, description = "The body is larger than 10 MiB.", body = PolarError),
        (status = 422, description = "Validation Error", body = HttpValidationError),
        (status = 503, description = "The database is unavailable or the request timed out.", body = PolarError),
    ),
)]
async fn create_refund(
    State(state): State<AppState>,
    RefundsWrite(principal): RefundsWrite,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<Refund>)> {
    let input = parse_refund_create(body.content_type.as_deref(), &body.bytes)?;
    let amount_input = input.amount_input.clone();
    let created = service::create_refund(&state, &principal, input).await;
    let outcome = match &created {
        Ok(refund) => refund.status.as_str(),
        Err(error) => error.kind(),
    };
    metrics::counter!("refunds_created_total", "outcome" => outcome).increment(1);
    match created {
        Ok(refund) => Ok((StatusCode::CREATED, Json(refund))),
        Err(Error::OverRefund) => Err(ApiError::over_refund(amount_input)),
        Err(error) => Err(error.into()),
    }
}

/// List refunds.
///
/// **Scopes**: `refunds:read` `refunds:write`
#[utoipa::path(
    get,
    path = "/v1/refunds/",
    operation_id = "refunds:list",
    tag = "refunds",
    summary = "List Refunds",
    params(ListRefundsParams),
    security(("pat" = ["refunds:read", "refunds:write"]), ("oat" = ["refunds:read", "refunds:write"])),
    responses(
        (status = 200, description = "Successful Response", body = RefundList),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "The token lacks `refunds:read` and `refunds:write`.", body = OAuth2Error),
        (status = 422, description = "Validation Error", body = HttpValidationError),
        (status = 503, description = "The database is unavailable or the request timed out.", body = PolarError),
    ),
)]
async fn list_refunds(
    RefundsRead(principal): RefundsRead,
    reader: Reader,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<RefundList>> {
    let query = parse_list_query(query.as_deref()).map_err(ApiError::RequestValidation)?;
    Ok(Json(
        service::list_refunds(&reader, &principal, &query).await?,
    ))
}
