//! Setting up organizations, users and memberships: for sandboxes, tests and ingestion.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::{Organization, User, repo};
use crate::domain::{Error, Result};

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
    repo::insert_organization(pool, id, name, &slug)
        .await
        .map_err(|e| {
            Error::unique_violation(e, || format!("An organization with slug {slug:?} exists"))
        })?;
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
    repo::set_refunds_blocked(pool, organization_id, blocked)
        .await?
        .ok_or(Error::NotFound("Organization"))
}

/// Emails are compared lowercased and trimmed; anything without a local part and a domain
/// is refused.
pub fn normalized_email(email: &str) -> Result<String> {
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
    repo::insert_user(pool, id, &email).await.map_err(|e| {
        Error::unique_violation(e, || format!("A user with email {email:?} exists"))
    })?;
    Ok(User { id, email })
}

pub async fn add_membership(pool: &PgPool, user_id: Uuid, organization_id: Uuid) -> Result<()> {
    repo::insert_membership(pool, user_id, organization_id)
        .await
        .map_err(|e| Error::missing_reference(e, "User or organization"))
}
