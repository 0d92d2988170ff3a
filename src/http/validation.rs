//! The entries of a 422 body's `detail` list, in FastAPI/pydantic's shape.

use serde::Serialize;
use serde_json::Value;

/// One validation failure: `{"type", "loc", "msg", "input", "ctx"?}`.
/// `input` is always present (`null` when the input was missing).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = ValidationError)]
pub struct ValidationIssue {
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(schema_with = location)]
    pub loc: Vec<Value>,
    pub msg: String,
    #[schema(value_type = Value, required = false)]
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub ctx: Option<Value>,
}

/// `loc`: the path to the failing input, keys and indexes.
fn location() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            AnyOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::String))
                .item(ObjectBuilder::new().schema_type(Type::Integer)),
        )
        .build()
        .into()
}

impl ValidationIssue {
    pub fn new(kind: &str, loc: Vec<Value>, msg: impl Into<String>, input: Value) -> Self {
        Self {
            kind: kind.to_owned(),
            loc,
            msg: msg.into(),
            input,
            ctx: None,
        }
    }

    pub fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }
}

/// Builds a `loc` list from mixed keys and indexes: `loc!["body", "metadata", key]`.
#[macro_export]
macro_rules! loc {
    ($($part:expr),* $(,)?) => {
        vec![$(serde_json::Value::from($part)),*]
    };
}
