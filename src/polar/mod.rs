//! Polar's wire toolkit, shared by every Polar-shaped route: pydantic's 422 shapes and error
//! catalogue, the lax parsing of bodies and queries, timestamps as Polar writes them, the
//! OpenAPI schemas of those shapes, and the one mapping of failures to Polar's bodies.

pub mod error;
pub mod parse;
pub mod schema;
pub mod timestamp;
pub mod validation;

pub use error::{ApiError, ApiResult};
