//! A refunds REST API server, wire-compatible with Polar's refunds API, on PostgreSQL.
//!
//! Layers, from the bottom: `domain` (money, states, the domain error), `polar` (Polar's wire
//! toolkit) and `http` (the web edge); `state` and `payments`; the resources (`auth`,
//! `organizations`, `customers`, `orders`, `disputes`, `idempotency`, `webhooks`,
//! `refunds`, `medusa`, `admin`); then `app`
//! (routes, OpenAPI, start-up), `dev` (demo and seed data) and `cli`. Each imports only
//! from layers below it.

pub mod admin;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod customers;
pub mod dev;
pub mod disputes;
pub mod domain;
pub mod http;
pub mod idempotency;
pub mod integrations;
pub mod medusa;
pub mod orders;
pub mod organizations;
pub mod payments;
pub mod polar;
pub mod refunds;
pub mod state;
pub mod telemetry;
pub mod webhooks;

pub use domain::Error;
pub use state::AppState;
