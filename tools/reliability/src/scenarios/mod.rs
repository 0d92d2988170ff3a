pub mod bad_input;
pub mod common;
pub mod crash;
pub mod db_restart;
pub mod idempotency;
pub mod isolation;
pub mod race;
pub mod shutdown;
