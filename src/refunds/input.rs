//! Reading and validating the inputs of `/v1/refunds/`: the `RefundCreate` body and the
//! list query. Failures are reported as FastAPI + pydantic 2 report them, issue for issue
//! (`type`, `loc`, `msg`, `input`, `ctx`), because clients match on those bodies.

use serde_json::{Map, Number, Value, json};
use uuid::Uuid;

use super::model::{DEFAULT_LIMIT, ListQuery, MAX_LIMIT, RefundCreate, RefundSort};
use crate::domain::RefundReason;
use crate::loc;
use crate::polar::validation::{
    MAX_INT_DIGITS, MAX_JSON_VALUES, ValidationIssue, exceeds_json_values, is_integer_literal,
    normalize_numbers,
};

/// Why a `RefundCreate` body was refused.
#[derive(Debug)]
pub enum BodyError {
    /// 422 with these issues; the caller adds {"error":"RequestValidationError","detail":[...]}.
    Invalid(Vec<ValidationIssue>),
    /// The body bytes are not UTF-8: FastAPI answers 400 {"detail":"There was an error parsing the body"}.
    /// Also used for JSON that Python reads but serde_json cannot (`NaN`, lone surrogates,
    /// `1e400`, nesting deeper than 128).
    Unreadable,
}

/// Parses and validates the body of `POST /v1/refunds/`.
pub fn parse_refund_create(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<RefundCreate, BodyError> {
    if body.is_empty() {
        return Err(BodyError::Invalid(vec![
            missing().at(loc!["body"], Value::Null),
        ]));
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(BodyError::Unreadable);
    };
    let value = if is_json_media_type(content_type) {
        parse_json(text)?
    } else {
        // FastAPI hands any other body to pydantic as raw bytes, echoed back as text.
        Value::String(text.to_owned())
    };
    validate_refund_create(&value).map_err(BodyError::Invalid)
}

/// Parses and validates the query of `GET /v1/refunds/`.
pub fn parse_list_query(raw_query: Option<&str>) -> Result<ListQuery, Vec<ValidationIssue>> {
    let params = QueryParams::parse(raw_query.unwrap_or(""));
    let mut issues = Issues::default();
    // Pagination and sorting are dependencies, validated before the endpoint's own filters.
    let page = issues.take(query_positive_int(&params, "page", 1));
    let limit = issues.take(query_positive_int(&params, "limit", DEFAULT_LIMIT));
    let sorting = issues.take(query_sorting(&params));
    let ids = issues.take(query_uuid_list(&params, "id"));
    let organization_ids = issues.take(query_uuid_list(&params, "organization_id"));
    let order_ids = issues.take(query_uuid_list(&params, "order_id"));
    let subscription_ids = issues.take(query_uuid_list(&params, "subscription_id"));
    let customer_ids = issues.take(query_uuid_list(&params, "customer_id"));
    let external_customer_ids = issues.take(query_string_list(&params, "external_customer_id"));
    let succeeded = issues.take(query_optional_bool(&params, "succeeded"));

    let (
        Some(page),
        Some(limit),
        Some(sorting),
        Some(ids),
        Some(organization_ids),
        Some(order_ids),
        Some(subscription_ids),
        Some(customer_ids),
        Some(external_customer_ids),
        Some(succeeded),
    ) = (
        page,
        limit,
        sorting,
        ids,
        organization_ids,
        order_ids,
        subscription_ids,
        customer_ids,
        external_customer_ids,
        succeeded,
    )
    else {
        return Err(issues.0);
    };
    Ok(ListQuery {
        ids,
        organization_ids,
        order_ids,
        subscription_ids,
        customer_ids,
        external_customer_ids,
        succeeded,
        page,
        limit: limit.min(MAX_LIMIT),
        sorting,
    })
}

// ---------------------------------------------------------------------------------------
// Failures and the issues they become
// ---------------------------------------------------------------------------------------

/// A failed check before it is placed: the `type`, `msg` and `ctx` of an issue.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
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

    fn at(self, loc: Vec<Value>, input: Value) -> ValidationIssue {
        let issue = ValidationIssue::new(self.kind, loc, self.msg, input);
        match self.ctx {
            Some(ctx) => issue.with_ctx(ctx),
            None => issue,
        }
    }
}

fn missing() -> Failure {
    Failure::new("missing", "Field required")
}

fn model_attributes_type() -> Failure {
    Failure::new(
        "model_attributes_type",
        "Input should be a valid dictionary or object to extract fields from",
    )
}

fn json_invalid(message: &str) -> Failure {
    Failure::new("json_invalid", "JSON decode error").with_ctx(json!({ "error": message }))
}

fn int_type() -> Failure {
    Failure::new("int_type", "Input should be a valid integer")
}

fn int_parsing() -> Failure {
    Failure::new(
        "int_parsing",
        "Input should be a valid integer, unable to parse string as an integer",
    )
}

fn int_parsing_size() -> Failure {
    Failure::new(
        "int_parsing_size",
        "Unable to parse input string as an integer, exceeded maximum size",
    )
}

fn int_from_float() -> Failure {
    Failure::new(
        "int_from_float",
        "Input should be a valid integer, got a number with a fractional part",
    )
}

fn greater_than_zero() -> Failure {
    Failure::new("greater_than", "Input should be greater than 0").with_ctx(json!({ "gt": 0 }))
}

fn float_type() -> Failure {
    Failure::new("float_type", "Input should be a valid number")
}

fn float_parsing() -> Failure {
    Failure::new(
        "float_parsing",
        "Input should be a valid number, unable to parse string as a number",
    )
}

fn bool_type() -> Failure {
    Failure::new("bool_type", "Input should be a valid boolean")
}

fn bool_parsing() -> Failure {
    Failure::new(
        "bool_parsing",
        "Input should be a valid boolean, unable to interpret input",
    )
}

fn string_type() -> Failure {
    Failure::new("string_type", "Input should be a valid string")
}

fn string_too_short(min_length: usize) -> Failure {
    Failure::new(
        "string_too_short",
        format!(
            "String should have at least {min_length} character{}",
            plural(min_length)
        ),
    )
    .with_ctx(json!({ "min_length": min_length }))
}

fn string_too_long(max_length: usize) -> Failure {
    Failure::new(
        "string_too_long",
        format!(
            "String should have at most {max_length} character{}",
            plural(max_length)
        ),
    )
    .with_ctx(json!({ "max_length": max_length }))
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// What `Schema._reject_nul_characters` raises; FastAPI renders the `ValueError` as `{}`.
fn nul_character() -> Failure {
    Failure::new(
        "value_error",
        "Value error, This value contains invalid characters",
    )
    .with_ctx(json!({ "error": {} }))
}

fn dict_type() -> Failure {
    Failure::new("dict_type", "Input should be a valid dictionary")
}

fn dict_too_long(actual_length: usize) -> Failure {
    Failure::new(
        "too_long",
        format!(
            "Dictionary should have at most {METADATA_MAX_KEYS} items after validation, not {actual_length}"
        ),
    )
    .with_ctx(json!({
        "field_type": "Dictionary",
        "max_length": METADATA_MAX_KEYS,
        "actual_length": actual_length,
    }))
}

fn uuid_type() -> Failure {
    Failure::new(
        "uuid_type",
        "UUID input should be a string, bytes or UUID object",
    )
}

fn uuid_parsing(error: &str) -> Failure {
    Failure::new(
        "uuid_parsing",
        format!("Input should be a valid UUID, {error}"),
    )
    .with_ctx(json!({ "error": error }))
}

fn uuid_version() -> Failure {
    Failure::new("uuid_version", "UUID version 4 expected")
        .with_ctx(json!({ "expected_version": 4 }))
}

/// The accepted reasons as pydantic lists them: the `Literal` holds `StrEnum` members, so
/// their Python reprs end up in the message.
const REASON_EXPECTED: &str = "<RefundReason.duplicate: 'duplicate'>, \
<RefundReason.fraudulent: 'fraudulent'>, \
<RefundReason.customer_request: 'customer_request'>, \
<RefundReason.service_disruption: 'service_disruption'>, \
<RefundReason.satisfaction_guarantee: 'satisfaction_guarantee'> or \
<RefundReason.other: 'other'>";

fn reason_literal_error() -> Failure {
    Failure::new(
        "literal_error",
        format!("Input should be {REASON_EXPECTED}"),
    )
    .with_ctx(json!({ "expected": REASON_EXPECTED }))
}

const SORT_EXPECTED: &str = "'created_at', '-created_at', 'amount' or '-amount'";

fn sort_enum_error() -> Failure {
    Failure::new("enum", format!("Input should be {SORT_EXPECTED}"))
        .with_ctx(json!({ "expected": SORT_EXPECTED }))
}

/// Collects the issues of independently validated fields, as pydantic reports them all.
#[derive(Default)]
struct Issues(Vec<ValidationIssue>);

impl Issues {
    fn take<T>(&mut self, result: Result<T, Vec<ValidationIssue>>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(issues) => {
                self.0.extend(issues);
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The body
// ---------------------------------------------------------------------------------------

const METADATA_MAX_KEYS: usize = 50;
const METADATA_KEY_MAX_LENGTH: usize = 40;
const METADATA_VALUE_MAX_LENGTH: usize = 500;

/// FastAPI (>= 0.132, `strict_content_type`) parses the body as JSON only when the request
/// says it is JSON: `application/json` or `application/*+json`, parameters ignored. A
/// request without `Content-Type` is not JSON to it.
fn is_json_media_type(content_type: Option<&str>) -> bool {
    let Some(header) = content_type else {
        return false;
    };
    let media_type = header
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some((main_type, sub_type)) = media_type.split_once('/') else {
        return false;
    };
    // Python's email parser reads a malformed type as text/plain.
    if sub_type.contains('/') {
        return false;
    }
    main_type == "application" && (sub_type == "json" || sub_type.ends_with("+json"))
}

fn parse_json(text: &str) -> Result<Value, BodyError> {
    // Python decodes a body that starts with a UTF-8 byte order mark without it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if exceeds_json_values(text, MAX_JSON_VALUES) {
        return Err(BodyError::Unreadable);
    }
    match serde_json::from_str(text) {
        Ok(mut value) => match normalize_numbers(&mut value) {
            Ok(()) => Ok(value),
            Err(_) => Err(BodyError::Unreadable),
        },
        Err(_) => match python_json_error(text) {
            Some((position, message)) => Err(BodyError::Invalid(vec![
                json_invalid(message).at(loc!["body", position], json!({})),
            ])),
            // Python accepts it but serde_json does not: NaN/Infinity, lone surrogates,
            // numbers beyond f64, very deep nesting. None of these can become a refund.
            None => Err(BodyError::Unreadable),
        },
    }
}

fn validate_refund_create(value: &Value) -> Result<RefundCreate, Vec<ValidationIssue>> {
    match value {
        // A JSON `null` body is no body at all to FastAPI.
        Value::Null => Err(vec![missing().at(loc!["body"], Value::Null)]),
        Value::Object(body) => validate_fields(body),
        other => Err(vec![
            model_attributes_type().at(loc!["body"], other.clone()),
        ]),
    }
}

/// Validates the fields in the model's declaration order, collecting every issue.
fn validate_fields(body: &Map<String, Value>) -> Result<RefundCreate, Vec<ValidationIssue>> {
    let mut issues = Issues::default();
    let metadata = issues.take(validate_metadata(body.get("metadata")));
    let order_id = issues.take(required(body, "order_id").and_then(|value| {
        check_uuid4(value)
            .map_err(|failure| vec![failure.at(loc!["body", "order_id"], value.clone())])
    }));
    let reason = issues.take(required(body, "reason").and_then(|value| {
        check_reason(value)
            .map_err(|failure| vec![failure.at(loc!["body", "reason"], value.clone())])
    }));
    let amount = issues.take(required(body, "amount").and_then(|value| {
        check_amount(value)
            .map_err(|failure| vec![failure.at(loc!["body", "amount"], value.clone())])
    }));
    let comment = issues.take(check_comment(body.get("comment")).map_err(|failure| {
        let input = body.get("comment").cloned().unwrap_or(Value::Null);
        vec![failure.at(loc!["body", "comment"], input)]
    }));
    let revoke_benefits = issues.take(match body.get("revoke_benefits") {
        None => Ok(false),
        Some(value) => check_bool(value)
            .map_err(|failure| vec![failure.at(loc!["body", "revoke_benefits"], value.clone())]),
    });

    let (
        Some(metadata),
        Some(order_id),
        Some(reason),
        Some(amount),
        Some(comment),
        Some(revoke_benefits),
    ) = (metadata, order_id, reason, amount, comment, revoke_benefits)
    else {
        return Err(issues.0);
    };
    Ok(RefundCreate {
        order_id,
        reason,
        amount,
        amount_input: body.get("amount").cloned().unwrap_or(Value::Null),
        comment,
        revoke_benefits,
        metadata,
    })
}

/// A required field; pydantic echoes the whole body as the input of a missing field.
fn required<'a>(
    body: &'a Map<String, Value>,
    field: &str,
) -> Result<&'a Value, Vec<ValidationIssue>> {
    body.get(field)
        .ok_or_else(|| vec![missing().at(loc!["body", field], Value::Object(body.clone()))])
}

fn check_reason(value: &Value) -> Result<RefundReason, Failure> {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .filter(|reason| *reason != RefundReason::DisputePrevention)
        .ok_or_else(reason_literal_error)
}

fn check_amount(value: &Value) -> Result<i64, Failure> {
    let amount = check_int(value)?;
    if amount <= 0 {
        return Err(greater_than_zero());
    }
    Ok(amount)
}

fn check_comment(value: Option<&Value>) -> Result<Option<String>, Failure> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.contains('\0') => Err(nul_character()),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(string_type()),
    }
}

/// `metadata: dict[str(1..=40), str(1..=500) | int | float | bool]`, at most 50 keys.
fn validate_metadata(value: Option<&Value>) -> Result<Map<String, Value>, Vec<ValidationIssue>> {
    let Some(value) = value else {
        return Ok(Map::new());
    };
    let Value::Object(entries) = value else {
        return Err(vec![
            dict_type().at(loc!["body", "metadata"], value.clone()),
        ]);
    };

    let mut issues = Vec::new();
    let mut metadata = Map::new();
    for (key, entry) in entries {
        let key_result = check_str_length(key, 1, METADATA_KEY_MAX_LENGTH);
        if let Err(failure) = &key_result {
            let loc = loc!["body", "metadata", key.as_str(), "[key]"];
            issues.push(failure.clone().at(loc, Value::from(key.as_str())));
        }
        match check_metadata_value(entry) {
            Ok(checked) if key_result.is_ok() => {
                metadata.insert(key.clone(), checked);
            }
            Ok(_) => {}
            Err(branches) => {
                for (branch, failure) in branches {
                    let loc = loc!["body", "metadata", key.as_str(), branch];
                    issues.push(failure.at(loc, entry.clone()));
                }
            }
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    // pydantic checks the size of the dictionary only once every item is valid.
    if metadata.len() > METADATA_MAX_KEYS {
        return Err(vec![
            dict_too_long(metadata.len()).at(loc!["body", "metadata"], value.clone()),
        ]);
    }
    let has_nul = metadata.iter().any(|(key, entry)| {
        key.contains('\0') || entry.as_str().is_some_and(|text| text.contains('\0'))
    });
    if has_nul {
        return Err(vec![
            nul_character().at(loc!["body", "metadata"], Value::Object(metadata)),
        ]);
    }
    Ok(metadata)
}

/// One metadata value against pydantic's smart union `constrained-str | int | float | bool`.
/// On failure, one failure per branch, labelled as pydantic labels them.
fn check_metadata_value(value: &Value) -> Result<Value, Vec<(&'static str, Failure)>> {
    match value {
        Value::Number(_) | Value::Bool(_) => Ok(value.clone()),
        Value::String(text) => match check_str_length(text, 1, METADATA_VALUE_MAX_LENGTH) {
            Ok(()) => Ok(value.clone()),
            Err(str_failure) => check_metadata_string_as_other_types(text, str_failure),
        },
        _ => Err(vec![
            ("constrained-str", string_type()),
            ("int", int_type()),
            ("float", float_type()),
            ("bool", bool_type()),
        ]),
    }
}

/// A string that is not a valid metadata string may still pass the union's lax branches:
/// a number padded with more than 500 spaces is read as that number.
fn check_metadata_string_as_other_types(
    text: &str,
    str_failure: Failure,
) -> Result<Value, Vec<(&'static str, Failure)>> {
    let int_failure = match check_int_str(text) {
        Ok(number) => return Ok(Value::from(number)),
        Err(failure) => failure,
    };
    let float_failure = match check_float_str(text) {
        Ok(number) => return Ok(Value::Number(number)),
        Err(failure) => failure,
    };
    let bool_failure = match check_bool_str(text) {
        Ok(flag) => return Ok(Value::Bool(flag)),
        Err(failure) => failure,
    };
    Err(vec![
        ("constrained-str", str_failure),
        ("int", int_failure),
        ("float", float_failure),
        ("bool", bool_failure),
    ])
}

/// Length in characters, as Python counts it.
fn check_str_length(text: &str, min_length: usize, max_length: usize) -> Result<(), Failure> {
    let length = text.chars().count();
    if length < min_length {
        return Err(string_too_short(min_length));
    }
    if length > max_length {
        return Err(string_too_long(max_length));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The query
// ---------------------------------------------------------------------------------------

/// The query's `(key, value)` pairs in order, decoded as Starlette decodes them.
struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn parse(raw_query: &str) -> Self {
        let pairs = form_urlencoded::parse(raw_query.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        Self(pairs)
    }

    /// Every value of a repeated key (a list parameter).
    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
            .collect()
    }

    /// The value of a single parameter: the last occurrence wins.
    fn last(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// The label pydantic gives the list branch of `MultipleQueryFilter[UUID4]`.
const UUID_LIST_BRANCH: &str = "json-or-python[json=list[uuid],python=chain[is-instance[Sequence],function-wrap[sequence_validator()]]]";

fn query_positive_int(
    params: &QueryParams,
    key: &str,
    default: i64,
) -> Result<i64, Vec<ValidationIssue>> {
    let Some(text) = params.last(key) else {
        return Ok(default);
    };
    let number = check_int_str(text).and_then(|number| {
        if number <= 0 {
            return Err(greater_than_zero());
        }
        Ok(number)
    });
    number.map_err(|failure| vec![failure.at(loc!["query", key], Value::from(text))])
}

fn query_sorting(params: &QueryParams) -> Result<Vec<RefundSort>, Vec<ValidationIssue>> {
    let values = params.all("sorting");
    if values.is_empty() {
        return Ok(vec![RefundSort::CreatedAtDesc]);
    }
    let mut sorting = Vec::new();
    let mut issues = Vec::new();
    for (index, value) in values.iter().enumerate() {
        match RefundSort::parse(value) {
            Some(sort) => sorting.push(sort),
            None => issues.push(
                sort_enum_error().at(loc!["query", "sorting", index], Value::from(value.as_str())),
            ),
        }
    }
    if issues.is_empty() {
        Ok(sorting)
    } else {
        Err(issues)
    }
}

fn query_uuid_list(params: &QueryParams, key: &str) -> Result<Vec<Uuid>, Vec<ValidationIssue>> {
    let values = params.all(key);
    let mut ids = Vec::new();
    let mut item_issues = Vec::new();
    for (index, value) in values.iter().enumerate() {
        match check_uuid4_str(value) {
            Ok(id) => ids.push(id),
            Err(failure) => {
                let loc = loc!["query", key, UUID_LIST_BRANCH, index];
                item_issues.push(failure.at(loc, Value::from(value.as_str())));
            }
        }
    }
    if item_issues.is_empty() {
        return Ok(ids);
    }
    // The filter is a union of one UUID and a list of them: both branches report.
    let mut issues = vec![uuid_type().at(loc!["query", key, "uuid"], Value::from(values))];
    issues.extend(item_issues);
    Err(issues)
}

/// Free-text filter values. PostgreSQL text cannot hold NUL, so such a value is refused
/// the way Polar refuses NUL in bodies, instead of failing in the database.
fn query_string_list(params: &QueryParams, key: &str) -> Result<Vec<String>, Vec<ValidationIssue>> {
    let values = params.all(key);
    let issues: Vec<ValidationIssue> = values
        .iter()
        .enumerate()
        .filter(|(_, value)| value.contains('\0'))
        .map(|(index, value)| nul_character().at(loc!["query", key, index], json!(value)))
        .collect();
    if issues.is_empty() {
        Ok(values)
    } else {
        Err(issues)
    }
}

fn query_optional_bool(
    params: &QueryParams,
    key: &str,
) -> Result<Option<bool>, Vec<ValidationIssue>> {
    let Some(text) = params.last(key) else {
        return Ok(None);
    };
    check_bool_str(text)
        .map(Some)
        .map_err(|failure| vec![failure.at(loc!["query", key], Value::from(text))])
}

// ---------------------------------------------------------------------------------------
// Scalar checks, in pydantic's lax mode
// ---------------------------------------------------------------------------------------

fn check_int(value: &Value) -> Result<i64, Failure> {
    match value {
        Value::Bool(flag) => Ok(i64::from(*flag)),
        Value::Number(number) => int_from_number(number),
        Value::String(text) => check_int_str(text),
        _ => Err(int_type()),
    }
}

/// Integers beyond `i64` saturate (no refund can hold them, and the input is echoed as sent).
fn int_from_number(number: &Number) -> Result<i64, Failure> {
    if let Some(integer) = number.as_i64() {
        return Ok(integer);
    }
    let text = number.to_string();
    if is_integer_literal(&text) {
        return Ok(parse_saturating(&text));
    }
    let float = number.as_f64().unwrap_or(0.0);
    if float.fract() != 0.0 {
        return Err(int_from_float());
    }
    // `as` saturates at the bounds of i64.
    Ok(float as i64)
}

/// pydantic-core's `str_as_int`: a plain integer, else the same text cleaned of surrounding
/// whitespace, a `+` sign, leading zeros, a `.000` fraction and `_` digit separators.
fn check_int_str(text: &str) -> Result<i64, Failure> {
    if is_plain_integer(text) {
        if digit_count(text) > MAX_INT_DIGITS {
            return Err(int_parsing_size());
        }
        return Ok(parse_saturating(text));
    }
    match clean_int_str(text) {
        Some(cleaned) if is_plain_integer(&cleaned) && digit_count(&cleaned) <= MAX_INT_DIGITS => {
            Ok(parse_saturating(&cleaned))
        }
        _ => Err(int_parsing()),
    }
}

fn digit_count(integer: &str) -> usize {
    integer.trim_start_matches('-').len()
}

/// `-?(0|[1-9][0-9]*)`: an integer as JSON writes it.
fn is_plain_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let all_digits = !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit());
    all_digits && (digits == "0" || !digits.starts_with('0'))
}

fn parse_saturating(integer: &str) -> i64 {
    match integer.parse::<i64>() {
        Ok(number) => number,
        Err(_) if integer.starts_with('-') => i64::MIN,
        Err(_) => i64::MAX,
    }
}

fn clean_int_str(text: &str) -> Option<String> {
    let mut rest = text.trim();
    if let Some(unsigned) = rest.strip_prefix('+') {
        if unsigned.starts_with('-') {
            return None;
        }
        rest = unsigned;
    }
    let negative = rest.starts_with('-');
    if let Some(unsigned) = rest.strip_prefix('-') {
        if unsigned.starts_with(['-', '+']) {
            return None;
        }
        rest = unsigned;
    }
    rest = strip_leading_zeros(rest)?;
    if let Some((whole, fraction)) = rest.split_once('.')
        && !fraction.is_empty()
        && fraction.bytes().all(|byte| byte == b'0')
    {
        rest = whole;
    }
    let digits = strip_underscores(rest).unwrap_or_else(|| rest.to_owned());
    Some(if negative {
        format!("-{digits}")
    } else {
        digits
    })
}

/// pydantic-core's `strip_leading_zeros`: `000` → `0`, `00.0` → `0.0`, `0_1` → `1`.
fn strip_leading_zeros(text: &str) -> Option<&str> {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, '0')) => {}
        Some((_, '1'..='9' | '-')) => return Some(text),
        _ => return None,
    }
    for (index, character) in chars {
        match character {
            '0' | '_' => {}
            '1'..='9' | '-' => return Some(&text[index..]),
            // Keep the character before the dot: `00.0` → `0.0`.
            '.' => return Some(&text[index - 1..]),
            _ => return None,
        }
    }
    Some(&text[text.len() - 1..])
}

/// `1_000` → `1000`; underscores at either end or doubled are not separators.
fn strip_underscores(text: &str) -> Option<String> {
    let valid = text.contains('_')
        && !text.starts_with('_')
        && !text.ends_with('_')
        && !text.contains("__");
    valid.then(|| text.replace('_', ""))
}

/// pydantic-core's `str_as_float`. Infinities and NaN, which pydantic accepts, cannot be
/// stored as JSON and are refused.
fn check_float_str(text: &str) -> Result<Number, Failure> {
    let parsed = text
        .trim()
        .parse::<f64>()
        .ok()
        .or_else(|| strip_underscores(text)?.parse::<f64>().ok());
    parsed.and_then(Number::from_f64).ok_or_else(float_parsing)
}

fn check_bool(value: &Value) -> Result<bool, Failure> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        Value::String(text) => check_bool_str(text),
        Value::Number(number) => bool_from_number(number),
        _ => Err(bool_type()),
    }
}

/// Only 0 and 1 are booleans; a float with a fraction is not even a candidate.
fn bool_from_number(number: &Number) -> Result<bool, Failure> {
    if is_integer_literal(&number.to_string()) {
        return match number.as_i64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(bool_parsing()),
        };
    }
    let float = number.as_f64().unwrap_or(0.0);
    if float.fract() != 0.0 || float.abs() >= i64::MAX as f64 {
        return Err(bool_type());
    }
    if float == 0.0 {
        Ok(false)
    } else if float == 1.0 {
        Ok(true)
    } else {
        Err(bool_parsing())
    }
}

/// pydantic-core's `str_as_bool`: case-insensitive, not trimmed.
fn check_bool_str(text: &str) -> Result<bool, Failure> {
    const FALSE: [&str; 6] = ["0", "off", "f", "false", "n", "no"];
    const TRUE: [&str; 6] = ["1", "on", "t", "true", "y", "yes"];
    if FALSE.iter().any(|word| text.eq_ignore_ascii_case(word)) {
        Ok(false)
    } else if TRUE.iter().any(|word| text.eq_ignore_ascii_case(word)) {
        Ok(true)
    } else {
        Err(bool_parsing())
    }
}

fn check_uuid4(value: &Value) -> Result<Uuid, Failure> {
    match value {
        Value::String(text) => check_uuid4_str(text),
        _ => Err(uuid_type()),
    }
}

/// A UUID of version 4 and the RFC 4122 variant, in any form the `uuid` crate reads.
fn check_uuid4_str(text: &str) -> Result<Uuid, Failure> {
    let uuid = parse_uuid(text).map_err(|error| uuid_parsing(&error))?;
    if uuid.get_version_num() != 4 || uuid.get_variant() != uuid::Variant::RFC4122 {
        return Err(uuid_version());
    }
    Ok(uuid)
}

/// Reads a UUID as the `uuid` crate pinned by pydantic-core does: simple, hyphenated,
/// `{braced}` or `urn:uuid:` forms. Its error texts are older than the `uuid` crate in use
/// here, so they are rebuilt by `uuid_error_text`.
fn parse_uuid(text: &str) -> Result<Uuid, String> {
    let hex = match text.len() {
        32 | 36 => Some(text),
        38 => text
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}')),
        45 => text.strip_prefix("urn:uuid:"),
        _ => None,
    };
    hex.and_then(|hex| Uuid::try_parse(hex).ok())
        .ok_or_else(|| uuid_error_text(text))
}

/// The diagnosis of the older `uuid` crate: the first bad character (1-based byte
/// position), else the length of a simple UUID, else the hyphenated groups.
fn uuid_error_text(text: &str) -> String {
    let (hex, offset, simple) = if text.len() >= 2 && text.starts_with('{') && text.ends_with('}') {
        (&text[1..text.len() - 1], 1, false)
    } else if let Some(rest) = text.strip_prefix("urn:uuid:") {
        (rest, "urn:uuid:".len(), false)
    } else {
        (text, 0, true)
    };

    let mut hyphens = 0;
    let mut hyphen_positions = [0; 4];
    for (index, character) in hex.char_indices() {
        if character == '-' {
            if hyphens < 4 {
                hyphen_positions[hyphens] = index;
            }
            hyphens += 1;
        } else if !character.is_ascii_hexdigit() {
            return format!(
                "invalid character: found `{character}` at {}",
                index + offset + 1
            );
        }
    }

    if hyphens == 0 && simple {
        return format!(
            "invalid length: expected length 32 for simple format, found {}",
            text.len()
        );
    }
    if hyphens != 4 {
        return format!("invalid group count: expected 5, found {}", hyphens + 1);
    }
    const GROUP_STARTS: [usize; 5] = [0, 9, 14, 19, 24];
    const GROUP_LENGTHS: [usize; 5] = [8, 4, 4, 4, 12];
    for group in 0..4 {
        if hyphen_positions[group] != GROUP_STARTS[group + 1] - 1 {
            return format!(
                "invalid group length in group {group}: expected {}, found {}",
                GROUP_LENGTHS[group],
                hyphen_positions[group] - GROUP_STARTS[group]
            );
        }
    }
    // As in the original, the whole text's length is used here, wrapper included.
    format!(
        "invalid group length in group 4: expected 12, found {}",
        text.len() - GROUP_STARTS[4]
    )
}

// ---------------------------------------------------------------------------------------
// Python's JSON syntax errors
// ---------------------------------------------------------------------------------------

const EXPECTING_VALUE: &str = "Expecting value";
const EXPECTING_PROPERTY_NAME: &str = "Expecting property name enclosed in double quotes";
const EXPECTING_COLON: &str = "Expecting ':' delimiter";
const EXPECTING_COMMA: &str = "Expecting ',' delimiter";
const TRAILING_COMMA_OBJECT: &str = "Illegal trailing comma before end of object";
const TRAILING_COMMA_ARRAY: &str = "Illegal trailing comma before end of array";
const EXTRA_DATA: &str = "Extra data";
const UNTERMINATED_STRING: &str = "Unterminated string starting at";
const INVALID_CONTROL_CHARACTER: &str = "Invalid control character at";
const INVALID_ESCAPE: &str = "Invalid \\escape";
const INVALID_UNICODE_ESCAPE: &str = "Invalid \\uXXXX escape";

/// Beyond this nesting Python gives up with a `RecursionError`, not a syntax error.
const MAX_JSON_DEPTH: usize = 1000;

/// The first error Python 3.14's `json.loads` reports for `text`: the character offset
/// and the message. `None` when Python would read it.
fn python_json_error(text: &str) -> Option<(usize, &'static str)> {
    let mut scanner = JsonScanner {
        chars: text.chars().collect(),
        depth: 0,
    };
    let start = scanner.skip_whitespace(0);
    match scanner.value(start) {
        Ok(end) => {
            let end = scanner.skip_whitespace(end);
            (end != scanner.chars.len()).then_some((end, EXTRA_DATA))
        }
        Err(ScanError::Syntax(position, message)) => Some((position, message)),
        Err(ScanError::TooDeep) => None,
    }
}

enum ScanError {
    Syntax(usize, &'static str),
    TooDeep,
}

/// A syntax-only replica of CPython's C JSON scanner (`Modules/_json.c`). Each method takes
/// the position where its token starts and returns the position after it.
struct JsonScanner {
    chars: Vec<char>,
    depth: usize,
}

impl JsonScanner {
    fn at(&self, position: usize) -> Option<char> {
        self.chars.get(position).copied()
    }

    fn skip_whitespace(&self, mut position: usize) -> usize {
        while matches!(self.at(position), Some(' ' | '\t' | '\n' | '\r')) {
            position += 1;
        }
        position
    }

    fn value(&mut self, position: usize) -> Result<usize, ScanError> {
        match self.at(position) {
            Some('"') => self.string(position),
            Some('{') => self.nested(position, Self::object),
            Some('[') => self.nested(position, Self::array),
            _ => self.constant_or_number(position),
        }
    }

    fn nested(
        &mut self,
        position: usize,
        scan: fn(&mut Self, usize) -> Result<usize, ScanError>,
    ) -> Result<usize, ScanError> {
        if self.depth == MAX_JSON_DEPTH {
            return Err(ScanError::TooDeep);
        }
        self.depth += 1;
        let end = scan(self, position);
        self.depth -= 1;
        end
    }

    fn object(&mut self, open: usize) -> Result<usize, ScanError> {
        let mut position = self.skip_whitespace(open + 1);
        if self.at(position) == Some('}') {
            return Ok(position + 1);
        }
        loop {
            if self.at(position) != Some('"') {
                return Err(ScanError::Syntax(position, EXPECTING_PROPERTY_NAME));
            }
            position = self.skip_whitespace(self.string(position)?);
            if self.at(position) != Some(':') {
                return Err(ScanError::Syntax(position, EXPECTING_COLON));
            }
            position = self.skip_whitespace(position + 1);
            let end = self.value(position)?;
            position = self.skip_whitespace(end);
            match self.at(position) {
                Some('}') => return Ok(position + 1),
                Some(',') => {
                    let comma = position;
                    position = self.skip_whitespace(position + 1);
                    if self.at(position) == Some('}') {
                        return Err(ScanError::Syntax(comma, TRAILING_COMMA_OBJECT));
                    }
                }
                _ => return Err(ScanError::Syntax(position, EXPECTING_COMMA)),
            }
        }
    }

    fn array(&mut self, open: usize) -> Result<usize, ScanError> {
        let mut position = self.skip_whitespace(open + 1);
        if self.at(position) == Some(']') {
            return Ok(position + 1);
        }
        loop {
            let end = self.value(position)?;
            position = self.skip_whitespace(end);
            match self.at(position) {
                Some(']') => return Ok(position + 1),
                Some(',') => {
                    let comma = position;
                    position = self.skip_whitespace(position + 1);
                    if self.at(position) == Some(']') {
                        return Err(ScanError::Syntax(comma, TRAILING_COMMA_ARRAY));
                    }
                }
                _ => return Err(ScanError::Syntax(position, EXPECTING_COMMA)),
            }
        }
    }

    fn string(&self, quote: usize) -> Result<usize, ScanError> {
        let mut position = quote + 1;
        loop {
            match self.at(position) {
                None => return Err(ScanError::Syntax(quote, UNTERMINATED_STRING)),
                Some('"') => return Ok(position + 1),
                Some('\\') => position = self.escape(quote, position)?,
                Some(character) if u32::from(character) < 0x20 => {
                    return Err(ScanError::Syntax(position, INVALID_CONTROL_CHARACTER));
                }
                Some(_) => position += 1,
            }
        }
    }

    fn escape(&self, quote: usize, backslash: usize) -> Result<usize, ScanError> {
        match self.at(backslash + 1) {
            None => Err(ScanError::Syntax(quote, UNTERMINATED_STRING)),
            Some('u') => self.unicode_escape(backslash),
            Some('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') => Ok(backslash + 2),
            Some(_) => Err(ScanError::Syntax(backslash, INVALID_ESCAPE)),
        }
    }

    /// `\uXXXX`, possibly followed by the low half of a surrogate pair. CPython wants at
    /// least one character after the four digits, and reports at the `u`.
    fn unicode_escape(&self, backslash: usize) -> Result<usize, ScanError> {
        let digits = backslash + 2;
        let end = digits + 4;
        let invalid = ScanError::Syntax(backslash + 1, INVALID_UNICODE_ESCAPE);
        if end >= self.chars.len() {
            return Err(invalid);
        }
        let code = self.hex4(digits).ok_or(invalid)?;
        let is_high_surrogate = (0xD800..0xDC00).contains(&code);
        let pair_follows = end + 6 < self.chars.len()
            && self.at(end) == Some('\\')
            && self.at(end + 1) == Some('u');
        if is_high_surrogate && pair_follows {
            let low = self
                .hex4(end + 2)
                .ok_or(ScanError::Syntax(end + 1, INVALID_UNICODE_ESCAPE))?;
            if (0xDC00..0xE000).contains(&low) {
                return Ok(end + 6);
            }
        }
        Ok(end)
    }

    fn hex4(&self, start: usize) -> Option<u32> {
        (start..start + 4).try_fold(0, |code, position| {
            Some(code * 16 + self.at(position)?.to_digit(16)?)
        })
    }

    fn constant_or_number(&self, position: usize) -> Result<usize, ScanError> {
        // Python reads these constants too, though JSON has no such values.
        for constant in ["null", "true", "false", "NaN", "Infinity", "-Infinity"] {
            if self.starts_with(position, constant) {
                return Ok(position + constant.len());
            }
        }
        self.number(position)
    }

    fn starts_with(&self, position: usize, word: &str) -> bool {
        word.chars()
            .enumerate()
            .all(|(offset, character)| self.at(position + offset) == Some(character))
    }

    fn number(&self, start: usize) -> Result<usize, ScanError> {
        let mut position = start;
        if self.at(position) == Some('-') {
            position += 1;
        }
        match self.at(position) {
            Some('0') => position += 1,
            Some('1'..='9') => position = self.skip_digits(position + 1),
            _ => return Err(ScanError::Syntax(start, EXPECTING_VALUE)),
        }
        if self.at(position) == Some('.') && self.is_digit(position + 1) {
            position = self.skip_digits(position + 2);
        }
        if matches!(self.at(position), Some('e' | 'E')) {
            let mut exponent = position + 1;
            if matches!(self.at(exponent), Some('+' | '-')) {
                exponent += 1;
            }
            // Without digits the `e` is not part of the number.
            if self.is_digit(exponent) {
                position = self.skip_digits(exponent);
            }
        }
        Ok(position)
    }

    fn is_digit(&self, position: usize) -> bool {
        self.at(position)
            .is_some_and(|character| character.is_ascii_digit())
    }

    fn skip_digits(&self, mut position: usize) -> usize {
        while self.is_digit(position) {
            position += 1;
        }
        position
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    const V1: &str = "3fa85f64-5717-1562-b3fc-2c963f66afa6";

    fn issues_json(issues: &[ValidationIssue]) -> Value {
        serde_json::to_value(issues).unwrap()
    }

    fn body_issues_with(content_type: Option<&str>, body: &str) -> Value {
        match parse_refund_create(content_type, body.as_bytes()) {
            Err(BodyError::Invalid(issues)) => issues_json(&issues),
            Err(BodyError::Unreadable) => panic!("unreadable body: {body}"),
            Ok(create) => panic!("accepted body {body}: {create:?}"),
        }
    }

    fn body_issues(body: &str) -> Value {
        body_issues_with(Some("application/json"), body)
    }

    fn accepted(body: &str) -> RefundCreate {
        match parse_refund_create(Some("application/json"), body.as_bytes()) {
            Ok(create) => create,
            Err(BodyError::Invalid(issues)) => panic!("refused {body}: {}", issues_json(&issues)),
            Err(BodyError::Unreadable) => panic!("unreadable body: {body}"),
        }
    }

    /// A valid body with `extra` spliced in, e.g. `"amount": "10"` (later keys win).
    fn body_with(extra: &str) -> String {
        let base = format!(r#""order_id":"{V4}","reason":"customer_request","amount":100"#);
        if extra.is_empty() {
            format!("{{{base}}}")
        } else {
            format!("{{{base},{extra}}}")
        }
    }

    fn query_issues(query: &str) -> Value {
        match parse_list_query(Some(query)) {
            Err(issues) => issues_json(&issues),
            Ok(parsed) => panic!("accepted query {query}: {parsed:?}"),
        }
    }

    fn query(query: &str) -> ListQuery {
        match parse_list_query(Some(query)) {
            Ok(parsed) => parsed,
            Err(issues) => panic!("refused {query}: {}", issues_json(&issues)),
        }
    }

    // --- CONTRACT §4.1 ---------------------------------------------------------------

    #[test]
    fn a_nul_in_a_free_text_filter_is_refused() {
        let issues = parse_list_query(Some("external_customer_id=ok&external_customer_id=a%00b"))
            .unwrap_err();
        assert_eq!(
            serde_json::to_value(&issues).unwrap(),
            json!([{"type": "value_error", "loc": ["query", "external_customer_id", 1],
                    "msg": "Value error, This value contains invalid characters", "input": "a\u{0}b", "ctx": {"error": {}}}])
        );
    }

    #[test]
    fn no_body_is_missing() {
        let expected =
            json!([{"type":"missing","loc":["body"],"msg":"Field required","input":null}]);
        assert_eq!(body_issues(""), expected);
        assert_eq!(body_issues("null"), expected);
        assert_eq!(body_issues_with(None, ""), expected);
        assert_eq!(body_issues_with(Some("text/plain"), ""), expected);
    }

    #[test]
    fn empty_object_lists_the_required_fields() {
        assert_eq!(
            body_issues("{}"),
            json!([
                {"type":"missing","loc":["body","order_id"],"msg":"Field required","input":{}},
                {"type":"missing","loc":["body","reason"],"msg":"Field required","input":{}},
                {"type":"missing","loc":["body","amount"],"msg":"Field required","input":{}}
            ])
        );
    }

    #[test]
    fn missing_field_echoes_the_whole_body() {
        let body = format!(r#"{{"order_id":"{V4}","amount":5,"extra":true}}"#);
        assert_eq!(
            body_issues(&body),
            json!([{"type":"missing","loc":["body","reason"],"msg":"Field required",
                    "input":{"order_id":V4,"amount":5,"extra":true}}])
        );
    }

    #[test]
    fn invalid_json_is_a_json_decode_error() {
        assert_eq!(
            body_issues("{bad"),
            json!([{"type":"json_invalid","loc":["body",1],"msg":"JSON decode error","input":{},
                    "ctx":{"error":"Expecting property name enclosed in double quotes"}}])
        );
    }

    #[test]
    fn json_array_is_not_a_model() {
        assert_eq!(
            body_issues("[1]"),
            json!([{"type":"model_attributes_type","loc":["body"],
                    "msg":"Input should be a valid dictionary or object to extract fields from","input":[1]}])
        );
        assert_eq!(body_issues("5")[0]["input"], json!(5));
        assert_eq!(body_issues(r#""text""#)[0]["input"], json!("text"));
        assert_eq!(
            body_issues("true")[0]["type"],
            json!("model_attributes_type")
        );
    }

    #[test]
    fn amount_zero_is_not_greater_than_zero() {
        assert_eq!(
            body_issues(&body_with(r#""amount":0"#)),
            json!([{"type":"greater_than","loc":["body","amount"],"msg":"Input should be greater than 0",
                    "input":0,"ctx":{"gt":0}}])
        );
    }

    #[test]
    fn amount_with_a_fraction_is_not_an_integer() {
        assert_eq!(
            body_issues(&body_with(r#""amount":10.5"#)),
            json!([{"type":"int_from_float","loc":["body","amount"],
                    "msg":"Input should be a valid integer, got a number with a fractional part","input":10.5}])
        );
    }

    #[test]
    fn amount_null_is_not_an_integer() {
        assert_eq!(
            body_issues(&body_with(r#""amount":null"#)),
            json!([{"type":"int_type","loc":["body","amount"],"msg":"Input should be a valid integer","input":null}])
        );
    }

    #[test]
    fn order_id_that_is_not_a_uuid() {
        assert_eq!(
            body_issues(&body_with(r#""order_id":"abc""#)),
            json!([{"type":"uuid_parsing","loc":["body","order_id"],
                    "msg":"Input should be a valid UUID, invalid length: expected length 32 for simple format, found 3",
                    "input":"abc","ctx":{"error":"invalid length: expected length 32 for simple format, found 3"}}])
        );
    }

    #[test]
    fn order_id_of_version_1() {
        assert_eq!(
            body_issues(&body_with(&format!(r#""order_id":"{V1}""#))),
            json!([{"type":"uuid_version","loc":["body","order_id"],"msg":"UUID version 4 expected",
                    "input":V1,"ctx":{"expected_version":4}}])
        );
    }

    #[test]
    fn reason_dispute_prevention_is_refused() {
        let expected_text = "<RefundReason.duplicate: 'duplicate'>, <RefundReason.fraudulent: 'fraudulent'>, <RefundReason.customer_request: 'customer_request'>, <RefundReason.service_disruption: 'service_disruption'>, <RefundReason.satisfaction_guarantee: 'satisfaction_guarantee'> or <RefundReason.other: 'other'>";
        assert_eq!(
            body_issues(&body_with(r#""reason":"dispute_prevention""#)),
            json!([{"type":"literal_error","loc":["body","reason"],
                    "msg":format!("Input should be {expected_text}"),
                    "input":"dispute_prevention","ctx":{"expected":expected_text}}])
        );
        assert_eq!(
            body_issues(&body_with(r#""reason":5"#))[0]["input"],
            json!(5)
        );
        assert_eq!(
            body_issues(&body_with(r#""reason":"Duplicate""#))[0]["type"],
            json!("literal_error")
        );
    }

    #[test]
    fn comment_with_nul_is_refused() {
        assert_eq!(
            body_issues(&body_with(r#""comment":"a\u0000b""#)),
            json!([{"type":"value_error","loc":["body","comment"],
                    "msg":"Value error, This value contains invalid characters","input":"a\u{0}b","ctx":{"error":{}}}])
        );
    }

    #[test]
    fn metadata_value_too_long_reports_every_union_branch() {
        let long = "x".repeat(501);
        let body = body_with(&format!(r#""metadata":{{"note":"{long}"}}"#));
        assert_eq!(
            body_issues(&body),
            json!([
                {"type":"string_too_long","loc":["body","metadata","note","constrained-str"],
                 "msg":"String should have at most 500 characters","input":long,"ctx":{"max_length":500}},
                {"type":"int_parsing","loc":["body","metadata","note","int"],
                 "msg":"Input should be a valid integer, unable to parse string as an integer","input":long},
                {"type":"float_parsing","loc":["body","metadata","note","float"],
                 "msg":"Input should be a valid number, unable to parse string as a number","input":long},
                {"type":"bool_parsing","loc":["body","metadata","note","bool"],
                 "msg":"Input should be a valid boolean, unable to interpret input","input":long}
            ])
        );
    }

    #[test]
    fn metadata_key_too_long() {
        let key = "k".repeat(41);
        let body = body_with(&format!(r#""metadata":{{"{key}":"v"}}"#));
        assert_eq!(
            body_issues(&body),
            json!([{"type":"string_too_long","loc":["body","metadata",key,"[key]"],
                    "msg":"String should have at most 40 characters","input":key,"ctx":{"max_length":40}}])
        );
    }

    // --- CONTRACT §4.2 ---------------------------------------------------------------

    #[test]
    fn page_and_limit_zero() {
        assert_eq!(
            query_issues("page=0&limit=0"),
            json!([
                {"type":"greater_than","loc":["query","page"],"msg":"Input should be greater than 0","input":"0","ctx":{"gt":0}},
                {"type":"greater_than","loc":["query","limit"],"msg":"Input should be greater than 0","input":"0","ctx":{"gt":0}}
            ])
        );
    }

    #[test]
    fn page_that_is_not_a_number() {
        assert_eq!(
            query_issues("page=abc"),
            json!([{"type":"int_parsing","loc":["query","page"],
                    "msg":"Input should be a valid integer, unable to parse string as an integer","input":"abc"}])
        );
    }

    #[test]
    fn unknown_or_empty_sorting() {
        let expected = |input: &str| {
            json!([{"type":"enum","loc":["query","sorting",0],
                    "msg":"Input should be 'created_at', '-created_at', 'amount' or '-amount'","input":input,
                    "ctx":{"expected":"'created_at', '-created_at', 'amount' or '-amount'"}}])
        };
        assert_eq!(query_issues("sorting=foo"), expected("foo"));
        assert_eq!(query_issues("sorting="), expected(""));
    }

    #[test]
    fn succeeded_that_is_not_a_boolean() {
        assert_eq!(
            query_issues("succeeded=maybe"),
            json!([{"type":"bool_parsing","loc":["query","succeeded"],
                    "msg":"Input should be a valid boolean, unable to interpret input","input":"maybe"}])
        );
    }

    #[test]
    fn id_that_is_not_a_uuid_reports_both_union_branches() {
        assert_eq!(
            query_issues("id=xyz"),
            json!([
                {"type":"uuid_type","loc":["query","id","uuid"],
                 "msg":"UUID input should be a string, bytes or UUID object","input":["xyz"]},
                {"type":"uuid_parsing","loc":["query","id",UUID_LIST_BRANCH,0],
                 "msg":"Input should be a valid UUID, invalid character: found `x` at 1","input":"xyz",
                 "ctx":{"error":"invalid character: found `x` at 1"}}
            ])
        );
    }

    // --- Body coercions --------------------------------------------------------------

    #[test]
    fn a_valid_body_with_defaults() {
        let create = accepted(&body_with(""));
        assert_eq!(create.order_id.to_string(), V4);
        assert_eq!(create.reason, RefundReason::CustomerRequest);
        assert_eq!(create.amount, 100);
        assert_eq!(create.amount_input, json!(100));
        assert_eq!(create.comment, None);
        assert!(!create.revoke_benefits);
        assert!(create.metadata.is_empty());
    }

    #[test]
    fn every_field_set() {
        let create = accepted(&body_with(
            r#""comment":"late","revoke_benefits":true,"metadata":{"a":"x","b":2,"c":1.5,"d":false},"unknown":[1]"#,
        ));
        assert_eq!(create.comment.as_deref(), Some("late"));
        assert!(create.revoke_benefits);
        assert_eq!(
            Value::Object(create.metadata),
            json!({"a":"x","b":2,"c":1.5,"d":false})
        );
    }

    #[test]
    fn every_manual_reason_is_accepted() {
        for reason in [
            "duplicate",
            "fraudulent",
            "customer_request",
            "service_disruption",
            "satisfaction_guarantee",
            "other",
        ] {
            let create = accepted(&body_with(&format!(r#""reason":"{reason}""#)));
            assert_eq!(create.reason.as_str(), reason);
        }
    }

    #[test]
    fn amount_coercions() {
        let amount = |raw: &str| accepted(&body_with(&format!(r#""amount":{raw}"#)));
        assert_eq!(amount(r#""10""#).amount, 10);
        assert_eq!(amount(r#""10""#).amount_input, json!("10"));
        assert_eq!(amount("10.0").amount, 10);
        assert_eq!(amount("10.0").amount_input, json!(10.0));
        assert_eq!(amount("true").amount, 1);
        assert_eq!(amount(r#"" 42 ""#).amount, 42);
        assert_eq!(amount(r#""+7""#).amount, 7);
        assert_eq!(amount(r#""007""#).amount, 7);
        assert_eq!(amount(r#""12.00""#).amount, 12);
        assert_eq!(amount(r#""1_000""#).amount, 1000);
        assert_eq!(amount("9223372036854775808").amount, i64::MAX);
        assert_eq!(amount("100000000000000000000000").amount, i64::MAX);
        assert_eq!(amount(r#""99999999999999999999""#).amount, i64::MAX);
    }

    #[test]
    fn amount_refusals() {
        let issue = |raw: &str| body_issues(&body_with(&format!(r#""amount":{raw}"#)))[0].clone();
        assert_eq!(issue("false")["type"], json!("greater_than"));
        assert_eq!(issue("false")["input"], json!(false));
        assert_eq!(issue("-5")["type"], json!("greater_than"));
        assert_eq!(issue(r#""0""#)["input"], json!("0"));
        assert_eq!(issue(r#""ten""#)["type"], json!("int_parsing"));
        assert_eq!(issue(r#""10.5""#)["type"], json!("int_parsing"));
        assert_eq!(issue(r#""1__0""#)["type"], json!("int_parsing"));
        assert_eq!(issue(r#""""#)["type"], json!("int_parsing"));
        assert_eq!(issue("[10]")["type"], json!("int_type"));
        assert_eq!(issue(r#"{"v":1}"#)["type"], json!("int_type"));
        assert_eq!(
            issue(&format!(r#""{}""#, "1".repeat(4301)))["type"],
            json!("int_parsing_size")
        );
    }

    #[test]
    fn order_id_forms() {
        let order_id = |raw: &str| accepted(&body_with(&format!(r#""order_id":{raw}"#))).order_id;
        let expected: Uuid = V4.parse().unwrap();
        assert_eq!(order_id(&format!(r#""{}""#, V4.to_uppercase())), expected);
        assert_eq!(order_id(&format!(r#""{}""#, V4.replace('-', ""))), expected);
        assert_eq!(order_id(&format!(r#""{{{V4}}}""#)), expected);
        assert_eq!(order_id(&format!(r#""urn:uuid:{V4}""#)), expected);
    }

    #[test]
    fn order_id_refusals() {
        let issue = |raw: &str| body_issues(&body_with(&format!(r#""order_id":{raw}"#)))[0].clone();
        assert_eq!(
            issue("12"),
            json!({"type":"uuid_type","loc":["body","order_id"],
                   "msg":"UUID input should be a string, bytes or UUID object","input":12})
        );
        assert_eq!(issue("null")["type"], json!("uuid_type"));
        // Version 4 but not the RFC 4122 variant.
        assert_eq!(
            issue(r#""3fa85f64-5717-4562-03fc-2c963f66afa6""#)["type"],
            json!("uuid_version")
        );
        assert_eq!(
            issue(r#""00000000-0000-0000-0000-000000000000""#)["type"],
            json!("uuid_version")
        );
    }

    #[test]
    fn uuid_error_texts_follow_pydantic_core() {
        let text = |input: &str| parse_uuid(input).unwrap_err();
        assert_eq!(
            text("abc"),
            "invalid length: expected length 32 for simple format, found 3"
        );
        assert_eq!(
            text(""),
            "invalid length: expected length 32 for simple format, found 0"
        );
        assert_eq!(text("xyz"), "invalid character: found `x` at 1");
        assert_eq!(
            text("3fa85f64-5717-4562-b3fc-2c963f66afaz"),
            "invalid character: found `z` at 36"
        );
        assert_eq!(
            text("3fa85f64-5717-4562-b3fc"),
            "invalid group count: expected 5, found 4"
        );
        assert_eq!(
            text("3fa85f6-45717-4562-b3fc-2c963f66afa6"),
            "invalid group length in group 0: expected 8, found 7"
        );
        assert_eq!(
            text("3fa85f64-5717-4562-b3fc-2c963f66afa67"),
            "invalid group length in group 4: expected 12, found 13"
        );
        assert_eq!(
            text("{3fa85f64}"),
            "invalid group count: expected 5, found 1"
        );
        assert_eq!(text("urn:uuid:zz"), "invalid character: found `z` at 10");
        assert_eq!(
            text("3fa85f64-5717-4562-b3fc-2c963f66afé"),
            "invalid character: found `é` at 35"
        );
    }

    #[test]
    fn revoke_benefits_coercions() {
        let revoke = |raw: &str| {
            accepted(&body_with(&format!(r#""revoke_benefits":{raw}"#))).revoke_benefits
        };
        for raw in [
            r#""yes""#,
            r#""TRUE""#,
            r#""on""#,
            r#""t""#,
            r#""y""#,
            r#""1""#,
            "1",
            "1.0",
            "true",
        ] {
            assert!(revoke(raw), "{raw}");
        }
        for raw in [
            r#""no""#,
            r#""False""#,
            r#""off""#,
            r#""f""#,
            r#""n""#,
            r#""0""#,
            "0",
            "0.0",
            "false",
        ] {
            assert!(!revoke(raw), "{raw}");
        }
    }

    #[test]
    fn revoke_benefits_refusals() {
        let issue =
            |raw: &str| body_issues(&body_with(&format!(r#""revoke_benefits":{raw}"#)))[0].clone();
        assert_eq!(
            issue(r#""maybe""#),
            json!({"type":"bool_parsing","loc":["body","revoke_benefits"],
                   "msg":"Input should be a valid boolean, unable to interpret input","input":"maybe"})
        );
        assert_eq!(issue(r#"" yes""#)["type"], json!("bool_parsing"));
        assert_eq!(issue("2")["type"], json!("bool_parsing"));
        assert_eq!(issue("2.0")["type"], json!("bool_parsing"));
        assert_eq!(issue("0.5")["type"], json!("bool_type"));
        assert_eq!(
            issue("null"),
            json!({"type":"bool_type","loc":["body","revoke_benefits"],"msg":"Input should be a valid boolean","input":null})
        );
        assert_eq!(issue("[]")["type"], json!("bool_type"));
    }

    #[test]
    fn comment_refusals() {
        assert_eq!(accepted(&body_with(r#""comment":null"#)).comment, None);
        assert_eq!(
            body_issues(&body_with(r#""comment":5"#)),
            json!([{"type":"string_type","loc":["body","comment"],"msg":"Input should be a valid string","input":5}])
        );
    }

    #[test]
    fn every_field_error_is_reported_in_declaration_order() {
        let body = r#"{"amount":"x","reason":1,"order_id":7,"metadata":[],"comment":false,"revoke_benefits":{}}"#;
        let types: Vec<Value> = body_issues(body)
            .as_array()
            .unwrap()
            .iter()
            .map(|issue| json!([issue["loc"][1], issue["type"]]))
            .collect();
        assert_eq!(
            types,
            vec![
                json!(["metadata", "dict_type"]),
                json!(["order_id", "uuid_type"]),
                json!(["reason", "literal_error"]),
                json!(["amount", "int_parsing"]),
                json!(["comment", "string_type"]),
                json!(["revoke_benefits", "bool_type"]),
            ]
        );
    }

    #[test]
    fn metadata_that_is_not_an_object() {
        assert_eq!(
            body_issues(&body_with(r#""metadata":null"#)),
            json!([{"type":"dict_type","loc":["body","metadata"],"msg":"Input should be a valid dictionary","input":null}])
        );
    }

    #[test]
    fn metadata_with_too_many_keys() {
        let entries: Vec<String> = (0..51)
            .map(|index| format!(r#""k{index}":{index}"#))
            .collect();
        let metadata = format!("{{{}}}", entries.join(","));
        let issues = body_issues(&body_with(&format!(r#""metadata":{metadata}"#)));
        assert_eq!(
            issues,
            json!([{"type":"too_long","loc":["body","metadata"],
                    "msg":"Dictionary should have at most 50 items after validation, not 51",
                    "input":serde_json::from_str::<Value>(&metadata).unwrap(),
                    "ctx":{"field_type":"Dictionary","max_length":50,"actual_length":51}}])
        );
        let fifty: Vec<String> = (0..50)
            .map(|index| format!(r#""k{index}":{index}"#))
            .collect();
        let create = accepted(&body_with(&format!(
            r#""metadata":{{{}}}"#,
            fifty.join(",")
        )));
        assert_eq!(create.metadata.len(), 50);
    }

    #[test]
    fn metadata_empty_key_and_empty_value() {
        assert_eq!(
            body_issues(&body_with(r#""metadata":{"":"v","k":""}"#)),
            json!([
                {"type":"string_too_short","loc":["body","metadata","","[key]"],
                 "msg":"String should have at least 1 character","input":"","ctx":{"min_length":1}},
                {"type":"string_too_short","loc":["body","metadata","k","constrained-str"],
                 "msg":"String should have at least 1 character","input":"","ctx":{"min_length":1}},
                {"type":"int_parsing","loc":["body","metadata","k","int"],
                 "msg":"Input should be a valid integer, unable to parse string as an integer","input":""},
                {"type":"float_parsing","loc":["body","metadata","k","float"],
                 "msg":"Input should be a valid number, unable to parse string as a number","input":""},
                {"type":"bool_parsing","loc":["body","metadata","k","bool"],
                 "msg":"Input should be a valid boolean, unable to interpret input","input":""}
            ])
        );
    }

    #[test]
    fn metadata_value_of_no_accepted_type() {
        assert_eq!(
            body_issues(&body_with(r#""metadata":{"k":null}"#)),
            json!([
                {"type":"string_type","loc":["body","metadata","k","constrained-str"],"msg":"Input should be a valid string","input":null},
                {"type":"int_type","loc":["body","metadata","k","int"],"msg":"Input should be a valid integer","input":null},
                {"type":"float_type","loc":["body","metadata","k","float"],"msg":"Input should be a valid number","input":null},
                {"type":"bool_type","loc":["body","metadata","k","bool"],"msg":"Input should be a valid boolean","input":null}
            ])
        );
        assert_eq!(
            body_issues(&body_with(r#""metadata":{"k":[1]}"#))
                .as_array()
                .unwrap()
                .len(),
            4
        );
    }

    #[test]
    fn metadata_values_keep_their_type() {
        let create = accepted(&body_with(
            r#""metadata":{"s":"12","i":12,"f":10.0,"b":true,"é":"ü"}"#,
        ));
        assert_eq!(
            Value::Object(create.metadata),
            json!({"s":"12","i":12,"f":10.0,"b":true,"é":"ü"})
        );
        // Character counts, not bytes: 40 two-byte characters are a valid key.
        let key = "é".repeat(40);
        assert_eq!(
            accepted(&body_with(&format!(r#""metadata":{{"{key}":1}}"#)))
                .metadata
                .len(),
            1
        );
    }

    #[test]
    fn metadata_long_numeric_string_becomes_a_number() {
        let padded = format!("{}7", " ".repeat(600));
        let create = accepted(&body_with(&format!(r#""metadata":{{"n":"{padded}"}}"#)));
        assert_eq!(create.metadata["n"], json!(7));
        let fraction = format!("{}1.5", " ".repeat(600));
        let create = accepted(&body_with(&format!(r#""metadata":{{"n":"{fraction}"}}"#)));
        assert_eq!(create.metadata["n"], json!(1.5));
    }

    #[test]
    fn metadata_with_nul_is_refused_on_the_whole_field() {
        let expected = |input: Value| {
            json!([{"type":"value_error","loc":["body","metadata"],
                    "msg":"Value error, This value contains invalid characters","input":input,"ctx":{"error":{}}}])
        };
        assert_eq!(
            body_issues(&body_with(r#""metadata":{"k":"a\u0000"}"#)),
            expected(json!({"k":"a\u{0}"}))
        );
        assert_eq!(
            body_issues(&body_with(r#""metadata":{"k\u0000":1}"#)),
            expected(json!({"k\u{0}":1}))
        );
    }

    #[test]
    fn later_duplicate_keys_win() {
        let create = accepted(&body_with(r#""amount":7,"amount":8"#));
        assert_eq!(create.amount, 8);
    }

    // --- Content type and bytes --------------------------------------------------------

    #[test]
    fn json_media_types() {
        for content_type in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            " application/json ;charset=UTF-8",
            "application/vnd.api+json",
            "application/merge-patch+json",
        ] {
            assert!(is_json_media_type(Some(content_type)), "{content_type}");
        }
        for content_type in [
            "",
            "text/plain",
            "application/xml",
            "text/json",
            "application/json/x",
            "json",
        ] {
            assert!(!is_json_media_type(Some(content_type)), "{content_type}");
        }
        assert!(!is_json_media_type(None));
    }

    #[test]
    fn a_body_that_is_not_json_is_echoed_as_text() {
        let body = body_with("");
        let expected = json!([{"type":"model_attributes_type","loc":["body"],
                               "msg":"Input should be a valid dictionary or object to extract fields from",
                               "input":body}]);
        assert_eq!(body_issues_with(Some("text/plain"), &body), expected);
        assert_eq!(body_issues_with(None, &body), expected);
        assert_eq!(
            body_issues_with(Some("application/x-www-form-urlencoded"), "a=1")[0]["input"],
            json!("a=1")
        );
    }

    #[test]
    fn invalid_utf8_is_unreadable() {
        let result = parse_refund_create(Some("application/json"), b"{\"a\":\"\xff\"}");
        assert!(matches!(result, Err(BodyError::Unreadable)));
    }

    #[test]
    fn json_that_python_reads_but_serde_cannot_is_unreadable() {
        let result = parse_refund_create(Some("application/json"), br#"{"amount":NaN}"#);
        assert!(matches!(result, Err(BodyError::Unreadable)));
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let body = format!("\u{feff}{}", body_with(""));
        assert!(parse_refund_create(Some("application/json"), body.as_bytes()).is_ok());
        assert_eq!(body_issues("\u{feff}{x")[0]["loc"], json!(["body", 1]));
    }

    #[test]
    fn whitespace_only_json_body() {
        assert_eq!(
            body_issues("  "),
            json!([{"type":"json_invalid","loc":["body",2],"msg":"JSON decode error","input":{},
                    "ctx":{"error":"Expecting value"}}])
        );
    }

    #[test]
    fn python_json_errors() {
        // Expected values are CPython 3.14's `json.loads` (message, position).
        let cases: &[(&str, &str, usize)] = &[
            ("", EXPECTING_VALUE, 0),
            ("   ", EXPECTING_VALUE, 3),
            ("{", EXPECTING_PROPERTY_NAME, 1),
            ("{42", EXPECTING_PROPERTY_NAME, 1),
            ("[{]", EXPECTING_PROPERTY_NAME, 2),
            ("[", EXPECTING_VALUE, 1),
            (r#"{"spam","#, EXPECTING_COLON, 7),
            (r#"{"spam"}"#, EXPECTING_COLON, 7),
            (r#"[{"spam"]"#, EXPECTING_COLON, 8),
            (r#"{"spam":}"#, EXPECTING_VALUE, 8),
            (r#"[{"spam":]"#, EXPECTING_VALUE, 9),
            (r#"{"spam":42 "ham""#, EXPECTING_COMMA, 11),
            (r#"[{"spam":42]"#, EXPECTING_COMMA, 11),
            (r#"{"spam":42,}"#, TRAILING_COMMA_OBJECT, 10),
            (r#"{"spam":42 , }"#, TRAILING_COMMA_OBJECT, 11),
            ("[123  , ]", TRAILING_COMMA_ARRAY, 6),
            (r#"{"a":01}"#, EXPECTING_COMMA, 6),
            (r#"{"a":1}x"#, EXTRA_DATA, 7),
            ("{\"a\":1}\n\n x", EXTRA_DATA, 10),
            (r#"{"a":"x"#, UNTERMINATED_STRING, 5),
            (r#"{"a":"\q"}"#, INVALID_ESCAPE, 6),
            (r#"{"a":"\uZZZZ"}"#, INVALID_UNICODE_ESCAPE, 7),
            (r#"{"a":"\u12"#, INVALID_UNICODE_ESCAPE, 7),
            (r#"{"a":"\ud800\uZZZZ"}"#, INVALID_UNICODE_ESCAPE, 13),
            ("{\"a\":\"a\tb\"}", INVALID_CONTROL_CHARACTER, 7),
            ("{\"a\":\"\u{1F600}\"x}", EXPECTING_COMMA, 8),
            ("[-]", EXPECTING_VALUE, 1),
            ("[1.]", EXPECTING_COMMA, 2),
            ("[1e]", EXPECTING_COMMA, 2),
            ("[nul]", EXPECTING_VALUE, 1),
            ("[1,2", EXPECTING_COMMA, 4),
        ];
        for (text, message, position) in cases {
            assert_eq!(
                python_json_error(text),
                Some((*position, *message)),
                "{text}"
            );
        }
    }

    #[test]
    fn python_reads_what_serde_json_refuses() {
        for text in [
            "[NaN, Infinity, -Infinity]",
            r#"["\ud800"]"#,
            "[1e400]",
            "[1.5e+3, -0, 0.25]",
            r#"{"a":"\ud83d\ude00"}"#,
        ] {
            assert_eq!(python_json_error(text), None, "{text}");
        }
        let deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
        assert_eq!(python_json_error(&deep), None);
    }

    // --- Query ---------------------------------------------------------------------

    #[test]
    fn empty_query_has_the_defaults() {
        let parsed = query("");
        assert_eq!(parsed, parse_list_query(None).unwrap());
        assert_eq!(parsed.page, 1);
        assert_eq!(parsed.limit, DEFAULT_LIMIT);
        assert_eq!(parsed.sorting, vec![RefundSort::CreatedAtDesc]);
        assert_eq!(parsed.succeeded, None);
        assert!(parsed.ids.is_empty() && parsed.external_customer_ids.is_empty());
    }

    #[test]
    fn limit_above_the_maximum_is_clamped() {
        assert_eq!(query("limit=500").limit, MAX_LIMIT);
        assert_eq!(query("limit=100").limit, 100);
        assert_eq!(query("limit=99999999999999999999").limit, MAX_LIMIT);
    }

    #[test]
    fn the_last_page_wins() {
        assert_eq!(query("page=2&page=3").page, 3);
        assert_eq!(query("page=abc&page=3").page, 3);
        assert_eq!(query("page=+4").page, 4);
        assert_eq!(query("page=%204%20").page, 4);
        assert_eq!(query("page=5.0").page, 5);
    }

    #[test]
    fn repeated_and_single_filters() {
        let other = "6f0d0a5e-9d2b-4c1e-8f3a-1b2c3d4e5f60";
        let parsed = query(&format!(
            "order_id={V4}&order_id={other}&customer_id={V4}&external_customer_id=a,b&external_customer_id=c+d"
        ));
        assert_eq!(
            parsed.order_ids,
            vec![V4.parse::<Uuid>().unwrap(), other.parse().unwrap()]
        );
        assert_eq!(parsed.customer_ids, vec![V4.parse::<Uuid>().unwrap()]);
        assert_eq!(
            parsed.external_customer_ids,
            vec!["a,b".to_owned(), "c d".to_owned()]
        );
        assert_eq!(
            query(&format!("id={}", V4.to_uppercase())).ids,
            vec![V4.parse::<Uuid>().unwrap()]
        );
        assert_eq!(query(&format!("id={}", V4.replace('-', ""))).ids.len(), 1);
        // Bracketed keys are other keys to Starlette: ignored.
        assert!(query("id[]=xyz&unknown=1").ids.is_empty());
    }

    #[test]
    fn comma_separated_ids_are_one_bad_value() {
        let value = format!("{V4},{V4}");
        let issues = query_issues(&format!("subscription_id={value}"));
        assert_eq!(issues[0]["input"], json!([value]));
        assert_eq!(
            issues[1]["msg"],
            json!("Input should be a valid UUID, invalid character: found `,` at 37")
        );
    }

    #[test]
    fn only_the_bad_ids_are_listed() {
        assert_eq!(
            query_issues(&format!(
                "organization_id={V4}&organization_id={V1}&organization_id=nope"
            )),
            json!([
                {"type":"uuid_type","loc":["query","organization_id","uuid"],
                 "msg":"UUID input should be a string, bytes or UUID object","input":[V4, V1, "nope"]},
                {"type":"uuid_version","loc":["query","organization_id",UUID_LIST_BRANCH,1],
                 "msg":"UUID version 4 expected","input":V1,"ctx":{"expected_version":4}},
                {"type":"uuid_parsing","loc":["query","organization_id",UUID_LIST_BRANCH,2],
                 "msg":"Input should be a valid UUID, invalid character: found `n` at 1","input":"nope",
                 "ctx":{"error":"invalid character: found `n` at 1"}}
            ])
        );
    }

    #[test]
    fn succeeded_values() {
        assert_eq!(query("succeeded=true").succeeded, Some(true));
        assert_eq!(query("succeeded=No").succeeded, Some(false));
        assert_eq!(query("succeeded=1").succeeded, Some(true));
        assert_eq!(query("succeeded=maybe&succeeded=yes").succeeded, Some(true));
        assert_eq!(query_issues("succeeded=")[0]["input"], json!(""));
    }

    #[test]
    fn sorting_is_repeated_in_order() {
        assert_eq!(
            query("sorting=amount&sorting=-created_at").sorting,
            vec![RefundSort::Amount, RefundSort::CreatedAtDesc]
        );
        let issues = query_issues("sorting=amount&sorting=bad&sorting=-amount,amount");
        assert_eq!(issues[0]["loc"], json!(["query", "sorting", 1]));
        assert_eq!(issues[1]["loc"], json!(["query", "sorting", 2]));
    }

    #[test]
    fn query_errors_come_in_dependency_then_parameter_order() {
        let issues = query_issues(
            "succeeded=x&external_customer_id=&customer_id=1&id=2&sorting=x&limit=-1&page=z",
        );
        let fields: Vec<Value> = issues
            .as_array()
            .unwrap()
            .iter()
            .map(|issue| issue["loc"][1].clone())
            .collect();
        assert_eq!(
            fields,
            vec![
                json!("page"),
                json!("limit"),
                json!("sorting"),
                json!("id"),
                json!("id"),
                json!("customer_id"),
                json!("customer_id"),
                json!("succeeded"),
            ]
        );
    }

    #[test]
    fn int_strings_follow_pydantic_core() {
        for (text, expected) in [
            ("0", 0),
            ("-0", 0),
            ("00", 0),
            ("-05", -5),
            ("0_0_5", 5),
            ("5_000.00", 5000),
            ("\t8\n", 8),
        ] {
            assert_eq!(check_int_str(text), Ok(expected), "{text}");
        }
        for text in [
            "", " ", "+-1", "--1", "-+1", "1.5", "5.", ".5", "1e3", "0x10", "_1", "1_", "1__0", "١",
        ] {
            assert_eq!(check_int_str(text), Err(int_parsing()), "{text}");
        }
        assert_eq!(check_int_str("-99999999999999999999"), Ok(i64::MIN));
    }
}
