//! Medusa v1's Admin API route to refund a payment, `POST /admin/payments/{id}/refund`, so
//! that Medusa's own client can refund through this server. A second API surface over the
//! same refund flow as Polar's `POST /v1/refunds/`: the same order lock, counters and rules;
//! its own request parsing (class-validator's messages), wire types, and mapping of the
//! domain's errors to Medusa's bodies (`error`).

pub mod api;
pub mod error;
pub mod input;
pub mod model;
pub mod service;
