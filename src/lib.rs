//! A refunds REST API server, wire-compatible with Polar's refunds API, on PostgreSQL.

pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod disputes;
pub mod error;
pub mod http;
pub mod orders;
pub mod processor;
pub mod refunds;
pub mod seed;
pub mod startup;
pub mod telemetry;

pub use error::Error;
pub use startup::AppState;
