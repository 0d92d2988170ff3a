//! End-to-end tests: the real server on a real socket, a fresh PostgreSQL database per test.

mod admin;
mod architecture;
mod auth;
mod batch;
mod cli;
mod concurrency;
mod create;
mod helpers;
mod idempotency;
mod lifecycle;
mod list;
mod medusa;
mod openapi;
mod ops;
mod orders;
mod payments;
mod routing;
mod seed;
mod sql_scoping;
mod stripe;
mod token_cache;
mod webhooks;
