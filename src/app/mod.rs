//! The application as a whole: the router that assembles every resource's routes with the
//! OpenAPI document (the only module that knows them all), the operational routes, and
//! start-up and shutdown.

pub mod openapi;
pub mod ops;
pub mod startup;

use axum::Router;

use crate::state::AppState;

pub use startup::{Application, connect_and_migrate, run};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Every route with the layers of the web edge.
pub fn router(state: AppState) -> Router {
    let (routes, _) = openapi::routes().split_for_parts();
    let request_timeout = state.request_timeout;
    let routes = Router::new()
        .merge(routes)
        .merge(openapi::reference_routes())
        .with_state(state);
    crate::http::with_edge_layers(routes, request_timeout)
}
