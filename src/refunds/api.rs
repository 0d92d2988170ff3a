//! HTTP handlers of `/v1/refunds/`: parse, call the service, answer.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::batch::CreateBatcher;
use super::docs::{CreateBadRequest, CreateForbidden, ListRefundsParams};
use super::input::{parse_list_query, parse_refund_create};
use super::model::Refund;
use super::service::{self, Created, Keyed, RefundList};
use crate::auth::extract::{RefundsRead, RefundsWrite};
use crate::domain::Error;
use crate::http::extract::RawBody;
use crate::idempotency::extract::IdempotencyKey;
use crate::idempotency::{KeyedRequest, StoredAnswer};
use crate::polar::error::refusal_answer;
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
        .layer(Extension(Arc::new(CreateBatcher::default())))
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
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false,
         description = "Makes a retry safe: a request repeated with the same key (1 to 255 printable ASCII characters, bare or as a quoted string) while the key is kept (24 hours by default) is answered with the first answer, byte for byte, and `Idempotent-Replayed: true`, and refunds nothing more. The key belongs to the token's organization (or the user of a personal token). Reusing a key for a different body answers 422 `idempotency_key_reused`; while the first request is still running, 409 `IdempotencyKeyInUse` with `Retry-After`. Successes and refusals by the refund rules are kept; validation errors, authentication failures and server errors are not, and a retry runs again.",
         min_length = 1, max_length = 255),
    ),
    security(("pat" = ["refunds:write"]), ("oat" = ["refunds:write"])),
    responses(
        (status = 201, description = "Refund created.", body = Refund,
         headers(("Idempotent-Replayed" = String, description = "`true` when this is the kept answer of an earlier request with the same `Idempotency-Key`."))),
        (status = 400, description = "Benefits of a subscription cannot be revoked by a refund, or the body is not UTF-8.", body = CreateBadRequest),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "Order is already fully refunded, refunds are blocked, the payment is disputed, or the token lacks `refunds:write`.", body = CreateForbidden),
        (status = 404, description = "The order has no succeeded payment.", body = PolarError),
        (status = 409, description = "A request with the same `Idempotency-Key` is still in progress; retry after `Retry-After` seconds.", body = PolarError,
         headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 413, description = "The body is larger than 10 MiB.", body = PolarError),
        (status = 422, description = "Validation Error, an over-refund, or an `Idempotency-Key` that is malformed (`loc: [\"header\", \"Idempotency-Key\"]`) or was used for a different request (`type: idempotency_key_reused`).", body = HttpValidationError),
        (status = 503, description = "The database is unavailable or the request timed out.", body = PolarError),
    ),
)]
async fn create_refund(
    State(state): State<AppState>,
    Extension(batcher): Extension<Arc<CreateBatcher>>,
    RefundsWrite(principal): RefundsWrite,
    IdempotencyKey(key): IdempotencyKey,
    body: RawBody,
) -> ApiResult<Response> {
    let input = parse_refund_create(body.content_type.as_deref(), &body.bytes)?;
    let amount_input = input.amount_input.clone();
    let keyed = key.map(|key| {
        let amount_input = amount_input.clone();
        Keyed {
            request: KeyedRequest::new(&principal, key, "POST", service::CREATE_ROUTE, &body.bytes),
            answer: Arc::new(move |created: &Result<Refund, Error>| {
                kept_answer(created, &amount_input)
            }),
        }
    });
    let created = service::create_refund(&state, Some(&batcher), &principal, input, keyed).await;
    let outcome = match &created {
        Ok(Created::Fresh(refund)) => refund.status.as_str(),
        Ok(Created::Replayed(_)) => "replayed",
        Err(error) => error.kind(),
    };
    metrics::counter!("refunds_created_total", "outcome" => outcome).increment(1);
    match created {
        Ok(Created::Fresh(refund)) => Ok((StatusCode::CREATED, Json(refund)).into_response()),
        Ok(Created::Replayed(answer)) => Ok(replay(answer)),
        Err(Error::OverRefund { .. }) => Err(ApiError::over_refund(amount_input)),
        Err(error) => Err(error.into()),
    }
}

/// The answer a keyed create keeps: its success and the refusals that follow from the
/// request and the order, never a conflict or a failure of the server.
fn kept_answer(created: &Result<Refund, Error>, amount_input: &Value) -> Option<StoredAnswer> {
    let (status, body) = match created {
        Ok(refund) => (StatusCode::CREATED, serde_json::to_vec(refund).ok()?),
        Err(error) => {
            let (status, body) = match error {
                Error::OverRefund { .. } => {
                    ApiError::over_refund(amount_input.clone()).plain_answer()?
                }
                other => refusal_answer(other)?,
            };
            if status == StatusCode::CONFLICT {
                return None;
            }
            (status, serde_json::to_vec(&body).ok()?)
        }
    };
    Some(StoredAnswer {
        status: status.as_u16(),
        body,
    })
}

fn replay(answer: StoredAnswer) -> Response {
    let Ok(status) = StatusCode::from_u16(answer.status) else {
        return ApiError::from(Error::Corrupt(format!("kept status {}", answer.status)))
            .into_response();
    };
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
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
