use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{Error, Result};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub refunds_blocked: bool,
}

fn unique_violation(error: sqlx::Error, conflict: impl FnOnce() -> String) -> Error {
    match error {
        sqlx::Error::Database(ref db) if db.is_unique_violation() => Error::Conflict(conflict()),
        other => other.into(),
    }
}

fn missing_reference(error: sqlx::Error, what: &'static str) -> Error {
    match error {
        sqlx::Error::Database(ref db) if db.is_foreign_key_violation() => Error::NotFound(what),
        other => other.into(),
    }
}

/// A URL-safe slug from a name: lowercase ASCII letters and digits joined by dashes.
pub fn slugify(name: &str) -> String {
    name.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

pub async fn create_organization(
    pool: &PgPool,
    name: &str,
    slug: Option<&str>,
) -> Result<Organization> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(Error::invalid_field(
            "name",
            "Name must have 1 to 255 characters",
            json!(name),
        ));
    }
    let slug = slug.map(str::to_owned).unwrap_or_else(|| slugify(name));
    if slug.is_empty() || slug != slugify(&slug) {
        return Err(Error::invalid_field(
            "slug",
            "Slug must be lowercase letters, digits and single dashes",
            json!(slug),
        ));
    }
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO organizations (id, name, slug) VALUES ($1, $2, $3)",
        id,
        name,
        slug
    )
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, || format!("An organization with slug {slug:?} exists")))?;
    Ok(Organization {
        id,
        name: name.to_owned(),
        slug,
        refunds_blocked: false,
    })
}

pub async fn set_organization_refunds_blocked(
    pool: &PgPool,
    organization_id: Uuid,
    blocked: bool,
) -> Result<Organization> {
    sqlx::query_as!(
        Organization,
        r#"
        UPDATE organizations SET refunds_blocked = $2, modified_at = now() WHERE id = $1
        RETURNING id, name, slug, refunds_blocked
        "#,
        organization_id,
        blocked
    )
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("Organization"))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
}

fn normalized_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(email),
        _ => Err(Error::invalid_field(
            "email",
            "Not a valid email address",
            json!(email),
        )),
    }
}

pub async fn create_user(pool: &PgPool, email: &str) -> Result<User> {
    let email = normalized_email(email)?;
    let id = Uuid::new_v4();
    sqlx::query!("INSERT INTO users (id, email) VALUES ($1, $2)", id, email)
        .execute(pool)
        .await
        .map_err(|e| unique_violation(e, || format!("A user with email {email:?} exists")))?;
    Ok(User { id, email })
}

pub async fn add_membership(pool: &PgPool, user_id: Uuid, organization_id: Uuid) -> Result<()> {
    sqlx::query!(
        "INSERT INTO memberships (user_id, organization_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        user_id,
        organization_id
    )
    .execute(pool)
    .await
    .map_err(|e| missing_reference(e, "User or organization"))?;
    Ok(())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Customer {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub external_id: Option<String>,
}

pub async fn create_customer(
    pool: &PgPool,
    organization_id: Uuid,
    email: &str,
    name: Option<&str>,
    external_id: Option<&str>,
) -> Result<Customer> {
    let email = normalized_email(email)?;
    let id = Uuid::new_v4();
    sqlx::query!(
        r#"
        INSERT INTO customers (id, organization_id, email, name, external_id)
        VALUES ($1, $2, $3, $4, $5)
        "#,
        id,
        organization_id,
        email,
        name,
        external_id
    )
    .execute(pool)
    .await
    .map_err(|error| match error {
        sqlx::Error::Database(ref db) if db.is_unique_violation() => Error::Conflict(format!(
            "A customer with external_id {external_id:?} exists in this organization"
        )),
        other => missing_reference(other, "Organization"),
    })?;
    Ok(Customer {
        id,
        organization_id,
        email,
        name: name.map(str::to_owned),
        external_id: external_id.map(str::to_owned),
    })
}
