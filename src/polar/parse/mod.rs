//! The request-parsing half of every Polar-shaped endpoint: bodies read as FastAPI reads
//! them, queries and path ids as Starlette splits them, and the lax checks and error
//! catalogue of pydantic, so that every 422 for the same fault is worded the same on every
//! route.

mod datetime;
mod failure;
mod json;
mod lax;
mod query;

pub use failure::{Failure, Issues};
pub use json::{BodyError, read_json, read_model_body};
pub use lax::{
    check_bool, check_bool_str, check_float_str, check_int, check_int_str, check_str_length,
    check_uuid4,
};
pub use query::{
    QueryParams, path_uuid, path_uuid4, query_datetime, query_enum_list, query_metadata,
    query_optional_bool, query_positive_int, query_sorting, query_string_list, query_uuid_list,
};

#[cfg(test)]
pub(crate) use query::UUID_LIST_BRANCH;
