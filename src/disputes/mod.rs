//! Disputes on an order's payment. An open dispute blocks manual refunds; one that enters
//! `early_warning` is prevented the way Polar does it, with a refund of its amounts.

pub mod model;
pub mod repo;
pub mod service;
