//! Webhooks as Polar sends them: the endpoint API, the outbox that refunds write in their
//! own transactions (`emit`), and the delivery worker that signs and sends what committed
//! (`delivery`).

pub mod address;
pub mod api;
pub mod delivery;
pub mod emit;
pub mod input;
pub mod model;
pub mod repo;
pub mod service;
pub mod signing;

pub use delivery::{DeliverySettings, run as run_delivery};
