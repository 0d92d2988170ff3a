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

/// Python refuses to read integers longer than this many digits.
pub const MAX_INT_DIGITS: usize = 4300;

/// Reads numbers as Python's `json.loads` does, so that they are stored and echoed as Polar
/// stores and echoes them: an integer keeps every digit (`-0` is `0`), any other number
/// becomes the nearest double. Fails on what Python would read as infinity or refuse
/// outright (integers of more than 4,300 digits), which no refund can hold.
pub fn normalize_numbers(value: &mut Value) -> Result<(), UnreadableNumber> {
    match value {
        Value::Number(number) => {
            let text = number.to_string();
            if is_integer_literal(&text) {
                if text.trim_start_matches('-').len() > MAX_INT_DIGITS {
                    return Err(UnreadableNumber);
                }
                if text == "-0" {
                    *number = serde_json::Number::from(0);
                }
            } else {
                let float = number.as_f64().ok_or(UnreadableNumber)?;
                *number = serde_json::Number::from_f64(float).ok_or(UnreadableNumber)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(normalize_numbers),
        Value::Object(members) => members.values_mut().try_for_each(normalize_numbers),
        _ => Ok(()),
    }
}

/// A number Python would read as infinity, or refuse to read.
#[derive(Debug)]
pub struct UnreadableNumber;

/// Whether a JSON number's text is an integer (no fraction, no exponent).
pub fn is_integer_literal(text: &str) -> bool {
    !text.contains(['.', 'e', 'E'])
}

/// The most JSON values a request body may hold. A parsed value costs far more memory than
/// its text, so a 10 MiB body of tiny values would otherwise cost hundreds of MiB.
pub const MAX_JSON_VALUES: usize = 10_000;

/// Whether `text` holds more than `limit` JSON values (arrays, objects and their members),
/// counted without parsing.
pub fn exceeds_json_values(text: &str, limit: usize) -> bool {
    let (mut count, mut in_string, mut escaped) = (0usize, false, false);
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' | b',' => {
                    count += 1;
                    if count > limit {
                        return true;
                    }
                }
                _ => {}
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_python_reads_them() {
        let mut value: Value =
            serde_json::from_str(r#"[100000000000000000000, -0, 1E2, 0.1, 1e-7]"#).unwrap();
        normalize_numbers(&mut value).unwrap();
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            "[100000000000000000000,0,100.0,0.1,1e-7]"
        );
        let mut overflow: Value = serde_json::from_str("[1e400]").unwrap();
        assert!(normalize_numbers(&mut overflow).is_err());
        let mut long: Value = serde_json::from_str(&"9".repeat(4301)).unwrap();
        assert!(normalize_numbers(&mut long).is_err());
    }

    #[test]
    fn counts_json_values_outside_strings() {
        assert!(!exceeds_json_values(r#"{"a": [1, 2, 3]}"#, 5));
        assert!(exceeds_json_values(r#"{"a": [1, 2, 3, 4, 5, 6]}"#, 5));
        assert!(!exceeds_json_values(r#"{"a": "[,,,,,,,,,,\",,,,,,"}"#, 2));
    }

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
