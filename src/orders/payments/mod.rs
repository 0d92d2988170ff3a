//! The payments behind orders, read as Polar's `Payment` (`GET /v1/payments/…`).

pub mod api;
pub mod input;
pub mod model;
pub mod repo;
pub mod service;
