//! The query of `GET /v1/payments/`, read and validated as FastAPI and pydantic do.

use super::model::{PaymentListQuery, PaymentSort};
use crate::domain::PaymentStatus;
use crate::orders::input::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::polar::parse::{
    Issues, QueryParams, query_enum_list, query_positive_int, query_sorting, query_string_list,
    query_uuid_list,
};
use crate::polar::validation::ValidationIssue;

const PAYMENT_STATUSES: &[(&str, PaymentStatus)] = &[
    ("pending", PaymentStatus::Pending),
    ("succeeded", PaymentStatus::Succeeded),
    ("failed", PaymentStatus::Failed),
];

pub fn parse_payment_list_query(
    raw_query: Option<&str>,
) -> Result<PaymentListQuery, Vec<ValidationIssue>> {
    let params = QueryParams::parse(raw_query.unwrap_or(""));
    let mut issues = Issues::default();
    let page = issues.take(query_positive_int(&params, "page", 1));
    let limit = issues.take(query_positive_int(&params, "limit", DEFAULT_LIMIT));
    let sorting = issues.take(query_sorting(
        &params,
        PaymentSort::ALL,
        &[PaymentSort::CreatedAtDesc],
    ));
    let organization_ids = issues.take(query_uuid_list(&params, "organization_id"));
    let checkout_ids = issues.take(query_uuid_list(&params, "checkout_id"));
    let order_ids = issues.take(query_uuid_list(&params, "order_id"));
    let customer_ids = issues.take(query_uuid_list(&params, "customer_id"));
    let statuses = issues.take(query_enum_list(
        &params,
        "status",
        "PaymentStatus",
        PAYMENT_STATUSES,
    ));
    let methods = issues.take(query_string_list(&params, "method"));
    let customer_emails = issues.take(query_string_list(&params, "customer_email"));
    let issues = issues.into_vec();
    if !issues.is_empty() {
        return Err(issues);
    }
    // Every value is present once no issue was reported.
    Ok(PaymentListQuery {
        organization_ids: organization_ids.unwrap_or_default(),
        checkout_ids: checkout_ids.unwrap_or_default(),
        order_ids: order_ids.unwrap_or_default(),
        customer_ids: customer_ids.unwrap_or_default(),
        statuses: statuses.unwrap_or_default(),
        methods: methods.unwrap_or_default(),
        customer_emails: customer_emails.unwrap_or_default(),
        page: page.unwrap_or(1),
        limit: limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT),
        sorting: sorting.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_filters_are_reported_in_polars_words_and_order() {
        let issues = parse_payment_list_query(Some("status=bogus&sorting=-customer")).unwrap_err();
        assert_eq!(
            serde_json::to_value(&issues).unwrap(),
            json!([
                {"type": "enum", "loc": ["query", "sorting", 0],
                 "msg": "Input should be 'created_at', '-created_at', 'status', '-status', 'amount', '-amount', 'method' or '-method'",
                 "input": "-customer",
                 "ctx": {"expected": "'created_at', '-created_at', 'status', '-status', 'amount', '-amount', 'method' or '-method'"}},
                {"type": "enum", "loc": ["query", "status", "str-enum[PaymentStatus]"],
                 "msg": "Input should be 'pending', 'succeeded' or 'failed'", "input": ["bogus"],
                 "ctx": {"expected": "'pending', 'succeeded' or 'failed'"}},
                {"type": "enum", "loc": ["query", "status", "json-or-python[json=list[str-enum[PaymentStatus]],python=chain[is-instance[Sequence],function-wrap[sequence_validator()]]]", 0],
                 "msg": "Input should be 'pending', 'succeeded' or 'failed'", "input": "bogus",
                 "ctx": {"expected": "'pending', 'succeeded' or 'failed'"}}
            ])
        );
    }
}
