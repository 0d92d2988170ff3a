//! The query of `GET /v1/orders/`, read and validated as FastAPI and pydantic do.

use super::model::{OrderListQuery, OrderSort, ProductBillingType};
use crate::domain::OrderStatus;
use crate::polar::parse::{
    Issues, QueryParams, query_datetime, query_enum_list, query_metadata, query_positive_int,
    query_sorting, query_string_list, query_uuid_list,
};
use crate::polar::validation::ValidationIssue;

pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 100;

pub const ORDER_STATUSES: &[(&str, OrderStatus)] = &[
    ("draft", OrderStatus::Draft),
    ("pending", OrderStatus::Pending),
    ("paid", OrderStatus::Paid),
    ("refunded", OrderStatus::Refunded),
    ("partially_refunded", OrderStatus::PartiallyRefunded),
    ("void", OrderStatus::Void),
];

const BILLING_TYPES: &[(&str, ProductBillingType)] = &[
    ("one_time", ProductBillingType::OneTime),
    ("recurring", ProductBillingType::Recurring),
];

/// Parses and validates the query of `GET /v1/orders/`, reporting every issue in the order
/// FastAPI does: the dependencies (paging, sorting, metadata) first, then each filter.
pub fn parse_order_list_query(
    raw_query: Option<&str>,
) -> Result<OrderListQuery, Vec<ValidationIssue>> {
    let params = QueryParams::parse(raw_query.unwrap_or(""));
    let mut issues = Issues::default();
    let page = issues.take(query_positive_int(&params, "page", 1));
    let limit = issues.take(query_positive_int(&params, "limit", DEFAULT_LIMIT));
    let sorting = issues.take(query_sorting(
        &params,
        OrderSort::ALL,
        &[OrderSort::CreatedAtDesc],
    ));
    let metadata = issues.take(query_metadata(&params));
    let organization_ids = issues.take(query_uuid_list(&params, "organization_id"));
    let product_ids = issues.take(query_uuid_list(&params, "product_id"));
    let product_billing_types = issues.take(query_enum_list(
        &params,
        "product_billing_type",
        "ProductBillingType",
        BILLING_TYPES,
    ));
    let discount_ids = issues.take(query_uuid_list(&params, "discount_id"));
    let customer_ids = issues.take(query_uuid_list(&params, "customer_id"));
    let external_customer_ids = issues.take(query_string_list(&params, "external_customer_id"));
    let checkout_ids = issues.take(query_uuid_list(&params, "checkout_id"));
    let subscription_ids = issues.take(query_uuid_list(&params, "subscription_id"));
    let statuses = issues.take(query_enum_list(
        &params,
        "status",
        "OrderStatus",
        ORDER_STATUSES,
    ));
    let created_after = issues.take(query_datetime(&params, "created_after"));
    let created_before = issues.take(query_datetime(&params, "created_before"));
    let issues = issues.into_vec();
    if !issues.is_empty() {
        return Err(issues);
    }
    // Every value is present once no issue was reported.
    Ok(OrderListQuery {
        organization_ids: organization_ids.unwrap_or_default(),
        product_ids: product_ids.unwrap_or_default(),
        product_billing_types: product_billing_types.unwrap_or_default(),
        discount_ids: discount_ids.unwrap_or_default(),
        customer_ids: customer_ids.unwrap_or_default(),
        external_customer_ids: external_customer_ids.unwrap_or_default(),
        checkout_ids: checkout_ids.unwrap_or_default(),
        subscription_ids: subscription_ids.unwrap_or_default(),
        statuses: statuses.unwrap_or_default(),
        created_after: created_after.flatten(),
        created_before: created_before.flatten(),
        metadata: metadata.unwrap_or_default(),
        page: page.unwrap_or(1),
        limit: limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT),
        sorting: sorting.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issues(query: &str) -> serde_json::Value {
        serde_json::to_value(parse_order_list_query(Some(query)).unwrap_err()).unwrap()
    }

    #[test]
    fn bad_filters_are_reported_in_polars_words_and_order() {
        let found = issues(
            "status=bogus&product_billing_type=x&created_after=yesterday&sorting=foo&discount_id=zz",
        );
        let kinds: Vec<(&str, serde_json::Value)> = found
            .as_array()
            .unwrap()
            .iter()
            .map(|issue| (issue["type"].as_str().unwrap(), issue["loc"].clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("enum", json!(["query", "sorting", 0])),
                (
                    "enum",
                    json!([
                        "query",
                        "product_billing_type",
                        "str-enum[ProductBillingType]"
                    ])
                ),
                (
                    "enum",
                    json!([
                        "query",
                        "product_billing_type",
                        "json-or-python[json=list[str-enum[ProductBillingType]],python=chain[is-instance[Sequence],function-wrap[sequence_validator()]]]",
                        0
                    ])
                ),
                ("uuid_type", json!(["query", "discount_id", "uuid"])),
                (
                    "uuid_parsing",
                    json!([
                        "query",
                        "discount_id",
                        "json-or-python[json=list[uuid],python=chain[is-instance[Sequence],function-wrap[sequence_validator()]]]",
                        0
                    ])
                ),
                ("enum", json!(["query", "status", "str-enum[OrderStatus]"])),
                (
                    "enum",
                    json!([
                        "query",
                        "status",
                        "json-or-python[json=list[str-enum[OrderStatus]],python=chain[is-instance[Sequence],function-wrap[sequence_validator()]]]",
                        0
                    ])
                ),
                (
                    "datetime_from_date_parsing",
                    json!(["query", "created_after"])
                ),
            ]
        );
        assert_eq!(
            found[5],
            json!({"type": "enum", "loc": ["query", "status", "str-enum[OrderStatus]"],
                   "msg": "Input should be 'draft', 'pending', 'paid', 'refunded', 'partially_refunded' or 'void'",
                   "input": ["bogus"],
                   "ctx": {"expected": "'draft', 'pending', 'paid', 'refunded', 'partially_refunded' or 'void'"}})
        );
        assert_eq!(
            found[7],
            json!({"type": "datetime_from_date_parsing", "loc": ["query", "created_after"],
                   "msg": "Input should be a valid datetime or date, input is too short",
                   "input": "yesterday", "ctx": {"error": "input is too short"}})
        );
    }

    #[test]
    fn metadata_filters_group_values_by_key() {
        let query = parse_order_list_query(Some(
            "metadata%5Bplan%5D=pro&metadata[plan]=team&metadata[seats]=5&limit=500",
        ))
        .unwrap();
        assert_eq!(
            query.metadata,
            [
                ("plan".to_owned(), vec!["pro".to_owned(), "team".to_owned()]),
                ("seats".to_owned(), vec!["5".to_owned()])
            ]
        );
        assert_eq!((query.limit, query.page), (MAX_LIMIT, 1));
        assert_eq!(query.sorting, [OrderSort::CreatedAtDesc]);
    }
}
