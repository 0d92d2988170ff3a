//! HTTP handlers of `/v1/webhooks/`: parse, call the service, answer.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::input::{
    parse_delivery_list_query, parse_endpoint_create, parse_endpoint_list_query,
    parse_endpoint_update,
};
use super::model::{WebhookDeliveryList, WebhookEndpoint, WebhookEndpointList};
use super::service;
use crate::auth::extract::{WebhooksRead, WebhooksWrite};
use crate::http::extract::{PathId, RawBody};
use crate::polar::parse::path_uuid4;
use crate::polar::schema::{
    AuthFailure, DetailOnly, HttpValidationError, OAuth2Error, ResourceNotFound, limit,
    nullable_date_time, optional_bool, page, string_filter, uuid4_filter, uuid4_schema,
};
use crate::polar::{ApiError, ApiResult};
use crate::state::{AppState, Reader};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(get_endpoint, update_endpoint, delete_endpoint))
        .routes(routes!(reset_endpoint_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(redeliver_event))
}

/// The format of the webhook payload; only `raw` is sent by this server.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
enum WebhookFormat {
    Raw,
    Discord,
    Slack,
}

/// Schema to create a webhook endpoint.
#[derive(ToSchema)]
#[schema(as = WebhookEndpointCreate)]
#[allow(dead_code)]
struct EndpointCreateBody {
    /// The URL where the webhook events will be sent (`https`, not a private address).
    url: String,
    /// An optional name for the webhook endpoint to help organize and identify it.
    name: Option<String>,
    /// The API version that'll be used in event payloads (`2026-04` by default).
    api_version: Option<String>,
    format: WebhookFormat,
    /// The events that will trigger the webhook.
    events: Vec<String>,
    /// The organization ID associated with the webhook endpoint. **Required unless you use
    /// an organization token.**
    #[schema(schema_with = uuid4_schema)]
    organization_id: Option<String>,
}

/// Schema to update a webhook endpoint.
#[derive(ToSchema)]
#[schema(as = WebhookEndpointUpdate)]
#[allow(dead_code)]
struct EndpointUpdateBody {
    url: Option<String>,
    name: Option<String>,
    api_version: Option<String>,
    format: Option<WebhookFormat>,
    events: Option<Vec<String>>,
    /// Whether the webhook endpoint is enabled.
    enabled: Option<bool>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ListEndpointsParams {
    /// Filter by organization ID.
    #[param(schema_with = uuid4_filter)]
    organization_id: Option<Vec<String>>,
    /// Page number, defaults to 1.
    #[param(schema_with = page)]
    page: Option<i64>,
    /// Size of a page, defaults to 10. Maximum is 100.
    #[param(schema_with = limit)]
    limit: Option<i64>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ListDeliveriesParams {
    /// Filter by webhook endpoint ID.
    #[param(schema_with = uuid4_filter)]
    endpoint_id: Option<Vec<String>>,
    /// Filter deliveries after this timestamp.
    #[param(schema_with = nullable_date_time)]
    start_timestamp: Option<String>,
    /// Filter deliveries before this timestamp.
    #[param(schema_with = nullable_date_time)]
    end_timestamp: Option<String>,
    /// Filter by delivery success status.
    #[param(schema_with = optional_bool)]
    succeeded: Option<bool>,
    /// Filter by HTTP response code class (2xx, 3xx, 4xx, 5xx).
    http_code_class: Option<String>,
    /// Filter by webhook event type.
    #[param(schema_with = string_filter)]
    event_type: Option<Vec<String>>,
    /// Page number, defaults to 1.
    #[param(schema_with = page)]
    page: Option<i64>,
    /// Size of a page, defaults to 10. Maximum is 100.
    #[param(schema_with = limit)]
    limit: Option<i64>,
}

/// The id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct IdParam {
    /// The webhook endpoint or event ID.
    #[param(schema_with = uuid4_schema, required = true)]
    id: String,
}

fn path_id(raw: &str) -> ApiResult<uuid::Uuid> {
    path_uuid4(raw, "id").map_err(ApiError::RequestValidation)
}

/// List webhook endpoints.
///
/// **Scopes**: `webhooks:read` `webhooks:write`
#[utoipa::path(
    get,
    path = "/v1/webhooks/endpoints",
    operation_id = "webhooks:list_webhook_endpoints",
    tag = "webhooks",
    summary = "List Webhook Endpoints",
    params(ListEndpointsParams),
    security(("pat" = ["webhooks:read", "webhooks:write"]), ("oat" = ["webhooks:read", "webhooks:write"])),
    responses(
        (status = 200, description = "Successful Response", body = WebhookEndpointList),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "The token lacks `webhooks:read` and `webhooks:write`.", body = OAuth2Error),
        (status = 422, description = "Validation Error", body = HttpValidationError),
    ),
)]
async fn list_endpoints(
    reader: Reader,
    WebhooksRead(principal): WebhooksRead,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<WebhookEndpointList>> {
    let query = parse_endpoint_list_query(query.as_deref()).map_err(ApiError::RequestValidation)?;
    Ok(Json(
        service::list_endpoints(&reader, &principal, &query).await?,
    ))
}

/// Create a webhook endpoint.
///
/// **Scopes**: `webhooks:write`
#[utoipa::path(
    post,
    path = "/v1/webhooks/endpoints",
    operation_id = "webhooks:create_webhook_endpoint",
    tag = "webhooks",
    summary = "Create Webhook Endpoint",
    request_body(content = EndpointCreateBody, content_type = "application/json"),
    security(("pat" = ["webhooks:write"]), ("oat" = ["webhooks:write"])),
    responses(
        (status = 201, description = "Webhook endpoint created.", body = WebhookEndpoint),
        (status = 400, description = "The body is not UTF-8.", body = DetailOnly),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "The token lacks `webhooks:write`.", body = OAuth2Error),
        (status = 422, description = "Validation Error: a URL that is not `https` or points to a private address, an unknown event type or format, a `discord` or `slack` format (not supported), or an organization the token cannot name.", body = HttpValidationError),
    ),
)]
async fn create_endpoint(
    State(state): State<AppState>,
    WebhooksWrite(principal): WebhooksWrite,
    body: RawBody,
) -> ApiResult<Response> {
    let input = parse_endpoint_create(
        body.content_type.as_deref(),
        &body.bytes,
        state.webhook_allow_private_urls,
    )?;
    let endpoint = service::create_endpoint(&state.pool, &principal, input).await?;
    Ok((StatusCode::CREATED, Json(endpoint)).into_response())
}

/// Get a webhook endpoint by ID.
///
/// **Scopes**: `webhooks:read` `webhooks:write`
#[utoipa::path(
    get,
    path = "/v1/webhooks/endpoints/{id}",
    operation_id = "webhooks:get_webhook_endpoint",
    tag = "webhooks",
    summary = "Get Webhook Endpoint",
    params(IdParam),
    security(("pat" = ["webhooks:read", "webhooks:write"]), ("oat" = ["webhooks:read", "webhooks:write"])),
    responses(
        (status = 200, description = "Successful Response", body = WebhookEndpoint),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "The token lacks `webhooks:read` and `webhooks:write`.", body = OAuth2Error),
        (status = 404, description = "Webhook endpoint not found.", body = ResourceNotFound),
        (status = 422, description = "Validation Error", body = HttpValidationError),
    ),
)]
async fn get_endpoint(
    State(state): State<AppState>,
    WebhooksRead(principal): WebhooksRead,
    PathId(id): PathId,
) -> ApiResult<Json<WebhookEndpoint>> {
    let id = path_id(&id)?;
    Ok(Json(
        service::get_endpoint(&state.pool, &principal, id).await?,
    ))
}

/// Update a webhook endpoint.
///
/// **Scopes**: `webhooks:write`
#[utoipa::path(
    patch,
    path = "/v1/webhooks/endpoints/{id}",
    operation_id = "webhooks:update_webhook_endpoint",
    tag = "webhooks",
    summary = "Update Webhook Endpoint",
    params(IdParam),
    request_body(content = EndpointUpdateBody, content_type = "application/json"),
    security(("pat" = ["webhooks:write"]), ("oat" = ["webhooks:write"])),
    responses(
        (status = 200, description = "Webhook endpoint updated.", body = WebhookEndpoint),
        (status = 400, description = "The body is not UTF-8.", body = DetailOnly),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "The token lacks `webhooks:write`.", body = OAuth2Error),
        (status = 404, description = "Webhook endpoint not found.", body = ResourceNotFound),
        (status = 422, description = "Validation Error", body = HttpValidationError),
    ),
)]
async fn update_endpoint(
    State(state): State<AppState>,
    WebhooksWrite(principal): WebhooksWrite,
    PathId(id): PathId,
    body: RawBody,
) -> ApiResult<Json<WebhookEndpoint>> {
    let id = path_id(&id)?;
    let update = parse_endpoint_update(
        body.content_type.as_deref(),
        &body.bytes,
        state.webhook_allow_private_urls,
    )?;
    Ok(Json(
        service::update_endpoint(&state.pool, &principal, id, update).await?,
    ))
}

/// Regenerate a webhook endpoint secret.
///
/// **Scopes**: `webhooks:write`
#[utoipa::path(
    patch,
    path = "/v1/webhooks/endpoints/{id}/secret",
    operation_id = "webhooks:reset_webhook_endpoint_secret",
    tag = "webhooks",
    summary = "Reset Webhook Endpoint Secret",
    params(IdParam),
    security(("pat" = ["webhooks:write"]), ("oat" = ["webhooks:write"])),
    responses(
        (status = 200, description = "Webhook endpoint secret reset.", body = WebhookEndpoint),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "The token lacks `webhooks:write`.", body = OAuth2Error),
        (status = 404, description = "Webhook endpoint not found.", body = ResourceNotFound),
        (status = 422, description = "Validation Error", body = HttpValidationError),
    ),
)]
async fn reset_endpoint_secret(
    State(state): State<AppState>,
    WebhooksWrite(principal): WebhooksWrite,
    PathId(id): PathId,
) -> ApiResult<Json<WebhookEndpoint>> {
    let id = path_id(&id)?;
    Ok(Json(
        service::reset_secret(&state.pool, &principal, id).await?,
    ))
}

/// Delete a webhook endpoint.
///
/// **Scopes**: `webhooks:write`
#[utoipa::path(
    delete,
    path = "/v1/webhooks/endpoints/{id}",
    operation_id = "webhooks:delete_webhook_endpoint",
    tag = "webhooks",
    summary = "Delete Webhook Endpoint",
    params(IdParam),
    security(("pat" = ["webhooks:write"]), ("oat" = ["webhooks:write"])),
    responses(
        (status = 204, description = "Webhook endpoint deleted."),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "The token lacks `webhooks:write`.", body = OAuth2Error),
        (status = 404, description = "Webhook endpoint not found.", body = ResourceNotFound),
        (status = 422, description = "Validation Error", body = HttpValidationError),
    ),
)]
async fn delete_endpoint(
    State(state): State<AppState>,
    WebhooksWrite(principal): WebhooksWrite,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    let id = path_id(&id)?;
    service::delete_endpoint(&state.pool, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List webhook deliveries: every attempt to deliver a webhook event to an endpoint.
///
/// **Scopes**: `webhooks:read` `webhooks:write`
#[utoipa::path(
    get,
    path = "/v1/webhooks/deliveries",
    operation_id = "webhooks:list_webhook_deliveries",
    tag = "webhooks",
    summary = "List Webhook Deliveries",
    params(ListDeliveriesParams),
    security(("pat" = ["webhooks:read", "webhooks:write"]), ("oat" = ["webhooks:read", "webhooks:write"])),
    responses(
        (status = 200, description = "Successful Response", body = WebhookDeliveryList),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "The token lacks `webhooks:read` and `webhooks:write`.", body = OAuth2Error),
        (status = 422, description = "Validation Error", body = HttpValidationError),
    ),
)]
async fn list_deliveries(
    reader: Reader,
    WebhooksRead(principal): WebhooksRead,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<WebhookDeliveryList>> {
    let query = parse_delivery_list_query(query.as_deref()).map_err(ApiError::RequestValidation)?;
    Ok(Json(
        service::list_deliveries(&reader, &principal, &query).await?,
    ))
}

/// Schedule the re-delivery of a webhook event.
///
/// **Scopes**: `webhooks:write`
#[utoipa::path(
    post,
    path = "/v1/webhooks/events/{id}/redeliver",
    operation_id = "webhooks:redeliver_webhook_event",
    tag = "webhooks",
    summary = "Redeliver Webhook Event",
    params(IdParam),
    security(("pat" = ["webhooks:write"]), ("oat" = ["webhooks:write"])),
    responses(
        (status = 202, description = "Webhook event re-delivery scheduled.", body = ()),
        (status = 401, description = "Missing or invalid token.", body = AuthFailure),
        (status = 403, description = "The token lacks `webhooks:write`.", body = OAuth2Error),
        (status = 404, description = "Webhook event not found.", body = ResourceNotFound),
        (status = 422, description = "Validation Error", body = HttpValidationError),
    ),
)]
async fn redeliver_event(
    State(state): State<AppState>,
    WebhooksWrite(principal): WebhooksWrite,
    PathId(id): PathId,
) -> ApiResult<Response> {
    let id = path_id(&id)?;
    service::redeliver_event(&state.pool, &principal, id).await?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::Value::Null)).into_response())
}
