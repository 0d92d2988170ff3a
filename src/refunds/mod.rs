//! The refunds resource: Polar's `POST /v1/refunds/` and `GET /v1/refunds/`.

pub mod api;
pub mod batch;
pub mod disputes;
pub mod docs;
pub mod input;
pub mod model;
pub mod recovery;
pub mod repo;
pub mod service;
