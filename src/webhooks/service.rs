//! The rules of webhook endpoints: which organization an endpoint belongs to, secrets, and
//! what the caller may see. Polar's endpoint API.

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::model::{
    DeliveryListQuery, EndpointCreate, EndpointListQuery, EndpointUpdate, WebhookDeliveryList,
    WebhookEndpoint, WebhookEndpointList,
};
use super::repo::{self, NewEndpoint};
use super::signing::generate_secret;
use crate::auth::{Principal, Subject};
use crate::domain::{Error, Result};
use crate::polar::schema::Pagination;
use crate::state::{Reader, snapshot};

/// The organization a new endpoint belongs to, as Polar resolves it: the token's own with
/// an organization token (which may not name one), the named one with a personal token.
fn owner(principal: &Principal, organization_id: Option<Uuid>) -> Result<Uuid> {
    match (&principal.subject, organization_id) {
        (Subject::Organization(own), None) => Ok(*own),
        (Subject::Organization(_), Some(named)) => Err(Error::RejectedField {
            kind: "organization_token",
            field: "organization_id",
            message: "Setting organization_id is disallowed when using an organization token.",
            input: json!(named),
        }),
        (Subject::User(_), None) => Err(Error::RejectedField {
            kind: "missing",
            field: "organization_id",
            message: "organization_id is required.",
            input: Value::Null,
        }),
        (Subject::User(_), Some(named)) if principal.organization_ids.contains(&named) => Ok(named),
        (Subject::User(_), Some(named)) => Err(Error::invalid_field(
            "organization_id",
            "Organization not found.",
            json!(named),
        )),
    }
}

#[tracing::instrument(name = "webhooks.create_endpoint", skip_all)]
pub async fn create_endpoint(
    pool: &PgPool,
    principal: &Principal,
    input: EndpointCreate,
) -> Result<WebhookEndpoint> {
    let organization_id = owner(principal, input.organization_id)?;
    let secret = generate_secret();
    Ok(repo::insert_endpoint(
        pool,
        &NewEndpoint {
            id: Uuid::new_v4(),
            organization_id,
            url: &input.url,
            name: input.name.as_deref(),
            secret: &secret,
            events: &input.events,
            api_version: &input.api_version,
        },
    )
    .await?)
}

#[tracing::instrument(name = "webhooks.list_endpoints", skip_all)]
pub async fn list_endpoints(
    reader: &Reader,
    principal: &Principal,
    query: &EndpointListQuery,
) -> Result<WebhookEndpointList> {
    let organization_ids =
        crate::orders::service::visible_organizations(principal, &query.organization_ids);
    if organization_ids.is_empty() {
        return Ok(WebhookEndpointList {
            items: Vec::new(),
            pagination: Pagination::of(0, query.limit),
        });
    }
    let organization_ids = organization_ids.as_slice();
    let (items, total) = reader
        .read(|db| async move {
            let mut snapshot = snapshot(&db).await?;
            let page = repo::list_endpoints(&mut snapshot, organization_ids, query).await?;
            snapshot.commit().await?;
            Ok(page)
        })
        .await?;
    Ok(WebhookEndpointList {
        items,
        pagination: Pagination::of(total, query.limit),
    })
}

pub async fn get_endpoint(
    pool: &PgPool,
    principal: &Principal,
    id: Uuid,
) -> Result<WebhookEndpoint> {
    repo::find_endpoint(pool, id, &principal.organization_ids)
        .await?
        .ok_or(Error::ResourceNotFound)
}

/// Updates an endpoint. Disabling it skips its pending events, as Polar does when it comes
/// to send them.
#[tracing::instrument(name = "webhooks.update_endpoint", skip_all)]
pub async fn update_endpoint(
    pool: &PgPool,
    principal: &Principal,
    id: Uuid,
    update: EndpointUpdate,
) -> Result<WebhookEndpoint> {
    let mut tx = pool.begin().await?;
    let updated = repo::update_endpoint(&mut *tx, id, &principal.organization_ids, &update)
        .await?
        .ok_or(Error::ResourceNotFound)?;
    if update.enabled == Some(false) {
        repo::skip_pending_events(&mut *tx, id, &[updated.organization_id]).await?;
    }
    tx.commit().await?;
    Ok(updated)
}

#[tracing::instrument(name = "webhooks.reset_secret", skip_all)]
pub async fn reset_secret(
    pool: &PgPool,
    principal: &Principal,
    id: Uuid,
) -> Result<WebhookEndpoint> {
    repo::set_secret(pool, id, &principal.organization_ids, &generate_secret())
        .await?
        .ok_or(Error::ResourceNotFound)
}

#[tracing::instrument(name = "webhooks.delete_endpoint", skip_all)]
pub async fn delete_endpoint(pool: &PgPool, principal: &Principal, id: Uuid) -> Result<()> {
    let mut tx = pool.begin().await?;
    if !repo::delete_endpoint(&mut tx, id, &principal.organization_ids).await? {
        return Err(Error::ResourceNotFound);
    }
    tx.commit().await?;
    Ok(())
}

#[tracing::instrument(name = "webhooks.list_deliveries", skip_all)]
pub async fn list_deliveries(
    reader: &Reader,
    principal: &Principal,
    query: &DeliveryListQuery,
) -> Result<WebhookDeliveryList> {
    let organization_ids = principal.organization_ids.as_slice();
    let (items, total) = reader
        .read(|db| async move {
            let mut snapshot = snapshot(&db).await?;
            let page = repo::list_deliveries(&mut snapshot, organization_ids, query).await?;
            snapshot.commit().await?;
            Ok(page)
        })
        .await?;
    Ok(WebhookDeliveryList {
        items,
        pagination: Pagination::of(total, query.limit),
    })
}

#[tracing::instrument(name = "webhooks.redeliver", skip_all)]
pub async fn redeliver_event(pool: &PgPool, principal: &Principal, id: Uuid) -> Result<()> {
    match repo::redeliver_event(pool, id, &principal.organization_ids).await? {
        true => Ok(()),
        false => Err(Error::ResourceNotFound),
    }
}
