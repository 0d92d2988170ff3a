//! The admin API under `/admin/`: setting up organizations, tokens, users, customers, orders
//! and disputes for sandboxes, test suites and order ingestion. Not part of Polar's API; it
//! is guarded by its own bearer token and answers 404 when `REFUNDS_ADMIN_TOKEN` is unset.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::service as admin;
use crate::AppState;
use crate::auth::service::{self as tokens, CreatedToken, TokenOwner};
use crate::disputes::service as disputes;
use crate::error::{Error, Result};
use crate::http::extract::AdminJson;
use crate::http::validation::ValidationIssue;
use crate::orders::repo::OrderView;
use crate::orders::service::{self as orders, PaidOrderInput};
use crate::refunds::model::{DisputeStatus, RefundDispute};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/organizations", post(create_organization))
        .route("/admin/organizations/{id}", patch(update_organization))
        .route(
            "/admin/organizations/{id}/access-tokens",
            post(create_organization_token),
        )
        .route("/admin/users", post(create_user))
        .route("/admin/users/{id}/memberships", post(add_membership))
        .route(
            "/admin/users/{id}/access-tokens",
            post(create_personal_token),
        )
        .route("/admin/customers", post(create_customer))
        .route("/admin/orders", post(create_order))
        .route("/admin/orders/{id}", get(get_order).patch(update_order))
        .route("/admin/orders/{id}/disputes", post(create_dispute))
        .route("/admin/disputes/{id}", patch(update_dispute))
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
            return Err(crate::http::error::detail_only(
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
            Some(_) => Err(Error::InvalidToken.into_response()),
            None => Err(Error::Unauthorized.into_response()),
        }
    }
}

/// A path id, answered in the 422 shape when it is not a UUID.
fn path_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|error| {
        Error::RequestValidation(vec![
            ValidationIssue::new(
                "uuid_parsing",
                crate::loc!["path", "id"],
                format!("Input should be a valid UUID, {error}"),
                json!(raw),
            )
            .with_ctx(json!({"error": error.to_string()})),
        ])
    })
}

type Created<T> = (StatusCode, Json<T>);

fn created<T>(value: T) -> Result<Created<T>> {
    Ok((StatusCode::CREATED, Json(value)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganizationCreate {
    name: String,
    slug: Option<String>,
}

async fn create_organization(
    _: Admin,
    State(state): State<AppState>,
    AdminJson(body): AdminJson<OrganizationCreate>,
) -> Result<Created<admin::Organization>> {
    created(admin::create_organization(&state.pool, &body.name, body.slug.as_deref()).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundsBlockedUpdate {
    refunds_blocked: bool,
}

async fn update_organization(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<RefundsBlockedUpdate>,
) -> Result<Json<admin::Organization>> {
    let id = path_id(&id)?;
    Ok(Json(
        admin::set_organization_refunds_blocked(&state.pool, id, body.refunds_blocked).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenCreate {
    scopes: Vec<String>,
    expires_in_seconds: Option<i64>,
}

async fn create_organization_token(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<TokenCreate>,
) -> Result<Created<CreatedToken>> {
    let owner = TokenOwner::Organization(path_id(&id)?);
    created(tokens::create_token(&state.pool, owner, body.scopes, body.expires_in_seconds).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserCreate {
    email: String,
}

async fn create_user(
    _: Admin,
    State(state): State<AppState>,
    AdminJson(body): AdminJson<UserCreate>,
) -> Result<Created<admin::User>> {
    created(admin::create_user(&state.pool, &body.email).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembershipCreate {
    organization_id: Uuid,
}

#[derive(Serialize)]
struct Membership {
    user_id: Uuid,
    organization_id: Uuid,
}

async fn add_membership(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<MembershipCreate>,
) -> Result<Created<Membership>> {
    let user_id = path_id(&id)?;
    admin::add_membership(&state.pool, user_id, body.organization_id).await?;
    created(Membership {
        user_id,
        organization_id: body.organization_id,
    })
}

async fn create_personal_token(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<TokenCreate>,
) -> Result<Created<CreatedToken>> {
    let owner = TokenOwner::User(path_id(&id)?);
    created(tokens::create_token(&state.pool, owner, body.scopes, body.expires_in_seconds).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerCreate {
    organization_id: Uuid,
    email: String,
    external_id: Option<String>,
    name: Option<String>,
}

async fn create_customer(
    _: Admin,
    State(state): State<AppState>,
    AdminJson(body): AdminJson<CustomerCreate>,
) -> Result<Created<admin::Customer>> {
    created(
        admin::create_customer(
            &state.pool,
            body.organization_id,
            &body.email,
            body.name.as_deref(),
            body.external_id.as_deref(),
        )
        .await?,
    )
}

#[derive(Deserialize)]
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
}

async fn create_order(
    _: Admin,
    State(state): State<AppState>,
    AdminJson(body): AdminJson<OrderCreate>,
) -> Result<Created<OrderView>> {
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
        },
    )
    .await?;
    created(orders::get_order(&state.pool, order.id).await?)
}

async fn get_order(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<OrderView>> {
    Ok(Json(orders::get_order(&state.pool, path_id(&id)?).await?))
}

async fn update_order(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<RefundsBlockedUpdate>,
) -> Result<Json<OrderView>> {
    let id = path_id(&id)?;
    Ok(Json(
        orders::set_refunds_blocked(&state.pool, id, body.refunds_blocked).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisputeCreate {
    status: DisputeStatus,
    amount: Option<i64>,
    tax_amount: Option<i64>,
}

async fn create_dispute(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<DisputeCreate>,
) -> Result<Created<RefundDispute>> {
    let order_id = path_id(&id)?;
    created(
        disputes::open_dispute(&state, order_id, body.status, body.amount, body.tax_amount).await?,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisputeUpdate {
    status: DisputeStatus,
}

async fn update_dispute(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<DisputeUpdate>,
) -> Result<Json<RefundDispute>> {
    let dispute_id = path_id(&id)?;
    Ok(Json(
        disputes::update_dispute_status(&state, dispute_id, body.status).await?,
    ))
}
