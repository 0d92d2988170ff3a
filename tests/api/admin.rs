use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_admin_app, spawn_app};

fn id(body: &Value) -> String {
    let id = body["id"].as_str().expect("id");
    assert_eq!(Uuid::parse_str(id).unwrap().get_version_num(), 4);
    id.to_owned()
}

/// An organization with a read-write organization token, a customer and a paid order,
/// all made through the admin API.
async fn setup(
    app: &TestApp,
    net_amount: i64,
    tax_amount: i64,
    subscription: bool,
) -> (String, String, String) {
    let org = app
        .admin_ok(
            Method::POST,
            "/admin/organizations",
            json!({"name": "Acme"}),
            StatusCode::CREATED,
        )
        .await;
    let org_id = id(&org);
    let token = app
        .admin_ok(
            Method::POST,
            &format!("/admin/organizations/{org_id}/access-tokens"),
            json!({"scopes": ["refunds:read", "refunds:write"]}),
            StatusCode::CREATED,
        )
        .await;
    let customer = app
        .admin_ok(
            Method::POST,
            "/admin/customers",
            json!({"organization_id": org_id, "email": "jane@example.com"}),
            StatusCode::CREATED,
        )
        .await;
    let mut order = json!({"organization_id": org_id, "customer_id": id(&customer),
        "net_amount": net_amount, "tax_amount": tax_amount, "currency": "usd"});
    if subscription {
        order["subscription_id"] = json!(Uuid::new_v4());
    }
    let order = app
        .admin_ok(Method::POST, "/admin/orders", order, StatusCode::CREATED)
        .await;
    (
        org_id,
        token["token"].as_str().unwrap().to_owned(),
        id(&order),
    )
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_admin_api_is_absent_without_a_configured_token(pool: PgPool) {
    let app = spawn_app(pool).await;
    for (method, path) in [
        (Method::POST, "/admin/organizations"),
        (Method::GET, &*format!("/admin/orders/{}", Uuid::new_v4())),
    ] {
        let response = app
            .request(method, path, Some("anything"), Some(json!({"name": "x"})))
            .await;
        assert_eq!(response.status, StatusCode::NOT_FOUND);
        assert_eq!(response.json(), json!({"detail": "Not Found"}));
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_admin_api_requires_its_own_token(pool: PgPool) {
    let app = spawn_admin_app(pool).await;
    let (_, org_token, order_id) = setup(&app, 1000, 0, false).await;
    let path = format!("/admin/orders/{order_id}");
    let missing = app.request(Method::GET, &path, None, None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.json(),
        json!({"error": "Unauthorized", "detail": "Unauthorized"})
    );
    for wrong in ["nope", &org_token] {
        let response = app.request(Method::GET, &path, Some(wrong), None).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert_eq!(response.json()["error"], "invalid_token");
    }
    // the admin token is not an API token either
    let response = app.list(crate::helpers::ADMIN_TOKEN, "").await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn organizations_users_tokens_and_customers_are_created(pool: PgPool) {
    let app = spawn_admin_app(pool).await;
    let org = app
        .admin_ok(
            Method::POST,
            "/admin/organizations",
            json!({"name": "Acme Inc", "slug": "acme"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        (
            org["name"].as_str(),
            org["slug"].as_str(),
            org["refunds_blocked"].as_bool()
        ),
        (Some("Acme Inc"), Some("acme"), Some(false))
    );
    let org_id = id(&org);
    let duplicate = app
        .admin(
            Method::POST,
            "/admin/organizations",
            Some(json!({"name": "Other", "slug": "acme"})),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(duplicate.json()["error"], "Conflict");

    let token = app
        .admin_ok(
            Method::POST,
            &format!("/admin/organizations/{org_id}/access-tokens"),
            json!({"scopes": ["refunds:read"], "expires_in_seconds": 3600}),
            StatusCode::CREATED,
        )
        .await;
    id(&token);
    let oat = token["token"].as_str().unwrap();
    assert!(oat.starts_with("polar_oat_"));
    assert!(token["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(app.list(oat, "").await.status, StatusCode::OK);

    let user = app
        .admin_ok(
            Method::POST,
            "/admin/users",
            json!({"email": "ops@example.com"}),
            StatusCode::CREATED,
        )
        .await;
    let user_id = id(&user);
    let membership = app
        .admin_ok(
            Method::POST,
            &format!("/admin/users/{user_id}/memberships"),
            json!({"organization_id": org_id}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        membership,
        json!({"user_id": user_id, "organization_id": org_id})
    );
    let pat = app
        .admin_ok(
            Method::POST,
            &format!("/admin/users/{user_id}/access-tokens"),
            json!({"scopes": ["refunds:read", "refunds:write"]}),
            StatusCode::CREATED,
        )
        .await;
    let pat = pat["token"].as_str().unwrap().to_owned();
    assert!(pat.starts_with("polar_pat_"));

    let customer = app.admin_ok(Method::POST, "/admin/customers",
        json!({"organization_id": org_id, "email": "Jane@Example.com", "name": "Jane", "external_id": "cus_1"}), StatusCode::CREATED).await;
    assert_eq!(
        (customer["email"].as_str(), customer["external_id"].as_str()),
        (Some("jane@example.com"), Some("cus_1"))
    );
    let order = app.admin_ok(Method::POST, "/admin/orders", json!({"organization_id": org_id, "customer_id": id(&customer),
        "net_amount": 1000, "tax_amount": 250, "currency": "EUR", "metadata": {"source": "import"}}), StatusCode::CREATED).await;
    let refund = app
        .refund(&pat, Uuid::parse_str(&id(&order)).unwrap(), 400)
        .await;
    assert_eq!(
        (refund["tax_amount"].as_i64(), refund["currency"].as_str()),
        (Some(100), Some("eur"))
    );
    assert_eq!(
        app.list_ok(&pat, "external_customer_id=cus_1").await["pagination"]["total_count"],
        1
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn orders_read_back_with_polars_field_names_and_can_be_blocked(pool: PgPool) {
    let app = spawn_admin_app(pool).await;
    let (org_id, token, order_id) = setup(&app, 9990, 2498, false).await;
    let path = format!("/admin/orders/{order_id}");
    let order = app
        .admin_ok(Method::GET, &path, json!(null), StatusCode::OK)
        .await;
    let keys: Vec<&String> = order.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "organization_id",
            "customer_id",
            "subscription_id",
            "status",
            "net_amount",
            "tax_amount",
            "applied_balance_amount",
            "refunded_amount",
            "refunded_tax_amount",
            "refundable_amount",
            "refundable_tax_amount",
            "currency",
            "refunds_blocked"
        ]
    );
    assert_eq!(
        (order["status"].as_str(), order["organization_id"].as_str()),
        (Some("paid"), Some(org_id.as_str()))
    );

    app.refund(&token, Uuid::parse_str(&order_id).unwrap(), 1110)
        .await;
    let order = app
        .admin_ok(Method::GET, &path, json!(null), StatusCode::OK)
        .await;
    assert_eq!(
        (
            order["refunded_amount"].as_i64(),
            order["refunded_tax_amount"].as_i64()
        ),
        (Some(1110), Some(278))
    );
    assert_eq!(
        (
            order["refundable_amount"].as_i64(),
            order["refundable_tax_amount"].as_i64()
        ),
        (Some(8880), Some(2220))
    );
    assert_eq!(order["status"], "partially_refunded");

    let blocked = app
        .admin_ok(
            Method::PATCH,
            &path,
            json!({"refunds_blocked": true}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(blocked["refunds_blocked"], true);
    let refused = app
        .create_refund(
            &token,
            json!({"order_id": order_id, "reason": "other", "amount": 1}),
        )
        .await;
    assert_eq!(refused.json()["error"], "RefundsBlocked");
    app.admin_ok(
        Method::PATCH,
        &path,
        json!({"refunds_blocked": false}),
        StatusCode::OK,
    )
    .await;
    app.admin_ok(
        Method::PATCH,
        &format!("/admin/organizations/{org_id}"),
        json!({"refunds_blocked": true}),
        StatusCode::OK,
    )
    .await;
    let refused = app
        .create_refund(
            &token,
            json!({"order_id": order_id, "reason": "other", "amount": 1}),
        )
        .await;
    assert_eq!(refused.json()["error"], "RefundsBlocked");
    let unblocked = app
        .admin_ok(
            Method::PATCH,
            &format!("/admin/organizations/{org_id}"),
            json!({"refunds_blocked": false}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(unblocked["refunds_blocked"], false);
    app.refund(&token, Uuid::parse_str(&order_id).unwrap(), 1)
        .await;
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn bad_admin_input_answers_422_with_field_paths(pool: PgPool) {
    let app = spawn_admin_app(pool).await;
    let (org_id, _, order_id) = setup(&app, 1000, 0, false).await;
    let other = app
        .admin_ok(
            Method::POST,
            "/admin/organizations",
            json!({"name": "Other"}),
            StatusCode::CREATED,
        )
        .await;
    let foreign_customer = app
        .admin_ok(
            Method::POST,
            "/admin/customers",
            json!({"organization_id": id(&other), "email": "x@example.com"}),
            StatusCode::CREATED,
        )
        .await;

    let cases: Vec<(Method, String, Value, StatusCode, Value)> = vec![
        (
            Method::POST,
            "/admin/organizations".into(),
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "name"]),
        ),
        (
            Method::POST,
            "/admin/organizations".into(),
            json!({"name": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "name"]),
        ),
        (
            Method::POST,
            "/admin/organizations".into(),
            json!({"name": "A", "slug": "Not A Slug"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "slug"]),
        ),
        (
            Method::POST,
            "/admin/organizations".into(),
            json!({"name": "A", "colour": "red"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "colour"]),
        ),
        (
            Method::PATCH,
            format!("/admin/organizations/{org_id}"),
            json!({"refunds_blocked": "maybe"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "refunds_blocked"]),
        ),
        (
            Method::PATCH,
            "/admin/organizations/not-a-uuid".into(),
            json!({"refunds_blocked": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["path", "id"]),
        ),
        (
            Method::PATCH,
            format!("/admin/organizations/{}", Uuid::new_v4()),
            json!({"refunds_blocked": true}),
            StatusCode::NOT_FOUND,
            Value::Null,
        ),
        (
            Method::POST,
            format!("/admin/organizations/{org_id}/access-tokens"),
            json!({"scopes": ["refunds:admin"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "scopes"]),
        ),
        (
            Method::POST,
            format!("/admin/organizations/{org_id}/access-tokens"),
            json!({"scopes": ["refunds:read"], "expires_in_seconds": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "expires_in_seconds"]),
        ),
        (
            Method::POST,
            format!("/admin/organizations/{}/access-tokens", Uuid::new_v4()),
            json!({"scopes": ["refunds:read"]}),
            StatusCode::NOT_FOUND,
            Value::Null,
        ),
        (
            Method::POST,
            "/admin/users".into(),
            json!({"email": "not-an-email"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "email"]),
        ),
        (
            Method::POST,
            format!("/admin/users/{}/memberships", Uuid::new_v4()),
            json!({"organization_id": org_id}),
            StatusCode::NOT_FOUND,
            Value::Null,
        ),
        (
            Method::POST,
            "/admin/customers".into(),
            json!({"organization_id": Uuid::new_v4(), "email": "a@b.c"}),
            StatusCode::NOT_FOUND,
            Value::Null,
        ),
        (
            Method::POST,
            "/admin/customers".into(),
            json!({"organization_id": "nope", "email": "a@b.c"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "organization_id"]),
        ),
        (
            Method::POST,
            "/admin/orders".into(),
            json!({"organization_id": org_id, "customer_id": id(&foreign_customer), "net_amount": 1, "tax_amount": 0, "currency": "usd"}),
            StatusCode::NOT_FOUND,
            Value::Null,
        ),
        (
            Method::POST,
            "/admin/orders".into(),
            json!({"organization_id": org_id, "customer_id": id(&foreign_customer), "net_amount": -1, "tax_amount": 0, "currency": "usd"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "net_amount"]),
        ),
        (
            Method::POST,
            "/admin/orders".into(),
            json!({"organization_id": org_id, "customer_id": id(&foreign_customer), "net_amount": 1, "tax_amount": 0, "currency": "dollars"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "currency"]),
        ),
        (
            Method::POST,
            "/admin/orders".into(),
            json!({"organization_id": org_id, "net_amount": 1, "tax_amount": 0, "currency": "usd"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "customer_id"]),
        ),
        (
            Method::POST,
            "/admin/orders".into(),
            json!({"organization_id": org_id, "customer_id": id(&foreign_customer), "net_amount": 1.5, "tax_amount": 0, "currency": "usd"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "net_amount"]),
        ),
        (
            Method::GET,
            format!("/admin/orders/{}", Uuid::new_v4()),
            Value::Null,
            StatusCode::NOT_FOUND,
            Value::Null,
        ),
        (
            Method::POST,
            format!("/admin/orders/{order_id}/disputes"),
            json!({"status": "open"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "status"]),
        ),
        (
            Method::POST,
            format!("/admin/orders/{order_id}/disputes"),
            json!({"status": "needs_response", "amount": 1001}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "amount"]),
        ),
        (
            Method::POST,
            format!("/admin/orders/{order_id}/disputes"),
            json!({"status": "needs_response", "tax_amount": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "tax_amount"]),
        ),
        (
            Method::POST,
            format!("/admin/orders/{}/disputes", Uuid::new_v4()),
            json!({"status": "needs_response"}),
            StatusCode::NOT_FOUND,
            Value::Null,
        ),
        (
            Method::PATCH,
            format!("/admin/disputes/{}", Uuid::new_v4()),
            json!({"status": "won"}),
            StatusCode::NOT_FOUND,
            Value::Null,
        ),
    ];
    let customer_id = id(&foreign_customer);
    let more: Vec<(Method, String, Value, StatusCode, Value)> = vec![
        // PostgreSQL cannot store NUL: refused with the path of the string
        (
            Method::POST,
            "/admin/organizations".into(),
            json!({"name": "a\u{0}b"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "name"]),
        ),
        (
            Method::POST,
            "/admin/orders".into(),
            json!({"organization_id": org_id, "customer_id": customer_id, "net_amount": 1, "tax_amount": 0, "currency": "usd", "metadata": {"k\u{0}": 1}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "metadata", "k\u{0}"]),
        ),
        // amounts stay far from overflowing sums
        (
            Method::POST,
            "/admin/orders".into(),
            json!({"organization_id": org_id, "customer_id": customer_id, "net_amount": 1_000_000_000_000_001_i64, "tax_amount": 0, "currency": "usd"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "net_amount"]),
        ),
        (
            Method::POST,
            "/admin/orders".into(),
            json!({"organization_id": org_id, "customer_id": customer_id, "net_amount": 1, "tax_amount": 0, "applied_balance_amount": i64::MIN, "currency": "usd"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "applied_balance_amount"]),
        ),
        (
            Method::POST,
            format!("/admin/organizations/{org_id}/access-tokens"),
            json!({"scopes": ["refunds:read"], "expires_in_seconds": i64::MAX}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["body", "expires_in_seconds"]),
        ),
    ];
    for (method, path, body, status, loc) in cases.into_iter().chain(more) {
        let response = app
            .admin(
                method.clone(),
                &path,
                (!body.is_null()).then_some(body.clone()),
            )
            .await;
        assert_eq!(
            response.status, status,
            "{method} {path} {body}: {}",
            response.text
        );
        assert_eq!(response.header("content-type"), Some("application/json"));
        let json = response.json();
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(
                json["detail"][0]["loc"], loc,
                "{method} {path} {body}: {json}"
            );
            assert!(
                json["detail"][0]["msg"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        } else {
            assert_eq!(json["error"], "ResourceNotFound", "{method} {path}");
        }
    }
    for raw in ["", "{not json", "[1]"] {
        let response = app
            .client
            .post(format!("{}/admin/organizations", app.address))
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{raw:?}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "RequestValidationError");
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn an_open_dispute_blocks_refunds_until_it_is_won_or_lost(pool: PgPool) {
    let app = spawn_admin_app(pool).await;
    let (_, token, order_id) = setup(&app, 1000, 250, false).await;
    let dispute = app
        .admin_ok(
            Method::POST,
            &format!("/admin/orders/{order_id}/disputes"),
            json!({"status": "needs_response", "reason": "fraudulent", "evidence_due_by": "2020-01-02T03:04:05Z"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        (
            dispute["reason"].as_str(),
            dispute["evidence_due_by"].as_str(),
            dispute["past_due"].as_bool()
        ),
        (Some("fraudulent"), Some("2020-01-02T03:04:05Z"), Some(true))
    );
    assert_eq!(
        (dispute["amount"].as_i64(), dispute["tax_amount"].as_i64()),
        (Some(1000), Some(250)),
        "defaults to what is refundable"
    );
    assert_eq!(
        (dispute["resolved"].as_bool(), dispute["closed"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(dispute["order_id"], order_id.as_str());
    let refund = json!({"order_id": order_id, "reason": "other", "amount": 100});
    assert_eq!(
        app.create_refund(&token, refund.clone()).await.json()["error"],
        "RefundDisputedPayment"
    );

    let path = format!("/admin/disputes/{}", id(&dispute));
    let under_review = app
        .admin_ok(
            Method::PATCH,
            &path,
            json!({"status": "under_review"}),
            StatusCode::OK,
        )
        .await;
    assert!(under_review["modified_at"].is_string());
    assert_eq!(
        app.create_refund(&token, refund.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    let won = app
        .admin_ok(
            Method::PATCH,
            &path,
            json!({"status": "won"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        (won["resolved"].as_bool(), won["closed"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        app.create_refund(&token, refund.clone()).await.status,
        StatusCode::CREATED
    );
    let reopened = app
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"status": "needs_response"})),
        )
        .await;
    assert_eq!(
        reopened.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "closed disputes stay closed"
    );

    let lost = app
        .admin_ok(
            Method::POST,
            &format!("/admin/orders/{order_id}/disputes"),
            json!({"status": "needs_response", "amount": 10, "tax_amount": 0}),
            StatusCode::CREATED,
        )
        .await;
    app.admin_ok(
        Method::PATCH,
        &format!("/admin/disputes/{}", id(&lost)),
        json!({"status": "lost"}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        app.create_refund(&token, refund).await.status,
        StatusCode::CREATED
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn an_early_warning_is_prevented_with_a_dispute_prevention_refund(pool: PgPool) {
    let app = spawn_admin_app(pool).await;
    let (_, token, order_id) = setup(&app, 1000, 250, true).await;
    app.refund(&token, Uuid::parse_str(&order_id).unwrap(), 200)
        .await;

    let dispute = app
        .admin_ok(
            Method::POST,
            &format!("/admin/orders/{order_id}/disputes"),
            json!({"status": "early_warning", "amount": 300, "tax_amount": 75}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(dispute["status"], "prevented");
    assert_eq!(
        (dispute["resolved"].as_bool(), dispute["closed"].as_bool()),
        (Some(false), Some(true))
    );

    let listed = app.list_ok(&token, "sorting=-amount").await;
    let prevention = &listed["items"][0];
    assert_eq!(prevention["reason"], "dispute_prevention");
    assert_eq!(prevention["status"], "succeeded");
    assert_eq!(
        (
            prevention["amount"].as_i64(),
            prevention["tax_amount"].as_i64()
        ),
        (Some(300), Some(75))
    );
    assert_eq!(prevention["revoke_benefits"], true);
    assert_eq!(
        prevention["subscription_id"],
        Value::Null,
        "even on a subscription order"
    );
    assert_eq!(prevention["dispute"]["id"], dispute["id"]);
    assert_eq!(prevention["dispute"]["status"], "prevented");
    assert_eq!(listed["items"][1]["dispute"], Value::Null);

    let order = app
        .admin_ok(
            Method::GET,
            &format!("/admin/orders/{order_id}"),
            json!(null),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        (
            order["refunded_amount"].as_i64(),
            order["refunded_tax_amount"].as_i64()
        ),
        (Some(500), Some(125))
    );
    // a prevented dispute does not block refunds
    app.refund(&token, Uuid::parse_str(&order_id).unwrap(), 100)
        .await;

    // a dispute moved to early_warning is prevented too, for its remaining amounts
    let later = app
        .admin_ok(
            Method::POST,
            &format!("/admin/orders/{order_id}/disputes"),
            json!({"status": "needs_response", "evidence_due_by": "2999-01-01T00:00:00Z"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(later["past_due"], false);
    assert_eq!(
        (later["amount"].as_i64(), later["tax_amount"].as_i64()),
        (Some(400), Some(100))
    );
    let prevented = app
        .admin_ok(
            Method::PATCH,
            &format!("/admin/disputes/{}", id(&later)),
            json!({"status": "early_warning"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(prevented["status"], "prevented");
    let order = app
        .admin_ok(
            Method::GET,
            &format!("/admin/orders/{order_id}"),
            json!(null),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        (
            order["status"].as_str(),
            order["refundable_amount"].as_i64(),
            order["refundable_tax_amount"].as_i64()
        ),
        (Some("refunded"), Some(0), Some(0))
    );

    // nothing is left: another warning cannot refund more than was paid
    let nothing = app
        .admin(
            Method::POST,
            &format!("/admin/orders/{order_id}/disputes"),
            Some(json!({"status": "early_warning"})),
        )
        .await;
    assert_eq!(nothing.status, StatusCode::UNPROCESSABLE_ENTITY);
    let total: i64 = sqlx::query_scalar("SELECT sum(amount + tax_amount)::bigint FROM refunds")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(total, 1250);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_malformed_body_is_worded_as_on_polars_routes(pool: PgPool) {
    let app = spawn_admin_app(pool).await;
    let response = app
        .client
        .post(format!("{}/admin/organizations", app.address))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{bad")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "RequestValidationError", "detail": [
            {"type": "json_invalid", "loc": ["body", 1], "msg": "JSON decode error", "input": {},
             "ctx": {"error": "Expecting property name enclosed in double quotes"}}]})
    );
}
