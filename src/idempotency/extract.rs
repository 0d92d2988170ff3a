//! The `Idempotency-Key` header as an extractor: absent, a valid key, or a 422 in
//! pydantic's words.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::json;

use super::{HEADER, KeyFault, MAX_KEY_CHARS, parse_key};
use crate::polar::ApiError;
use crate::polar::validation::ValidationIssue;

/// The request's idempotency key, if it sent one.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(IdempotencyKey(None));
        };
        let input = json!(String::from_utf8_lossy(value.as_bytes()));
        let loc = crate::loc!["header", HEADER];
        if values.next().is_some() {
            return Err(ApiError::RequestValidation(vec![
                ValidationIssue::new(
                    "value_error",
                    loc,
                    "Value error, send one Idempotency-Key header",
                    input,
                )
                .with_ctx(json!({"error": {}})),
            ]));
        }
        let issue = match parse_key(value.as_bytes()) {
            Ok(key) => return Ok(IdempotencyKey(Some(key))),
            Err(KeyFault::Empty) => ValidationIssue::new(
                "string_too_short",
                loc,
                "String should have at least 1 character",
                input,
            )
            .with_ctx(json!({"min_length": 1})),
            Err(KeyFault::TooLong) => ValidationIssue::new(
                "string_too_long",
                loc,
                format!("String should have at most {MAX_KEY_CHARS} characters"),
                input,
            )
            .with_ctx(json!({"max_length": MAX_KEY_CHARS})),
            Err(KeyFault::NotPrintable) => ValidationIssue::new(
                "string_pattern_mismatch",
                loc,
                "String should match pattern '^[ -~]+$'",
                input,
            )
            .with_ctx(json!({"pattern": "^[ -~]+$"})),
        };
        Err(ApiError::RequestValidation(vec![issue]))
    }
}
