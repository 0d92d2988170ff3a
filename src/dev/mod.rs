//! Data for people and benchmarks rather than for the API: the demo sandbox and bulk seeding.

pub mod demo;
pub mod seed;
