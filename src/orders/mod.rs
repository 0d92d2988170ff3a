//! Orders: the row lock and counters refunds move, creating paid orders for sandboxes, and
//! reading orders and their payments as Polar shows them.

pub mod api;
pub mod input;
pub mod model;
pub mod payments;
pub mod repo;
pub mod service;
