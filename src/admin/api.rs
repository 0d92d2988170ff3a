//! The admin API under `/admin/`: setting up organizations, tokens, users, customers, orders
//! and disputes for sandboxes, test suites and order ingestion. Not part of Polar's API; it
//! is guarded by its own bearer token and answers 404 when `REFUNDS_ADMIN_TOKEN` is unset.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::service::{self as tokens, CreatedToken, TokenOwner};
use crate::customers::{Customer, service as customers};
use crate::disputes::model::{DisputeOpening, RefundDispute};
use crate::domain::{
    BillingReason, DisputeStatus, Error, RecurringInterval, RefundFailureReason, RefundStatus,
    SandboxRefundOutcome,
};
use crate::http::extract::AdminJson;
use crate::orders::model::Address;
use crate::orders::model::OrderView;
use crate::orders::service::{
    self as orders, OrderDetails, OrderItemInput, PaidOrderInput, PaymentSource,
};
use crate::organizations::{Organization, User, service as organizations};
use crate::polar::parse::path_uuid;
use crate::polar::schema::{ErrorBody, HttpValidationError};
use crate::polar::{ApiError, ApiResult};
use crate::refunds::disputes;
use crate::refunds::model::Refund;
use crate::refunds::service::{self as refunds, RefundMove};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_organization))
        .routes(routes!(update_organization))
        .routes(routes!(create_organization_token))
        .routes(routes!(create_user))
        .routes(routes!(add_membership))
        .routes(routes!(create_personal_token))
        .routes(routes!(create_customer))
        .routes(routes!(create_order))
        .routes(routes!(get_order, update_order))
        .routes(routes!(create_dispute))
        .routes(routes!(update_dispute))
        .routes(routes!(settle_refund))
}

/// The failures every admin route may answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum AdminFailures {
    /// The body is not UTF-8.
    #[response(status = 400)]
    Unreadable(ErrorBody),
    /// The admin token is missing or wrong.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The admin API is off, or the object named in the path does not exist.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The object would duplicate a unique one (slug, email, external id).
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// The body is larger than 10 MiB.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// Bad input, with the path of the field in `loc`.
    #[response(status = 422)]
    Invalid(HttpValidationError),
    /// The database is unavailable or the request timed out.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// Proof that the caller holds `REFUNDS_ADMIN_TOKEN`.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let Some(expected) = &state.admin_token_hash else {
            return Err(crate::polar::error::detail_only(
                StatusCode::NOT_FOUND,
                "Not Found",
            ));
        };
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        // Comparing hashes keeps the comparison's timing independent of the token.
        match presented {
            Some(token) if crate::auth::hash_token(token).as_slice() == &expected[..] => Ok(Admin),
            Some(_) => Err(ApiError::from(Error::InvalidToken).into_response()),
            None => Err(ApiError::from(Error::Unauthorized).into_response()),
        }
    }
}

/// A path id; a bad one is answered as the Polar routes answer it.
fn path_id(raw: &str) -> ApiResult<Uuid> {
    path_uuid(raw, "id").map_err(ApiError::RequestValidation)
}

type Created<T> = (StatusCode, Json<T>);

fn created<T>(value: T) -> ApiResult<Created<T>> {
    Ok((StatusCode::CREATED, Json(value)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OrganizationCreate {
    name: String,
    slug: Option<String>,
}

#[utoipa::path(
    post,
    path = "/admin/organizations",
    tag = "admin",
    summary = "Create an organization.",
    security(("admin_token" = [])),
    request_body(content = OrganizationCreate, content_type = "application/json"),
    responses((status = 201, description = "Created.", body = Organization), AdminFailures),
)]
async fn create_organization(
    _: Admin,
    State(state): State<AppState>,
    AdminJson(body): AdminJson<OrganizationCreate>,
) -> ApiResult<Created<Organization>> {
    created(
        organizations::create_organization(&state.pool, &body.name, body.slug.as_deref()).await?,
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefundsBlockedUpdate {
    refunds_blocked: bool,
}

#[utoipa::path(
    patch,
    path = "/admin/organizations/{id}",
    tag = "admin",
    summary = "Block or unblock refunds for an organization.",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "The organization ID.")),
    request_body(content = RefundsBlockedUpdate, content_type = "application/json"),
    responses((status = 200, description = "OK.", body = Organization), AdminFailures),
)]
async fn update_organization(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<RefundsBlockedUpdate>,
) -> ApiResult<Json<Organization>> {
    let id = path_id(&id)?;
    Ok(Json(
        organizations::set_organization_refunds_blocked(&state.pool, id, body.refunds_blocked)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenCreate {
    scopes: Vec<String>,
    expires_in_seconds: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/admin/organizations/{id}/access-tokens",
    tag = "admin",
    summary = "Create an organization access token (`polar_oat_…`); the token is shown only in this answer.",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "The organization ID.")),
    request_body(content = TokenCreate, content_type = "application/json"),
    responses((status = 201, description = "Created.", body = CreatedToken), AdminFailures),
)]
async fn create_organization_token(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<TokenCreate>,
) -> ApiResult<Created<CreatedToken>> {
    let owner = TokenOwner::Organization(path_id(&id)?);
    created(tokens::create_token(&state.pool, owner, body.scopes, body.expires_in_seconds).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UserCreate {
    email: String,
}

#[utoipa::path(
    post,
    path = "/admin/users",
    tag = "admin",
    summary = "Create a user.",
    security(("admin_token" = [])),
    request_body(content = UserCreate, content_type = "application/json"),
    responses((status = 201, description = "Created.", body = User), AdminFailures),
)]
async fn create_user(
    _: Admin,
    State(state): State<AppState>,
    AdminJson(body): AdminJson<UserCreate>,
) -> ApiResult<Created<User>> {
    created(organizations::create_user(&state.pool, &body.email).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MembershipCreate {
    organization_id: Uuid,
}

#[derive(Serialize, ToSchema)]
struct Membership {
    user_id: Uuid,
    organization_id: Uuid,
}

#[utoipa::path(
    post,
    path = "/admin/users/{id}/memberships",
    tag = "admin",
    summary = "Make a user a member of an organization.",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "The user ID.")),
    request_body(content = MembershipCreate, content_type = "application/json"),
    responses((status = 201, description = "Created.", body = Membership), AdminFailures),
)]
async fn add_membership(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<MembershipCreate>,
) -> ApiResult<Created<Membership>> {
    let user_id = path_id(&id)?;
    organizations::add_membership(&state.pool, user_id, body.organization_id).await?;
    created(Membership {
        user_id,
        organization_id: body.organization_id,
    })
}

#[utoipa::path(
    post,
    path = "/admin/users/{id}/access-tokens",
    tag = "admin",
    summary = "Create a personal access token (`polar_pat_…`); the token is shown only in this answer.",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "The user ID.")),
    request_body(content = TokenCreate, content_type = "application/json"),
    responses((status = 201, description = "Created.", body = CreatedToken), AdminFailures),
)]
async fn create_personal_token(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<TokenCreate>,
) -> ApiResult<Created<CreatedToken>> {
    let owner = TokenOwner::User(path_id(&id)?);
    created(tokens::create_token(&state.pool, owner, body.scopes, body.expires_in_seconds).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CustomerCreate {
    organization_id: Uuid,
    email: String,
    external_id: Option<String>,
    name: Option<String>,
}

#[utoipa::path(
    post,
    path = "/admin/customers",
    tag = "admin",
    summary = "Create a customer.",
    security(("admin_token" = [])),
    request_body(content = CustomerCreate, content_type = "application/json"),
    responses((status = 201, description = "Created.", body = Customer), AdminFailures),
)]
async fn create_customer(
    _: Admin,
    State(state): State<AppState>,
    AdminJson(body): AdminJson<CustomerCreate>,
) -> ApiResult<Created<Customer>> {
    created(
        customers::create_customer(
            &state.pool,
            body.organization_id,
            &body.email,
            body.name.as_deref(),
            body.external_id.as_deref(),
        )
        .await?,
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OrderCreate {
    organization_id: Uuid,
    customer_id: Uuid,
    net_amount: i64,
    tax_amount: i64,
    currency: String,
    subscription_id: Option<Uuid>,
    #[serde(default)]
    applied_balance_amount: i64,
    #[serde(default)]
    metadata: Map<String, Value>,
    /// Defaults to `subscription_create` with a `subscription_id`, else `purchase`.
    billing_reason: Option<BillingReason>,
    billing_name: Option<String>,
    billing_address: Option<Address>,
    /// The product sold; a subscription order without one gets a monthly "Subscription".
    product_id: Option<Uuid>,
    product_name: Option<String>,
    product_recurring_interval: Option<RecurringInterval>,
    /// The lines, adding up to `net_amount` and `tax_amount`; one line by default.
    #[serde(default)]
    items: Vec<OrderItemInput>,
    /// `card` by default.
    payment_method: Option<String>,
    card_brand: Option<String>,
    card_last4: Option<String>,
    /// The processor and its charge id; a sandbox charge by default.
    payment: Option<PaymentSource>,
}

#[utoipa::path(
    post,
    path = "/admin/orders",
    tag = "admin",
    summary = "Create a paid order with its succeeded payment.",
    security(("admin_token" = [])),
    request_body(content = OrderCreate, content_type = "application/json"),
    responses((status = 201, description = "Created.", body = OrderView), AdminFailures),
)]
async fn create_order(
    _: Admin,
    State(state): State<AppState>,
    AdminJson(body): AdminJson<OrderCreate>,
) -> ApiResult<Created<OrderView>> {
    let order = orders::create_paid_order(
        &state.pool,
        PaidOrderInput {
            organization_id: body.organization_id,
            customer_id: body.customer_id,
            subscription_id: body.subscription_id,
            currency: body.currency,
            net_amount: body.net_amount,
            tax_amount: body.tax_amount,
            applied_balance_amount: body.applied_balance_amount,
            metadata: Value::Object(body.metadata),
            details: OrderDetails {
                billing_reason: body.billing_reason,
                billing_name: body.billing_name,
                billing_address: body.billing_address,
                product_id: body.product_id,
                product_name: body.product_name,
                product_recurring_interval: body.product_recurring_interval,
                items: body.items,
                payment_method: body.payment_method,
                card_brand: body.card_brand,
                card_last4: body.card_last4,
                payment: body.payment,
            },
        },
    )
    .await?;
    created(orders::get_order(&state.pool, order.id).await?)
}

#[utoipa::path(
    get,
    path = "/admin/orders/{id}",
    tag = "admin",
    summary = "Read an order, with Polar's Order field names.",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "The order ID.")),
    responses((status = 200, description = "OK.", body = OrderView), AdminFailures),
)]
async fn get_order(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(orders::get_order(&state.pool, path_id(&id)?).await?))
}

#[utoipa::path(
    patch,
    path = "/admin/orders/{id}",
    tag = "admin",
    summary = "Block or unblock refunds for an order, or set what the sandbox processor answers for its next refunds.",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "The order ID.")),
    request_body(content = OrderUpdate, content_type = "application/json"),
    responses((status = 200, description = "OK.", body = OrderView), AdminFailures),
)]
async fn update_order(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<OrderUpdate>,
) -> ApiResult<Json<OrderView>> {
    let id = path_id(&id)?;
    let mut order = None;
    if let Some(blocked) = body.refunds_blocked {
        order = Some(orders::set_refunds_blocked(&state.pool, id, blocked).await?);
    }
    if let Some(outcome) = body.sandbox_refund_outcome {
        order = Some(orders::set_sandbox_refund_outcome(&state.pool, id, outcome).await?);
    }
    match order {
        Some(order) => Ok(Json(order)),
        None => Ok(Json(orders::get_order(&state.pool, id).await?)),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OrderUpdate {
    refunds_blocked: Option<bool>,
    /// What the sandbox processor answers for the order's next refunds (`succeeded` by
    /// default; `failed` is a refusal: the refund is recorded failed, nothing stays reserved).
    sandbox_refund_outcome: Option<SandboxRefundOutcome>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefundSettle {
    /// `succeeded`, `failed` or `canceled`.
    status: RefundStatus,
    /// Why it failed; `unknown` when not given.
    failure_reason: Option<RefundFailureReason>,
}

#[utoipa::path(
    post,
    path = "/admin/refunds/{id}/settle",
    tag = "admin",
    summary = "Move a refund as the processor's event would: pending to succeeded, failed or canceled; succeeded to failed or canceled (a reversal).",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "The refund ID.")),
    request_body(content = RefundSettle, content_type = "application/json"),
    responses((status = 200, description = "The refund as it now stands.", body = Refund), AdminFailures),
)]
async fn settle_refund(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<RefundSettle>,
) -> ApiResult<Json<Refund>> {
    let refund_id = path_id(&id)?;
    let change = RefundMove {
        failure_reason: body.failure_reason,
        ..RefundMove::to(body.status)
    };
    Ok(Json(
        refunds::settle_refund(&state, refund_id, change).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/admin/orders/{id}/disputes",
    tag = "admin",
    summary = "Open a dispute on an order; an `early_warning` is prevented with a refund at once.",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "The order ID.")),
    request_body(content = DisputeOpening, content_type = "application/json"),
    responses((status = 201, description = "Created.", body = RefundDispute), AdminFailures),
)]
async fn create_dispute(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(opening): AdminJson<DisputeOpening>,
) -> ApiResult<Created<RefundDispute>> {
    let order_id = path_id(&id)?;
    created(disputes::open_dispute(&state, order_id, opening).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DisputeUpdate {
    status: DisputeStatus,
}

#[utoipa::path(
    patch,
    path = "/admin/disputes/{id}",
    tag = "admin",
    summary = "Move a dispute to another status; `early_warning` prevents it with a refund.",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "The dispute ID.")),
    request_body(content = DisputeUpdate, content_type = "application/json"),
    responses((status = 200, description = "OK.", body = RefundDispute), AdminFailures),
)]
async fn update_dispute(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<DisputeUpdate>,
) -> ApiResult<Json<RefundDispute>> {
    let dispute_id = path_id(&id)?;
    Ok(Json(
        disputes::update_dispute_status(&state, dispute_id, body.status).await?,
    ))
}
