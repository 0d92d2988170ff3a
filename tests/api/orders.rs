//! `GET /v1/orders/…` and `GET /v1/payments/…`: Polar's shapes, filters, sorting, paging,
//! scopes and organization isolation, over a real socket.

use std::sync::Arc;

use refunds_server::AppState;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{ADMIN_TOKEN, ScriptedProcessor, TestApp, ids, spawn_app_with};

/// Every key of an order, in the order Polar sends them (Polar's answer, plus `units` and
/// the items' timestamps that polar-sdk 1.0.2 requires).
const ORDER_KEYS: [&str; 47] = [
    "id",
    "created_at",
    "modified_at",
    "status",
    "paid",
    "subtotal_amount",
    "discount_amount",
    "net_amount",
    "tax_amount",
    "total_amount",
    "applied_balance_amount",
    "due_amount",
    "refunded_amount",
    "refunded_tax_amount",
    "currency",
    "billing_reason",
    "billing_name",
    "billing_address",
    "invoice_number",
    "is_invoice_generated",
    "receipt_number",
    "seats",
    "units",
    "customer_id",
    "product_id",
    "product_price_id",
    "discount_id",
    "subscription_id",
    "checkout_id",
    "next_payment_attempt_at",
    "metadata",
    "custom_field_data",
    "platform_fee_amount",
    "platform_fee_currency",
    "customer",
    "user_id",
    "user",
    "product",
    "product_price",
    "discount",
    "subscription",
    "items",
    "description",
    "amount",
    "from_balance_amount",
    "refundable_amount",
    "refundable_tax_amount",
];

const CUSTOMER_KEYS: [&str; 18] = [
    "id",
    "created_at",
    "modified_at",
    "metadata",
    "external_id",
    "email",
    "email_verified",
    "type",
    "name",
    "billing_name",
    "billing_address",
    "tax_id",
    "locale",
    "organization_id",
    "default_payment_method_id",
    "deleted_at",
    "first_user_event_at",
    "avatar_url",
];

const SUBSCRIPTION_KEYS: [&str; 33] = [
    "metadata",
    "created_at",
    "modified_at",
    "id",
    "amount",
    "currency",
    "recurring_interval",
    "recurring_interval_count",
    "status",
    "current_period_start",
    "current_period_end",
    "current_meter_period_start",
    "current_meter_period_end",
    "trial_start",
    "trial_end",
    "cancel_at_period_end",
    "canceled_at",
    "started_at",
    "ends_at",
    "ended_at",
    "past_due_at",
    "pause_at_period_end",
    "paused_at",
    "resumes_at",
    "customer_id",
    "product_id",
    "discount_id",
    "checkout_id",
    "seats",
    "units",
    "customer_cancellation_reason",
    "customer_cancellation_comment",
    "user_id",
];

const PRODUCT_KEYS: [&str; 16] = [
    "metadata",
    "id",
    "created_at",
    "modified_at",
    "trial_interval",
    "trial_interval_count",
    "name",
    "description",
    "visibility",
    "recurring_interval",
    "recurring_interval_count",
    "meter_interval",
    "meter_interval_count",
    "is_recurring",
    "is_archived",
    "organization_id",
];

const ITEM_KEYS: [&str; 10] = [
    "created_at",
    "modified_at",
    "id",
    "label",
    "amount",
    "tax_amount",
    "proration",
    "product_price_id",
    "start_timestamp",
    "end_timestamp",
];

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// An app with the admin API on and the scripted processor (amount 7 fails, 600 stays
/// pending, anything else succeeds).
async fn spawn(pool: PgPool) -> TestApp {
    let mut state = AppState::new(pool).with_admin_token(Some(ADMIN_TOKEN));
    state.processor = Arc::new(ScriptedProcessor);
    spawn_app_with(state).await
}

struct Org {
    id: String,
    /// refunds:read, refunds:write, orders:read, payments:read
    token: String,
}

async fn org(app: &TestApp, name: &str) -> Org {
    let org = app
        .admin_ok(
            Method::POST,
            "/admin/organizations",
            json!({"name": name}),
            StatusCode::CREATED,
        )
        .await;
    let id = org["id"].as_str().unwrap().to_owned();
    let token = token(
        app,
        &id,
        &[
            "refunds:read",
            "refunds:write",
            "orders:read",
            "payments:read",
        ],
    )
    .await;
    Org { id, token }
}

async fn token(app: &TestApp, org_id: &str, scopes: &[&str]) -> String {
    let created = app
        .admin_ok(
            Method::POST,
            &format!("/admin/organizations/{org_id}/access-tokens"),
            json!({"scopes": scopes}),
            StatusCode::CREATED,
        )
        .await;
    created["token"].as_str().unwrap().to_owned()
}

async fn customer(
    app: &TestApp,
    org: &Org,
    email: &str,
    name: Option<&str>,
    external_id: Option<&str>,
) -> String {
    let customer = app
        .admin_ok(
            Method::POST,
            "/admin/customers",
            json!({"organization_id": org.id, "email": email, "name": name, "external_id": external_id}),
            StatusCode::CREATED,
        )
        .await;
    customer["id"].as_str().unwrap().to_owned()
}

/// Creates an order through the admin API from `fields` and returns its id.
async fn new_order(app: &TestApp, org: &Org, customer_id: &str, fields: Value) -> String {
    let mut body = json!({"organization_id": org.id, "customer_id": customer_id,
                          "net_amount": 1000, "tax_amount": 0, "currency": "usd"});
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let order = app
        .admin_ok(Method::POST, "/admin/orders", body, StatusCode::CREATED)
        .await;
    order["id"].as_str().unwrap().to_owned()
}

async fn get(app: &TestApp, token: &str, path: &str) -> crate::helpers::Response {
    app.request(Method::GET, path, Some(token), None).await
}

async fn get_ok(app: &TestApp, token: &str, path: &str) -> Value {
    let response = get(app, token, path).await;
    assert_eq!(response.status, StatusCode::OK, "{path}: {}", response.text);
    response.json()
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn an_order_shows_every_key_of_polars_order_with_its_customer_product_and_subscription(
    pool: PgPool,
) {
    let app = spawn(pool).await;
    let org = org(&app, "Acme").await;
    let customer_id = customer(
        &app,
        &org,
        "Jane@Example.com",
        Some("Jane Doe"),
        Some("cus_1"),
    )
    .await;
    let subscription_id = Uuid::new_v4().to_string();
    let product_id = Uuid::new_v4().to_string();
    let order_id = new_order(
        &app,
        &org,
        &customer_id,
        json!({
        "net_amount": 9990, "tax_amount": 2498, "subscription_id": subscription_id,
        "product_id": product_id, "product_name": "Pro Plan", "product_recurring_interval": "year",
        "billing_name": "Jane Doe Ltd", "billing_address": {"country": "FR", "city": "Paris"},
        "items": [{"label": "Pro Plan", "amount": 9000, "tax_amount": 2250},
                  {"label": "Seat", "amount": 990, "tax_amount": 248}],
        "metadata": {"plan": "pro", "seats": 3, "trial": false}}),
    )
    .await;

    let order = get_ok(&app, &org.token, &format!("/v1/orders/{order_id}")).await;
    assert_eq!(keys(&order), ORDER_KEYS);
    assert_eq!(keys(&order["customer"]), CUSTOMER_KEYS);
    assert_eq!(keys(&order["subscription"]), SUBSCRIPTION_KEYS);
    assert_eq!(keys(&order["product"]), PRODUCT_KEYS);
    for item in order["items"].as_array().unwrap() {
        assert_eq!(keys(item), ITEM_KEYS);
    }
    let pick = |names: &[&str]| -> Value {
        names
            .iter()
            .map(|name| ((*name).to_owned(), order[*name].clone()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    assert_eq!(
        pick(&[
            "status",
            "paid",
            "subtotal_amount",
            "discount_amount",
            "net_amount",
            "tax_amount",
            "total_amount",
            "applied_balance_amount",
            "due_amount",
            "refunded_amount",
            "refunded_tax_amount",
            "currency",
            "billing_reason",
            "billing_name",
            "billing_address",
            "invoice_number",
            "is_invoice_generated",
            "units",
            "customer_id",
            "product_id",
            "subscription_id",
            "discount",
            "discount_id",
            "checkout_id",
            "metadata",
            "custom_field_data",
            "platform_fee_amount",
            "description",
            "amount",
            "from_balance_amount",
            "refundable_amount",
            "refundable_tax_amount",
            "user_id"
        ]),
        json!({"status": "paid", "paid": true, "subtotal_amount": 9990, "discount_amount": 0,
               "net_amount": 9990, "tax_amount": 2498, "total_amount": 12488,
               "applied_balance_amount": 0, "due_amount": 12488, "refunded_amount": 0,
               "refunded_tax_amount": 0, "currency": "usd", "billing_reason": "subscription_create",
               "billing_name": "Jane Doe Ltd",
               "billing_address": {"line1": null, "line2": null, "postal_code": null, "city": "Paris",
                                   "state": null, "country": "FR"},
               "invoice_number": null, "is_invoice_generated": false, "units": null,
               "customer_id": customer_id, "product_id": product_id,
               "subscription_id": subscription_id, "discount": null, "discount_id": null,
               "checkout_id": null, "metadata": {"plan": "pro", "seats": 3, "trial": false},
               "custom_field_data": {}, "platform_fee_amount": 0, "description": "Pro Plan",
               "amount": 9990, "from_balance_amount": 0, "refundable_amount": 9990,
               "refundable_tax_amount": 2498, "user_id": customer_id})
    );
    let customer = &order["customer"];
    assert_eq!(
        (
            customer["email"].as_str(),
            customer["external_id"].as_str(),
            customer["name"].as_str(),
            customer["billing_name"].as_str(),
            customer["type"].as_str(),
            customer["organization_id"].as_str()
        ),
        (
            Some("jane@example.com"),
            Some("cus_1"),
            Some("Jane Doe"),
            Some("Jane Doe"),
            Some("individual"),
            Some(org.id.as_str())
        )
    );
    // Polar's Gravatar of the lower-cased email: sha256("jane@example.com").
    assert_eq!(
        customer["avatar_url"],
        format!(
            "https://www.gravatar.com/avatar/{}?d=404",
            sha256_hex("jane@example.com")
        )
    );
    assert_eq!(
        order["user"],
        json!({"id": customer_id, "email": "jane@example.com", "public_name": "J",
                                      "avatar_url": customer["avatar_url"], "github_username": null})
    );
    let subscription = &order["subscription"];
    assert_eq!(
        (
            subscription["id"].as_str(),
            subscription["amount"].as_i64(),
            subscription["status"].as_str(),
            subscription["recurring_interval"].as_str(),
            subscription["product_id"].as_str(),
            subscription["customer_id"].as_str()
        ),
        (
            Some(subscription_id.as_str()),
            Some(9990),
            Some("active"),
            Some("year"),
            Some(product_id.as_str()),
            Some(customer_id.as_str())
        )
    );
    let start = chrono::DateTime::parse_from_rfc3339(
        subscription["current_period_start"].as_str().unwrap(),
    )
    .unwrap();
    let end =
        chrono::DateTime::parse_from_rfc3339(subscription["current_period_end"].as_str().unwrap())
            .unwrap();
    assert_eq!(
        end,
        start.checked_add_months(chrono::Months::new(12)).unwrap()
    );
    assert_eq!(
        (
            order["product"]["name"].as_str(),
            order["product"]["is_recurring"].as_bool(),
            order["product"]["recurring_interval_count"].as_i64(),
            order["product"]["visibility"].as_str()
        ),
        (Some("Pro Plan"), Some(true), Some(1), Some("public"))
    );
    let lines: Vec<(Value, Value, Value)> = order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["label"].clone(),
                item["amount"].clone(),
                item["tax_amount"].clone(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (json!("Pro Plan"), json!(9000), json!(2250)),
            (json!("Seat"), json!(990), json!(248))
        ]
    );

    // The list shows the same object.
    let listed = get_ok(&app, &org.token, "/v1/orders/").await;
    assert_eq!(listed["items"][0], order);
    assert_eq!(
        listed["pagination"],
        json!({"total_count": 1, "max_page": 1})
    );
}

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_plain_order_has_no_product_discount_or_subscription_and_one_line(pool: PgPool) {
    let app = spawn(pool).await;
    let org = org(&app, "Acme").await;
    let customer_id = customer(&app, &org, "ann@example.com", None, None).await;
    let order_id = new_order(
        &app,
        &org,
        &customer_id,
        json!({"net_amount": 500, "tax_amount": 100,
                                                          "applied_balance_amount": -200}),
    )
    .await;
    let order = get_ok(&app, &org.token, &format!("/v1/orders/{order_id}")).await;
    assert_eq!(keys(&order), ORDER_KEYS);
    assert_eq!(
        (
            &order["product"],
            &order["subscription"],
            &order["discount"],
            &order["product_id"],
            &order["billing_reason"],
            &order["billing_address"],
            &order["description"]
        ),
        (
            &json!(null),
            &json!(null),
            &json!(null),
            &json!(null),
            &json!("purchase"),
            &json!(null),
            &json!("Order")
        )
    );
    assert_eq!(
        (
            order["total_amount"].as_i64(),
            order["due_amount"].as_i64(),
            order["refundable_amount"].as_i64(),
            order["from_balance_amount"].as_i64()
        ),
        (Some(600), Some(400), Some(300), Some(-200))
    );
    assert_eq!(order["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            order["items"][0]["amount"].as_i64(),
            order["items"][0]["tax_amount"].as_i64()
        ),
        (Some(500), Some(100))
    );
    assert_eq!(
        (
            order["customer"]["name"].clone(),
            order["user"]["public_name"].clone()
        ),
        (json!(null), json!("a"))
    );

    // A subscription order without a product gets a monthly one.
    let subscription = new_order(
        &app,
        &org,
        &customer_id,
        json!({"subscription_id": Uuid::new_v4()}),
    )
    .await;
    let subscription = get_ok(&app, &org.token, &format!("/v1/orders/{subscription}")).await;
    assert_eq!(
        (
            subscription["product"]["name"].as_str(),
            subscription["product"]["recurring_interval"].as_str(),
            subscription["subscription"]["recurring_interval"].as_str(),
            subscription["description"].as_str()
        ),
        (
            Some("Subscription"),
            Some("month"),
            Some("month"),
            Some("Subscription")
        )
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn counters_and_status_follow_partial_full_failed_and_pending_refunds(pool: PgPool) {
    let app = spawn(pool).await;
    let org = org(&app, "Acme").await;
    let customer_id = customer(&app, &org, "ann@example.com", None, None).await;
    let order_id = new_order(
        &app,
        &org,
        &customer_id,
        json!({"net_amount": 9990, "tax_amount": 2498}),
    )
    .await;
    let path = format!("/v1/orders/{order_id}");
    let counters = |order: &Value| {
        (
            order["status"].as_str().unwrap().to_owned(),
            order["refunded_amount"].as_i64().unwrap(),
            order["refunded_tax_amount"].as_i64().unwrap(),
            order["refundable_amount"].as_i64().unwrap(),
            order["refundable_tax_amount"].as_i64().unwrap(),
            order["paid"].as_bool().unwrap(),
        )
    };
    let refund = |amount: i64| {
        let body = json!({"order_id": order_id, "reason": "customer_request", "amount": amount});
        let app = &app;
        let token = org.token.clone();
        async move { app.create_refund(&token, body).await }
    };

    let failed = refund(7).await;
    assert_eq!(failed.json()["status"], "failed", "{}", failed.text);
    assert_eq!(
        counters(&get_ok(&app, &org.token, &path).await),
        ("paid".into(), 0, 0, 9990, 2498, true)
    );

    assert_eq!(refund(1110).await.status, StatusCode::CREATED);
    assert_eq!(
        counters(&get_ok(&app, &org.token, &path).await),
        ("partially_refunded".into(), 1110, 278, 8880, 2220, true)
    );
    // A pending refund reserves its amount: it is no longer refundable.
    assert_eq!(refund(600).await.json()["status"], "pending");
    assert_eq!(
        counters(&get_ok(&app, &org.token, &path).await),
        ("partially_refunded".into(), 1110, 278, 8280, 2070, true)
    );
    assert_eq!(refund(8280).await.status, StatusCode::CREATED);
    let order = get_ok(&app, &org.token, &path).await;
    assert_eq!(
        counters(&order),
        ("partially_refunded".into(), 9390, 2348, 0, 0, true)
    );
    let listed = get_ok(&app, &org.token, "/v1/orders/?status=partially_refunded").await;
    assert_eq!(ids(&listed), [order_id.as_str()]);

    // Fully refunded.
    let other = new_order(
        &app,
        &org,
        &customer_id,
        json!({"net_amount": 1000, "tax_amount": 250}),
    )
    .await;
    let body = json!({"order_id": other, "reason": "customer_request", "amount": 1000});
    assert_eq!(
        app.create_refund(&org.token, body).await.status,
        StatusCode::CREATED
    );
    let other = get_ok(&app, &org.token, &format!("/v1/orders/{other}")).await;
    assert_eq!(counters(&other), ("refunded".into(), 1000, 250, 0, 0, true));
    assert!(other["modified_at"].is_string());
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn scopes_and_organizations_are_enforced_in_both_directions(pool: PgPool) {
    let app = spawn(pool).await;
    let a = org(&app, "A").await;
    let b = org(&app, "B").await;
    let customer_a = customer(&app, &a, "a@example.com", None, Some("same")).await;
    let customer_b = customer(&app, &b, "b@example.com", None, Some("same")).await;
    let order_a = new_order(&app, &a, &customer_a, json!({})).await;
    let order_b = new_order(&app, &b, &customer_b, json!({})).await;
    let payment_a = ids(&get_ok(&app, &a.token, "/v1/payments/").await)[0].clone();
    let payment_b = ids(&get_ok(&app, &b.token, "/v1/payments/").await)[0].clone();

    let not_found = json!({"error": "ResourceNotFound", "detail": "Not found"});
    for (token, path) in [
        (&a.token, format!("/v1/orders/{order_b}")),
        (&b.token, format!("/v1/orders/{order_a}")),
        (&a.token, format!("/v1/payments/{payment_b}")),
        (&b.token, format!("/v1/payments/{payment_a}")),
        (&a.token, format!("/v1/orders/{}", Uuid::new_v4())),
        (&a.token, format!("/v1/payments/{}", Uuid::new_v4())),
    ] {
        let response = get(&app, token, &path).await;
        assert_eq!(
            (response.status, response.json()),
            (StatusCode::NOT_FOUND, not_found.clone()),
            "{path}"
        );
    }
    assert_eq!(
        ids(&get_ok(&app, &a.token, "/v1/orders/").await),
        [order_a.as_str()]
    );
    assert_eq!(
        ids(&get_ok(&app, &b.token, "/v1/orders/").await),
        [order_b.as_str()]
    );
    for query in [
        format!("organization_id={}", b.id),
        format!("customer_id={customer_b}"),
        "external_customer_id=same".into(),
    ] {
        let listed = get_ok(&app, &a.token, &format!("/v1/orders/?{query}")).await;
        let expected: Vec<String> = if query.starts_with("external") {
            vec![order_a.clone()]
        } else {
            vec![]
        };
        assert_eq!(ids(&listed), expected, "{query}");
    }
    let listed = get_ok(&app, &a.token, &format!("/v1/payments/?order_id={order_b}")).await;
    assert_eq!(listed["pagination"]["total_count"], 0);

    // A personal token sees the organizations of its user.
    let user = app
        .admin_ok(
            Method::POST,
            "/admin/users",
            json!({"email": "u@example.com"}),
            StatusCode::CREATED,
        )
        .await;
    let user_id = user["id"].as_str().unwrap();
    for org_id in [&a.id, &b.id] {
        app.admin_ok(
            Method::POST,
            &format!("/admin/users/{user_id}/memberships"),
            json!({"organization_id": org_id}),
            StatusCode::CREATED,
        )
        .await;
    }
    let pat = app
        .admin_ok(
            Method::POST,
            &format!("/admin/users/{user_id}/access-tokens"),
            json!({"scopes": ["orders:read"]}),
            StatusCode::CREATED,
        )
        .await;
    let pat = pat["token"].as_str().unwrap();
    let mut both = ids(&get_ok(&app, pat, "/v1/orders/").await);
    both.sort();
    let mut expected = vec![order_a.clone(), order_b.clone()];
    expected.sort();
    assert_eq!(both, expected);

    // orders:read is needed for orders, payments:read for payments; orders:write grants neither.
    for (scopes, path) in [
        (vec!["orders:write"], format!("/v1/orders/{order_a}")),
        (vec!["orders:write"], "/v1/orders/".to_owned()),
        (
            vec!["refunds:read", "refunds:write", "payments:read"],
            "/v1/orders/".to_owned(),
        ),
        (vec!["orders:read"], "/v1/payments/".to_owned()),
        (
            vec!["orders:read", "orders:write"],
            format!("/v1/payments/{payment_a}"),
        ),
    ] {
        let token = token(&app, &a.id, &scopes).await;
        let response = get(&app, &token, &path).await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{scopes:?} {path}");
        assert_eq!(response.json()["error"], "insufficient_scope");
        let wanted = if path.starts_with("/v1/orders") {
            "orders:read"
        } else {
            "payments:read"
        };
        assert!(
            response
                .header("www-authenticate")
                .unwrap()
                .contains(&format!("scope=\"{wanted}\"")),
            "{:?}",
            response.header("www-authenticate")
        );
    }
    let response = get(&app, "polar_oat_nope", "/v1/orders/").await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    let response = app.request(Method::GET, "/v1/payments/", None, None).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_malformed_id_or_query_answers_pydantics_422(pool: PgPool) {
    let app = spawn(pool).await;
    let org = org(&app, "Acme").await;
    for path in ["/v1/orders/abc", "/v1/payments/abc"] {
        let response = get(&app, &org.token, path).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            response.json(),
            json!({"error": "RequestValidationError", "detail": [{"type": "uuid_parsing", "loc": ["path", "id"],
                   "msg": "Input should be a valid UUID, invalid length: expected length 32 for simple format, found 3",
                   "input": "abc", "ctx": {"error": "invalid length: expected length 32 for simple format, found 3"}}]})
        );
    }
    let response = get(
        &app,
        &org.token,
        "/v1/payments/3fa85f64-5717-1562-b3fc-2c963f66afa6",
    )
    .await;
    assert_eq!(
        response.json(),
        json!({"error": "RequestValidationError", "detail": [{"type": "uuid_version", "loc": ["path", "id"],
               "msg": "UUID version 4 expected", "input": "3fa85f64-5717-1562-b3fc-2c963f66afa6",
               "ctx": {"expected_version": 4}}]})
    );
    let response = get(
        &app,
        &org.token,
        "/v1/orders/?created_before=2026-13-01&limit=0",
    )
    .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.json()["detail"],
        json!([{"type": "greater_than", "loc": ["query", "limit"], "msg": "Input should be greater than 0", "input": "0", "ctx": {"gt": 0}},
               {"type": "datetime_from_date_parsing", "loc": ["query", "created_before"],
                "msg": "Input should be a valid datetime or date, month value is outside expected range",
                "input": "2026-13-01", "ctx": {"error": "month value is outside expected range"}}])
    );
    let response = get(&app, &org.token, "/v1/payments/?status=done&order_id=1").await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<Value> = response.json()["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["loc"].clone())
        .collect();
    assert_eq!(locs.len(), 4, "{locs:?}");
    assert_eq!(locs[0], json!(["query", "order_id", "uuid"]));
}

/// Orders of one organization for the filter and sort tests, created one after another.
struct Catalogue {
    org: Org,
    ann: String,
    bob: String,
    /// one-time, Ann, 1000, product "Book", metadata plan=basic
    book: String,
    /// subscription, Bob (external id bob_1), 3000, product "Gold" monthly, metadata plan=pro seats=5
    gold: String,
    /// no product, Ann, 2000, tax 500, partially refunded, paid by paypal
    plain: String,
    gold_subscription: String,
    gold_product: String,
}

async fn catalogue(app: &TestApp) -> Catalogue {
    let org = org(app, "Acme").await;
    let ann = customer(app, &org, "ann@example.com", Some("Ann"), None).await;
    let bob = customer(app, &org, "bob@example.com", Some("Bob"), Some("bob_1")).await;
    let book = new_order(
        app,
        &org,
        &ann,
        json!({"product_name": "Book", "metadata": {"plan": "basic"}}),
    )
    .await;
    let gold_subscription = Uuid::new_v4().to_string();
    let gold_product = Uuid::new_v4().to_string();
    let gold = new_order(app, &org, &bob, json!({"net_amount": 3000, "subscription_id": gold_subscription,
        "product_id": gold_product, "product_name": "Gold", "metadata": {"plan": "pro", "seats": 5}})).await;
    let plain = new_order(
        app,
        &org,
        &ann,
        json!({"net_amount": 2000, "tax_amount": 500,
                                                "payment_method": "paypal"}),
    )
    .await;
    app.refund(&org.token, Uuid::parse_str(&plain).unwrap(), 100)
        .await;
    // Distinct, known creation times: book, then gold, then plain, one day apart.
    for (days, id) in [(3, &book), (2, &gold), (1, &plain)] {
        sqlx::query("UPDATE orders SET created_at = timestamptz '2026-06-10T12:00:00Z' - make_interval(days => $1) WHERE id = $2::uuid")
            .bind(days).bind(id).execute(&app.pool).await.unwrap();
        sqlx::query("UPDATE payments SET created_at = timestamptz '2026-06-10T12:00:00Z' - make_interval(days => $1) WHERE order_id = $2::uuid")
            .bind(days).bind(id).execute(&app.pool).await.unwrap();
    }
    Catalogue {
        org,
        ann,
        bob,
        book,
        gold,
        plain,
        gold_subscription,
        gold_product,
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn every_order_filter_narrows_the_list(pool: PgPool) {
    let app = spawn(pool).await;
    let c = catalogue(&app).await;
    let (book, gold, plain) = (c.book.as_str(), c.gold.as_str(), c.plain.as_str());
    let cases: Vec<(String, Vec<&str>)> = vec![
        (String::new(), vec![plain, gold, book]),
        (
            format!("organization_id={}", c.org.id),
            vec![plain, gold, book],
        ),
        (format!("organization_id={}", Uuid::new_v4()), vec![]),
        (format!("customer_id={}", c.ann), vec![plain, book]),
        (
            format!("customer_id={}&customer_id={}", c.ann, c.bob),
            vec![plain, gold, book],
        ),
        ("external_customer_id=bob_1".into(), vec![gold]),
        ("external_customer_id=nobody".into(), vec![]),
        (
            format!("subscription_id={}", c.gold_subscription),
            vec![gold],
        ),
        (format!("product_id={}", c.gold_product), vec![gold]),
        ("product_billing_type=recurring".into(), vec![gold]),
        ("product_billing_type=one_time".into(), vec![book]),
        (
            "product_billing_type=one_time&product_billing_type=recurring".into(),
            vec![gold, book],
        ),
        (format!("discount_id={}", Uuid::new_v4()), vec![]),
        (format!("checkout_id={}", Uuid::new_v4()), vec![]),
        ("status=paid".into(), vec![gold, book]),
        (
            "status=partially_refunded&status=refunded".into(),
            vec![plain],
        ),
        ("status=void".into(), vec![]),
        ("created_after=2026-06-08T12:00:00Z".into(), vec![plain]),
        ("created_after=2026-06-08".into(), vec![plain, gold]),
        ("created_before=2026-06-08T12:00:00Z".into(), vec![book]),
        (
            "created_after=2026-06-07T13:00:00%2B00:00&created_before=2026-06-09T13:00:00%2B01:00"
                .into(),
            vec![gold],
        ),
        ("created_after=1780970000".into(), vec![plain]),
        (
            "created_after=1780970000000&created_before=1790000000".into(),
            vec![plain],
        ),
        ("created_after=1790000000".into(), vec![]),
        ("metadata[plan]=pro".into(), vec![gold]),
        (
            "metadata%5Bplan%5D=pro&metadata[plan]=basic".into(),
            vec![gold, book],
        ),
        ("metadata[seats]=5".into(), vec![gold]),
        ("metadata[plan]=pro&metadata[seats]=4".into(), vec![]),
        ("metadata[missing]=x".into(), vec![]),
    ];
    for (query, expected) in cases {
        let listed = get_ok(&app, &c.org.token, &format!("/v1/orders/?{query}")).await;
        assert_eq!(ids(&listed), expected, "{query}");
        assert_eq!(
            listed["pagination"]["total_count"],
            expected.len(),
            "{query}"
        );
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn orders_sort_and_page_as_polar_does(pool: PgPool) {
    let app = spawn(pool).await;
    let c = catalogue(&app).await;
    let (book, gold, plain) = (c.book.as_str(), c.gold.as_str(), c.plain.as_str());
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("sorting=created_at", vec![book, gold, plain]),
        ("sorting=-created_at", vec![plain, gold, book]),
        ("sorting=amount", vec![book, plain, gold]),
        ("sorting=-net_amount", vec![gold, plain, book]),
        ("sorting=customer&sorting=-amount", vec![plain, book, gold]),
        (
            "sorting=-customer&sorting=created_at",
            vec![gold, book, plain],
        ),
        // PostgreSQL puts the order without a product last when ascending, first descending.
        ("sorting=product", vec![book, gold, plain]),
        ("sorting=-product", vec![plain, gold, book]),
        ("sorting=status&sorting=created_at", vec![book, gold, plain]),
        (
            "sorting=-status&sorting=created_at",
            vec![plain, book, gold],
        ),
        (
            "sorting=invoice_number&sorting=created_at",
            vec![book, gold, plain],
        ),
        (
            "sorting=-discount&sorting=-created_at",
            vec![plain, gold, book],
        ),
    ];
    for (query, expected) in cases {
        let listed = get_ok(&app, &c.org.token, &format!("/v1/orders/?{query}")).await;
        assert_eq!(ids(&listed), expected, "{query}");
    }
    let page = |query: &str| {
        let app = &app;
        let token = c.org.token.clone();
        let query = query.to_owned();
        async move {
            get_ok(
                app,
                &token,
                &format!("/v1/orders/?sorting=created_at&{query}"),
            )
            .await
        }
    };
    let first = page("limit=2").await;
    assert_eq!(
        (ids(&first), first["pagination"].clone()),
        (
            vec![book.to_owned(), gold.to_owned()],
            json!({"total_count": 3, "max_page": 2})
        )
    );
    let second = page("limit=2&page=2").await;
    assert_eq!(ids(&second), [plain]);
    let beyond = page("limit=2&page=9").await;
    assert_eq!(
        (ids(&beyond).len(), beyond["pagination"].clone()),
        (0, json!({"total_count": 3, "max_page": 2}))
    );
    let clamped = page("limit=1000").await;
    assert_eq!(
        (
            ids(&clamped).len(),
            clamped["pagination"]["max_page"].clone()
        ),
        (3, json!(1))
    );
    let huge = page("page=9223372036854775807").await;
    assert_eq!(ids(&huge).len(), 0);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn payments_show_polars_card_and_generic_shapes_and_filter_and_sort(pool: PgPool) {
    let app = spawn(pool).await;
    let c = catalogue(&app).await;
    let token = &c.org.token;
    let listed = get_ok(&app, token, "/v1/payments/").await;
    assert_eq!(
        listed["pagination"],
        json!({"total_count": 3, "max_page": 1})
    );
    let payments = listed["items"].as_array().unwrap();
    let order_ids: Vec<&str> = payments
        .iter()
        .map(|p| p["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order_ids,
        [c.plain.as_str(), c.gold.as_str(), c.book.as_str()]
    );

    let paypal = &payments[0];
    assert_eq!(
        keys(paypal),
        [
            "created_at",
            "modified_at",
            "id",
            "processor",
            "status",
            "amount",
            "currency",
            "method",
            "trigger",
            "decline_reason",
            "decline_message",
            "organization_id",
            "checkout_id",
            "order_id",
            "processor_metadata"
        ]
    );
    assert_eq!(
        (
            paypal["processor"].as_str(),
            paypal["status"].as_str(),
            paypal["amount"].as_i64(),
            paypal["method"].as_str(),
            paypal["trigger"].as_str(),
            paypal["organization_id"].as_str()
        ),
        (
            Some("stripe"),
            Some("succeeded"),
            Some(2500),
            Some("paypal"),
            Some("purchase"),
            Some(c.org.id.as_str())
        )
    );
    let card = &payments[2];
    assert_eq!(keys(card).last(), Some(&"method_metadata"));
    assert_eq!(
        card["method_metadata"],
        json!({"brand": "visa", "last4": "4242"})
    );
    assert_eq!(
        (card["method"].as_str(), card["amount"].as_i64()),
        (Some("card"), Some(1000))
    );

    let payment_id = card["id"].as_str().unwrap();
    assert_eq!(
        &get_ok(&app, token, &format!("/v1/payments/{payment_id}")).await,
        card
    );

    let orders_of = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["order_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (book, gold, plain) = (c.book.clone(), c.gold.clone(), c.plain.clone());
    let cases: Vec<(String, Vec<String>)> = vec![
        (format!("order_id={book}"), vec![book.clone()]),
        (
            format!("order_id={book}&order_id={gold}"),
            vec![gold.clone(), book.clone()],
        ),
        (
            format!("customer_id={}", c.ann),
            vec![plain.clone(), book.clone()],
        ),
        (format!("customer_id={}", c.bob), vec![gold.clone()]),
        (
            "status=succeeded".into(),
            vec![plain.clone(), gold.clone(), book.clone()],
        ),
        ("status=failed&status=pending".into(), vec![]),
        ("method=card".into(), vec![gold.clone(), book.clone()]),
        ("method=paypal".into(), vec![plain.clone()]),
        ("customer_email=bob@example.com".into(), vec![gold.clone()]),
        ("customer_email=nobody@example.com".into(), vec![]),
        (format!("checkout_id={}", Uuid::new_v4()), vec![]),
        (format!("organization_id={}", Uuid::new_v4()), vec![]),
        (
            "sorting=amount".into(),
            vec![book.clone(), plain.clone(), gold.clone()],
        ),
        (
            "sorting=-amount".into(),
            vec![gold.clone(), plain.clone(), book.clone()],
        ),
        (
            "sorting=-method&sorting=created_at".into(),
            vec![plain.clone(), book.clone(), gold.clone()],
        ),
        (
            "sorting=created_at&limit=1&page=2".into(),
            vec![gold.clone()],
        ),
    ];
    for (query, expected) in cases {
        let listed = get_ok(&app, token, &format!("/v1/payments/?{query}")).await;
        assert_eq!(orders_of(&listed), expected, "{query}");
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_admin_api_refuses_order_details_that_do_not_add_up(pool: PgPool) {
    let app = spawn(pool).await;
    let org = org(&app, "Acme").await;
    let customer_id = customer(&app, &org, "ann@example.com", None, None).await;
    for (fields, field) in [
        (json!({"items": [{"label": "A", "amount": 400}]}), "items"),
        (
            json!({"billing_address": {"country": "XX"}}),
            "billing_address",
        ),
        (
            json!({"billing_reason": "subscription_cycle"}),
            "billing_reason",
        ),
        (
            json!({"payment_method": "paypal", "card_last4": "1234"}),
            "payment_method",
        ),
        (json!({"card_last4": "12a4"}), "card_last4"),
        (
            json!({"product_recurring_interval": "month"}),
            "product_recurring_interval",
        ),
    ] {
        let mut body = json!({"organization_id": org.id, "customer_id": customer_id,
                              "net_amount": 1000, "tax_amount": 0, "currency": "usd"});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let response = app.admin(Method::POST, "/admin/orders", Some(body)).await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields}: {}",
            response.text
        );
        assert_eq!(
            response.json()["detail"][0]["loc"],
            json!(["body", field]),
            "{fields}"
        );
    }
    let listed = get_ok(&app, &org.token, "/v1/orders/").await;
    assert_eq!(listed["pagination"]["total_count"], 0);
}
