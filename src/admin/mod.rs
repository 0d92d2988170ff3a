//! The sandbox admin API under `/admin/`: setting up organizations, tokens, users,
//! customers, orders and disputes for sandboxes, test suites and order ingestion. Not part
//! of Polar's API. Its handlers only parse and call the resources' services.

pub mod api;
