//! pydantic's error catalogue: the `type`, `msg` and `ctx` it gives each fault, so that the
//! same fault is worded the same on every route.

use serde_json::{Value, json};

use crate::polar::validation::ValidationIssue;

/// A failed check before it is placed: the `type`, `msg` and `ctx` of an issue.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    kind: &'static str,
    msg: String,
    ctx: Option<Value>,
}

impl Failure {
    fn new(kind: &'static str, msg: impl Into<String>) -> Self {
        Self {
            kind,
            msg: msg.into(),
            ctx: None,
        }
    }

    fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }

    /// The issue this failure becomes at `loc`, echoing `input`.
    pub fn at(self, loc: Vec<Value>, input: Value) -> ValidationIssue {
        let issue = ValidationIssue::new(self.kind, loc, self.msg, input);
        match self.ctx {
            Some(ctx) => issue.with_ctx(ctx),
            None => issue,
        }
    }
}

/// The catalogue, one constructor per pydantic error type used here.
impl Failure {
    pub fn missing() -> Self {
        Self::new("missing", "Field required")
    }

    pub(super) fn model_attributes_type() -> Self {
        Self::new(
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
        )
    }

    pub(super) fn json_invalid(message: &str) -> Self {
        Self::new("json_invalid", "JSON decode error").with_ctx(json!({ "error": message }))
    }

    pub fn int_type() -> Self {
        Self::new("int_type", "Input should be a valid integer")
    }

    pub(super) fn int_parsing() -> Self {
        Self::new(
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
        )
    }

    pub(super) fn int_parsing_size() -> Self {
        Self::new(
            "int_parsing_size",
            "Unable to parse input string as an integer, exceeded maximum size",
        )
    }

    pub(super) fn int_from_float() -> Self {
        Self::new(
            "int_from_float",
            "Input should be a valid integer, got a number with a fractional part",
        )
    }

    pub fn greater_than(limit: i64) -> Self {
        Self::new(
            "greater_than",
            format!("Input should be greater than {limit}"),
        )
        .with_ctx(json!({ "gt": limit }))
    }

    pub fn float_type() -> Self {
        Self::new("float_type", "Input should be a valid number")
    }

    pub(super) fn float_parsing() -> Self {
        Self::new(
            "float_parsing",
            "Input should be a valid number, unable to parse string as a number",
        )
    }

    pub fn bool_type() -> Self {
        Self::new("bool_type", "Input should be a valid boolean")
    }

    pub(super) fn bool_parsing() -> Self {
        Self::new(
            "bool_parsing",
            "Input should be a valid boolean, unable to interpret input",
        )
    }

    pub fn string_type() -> Self {
        Self::new("string_type", "Input should be a valid string")
    }

    pub fn string_too_short(min_length: usize) -> Self {
        Self::new(
            "string_too_short",
            format!(
                "String should have at least {min_length} character{}",
                plural(min_length)
            ),
        )
        .with_ctx(json!({ "min_length": min_length }))
    }

    pub fn string_too_long(max_length: usize) -> Self {
        Self::new(
            "string_too_long",
            format!(
                "String should have at most {max_length} character{}",
                plural(max_length)
            ),
        )
        .with_ctx(json!({ "max_length": max_length }))
    }

    /// What `Schema._reject_nul_characters` raises; FastAPI renders the `ValueError` as `{}`.
    pub fn nul_character() -> Self {
        Self::new(
            "value_error",
            "Value error, This value contains invalid characters",
        )
        .with_ctx(json!({ "error": {} }))
    }

    pub fn dict_type() -> Self {
        Self::new("dict_type", "Input should be a valid dictionary")
    }

    pub fn dict_too_long(max_length: usize, actual_length: usize) -> Self {
        Self::new(
            "too_long",
            format!(
                "Dictionary should have at most {max_length} items after validation, not {actual_length}"
            ),
        )
        .with_ctx(json!({
            "field_type": "Dictionary",
            "max_length": max_length,
            "actual_length": actual_length,
        }))
    }

    pub fn uuid_type() -> Self {
        Self::new(
            "uuid_type",
            "UUID input should be a string, bytes or UUID object",
        )
    }

    pub(super) fn uuid_parsing(error: &str) -> Self {
        Self::new(
            "uuid_parsing",
            format!("Input should be a valid UUID, {error}"),
        )
        .with_ctx(json!({ "error": error }))
    }

    pub(super) fn uuid_version() -> Self {
        Self::new("uuid_version", "UUID version 4 expected")
            .with_ctx(json!({ "expected_version": 4 }))
    }

    pub fn literal_error(expected: &str) -> Self {
        Self::new("literal_error", format!("Input should be {expected}"))
            .with_ctx(json!({ "expected": expected }))
    }

    /// A string that is neither a datetime nor a date; `error` is the date parser's reason.
    pub(super) fn datetime_from_date_parsing(error: &str) -> Self {
        Self::new(
            "datetime_from_date_parsing",
            format!("Input should be a valid datetime or date, {error}"),
        )
        .with_ctx(json!({ "error": error }))
    }

    pub fn list_type() -> Self {
        Self::new("list_type", "Input should be a valid list")
    }

    pub fn url_type() -> Self {
        Self::new("url_type", "URL input should be a string or URL")
    }

    pub fn url_parsing() -> Self {
        Self::new(
            "url_parsing",
            "Input should be a valid URL, relative URL without a base",
        )
        .with_ctx(json!({ "error": "relative URL without a base" }))
    }

    pub fn url_scheme(expected: &str) -> Self {
        Self::new("url_scheme", format!("URL scheme should be {expected}"))
            .with_ctx(json!({ "expected_schemes": expected }))
    }

    /// A validator of the model raised `ValueError(message)`.
    pub fn value_error(message: &str) -> Self {
        Self::new("value_error", format!("Value error, {message}")).with_ctx(json!({ "error": {} }))
    }

    pub fn enum_error(expected: &str) -> Self {
        Self::new("enum", format!("Input should be {expected}"))
            .with_ctx(json!({ "expected": expected }))
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// Collects the issues of independently validated fields, as pydantic reports them all.
#[derive(Default)]
pub struct Issues(Vec<ValidationIssue>);

impl Issues {
    /// The value of a field that passed; the issues of one that did not are kept.
    pub fn take<T>(&mut self, result: Result<T, Vec<ValidationIssue>>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(issues) => {
                self.0.extend(issues);
                None
            }
        }
    }

    pub fn into_vec(self) -> Vec<ValidationIssue> {
        self.0
    }
}
