//! Stripe's webhook endpoint: signed events that move refunds, import refunds made in
//! Stripe's dashboard, and open and close disputes.

pub mod api;
pub mod repo;
pub mod service;
