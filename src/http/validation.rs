//! The entries of a 422 body's `detail` list, in FastAPI/pydantic's shape.

use serde::Serialize;
use serde_json::Value;

/// One validation failure: `{"type", "loc", "msg", "input", "ctx"?}`.
/// `input` is always present (`null` when the input was missing).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationIssue {
    #[serde(rename = "type")]
    pub kind: String,
    pub loc: Vec<Value>,
    pub msg: String,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
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
