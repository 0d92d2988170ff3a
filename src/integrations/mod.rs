//! What outside services tell this server: Stripe's webhooks.

pub mod stripe;
