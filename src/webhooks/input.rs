//! The bodies and queries of the webhook routes, read and validated as FastAPI and pydantic
//! do (`WebhookEndpointCreate`, `WebhookEndpointUpdate`, the list filters).

use serde_json::{Map, Value};

use super::address::{UrlRefusal, check_endpoint_url};
use super::model::{
    DeliveryListQuery, EVENT_TYPES, EndpointCreate, EndpointListQuery, EndpointUpdate,
    HttpCodeClass,
};
use crate::http::{DEFAULT_POLAR_VERSION, SUPPORTED_POLAR_VERSIONS};
use crate::loc;
use crate::polar::parse::{
    BodyError, Failure, Issues, QueryParams, check_bool, check_uuid4, query_datetime,
    query_optional_bool, query_positive_int, query_string_list, query_uuid_list, read_model_body,
};
use crate::polar::validation::ValidationIssue;

pub const DEFAULT_LIMIT: i64 = 10;

/// `'a', 'b' or 'c'`, as pydantic lists what it expected.
fn expected(allowed: &[&str]) -> String {
    let quoted: Vec<String> = allowed.iter().map(|name| format!("'{name}'")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

const FORMATS: &[&str] = &["raw", "discord", "slack"];

type Checked<T> = Result<T, Vec<ValidationIssue>>;

fn field_issue(failure: Failure, field: &str, input: &Value) -> Vec<ValidationIssue> {
    vec![failure.at(loc!["body", field], input.clone())]
}

fn check_url(value: &Value, allow_private: bool) -> Checked<String> {
    let Value::String(text) = value else {
        return Err(field_issue(Failure::url_type(), "url", value));
    };
    check_endpoint_url(text, allow_private).map_err(|refusal| {
        let failure = match refusal {
            UrlRefusal::Parsing => Failure::url_parsing(),
            UrlRefusal::Scheme => Failure::url_scheme("'https'"),
            UrlRefusal::PrivateHost => Failure::value_error(
                "Webhook URLs cannot point to localhost or private IP addresses.",
            ),
        };
        field_issue(failure, "url", value)
    })
}

fn check_name(value: &Value) -> Checked<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) if text.contains('\0') => {
            Err(field_issue(Failure::nul_character(), "name", value))
        }
        Value::String(text) => Ok(Some(text.clone())),
        _ => Err(field_issue(Failure::string_type(), "name", value)),
    }
}

/// `raw` only: Discord and Slack messages are not built by this server.
fn check_format(value: &Value) -> Checked<()> {
    match value.as_str() {
        Some("raw") => Ok(()),
        Some(format) if FORMATS.contains(&format) => Err(field_issue(
            Failure::value_error(&format!("The {format} format is not supported")),
            "format",
            value,
        )),
        _ => Err(field_issue(
            Failure::enum_error(&expected(FORMATS)),
            "format",
            value,
        )),
    }
}

fn check_events(value: &Value) -> Checked<Vec<String>> {
    let Value::Array(items) = value else {
        return Err(field_issue(Failure::list_type(), "events", value));
    };
    let mut events = Vec::new();
    let mut issues = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match item.as_str().filter(|name| EVENT_TYPES.contains(name)) {
            Some(name) => {
                if !events.iter().any(|known| known == name) {
                    events.push(name.to_owned());
                }
            }
            None => issues.push(
                Failure::enum_error(&expected(EVENT_TYPES))
                    .at(loc!["body", "events", index], item.clone()),
            ),
        }
    }
    if issues.is_empty() {
        Ok(events)
    } else {
        Err(issues)
    }
}

fn check_api_version(value: &Value) -> Checked<String> {
    match value.as_str() {
        Some(version) if SUPPORTED_POLAR_VERSIONS.contains(&version) => Ok(version.to_owned()),
        _ => Err(field_issue(
            Failure::literal_error(&expected(SUPPORTED_POLAR_VERSIONS)),
            "api_version",
            value,
        )),
    }
}

fn required<'a>(body: &'a Map<String, Value>, field: &str) -> Checked<&'a Value> {
    body.get(field).ok_or_else(|| {
        vec![Failure::missing().at(loc!["body", field], Value::Object(body.clone()))]
    })
}

/// A present, non-null value of an optional field, checked.
fn optional<T>(
    body: &Map<String, Value>,
    field: &str,
    check: impl FnOnce(&Value) -> Checked<T>,
) -> Checked<Option<T>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => check(value).map(Some),
    }
}

pub fn parse_endpoint_create(
    content_type: Option<&str>,
    bytes: &[u8],
    allow_private_urls: bool,
) -> Result<EndpointCreate, BodyError> {
    let body = read_model_body(content_type, bytes)?;
    let mut issues = Issues::default();
    let url =
        issues.take(required(&body, "url").and_then(|url| check_url(url, allow_private_urls)));
    let name = issues.take(optional(&body, "name", check_name));
    let format = issues.take(required(&body, "format").and_then(check_format));
    let events = issues.take(required(&body, "events").and_then(check_events));
    let organization_id = issues.take(optional(&body, "organization_id", |value| {
        check_uuid4(value).map_err(|failure| field_issue(failure, "organization_id", value))
    }));
    let api_version = issues.take(optional(&body, "api_version", check_api_version));
    let issues = issues.into_vec();
    if !issues.is_empty() {
        return Err(BodyError::Invalid(issues));
    }
    match (url, name, format, events, organization_id, api_version) {
        (Some(url), Some(name), Some(()), Some(events), Some(organization_id), Some(api)) => {
            Ok(EndpointCreate {
                url,
                name: name.flatten(),
                events,
                organization_id,
                api_version: api.unwrap_or_else(|| DEFAULT_POLAR_VERSION.to_owned()),
            })
        }
        _ => unreachable!("every field passed"),
    }
}

pub fn parse_endpoint_update(
    content_type: Option<&str>,
    bytes: &[u8],
    allow_private_urls: bool,
) -> Result<EndpointUpdate, BodyError> {
    let body = read_model_body(content_type, bytes)?;
    let mut issues = Issues::default();
    let url = issues.take(optional(&body, "url", |url| {
        check_url(url, allow_private_urls)
    }));
    let name = issues.take(match body.get("name") {
        None => Ok(None),
        Some(value) => check_name(value).map(Some),
    });
    let format = issues.take(optional(&body, "format", check_format));
    let events = issues.take(optional(&body, "events", check_events));
    let enabled = issues.take(optional(&body, "enabled", |value| {
        check_bool(value).map_err(|failure| field_issue(failure, "enabled", value))
    }));
    let api_version = issues.take(optional(&body, "api_version", check_api_version));
    let issues = issues.into_vec();
    if !issues.is_empty() {
        return Err(BodyError::Invalid(issues));
    }
    let _ = format;
    Ok(EndpointUpdate {
        url: url.flatten(),
        name: name.flatten(),
        events: events.flatten(),
        enabled: enabled.flatten(),
        api_version: api_version.flatten(),
    })
}

pub fn parse_endpoint_list_query(raw_query: Option<&str>) -> Checked<EndpointListQuery> {
    let params = QueryParams::parse(raw_query.unwrap_or(""));
    let mut issues = Issues::default();
    let page = issues.take(query_positive_int(&params, "page", 1));
    let limit = issues.take(query_positive_int(&params, "limit", DEFAULT_LIMIT));
    let organization_ids = issues.take(query_uuid_list(&params, "organization_id"));
    let issues = issues.into_vec();
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(EndpointListQuery {
        organization_ids: organization_ids.unwrap_or_default(),
        page: page.unwrap_or(1),
        limit: limit
            .unwrap_or(DEFAULT_LIMIT)
            .min(crate::orders::input::MAX_LIMIT),
    })
}

const HTTP_CODE_CLASSES: &[(&str, HttpCodeClass)] = &[
    ("2xx", HttpCodeClass::Success),
    ("3xx", HttpCodeClass::Redirection),
    ("4xx", HttpCodeClass::ClientError),
    ("5xx", HttpCodeClass::ServerError),
];

pub fn parse_delivery_list_query(raw_query: Option<&str>) -> Checked<DeliveryListQuery> {
    let params = QueryParams::parse(raw_query.unwrap_or(""));
    let mut issues = Issues::default();
    let page = issues.take(query_positive_int(&params, "page", 1));
    let limit = issues.take(query_positive_int(&params, "limit", DEFAULT_LIMIT));
    let endpoint_ids = issues.take(query_uuid_list(&params, "endpoint_id"));
    let start_timestamp = issues.take(query_datetime(&params, "start_timestamp"));
    let end_timestamp = issues.take(query_datetime(&params, "end_timestamp"));
    let succeeded = issues.take(query_optional_bool(&params, "succeeded"));
    let http_code_class = issues.take(match params.last("http_code_class") {
        None => Ok(None),
        Some(text) => HTTP_CODE_CLASSES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, class)| Some(*class))
            .ok_or_else(|| {
                let names: Vec<&str> = HTTP_CODE_CLASSES.iter().map(|(name, _)| *name).collect();
                vec![
                    Failure::literal_error(&expected(&names))
                        .at(loc!["query", "http_code_class"], Value::from(text)),
                ]
            }),
    });
    let event_types = issues.take(query_string_list(&params, "event_type").and_then(|types| {
        let unknown: Vec<ValidationIssue> = types
            .iter()
            .enumerate()
            .filter(|(_, name)| !EVENT_TYPES.contains(&name.as_str()))
            .map(|(index, name)| {
                Failure::enum_error(&expected(EVENT_TYPES)).at(
                    loc!["query", "event_type", index],
                    Value::from(name.as_str()),
                )
            })
            .collect();
        if unknown.is_empty() {
            Ok(types)
        } else {
            Err(unknown)
        }
    }));
    let issues = issues.into_vec();
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(DeliveryListQuery {
        endpoint_ids: endpoint_ids.unwrap_or_default(),
        start_timestamp: start_timestamp.flatten(),
        end_timestamp: end_timestamp.flatten(),
        succeeded: succeeded.flatten(),
        http_code_class: http_code_class.flatten(),
        event_types: event_types.unwrap_or_default(),
        page: page.unwrap_or(1),
        limit: limit
            .unwrap_or(DEFAULT_LIMIT)
            .min(crate::orders::input::MAX_LIMIT),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(body: &str) -> Result<EndpointCreate, Vec<ValidationIssue>> {
        parse_endpoint_create(Some("application/json"), body.as_bytes(), false).map_err(|error| {
            match error {
                BodyError::Invalid(issues) => issues,
                BodyError::Unreadable => panic!("unreadable"),
            }
        })
    }

    #[test]
    fn a_complete_create() {
        let endpoint = create(
            r#"{"url":"https://example.com/h","format":"raw","events":["refund.created","order.refunded","refund.created"],"api_version":"2026-10"}"#,
        )
        .unwrap();
        assert_eq!(endpoint.url, "https://example.com/h");
        assert_eq!(endpoint.events, ["refund.created", "order.refunded"]);
        assert_eq!(endpoint.api_version, "2026-10");
        assert_eq!(endpoint.organization_id, None);
    }

    #[test]
    fn create_faults_are_reported_together() {
        let issues = create(r#"{"url":"http://example.com","format":"slack","events":["nope"]}"#)
            .unwrap_err();
        let kinds: Vec<(String, Value)> = issues
            .iter()
            .map(|issue| {
                let issue = serde_json::to_value(issue).unwrap();
                (
                    issue["type"].as_str().unwrap().to_owned(),
                    issue["loc"].clone(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("url_scheme".to_owned(), serde_json::json!(["body", "url"])),
                (
                    "value_error".to_owned(),
                    serde_json::json!(["body", "format"])
                ),
                ("enum".to_owned(), serde_json::json!(["body", "events", 0])),
            ]
        );
        let missing = create(r#"{}"#).unwrap_err();
        assert_eq!(missing.len(), 3);
    }
}
