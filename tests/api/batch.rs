//! Creates made in batches (`refunds::batch`): many at once over a real socket, with the
//! rules holding, and the races a batch reads its orders around.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use refunds_server::AppState;

use crate::helpers::{spawn_app, spawn_app_with};

/// 240 creates at once over 40 orders, six per order, of which only four fit: batches
/// take most of them, a second create of an order in one batch goes one by one, and every
/// order ends with exactly the refunds it can hold, its counters equal to them.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn simultaneous_creates_over_many_orders_refund_each_exactly(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let org = app.organization("Batches").await;
    let mut orders = Vec::new();
    for _ in 0..40 {
        orders.push(app.order(org.id, 1000, 250).await);
    }
    let attempts = orders.iter().cycle().take(240).map(|order_id| {
        app.create_refund(
            &org.write_token,
            json!({"order_id": order_id, "reason": "other", "amount": 250}),
        )
    });
    let responses = join_all(attempts).await;

    let mut created_per_order: HashMap<String, usize> = HashMap::new();
    for response in &responses {
        match response.status {
            StatusCode::CREATED => {
                let refund = response.json();
                assert_eq!(refund["amount"], 250);
                assert_eq!(refund["status"], "succeeded");
                let order_id = refund["order_id"].as_str().unwrap().to_owned();
                *created_per_order.entry(order_id).or_default() += 1;
            }
            StatusCode::FORBIDDEN => {
                assert_eq!(
                    response.json()["error"],
                    "RefundedAlready",
                    "{}",
                    response.text
                )
            }
            StatusCode::UNPROCESSABLE_ENTITY => assert_eq!(
                response.json()["detail"][0]["msg"],
                "Refund amount exceeds refundable amount"
            ),
            other => panic!("unexpected {other}: {}", response.text),
        }
    }
    for order_id in &orders {
        assert_eq!(created_per_order[&order_id.to_string()], 4, "{order_id}");
        let state = app.order_state(*order_id).await;
        assert_eq!(state.status, "refunded");
        assert_eq!(state.refunded_amount, 1000);
        assert_eq!(state.refunded_tax_amount, 250);
        assert_eq!((state.pending_amount, state.pending_tax_amount), (0, 0));
    }
    let (refunds, sums): (i64, Option<i64>) =
        sqlx::query_as("SELECT count(*), sum(amount)::bigint FROM refunds")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((refunds, sums), (160, Some(40_000)));
    let list = app.list_ok(&org.read_token, "limit=1").await;
    assert_eq!(list["pagination"]["total_count"], 160);

    assert!(
        app.metric("refunds_batched_total", r#"outcome="created""#)
            .await
            > 0.0
    );
    assert!(
        app.metric("refunds_batched_total", r#"outcome="declined""#)
            .await
            > 0.0
    );
}

/// A dispute opened by a transaction that holds the order's lock, committed while a create
/// of that order waits for it: the create must see the dispute and refuse, whichever way
/// it was made.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_dispute_committed_while_a_create_waits_refuses_it(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let org = app.organization("Disputed").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let payment_id: Uuid = sqlx::query_scalar("SELECT id FROM payments WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(&pool)
        .await
        .unwrap();

    // What opening a dispute does: lock the order, then insert the dispute.
    let mut dispute = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE")
        .bind(order_id)
        .execute(&mut *dispute)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO disputes (id, organization_id, order_id, payment_id, status, amount, \
         tax_amount, currency) VALUES ($1, $2, $3, $4, 'needs_response', 1000, 0, 'usd')",
    )
    .bind(Uuid::new_v4())
    .bind(org.id)
    .bind(order_id)
    .bind(payment_id)
    .execute(&mut *dispute)
    .await
    .unwrap();

    let started = std::time::Instant::now();
    let (response, ()) = tokio::join!(
        app.create_refund(
            &org.write_token,
            json!({"order_id": order_id, "reason": "other", "amount": 100}),
        ),
        async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            dispute.commit().await.unwrap();
        }
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the create must wait for the order"
    );
    assert_eq!(response.status, StatusCode::FORBIDDEN, "{}", response.text);
    assert_eq!(response.json()["error"], "RefundDisputedPayment");
    let refunds: i64 = sqlx::query_scalar("SELECT count(*) FROM refunds")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(refunds, 0);
    assert_eq!(app.order_state(order_id).await.refunded_amount, 0);
}

/// The count of open disputes on the order follows every dispute, whoever writes it.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn orders_count_their_open_disputes(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let org = app.organization("Counted").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let open = || async {
        sqlx::query_scalar::<_, i32>("SELECT open_disputes FROM orders WHERE id = $1")
            .bind(order_id)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    use refunds_server::domain::DisputeStatus;
    let first = app
        .dispute(order_id, DisputeStatus::NeedsResponse, Some(10), Some(0))
        .await;
    app.dispute(order_id, DisputeStatus::Won, Some(10), Some(0))
        .await;
    assert_eq!(open().await, 1);
    for (status, expected) in [("under_review", 1), ("lost", 0), ("lost", 0)] {
        sqlx::query("UPDATE disputes SET status = $2 WHERE id = $1")
            .bind(first.id)
            .bind(status)
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(open().await, expected, "{status}");
    }
    sqlx::query("UPDATE disputes SET status = 'needs_response' WHERE id = $1")
        .bind(first.id)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(open().await, 1);
    sqlx::query("DELETE FROM disputes WHERE id = $1")
        .bind(first.id)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(open().await, 0);
}

/// What a batched create answers is what the refund's row holds.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_batched_refund_answers_what_was_stored(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Stored").await;
    let order_id = app.order(org.id, 1000, 250).await;
    let response = app
        .create_refund(
            &org.write_token,
            json!({"order_id": order_id, "reason": "duplicate", "amount": 400,
                   "comment": "twice", "metadata": {"ticket": "T-1", "n": 3}}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    let created = response.json();
    let listed = app.list_ok(&org.read_token, "").await;
    assert_eq!(listed["items"], Value::Array(vec![created.clone()]));
    assert_eq!(created["metadata"], json!({"ticket": "T-1", "n": 3}));
    assert_eq!(
        app.metric("refunds_batched_total", r#"outcome="created""#)
            .await,
        1.0
    );
}

/// Every batch records how many creates it took and how long its stages took: each
/// create's wait for its batch, and the batch's read of its orders and its write.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_batch_records_its_size_and_the_time_of_its_stages(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Timed").await;
    let mut orders = Vec::new();
    for _ in 0..20 {
        orders.push(app.order(org.id, 1000, 0).await);
    }
    let creates = orders.iter().map(|order_id| {
        app.create_refund(
            &org.write_token,
            json!({"order_id": order_id, "reason": "other", "amount": 100}),
        )
    });
    for response in join_all(creates).await {
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    }

    let batched = app
        .metric("refunds_batched_total", r#"outcome="created""#)
        .await;
    assert_eq!(batched, 20.0);
    assert_eq!(app.metric("refunds_batch_creates_sum", "").await, 20.0);
    let batches = app.metric("refunds_batch_creates_count", "").await;
    assert!((1.0..=20.0).contains(&batches), "{batches} batches");
    // Buckets of creates, not of seconds: every batch fits the largest, 64.
    let within_64 = app
        .metric("refunds_batch_creates_bucket", r#"le="64""#)
        .await;
    assert_eq!(within_64, batches);
    let count = "refunds_batch_stage_duration_seconds_count";
    assert_eq!(app.metric(count, r#"stage="wait""#).await, 20.0);
    for per_batch in [r#"stage="read""#, r#"stage="write""#] {
        assert_eq!(app.metric(count, per_batch).await, batches, "{per_batch}");
        let seconds = app
            .metric("refunds_batch_stage_duration_seconds_sum", per_batch)
            .await;
        assert!(seconds > 0.0, "{per_batch}");
    }
}

/// An order held by another transaction is left to its own create: the creates of other
/// orders, batched meanwhile, go through while it waits.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_held_order_holds_up_no_other_create(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let org = app.organization("Held").await;
    let held_order = app.order(org.id, 1000, 0).await;
    let mut others = Vec::new();
    for _ in 0..6 {
        others.push(app.order(org.id, 1000, 0).await);
    }
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE")
        .bind(held_order)
        .execute(&mut *holder)
        .await
        .unwrap();

    let body = |order_id: Uuid| json!({"order_id": order_id, "reason": "other", "amount": 100});
    let (held, (free, ())) = tokio::join!(
        // Twice, so that both batch slots would be taken if a batch waited for the lock.
        join_all([held_order, held_order].map(|id| app.create_refund(&org.write_token, body(id)))),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let free = tokio::time::timeout(
                Duration::from_secs(5),
                join_all(
                    others
                        .iter()
                        .map(|id| app.create_refund(&org.write_token, body(*id))),
                ),
            )
            .await
            .expect("creates of other orders are not held up");
            (free, holder.commit().await.unwrap())
        }
    );
    assert!(
        free.iter()
            .all(|response| response.status == StatusCode::CREATED)
    );
    assert!(
        held.iter()
            .all(|response| response.status == StatusCode::CREATED)
    );
    assert_eq!(app.order_state(held_order).await.refunded_amount, 200);
}

/// A create whose request ended while its batch was under way (here the request timed out
/// with a 503) is not made: nothing of it is written, and a retry with its key creates the
/// refund afresh instead of replaying an answer nobody received.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_create_whose_request_ended_is_not_made(pool: PgPool) {
    let mut state = AppState::new(pool.clone());
    state.request_timeout = Duration::from_millis(300);
    let app = spawn_app_with(state).await;
    let org = app.organization("Gone").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let keyed = || {
        app.client
            .post(format!("{}/v1/refunds/", app.address))
            .bearer_auth(&org.write_token)
            .header("Idempotency-Key", "gone")
            .json(&json!({"order_id": order_id, "reason": "other", "amount": 100}))
            .send()
    };

    // The batch waits to read its keys until the request has timed out.
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE idempotency_keys IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let timed_out = keyed().await.unwrap();
    assert_eq!(timed_out.status(), StatusCode::SERVICE_UNAVAILABLE);
    holder.commit().await.unwrap();

    let retried = keyed().await.unwrap();
    assert_eq!(retried.status(), StatusCode::CREATED);
    assert_eq!(retried.headers().get("idempotent-replayed"), None);
    assert_eq!(app.refund_count(order_id).await, 1);
    assert_eq!(app.order_state(order_id).await.refunded_amount, 100);
}

/// On a pool of one connection, a batch that reads keys and Polar's `Order` for order events
/// reads them on its own connection, one read after the other: it does not wait for a second
/// connection, which would be its own.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_batch_on_a_pool_of_one_reads_everything_on_its_own_connection(pool: PgPool) {
    let single = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let mut state = AppState::new(single);
    state.webhook_allow_private_urls = true;
    let app = spawn_app_with(state).await;
    let org = app.organization("One connection").await;
    let token = app
        .org_token(org.id, &["refunds:read", "refunds:write", "webhooks:write"])
        .await;
    let events = ["refund.created", "order.updated", "order.refunded"];
    let endpoint = app
        .request(
            reqwest::Method::POST,
            "/v1/webhooks/endpoints",
            Some(&token),
            Some(json!({"url": "http://127.0.0.1:9/hook", "format": "raw", "events": events})),
        )
        .await;
    assert_eq!(endpoint.status, StatusCode::CREATED, "{}", endpoint.text);
    let order_id = app.order(org.id, 1000, 0).await;

    let response = app
        .client
        .post(format!("{}/v1/refunds/", app.address))
        .bearer_auth(&token)
        .header("Idempotency-Key", "one-connection")
        .json(&json!({"order_id": order_id, "reason": "other", "amount": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        app.metric("refunds_batched_total", r#"outcome="created""#)
            .await,
        1.0,
        "made in a batch, not one by one after the batch gave up"
    );
    let written: Vec<String> = sqlx::query_scalar("SELECT type FROM webhook_events ORDER BY seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(written, events);
    // The test's database is dropped once no connection is left on it.
    app.pool.close().await;
}
