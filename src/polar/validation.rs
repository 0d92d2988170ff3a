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
            input: bounded_echo(input),
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

/// The largest input echoed back in a validation error. A failing value of a 10 MiB body
/// may be echoed once per failed branch; past this size it is named, not repeated.
const MAX_ECHO_BYTES: isize = 64 * 1024;

fn bounded_echo(input: Value) -> Value {
    fn spend(value: &Value, budget: &mut isize) {
        *budget -= 8;
        if *budget < 0 {
            return;
        }
        match value {
            Value::String(text) => *budget -= text.len() as isize,
            Value::Array(items) => items.iter().for_each(|item| spend(item, budget)),
            Value::Object(members) => members.iter().for_each(|(key, member)| {
                *budget -= key.len() as isize;
                spend(member, budget)
            }),
            _ => {}
        }
    }
    let mut budget = MAX_ECHO_BYTES;
    spend(&input, &mut budget);
    if budget >= 0 {
        input
    } else {
        Value::String(format!(
            "<input of more than {MAX_ECHO_BYTES} bytes omitted>"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_small_inputs_and_names_large_ones() {
        let small = Value::String("x".repeat(100));
        assert_eq!(
            ValidationIssue::new("t", vec![], "m", small.clone()).input,
            small
        );
        let large = Value::String("x".repeat(100_000));
        let echoed = ValidationIssue::new("t", vec![], "m", large).input;
        assert_eq!(
            echoed,
            Value::String("<input of more than 65536 bytes omitted>".into())
        );
    }
}
