//! Extractors that answer in Polar's shapes: the raw body for the hand-written parsers, and
//! the JSON body of routes outside Polar's API.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;

use serde_json::json;

use crate::polar::ApiError;
use crate::polar::parse::read_json;
use crate::polar::validation::ValidationIssue;

/// The request body with its `Content-Type`, for parsers that answer in pydantic's shapes.
pub struct RawBody {
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        Ok(RawBody {
            content_type,
            bytes,
        })
    }
}

/// A JSON body for routes outside Polar's API (the admin API): unknown fields are refused,
/// and every failure answers 422 with the path of the offending field.
pub struct AdminJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for AdminJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = RawBody::from_request(request, state).await?;
        let text = std::str::from_utf8(&body.bytes).map_err(|_| ApiError::UnreadableBody)?;
        if text.trim().is_empty() {
            return Err(body_issue(
                "missing",
                vec![],
                "Field required",
                serde_json::Value::Null,
            ));
        }
        let value = read_json(text)?;
        if let Some((path, input)) = find_nul(&value, &mut Vec::new()) {
            return Err(body_issue(
                "value_error",
                path,
                "Value error, This value contains invalid characters",
                input,
            ));
        }
        serde_path_to_error::deserialize(&value)
            .map(AdminJson)
            .map_err(|error| deserialize_issue(&value, error))
    }
}

/// The path to the first string (key or value) holding NUL, which PostgreSQL cannot store.
fn find_nul(
    value: &serde_json::Value,
    path: &mut Vec<serde_json::Value>,
) -> Option<(Vec<serde_json::Value>, serde_json::Value)> {
    match value {
        serde_json::Value::String(text) if text.contains('\0') => {
            Some((path.clone(), value.clone()))
        }
        serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(index, item)| {
            path.push(json!(index));
            let found = find_nul(item, path);
            path.pop();
            found
        }),
        serde_json::Value::Object(members) => members.iter().find_map(|(key, member)| {
            path.push(json!(key));
            let found = if key.contains('\0') {
                Some((path.clone(), json!(key)))
            } else {
                find_nul(member, path)
            };
            path.pop();
            found
        }),
        _ => None,
    }
}

fn body_issue(
    kind: &str,
    path: Vec<serde_json::Value>,
    msg: &str,
    input: serde_json::Value,
) -> ApiError {
    let mut loc = vec![json!("body")];
    loc.extend(path);
    ApiError::RequestValidation(vec![ValidationIssue::new(kind, loc, msg, input)])
}

/// Turns serde's error into pydantic's vocabulary where it maps cleanly.
fn deserialize_issue(
    body: &serde_json::Value,
    error: serde_path_to_error::Error<serde_json::Error>,
) -> ApiError {
    use serde_path_to_error::Segment;
    let mut path: Vec<serde_json::Value> = Vec::new();
    let mut input = Some(body);
    for segment in error.path().iter() {
        match segment {
            Segment::Map { key } | Segment::Enum { variant: key } => {
                input = input.and_then(|value| value.get(key));
                path.push(json!(key));
            }
            Segment::Seq { index } => {
                input = input.and_then(|value| value.get(index));
                path.push(json!(index));
            }
            Segment::Unknown => {}
        }
    }
    let message = error.inner().to_string();
    let message = message.split(" at line ").next().unwrap_or_default();
    let named = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(field) = named("missing field `") {
        path.push(json!(field));
        return body_issue(
            "missing",
            path,
            "Field required",
            input.cloned().unwrap_or_default(),
        );
    }
    if message.starts_with("unknown field `") {
        // the path already ends at the unknown field
        return body_issue(
            "extra_forbidden",
            path,
            "Extra inputs are not permitted",
            input.cloned().unwrap_or_default(),
        );
    }
    body_issue(
        "value_error",
        path,
        message,
        input.cloned().unwrap_or_default(),
    )
}

/// The `{id}` segment of a path, as text: the route parses it (to answer a bad one in
/// pydantic's words). Unlike axum's `Path`, it adds no parameter to the OpenAPI document,
/// which documents the id itself.
pub struct PathId(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathId {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let axum::extract::Path(id) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        Ok(Self(id))
    }
}
