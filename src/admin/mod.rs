//! Setting up organizations, users, memberships and customers: for sandboxes, tests and
//! ingestion. The command line uses these functions; none of this is part of Polar's API.

pub mod api;
pub mod service;
