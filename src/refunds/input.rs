//! The inputs of `/v1/refunds/` that only refunds have: the `RefundCreate` fields and the
//! list query's keys and sort criteria. Reading them is `polar::parse`'s, so failures are
//! reported as FastAPI + pydantic 2 report them, issue for issue.

use serde_json::{Map, Value};

use super::model::{DEFAULT_LIMIT, ListQuery, MAX_LIMIT, RefundCreate, RefundSort};
use crate::domain::{RefundReason, RequestedAmount};
use crate::loc;
pub use crate::polar::parse::BodyError;
use crate::polar::parse::{
    Failure, Issues, QueryParams, check_bool, check_bool_str, check_float_str, check_int,
    check_int_str, check_str_length, check_uuid4, query_optional_bool, query_positive_int,
    query_sorting, query_string_list, query_uuid_list, read_model_body,
};
use crate::polar::validation::ValidationIssue;

/// Parses and validates the body of `POST /v1/refunds/`.
pub fn parse_refund_create(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<RefundCreate, BodyError> {
    let body = read_model_body(content_type, body)?;
    validate_fields(&body).map_err(BodyError::Invalid)
}

/// Parses and validates the query of `GET /v1/refunds/`.
pub fn parse_list_query(raw_query: Option<&str>) -> Result<ListQuery, Vec<ValidationIssue>> {
    let params = QueryParams::parse(raw_query.unwrap_or(""));
    let mut issues = Issues::default();
    // Pagination and sorting are dependencies, validated before the endpoint's own filters.
    let page = issues.take(query_positive_int(&params, "page", 1));
    let limit = issues.take(query_positive_int(&params, "limit", DEFAULT_LIMIT));
    let sorting = issues.take(query_sorting(
        &params,
        SORT_CRITERIA,
        &[RefundSort::CreatedAtDesc],
    ));
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
        return Err(issues.into_vec());
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

/// The sort criteria by the names clients give them, in the order pydantic lists them.
const SORT_CRITERIA: &[(&str, RefundSort)] = &[
    ("created_at", RefundSort::CreatedAt),
    ("-created_at", RefundSort::CreatedAtDesc),
    ("amount", RefundSort::Amount),
    ("-amount", RefundSort::AmountDesc),
];

/// The accepted reasons as pydantic lists them: the `Literal` holds `StrEnum` members, so
/// their Python reprs end up in the message.
const REASON_EXPECTED: &str = "<RefundReason.duplicate: 'duplicate'>, \
<RefundReason.fraudulent: 'fraudulent'>, \
<RefundReason.customer_request: 'customer_request'>, \
<RefundReason.service_disruption: 'service_disruption'>, \
<RefundReason.satisfaction_guarantee: 'satisfaction_guarantee'> or \
<RefundReason.other: 'other'>";

// ---------------------------------------------------------------------------------------
// The body
// ---------------------------------------------------------------------------------------

const METADATA_MAX_KEYS: usize = 50;
const METADATA_KEY_MAX_LENGTH: usize = 40;
const METADATA_VALUE_MAX_LENGTH: usize = 500;

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
        return Err(issues.into_vec());
    };
    Ok(RefundCreate {
        order_id,
        reason,
        amount: RequestedAmount::Net(amount),
        payment_id: None,
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
    body.get(field).ok_or_else(|| {
        vec![Failure::missing().at(loc!["body", field], Value::Object(body.clone()))]
    })
}

fn check_reason(value: &Value) -> Result<RefundReason, Failure> {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .filter(|reason| *reason != RefundReason::DisputePrevention)
        .ok_or_else(|| Failure::literal_error(REASON_EXPECTED))
}

fn check_amount(value: &Value) -> Result<i64, Failure> {
    let amount = check_int(value)?;
    if amount <= 0 {
        return Err(Failure::greater_than(0));
    }
    Ok(amount)
}

fn check_comment(value: Option<&Value>) -> Result<Option<String>, Failure> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.contains('\0') => Err(Failure::nul_character()),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(Failure::string_type()),
    }
}

/// `metadata: dict[str(1..=40), str(1..=500) | int | float | bool]`, at most 50 keys.
fn validate_metadata(value: Option<&Value>) -> Result<Map<String, Value>, Vec<ValidationIssue>> {
    let Some(value) = value else {
        return Ok(Map::new());
    };
    let Value::Object(entries) = value else {
        return Err(vec![
            Failure::dict_type().at(loc!["body", "metadata"], value.clone()),
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
            Failure::dict_too_long(METADATA_MAX_KEYS, metadata.len())
                .at(loc!["body", "metadata"], value.clone()),
        ]);
    }
    let has_nul = metadata.iter().any(|(key, entry)| {
        key.contains('\0') || entry.as_str().is_some_and(|text| text.contains('\0'))
    });
    if has_nul {
        return Err(vec![
            Failure::nul_character().at(loc!["body", "metadata"], Value::Object(metadata)),
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
            ("constrained-str", Failure::string_type()),
            ("int", Failure::int_type()),
            ("float", Failure::float_type()),
            ("bool", Failure::bool_type()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::polar::parse::UUID_LIST_BRANCH;
    use serde_json::json;
    use uuid::Uuid;

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

    // --- Bodies ----------------------------------------------------------------------

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

    // --- Query errors ----------------------------------------------------------------

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
        assert_eq!(create.amount, RequestedAmount::Net(100));
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
        assert_eq!(amount(r#""10""#).amount, RequestedAmount::Net(10));
        assert_eq!(amount(r#""10""#).amount_input, json!("10"));
        assert_eq!(amount("10.0").amount, RequestedAmount::Net(10));
        assert_eq!(amount("10.0").amount_input, json!(10.0));
        assert_eq!(amount("true").amount, RequestedAmount::Net(1));
        assert_eq!(amount(r#"" 42 ""#).amount, RequestedAmount::Net(42));
        assert_eq!(amount(r#""+7""#).amount, RequestedAmount::Net(7));
        assert_eq!(amount(r#""007""#).amount, RequestedAmount::Net(7));
        assert_eq!(amount(r#""12.00""#).amount, RequestedAmount::Net(12));
        assert_eq!(amount(r#""1_000""#).amount, RequestedAmount::Net(1000));
        assert_eq!(
            amount("9223372036854775808").amount,
            RequestedAmount::Net(i64::MAX)
        );
        assert_eq!(
            amount("100000000000000000000000").amount,
            RequestedAmount::Net(i64::MAX)
        );
        assert_eq!(
            amount(r#""99999999999999999999""#).amount,
            RequestedAmount::Net(i64::MAX)
        );
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
        assert_eq!(create.amount, RequestedAmount::Net(8));
    }

    // --- Content type and bytes --------------------------------------------------------

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
}
