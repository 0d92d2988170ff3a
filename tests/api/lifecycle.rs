//! The refund lifecycle with the sandbox processor: outcomes chosen per order, refunds moved
//! through the admin API as a processor's events would move them, and pending refunds that
//! settle by themselves.

use std::time::Duration;

use refunds_server::AppState;
use refunds_server::refunds::recovery::{self, RecoverySettings};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{ADMIN_TOKEN, OrderState, spawn_admin_app, spawn_app_with};

fn counters(refunded: i64, pending: i64, status: &str) -> OrderState {
    OrderState {
        status: status.into(),
        refunded_amount: refunded,
        refunded_tax_amount: 0,
        pending_amount: pending,
        pending_tax_amount: 0,
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_sandbox_answers_each_order_as_it_was_told(pool: PgPool) {
    let app = spawn_admin_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let path = format!("/admin/orders/{order_id}");

    assert_eq!(
        app.refund(&org.write_token, order_id, 100).await["status"],
        "succeeded"
    );

    let order = app
        .admin_ok(
            Method::PATCH,
            &path,
            json!({"sandbox_refund_outcome": "pending"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(order["id"], order_id.to_string());
    assert_eq!(
        app.refund(&org.write_token, order_id, 200).await["status"],
        "pending"
    );
    assert_eq!(
        app.order_state(order_id).await,
        counters(100, 200, "partially_refunded")
    );

    // A failed answer is a refusal: recorded failed, nothing reserved, still 201.
    app.admin_ok(
        Method::PATCH,
        &path,
        json!({"sandbox_refund_outcome": "failed"}),
        StatusCode::OK,
    )
    .await;
    let failed = app.refund(&org.write_token, order_id, 300).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        app.order_state(order_id).await,
        counters(100, 200, "partially_refunded")
    );

    let bad = app
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"sandbox_refund_outcome": "later"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    // Both settings in one request.
    let order = app
        .admin_ok(
            Method::PATCH,
            &path,
            json!({"sandbox_refund_outcome": "succeeded", "refunds_blocked": true}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(order["refunds_blocked"], true);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_admin_settle_moves_a_refund_as_a_processor_event_would(pool: PgPool) {
    let app = spawn_admin_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    app.admin_ok(
        Method::PATCH,
        &format!("/admin/orders/{order_id}"),
        json!({"sandbox_refund_outcome": "pending"}),
        StatusCode::OK,
    )
    .await;
    let first = app.refund(&org.write_token, order_id, 400).await;
    let second = app.refund(&org.write_token, order_id, 100).await;
    assert_eq!(app.order_state(order_id).await, counters(0, 500, "paid"));
    let settle = |id: &serde_json::Value| format!("/admin/refunds/{}/settle", id.as_str().unwrap());

    let settled = app
        .admin_ok(
            Method::POST,
            &settle(&first["id"]),
            json!({"status": "succeeded"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(settled["status"], "succeeded");
    assert!(settled["modified_at"].is_string());
    assert_eq!(
        app.order_state(order_id).await,
        counters(400, 100, "partially_refunded")
    );
    let listed = app
        .list_ok(
            &org.read_token,
            &format!("id={}", first["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(listed["items"][0]["status"], "succeeded");
    assert_eq!(listed["items"][0]["modified_at"], settled["modified_at"]);

    let canceled = app
        .admin_ok(
            Method::POST,
            &settle(&second["id"]),
            json!({"status": "canceled"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(
        app.order_state(order_id).await,
        counters(400, 0, "partially_refunded")
    );

    // A reversal of a succeeded refund takes its amount back.
    let reversed = app
        .admin_ok(
            Method::POST,
            &settle(&first["id"]),
            json!({"status": "failed", "failure_reason": "insufficient_funds"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(reversed["status"], "failed");
    assert_eq!(app.order_state(order_id).await, counters(0, 0, "paid"));
    let (reason,): (Option<String>,) =
        sqlx::query_as("SELECT failure_reason FROM refunds WHERE id = $1")
            .bind(uuid::Uuid::parse_str(first["id"].as_str().unwrap()).unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("insufficient_funds"));

    for (id, body) in [
        (&first["id"], json!({"status": "succeeded"})),
        (&second["id"], json!({"status": "canceled"})),
    ] {
        let refused = app.admin(Method::POST, &settle(id), Some(body)).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert_eq!(
            refused.json()["detail"][0]["loc"],
            json!(["body", "status"])
        );
        let message = refused.json()["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.contains("is failed") || message.contains("is canceled"),
            "{message}"
        );
    }
    let unknown = app
        .admin(
            Method::POST,
            &format!("/admin/refunds/{}/settle", uuid::Uuid::new_v4()),
            Some(json!({"status": "succeeded"})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let unauthenticated = app
        .request(
            Method::POST,
            &settle(&first["id"]),
            None,
            Some(json!({"status": "failed"})),
        )
        .await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn pending_sandbox_refunds_settle_by_themselves_when_told_to(pool: PgPool) {
    let state = AppState::new(pool).with_admin_token(Some(ADMIN_TOKEN));
    let app = spawn_app_with(state.clone()).await;
    tokio::spawn(recovery::run(
        state,
        RecoverySettings {
            interval: Duration::from_millis(50),
            sandbox_settle_after: Some(Duration::from_millis(300)),
        },
    ));
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    app.admin_ok(
        Method::PATCH,
        &format!("/admin/orders/{order_id}"),
        json!({"sandbox_refund_outcome": "pending"}),
        StatusCode::OK,
    )
    .await;
    let refund = app.refund(&org.write_token, order_id, 250).await;
    assert_eq!(refund["status"], "pending");
    let query = format!("id={}", refund["id"].as_str().unwrap());
    for _ in 0..100 {
        let listed = app.list_ok(&org.read_token, &query).await;
        if listed["items"][0]["status"] == "succeeded" {
            assert_eq!(
                app.order_state(order_id).await,
                counters(250, 0, "partially_refunded")
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the pending refund did not settle by itself");
}
