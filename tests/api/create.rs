use refunds_server::domain::{BillingReason, DisputeStatus};
use refunds_server::orders::repo::{NewOrder, insert_paid_order};
use refunds_server::orders::service::PaidOrderInput;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{OrderState, ScriptedProcessor, spawn_app, spawn_app_with_processor};

const REFUND_KEYS: [&str; 15] = [
    "created_at",
    "modified_at",
    "id",
    "metadata",
    "status",
    "reason",
    "amount",
    "tax_amount",
    "currency",
    "organization_id",
    "order_id",
    "subscription_id",
    "customer_id",
    "revoke_benefits",
    "dispute",
];

fn refund_body(order_id: Uuid, amount: Value) -> Value {
    json!({"order_id": order_id, "reason": "customer_request", "amount": amount})
}

fn polar_error(name: &str, detail: String) -> Value {
    json!({"error": name, "detail": detail})
}

fn value_error(field: &str, msg: &str, input: Value) -> Value {
    json!({"error": "PolarRequestValidationError",
           "detail": [{"type": "value_error", "loc": ["body", field], "msg": msg, "input": input}]})
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_full_refund_answers_201_with_every_refund_key_in_polars_order(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 250).await;

    let response = app
        .create_refund(
            &org.write_token,
            json!({"order_id": order_id, "reason": "duplicate", "amount": 1000,
                   "comment": "internal only", "metadata": {"ticket": "T-1", "n": 3, "ok": true, "f": 1.5}}),
        )
        .await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json();
    // serde_json keeps the order of the text (preserve_order)
    let object = body.as_object().unwrap();
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        REFUND_KEYS.iter().collect::<Vec<_>>()
    );
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["reason"], "duplicate");
    assert_eq!(body["amount"], 1000);
    assert_eq!(body["tax_amount"], 250);
    assert_eq!(body["currency"], "usd");
    assert_eq!(body["organization_id"], org.id.to_string());
    assert_eq!(body["order_id"], order_id.to_string());
    assert_eq!(body["subscription_id"], Value::Null);
    assert_eq!(body["modified_at"], Value::Null);
    assert_eq!(body["dispute"], Value::Null);
    assert_eq!(body["revoke_benefits"], false);
    assert_eq!(
        body["metadata"],
        json!({"ticket": "T-1", "n": 3, "ok": true, "f": 1.5})
    );
    assert!(body.get("comment").is_none(), "comment is internal");
    let created_at = body["created_at"].as_str().unwrap();
    assert!(created_at.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(created_at).is_ok());
    assert_eq!(
        Uuid::parse_str(body["id"].as_str().unwrap())
            .unwrap()
            .get_version_num(),
        4
    );

    assert_eq!(
        app.order_state(order_id).await,
        OrderState {
            status: "refunded".into(),
            refunded_amount: 1000,
            refunded_tax_amount: 250,
            pending_amount: 0,
            pending_tax_amount: 0
        }
    );
    let stored: (Option<String>, String) =
        sqlx::query_as("SELECT comment, processor FROM refunds WHERE id = $1")
            .bind(Uuid::parse_str(body["id"].as_str().unwrap()).unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, (Some("internal only".into()), "sandbox".into()));
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn partial_refunds_to_full_follow_polars_tax_vector(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 9990, 2498).await;

    for (amount, tax) in [(1110, 278), (993, 248), (5887, 1472)] {
        let refund = app.refund(&org.write_token, order_id, amount).await;
        assert_eq!(
            (refund["amount"].as_i64(), refund["tax_amount"].as_i64()),
            (Some(amount), Some(tax))
        );
        assert_eq!(app.order_state(order_id).await.status, "partially_refunded");
    }
    let over = app
        .create_refund(&org.write_token, refund_body(order_id, json!(2001)))
        .await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        over.json(),
        value_error(
            "amount",
            "Refund amount exceeds refundable amount",
            json!(2001)
        )
    );

    let last = app.refund(&org.write_token, order_id, 2000).await;
    assert_eq!(last["tax_amount"], 500);
    assert_eq!(
        app.order_state(order_id).await,
        OrderState {
            status: "refunded".into(),
            refunded_amount: 9990,
            refunded_tax_amount: 2498,
            pending_amount: 0,
            pending_tax_amount: 0
        }
    );

    let again = app
        .create_refund(&org.write_token, refund_body(order_id, json!(1)))
        .await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert_eq!(
        again.json(),
        polar_error(
            "RefundedAlready",
            format!("Order is already fully refunded: {order_id}")
        )
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn repeated_partial_refunds_move_the_counters(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 250).await;
    for _ in 0..2 {
        let refund = app.refund(&org.write_token, order_id, 300).await;
        assert_eq!(refund["tax_amount"], 75);
    }
    let state = app.order_state(order_id).await;
    assert_eq!(
        (
            state.status.as_str(),
            state.refunded_amount,
            state.refunded_tax_amount
        ),
        ("partially_refunded", 600, 150)
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn an_applied_balance_changes_what_is_refundable(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let customer_id = app.customer(org.id, None).await;
    let order = |applied_balance_amount| PaidOrderInput {
        organization_id: org.id,
        customer_id,
        subscription_id: None,
        currency: "eur".into(),
        net_amount: 1000,
        tax_amount: 250,
        applied_balance_amount,
        metadata: json!({}),
        details: Default::default(),
    };
    let debt = app.order_with(order(1000)).await;
    let refund = app.refund(&org.write_token, debt, 2000).await;
    assert_eq!(
        (refund["tax_amount"].as_i64(), refund["currency"].as_str()),
        (Some(250), Some("eur"))
    );

    let credit = app.order_with(order(-500)).await;
    let over = app
        .create_refund(&org.write_token, refund_body(credit, json!(501)))
        .await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.refund(&org.write_token, credit, 500).await["tax_amount"],
        250
    );
    assert_eq!(app.order_state(credit).await.status, "refunded");
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn an_unknown_or_foreign_order_is_order_not_found(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mine = app.organization("Mine").await;
    let theirs = app.organization("Theirs").await;
    let their_order = app.order(theirs.id, 1000, 0).await;

    for order_id in [Uuid::new_v4(), their_order] {
        // sent in upper case, echoed normalised
        let sent = order_id.to_string().to_uppercase();
        let body = json!({"order_id": sent, "reason": "other", "amount": 100});
        let response = app.create_refund(&mine.write_token, body).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            response.json(),
            value_error("order_id", "Order not found", json!(order_id.to_string()))
        );
    }
    assert_eq!(app.order_state(their_order).await.refunded_amount, 0);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn blocked_orders_and_organizations_refuse_refunds(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let blocked_order = app.order(org.id, 1000, 0).await;
    sqlx::query("UPDATE orders SET refunds_blocked = true WHERE id = $1")
        .bind(blocked_order)
        .execute(&app.pool)
        .await
        .unwrap();
    let response = app
        .create_refund(&org.write_token, refund_body(blocked_order, json!(5000)))
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(
        response.json(),
        polar_error(
            "RefundsBlocked",
            format!("Refunds are blocked for order: {blocked_order}")
        )
    );

    let order_id = app.order(org.id, 1000, 0).await;
    sqlx::query("UPDATE organizations SET refunds_blocked = true WHERE id = $1")
        .bind(org.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let response = app
        .create_refund(&org.write_token, refund_body(order_id, json!(10)))
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(response.json()["error"], "RefundsBlocked");
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn revoking_benefits_of_a_subscription_order_is_prohibited(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let customer_id = app.customer(org.id, None).await;
    let subscription_id = Uuid::new_v4();
    let order_id = app
        .order_with(PaidOrderInput {
            organization_id: org.id,
            customer_id,
            subscription_id: Some(subscription_id),
            currency: "usd".into(),
            net_amount: 1000,
            tax_amount: 0,
            applied_balance_amount: 0,
            metadata: json!({}),
            details: Default::default(),
        })
        .await;

    // checked before the amount: an over-refund still answers 400
    let mut body = refund_body(order_id, json!(99999));
    body["revoke_benefits"] = json!(true);
    let response = app.create_refund(&org.write_token, body).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json(),
        polar_error(
            "RevokeSubscriptionBenefitsProhibited",
            "Subscription benefits can only be revoked upon cancellation".into()
        )
    );

    let refund = app.refund(&org.write_token, order_id, 100).await;
    assert_eq!(refund["subscription_id"], subscription_id.to_string());

    // a one-time order may revoke benefits
    let one_time = app.order(org.id, 1000, 0).await;
    let mut body = refund_body(one_time, json!(100));
    body["revoke_benefits"] = json!(true);
    let response = app.create_refund(&org.write_token, body).await;
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(response.json()["revoke_benefits"], true);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn checks_run_in_polars_order(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    // blocked wins over fully refunded
    let order_id = app.order(org.id, 100, 0).await;
    app.refund(&org.write_token, order_id, 100).await;
    sqlx::query("UPDATE orders SET refunds_blocked = true WHERE id = $1")
        .bind(order_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let response = app
        .create_refund(&org.write_token, refund_body(order_id, json!(1)))
        .await;
    assert_eq!(response.json()["error"], "RefundsBlocked");

    // fully refunded wins over an over-refund amount
    let order_id = app.order(org.id, 100, 0).await;
    app.refund(&org.write_token, order_id, 100).await;
    let response = app
        .create_refund(&org.write_token, refund_body(order_id, json!(1_000_000)))
        .await;
    assert_eq!(
        (response.status, response.json()["error"].clone()),
        (StatusCode::FORBIDDEN, json!("RefundedAlready"))
    );

    // an over-refund wins over an open dispute; the dispute wins over a valid amount
    let order_id = app.order(org.id, 100, 0).await;
    app.dispute(order_id, DisputeStatus::NeedsResponse, None, None)
        .await;
    let response = app
        .create_refund(&org.write_token, refund_body(order_id, json!(101)))
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let response = app
        .create_refund(&org.write_token, refund_body(order_id, json!(50)))
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(
        response.json(),
        polar_error(
            "RefundDisputedPayment",
            format!("Refund cannot be issued for order with disputed payment: {order_id}")
        )
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn closed_disputes_do_not_block_refunds(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    for status in [
        DisputeStatus::Prevented,
        DisputeStatus::Won,
        DisputeStatus::Lost,
    ] {
        let order_id = app.order(org.id, 100, 0).await;
        app.dispute(order_id, status, Some(10), Some(0)).await;
        app.refund(&org.write_token, order_id, 50).await;
    }
    for status in [DisputeStatus::NeedsResponse, DisputeStatus::UnderReview] {
        let order_id = app.order(org.id, 100, 0).await;
        app.dispute(order_id, status, Some(10), Some(0)).await;
        let response = app
            .create_refund(&org.write_token, refund_body(order_id, json!(50)))
            .await;
        assert_eq!(response.json()["error"], "RefundDisputedPayment");
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn an_order_without_a_succeeded_payment_is_an_unknown_payment(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let customer_id = app.customer(org.id, None).await;
    let order_id = Uuid::new_v4();
    insert_paid_order(
        &app.pool,
        &NewOrder {
            id: order_id,
            organization_id: org.id,
            customer_id,
            subscription_id: None,
            currency: "usd",
            net_amount: 1000,
            tax_amount: 0,
            applied_balance_amount: 0,
            metadata: &json!({}),
            billing_reason: BillingReason::Purchase,
            billing_name: None,
            billing_address: None,
            product: None,
        },
    )
    .await
    .unwrap();
    let response = app
        .create_refund(&org.write_token, refund_body(order_id, json!(10)))
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(
        response.json(),
        polar_error(
            "RefundUnknownPayment",
            format!("Refund issued for unknown order: {order_id}")
        )
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_free_order_has_nothing_to_refund(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 0, 0).await;
    let response = app
        .create_refund(&org.write_token, refund_body(order_id, json!(1)))
        .await;
    assert_eq!(
        response.json(),
        value_error(
            "amount",
            "Refund amount exceeds refundable amount",
            json!(1)
        )
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn processor_refusals_map_to_polars_errors_and_change_nothing(pool: PgPool) {
    let app = spawn_app_with_processor(pool, ScriptedProcessor).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;

    let already = app
        .create_refund(&org.write_token, refund_body(order_id, json!(11)))
        .await;
    assert_eq!(
        (already.status, already.json()["error"].clone()),
        (StatusCode::FORBIDDEN, json!("RefundedAlready"))
    );
    let disputed = app
        .create_refund(&org.write_token, refund_body(order_id, json!(12)))
        .await;
    assert_eq!(
        (disputed.status, disputed.json()["error"].clone()),
        (StatusCode::FORBIDDEN, json!("RefundDisputedPayment"))
    );
    let failed = app
        .create_refund(&org.write_token, refund_body(order_id, json!(13)))
        .await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(failed.header("content-type"), Some("application/json"));
    assert!(
        !failed.text.contains("card network down"),
        "causes stay in the logs"
    );

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM refunds")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
    assert_eq!(app.order_state(order_id).await.refunded_amount, 0);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_pending_refund_reserves_its_amount_and_a_failed_one_does_not(pool: PgPool) {
    let app = spawn_app_with_processor(pool, ScriptedProcessor).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 250).await;

    let pending = app.refund(&org.write_token, order_id, 600).await;
    assert_eq!(
        (pending["status"].as_str(), pending["tax_amount"].as_i64()),
        (Some("pending"), Some(150))
    );
    assert_eq!(
        app.order_state(order_id).await,
        OrderState {
            status: "paid".into(),
            refunded_amount: 0,
            refunded_tax_amount: 0,
            pending_amount: 600,
            pending_tax_amount: 150
        }
    );
    let over = app
        .create_refund(&org.write_token, refund_body(order_id, json!(401)))
        .await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);

    let failed = app.refund(&org.write_token, order_id, 7).await;
    assert_eq!(failed["status"], "failed");
    let rest = app.refund(&org.write_token, order_id, 400).await;
    assert_eq!(
        (rest["status"].as_str(), rest["tax_amount"].as_i64()),
        (Some("succeeded"), Some(100))
    );
    assert_eq!(
        app.order_state(order_id).await,
        OrderState {
            status: "partially_refunded".into(),
            refunded_amount: 400,
            refunded_tax_amount: 100,
            pending_amount: 600,
            pending_tax_amount: 150
        }
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_database_refuses_an_over_refund_whatever_the_code_does(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 100).await;
    for statement in [
        "UPDATE orders SET refunded_amount = 1001 WHERE id = $1",
        "UPDATE orders SET refunded_amount = 600, pending_amount = 401 WHERE id = $1",
        "UPDATE orders SET refunded_tax_amount = 101 WHERE id = $1",
        "UPDATE orders SET refunded_tax_amount = 50, pending_tax_amount = 51 WHERE id = $1",
        "UPDATE orders SET refunded_amount = -1 WHERE id = $1",
    ] {
        let error = sqlx::query(statement)
            .bind(order_id)
            .execute(&app.pool)
            .await
            .unwrap_err();
        let code = error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(
            code.as_deref(),
            Some("23514"),
            "{statement} must violate a CHECK"
        );
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn numbers_beyond_64_bits_keep_every_digit(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let body = format!(
        r#"{{"order_id": "{order_id}", "reason": "other", "amount": 100,
            "metadata": {{"big": 100000000000000000000, "negative": -99999999999999999999999, "ratio": 1E2}}}}"#
    );
    let created = app
        .post_raw(
            &org.write_token,
            Some("application/json"),
            body.into_bytes(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    // (jsonb keeps its own key order, as Polar's storage does)
    let listed = app.list(&org.read_token, "").await;
    for stored in [
        r#""big":100000000000000000000"#,
        r#""negative":-99999999999999999999999"#,
        r#""ratio":100.0"#,
    ] {
        assert!(created.text.contains(stored), "{}", created.text);
        assert!(listed.text.contains(stored), "{}", listed.text);
    }

    // an amount no order can hold is echoed as it was sent
    let body = format!(
        r#"{{"order_id": "{order_id}", "reason": "other", "amount": 1000000000000000000000000000000}}"#
    );
    let refused = app
        .post_raw(
            &org.write_token,
            Some("application/json"),
            body.into_bytes(),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text
            .contains(r#""input":1000000000000000000000000000000"#),
        "{}",
        refused.text
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_float_amount_beyond_64_bits_is_too_large_to_be_an_integer(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let body = format!(r#"{{"order_id": "{order_id}", "reason": "other", "amount": 1e20}}"#);
    let refused = app
        .post_raw(
            &org.write_token,
            Some("application/json"),
            body.into_bytes(),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused.json(),
        json!({"error": "RequestValidationError", "detail": [{
            "type": "int_parsing_size",
            "loc": ["body", "amount"],
            "msg": "Unable to parse input string as an integer, exceeded maximum size",
            "input": 1e20
        }]})
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn an_integer_beyond_64_bits_is_no_boolean_candidate(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    for (sent, kind) in [
        ("-100000000000000000000", "bool_type"),
        ("2", "bool_parsing"),
    ] {
        let body = format!(
            r#"{{"order_id": "{order_id}", "reason": "other", "amount": 1, "revoke_benefits": {sent}}}"#
        );
        let refused = app
            .post_raw(
                &org.write_token,
                Some("application/json"),
                body.into_bytes(),
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.json()["detail"][0]["type"], kind, "{sent}");
        assert!(
            refused.text.contains(&format!(r#""input":{sent}"#)),
            "{}",
            refused.text
        );
    }
}
