//! The customers of an organization, whom orders and refunds belong to.

pub mod repo;
pub mod service;

use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Customer {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub external_id: Option<String>,
}
