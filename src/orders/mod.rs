//! Orders as the refund service sees them, and creating paid orders for sandboxes.

pub mod model;
pub mod repo;
pub mod service;
