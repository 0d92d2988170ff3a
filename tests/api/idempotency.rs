//! `Idempotency-Key` on `POST /v1/refunds/`: a retry is answered as the first request was,
//! byte for byte, and never refunds twice.

use std::time::Duration;

use refunds_server::AppState;
use refunds_server::auth::service::{TokenOwner, create_token};
use refunds_server::organizations::service as organizations;
use refunds_server::payments::{
    PaymentProcessor, ProcessorError, ProcessorOutcome, ProcessorRefund, ProcessorRefundState,
};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{
    OrderState, Response, ScriptedProcessor, TestApp, into_response, scopes, spawn_app,
    spawn_app_with, spawn_app_with_processor,
};

/// POST /v1/refunds/ with the raw JSON text and, when given, the header's raw value.
async fn keyed(app: &TestApp, token: &str, key: Option<&[u8]>, body: &str) -> Response {
    let mut request = app
        .client
        .post(format!("{}/v1/refunds/", app.address))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    into_response(request.send().await.expect("request sent")).await
}

fn refund_body(order_id: Uuid, amount: i64) -> String {
    json!({"order_id": order_id, "reason": "customer_request", "amount": amount}).to_string()
}

async fn key_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(pool)
        .await
        .unwrap()
}

fn assert_replay_of(replay: &Response, first: &Response) {
    assert_eq!(replay.status, first.status, "{}", replay.text);
    assert_eq!(replay.text, first.text, "the body, byte for byte");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    for header in ["content-type", "cache-control"] {
        assert_eq!(replay.header(header), first.header(header), "{header}");
    }
}

fn assert_fresh(response: &Response) {
    assert_eq!(
        response.header("idempotent-replayed"),
        None,
        "{}",
        response.text
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_retry_replays_the_first_answer_and_refunds_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 100).await;
    let body = refund_body(order_id, 300);

    let first = keyed(&app, &org.write_token, Some(b"retry-1"), &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_fresh(&first);
    for _ in 0..3 {
        let replay = keyed(&app, &org.write_token, Some(b"retry-1"), &body).await;
        assert_replay_of(&replay, &first);
    }
    // the same key in the quoted structured-field form is the same key
    let quoted = keyed(&app, &org.write_token, Some(b"\"retry-1\""), &body).await;
    assert_replay_of(&quoted, &first);
    // key order and whitespace do not make the request different
    let reordered = format!(
        "{{ \"amount\" : 300,\n \"reason\":\"customer_request\", \"order_id\": \"{order_id}\" }}"
    );
    let replay = keyed(&app, &org.write_token, Some(b"retry-1"), &reordered).await;
    assert_replay_of(&replay, &first);

    assert_eq!(app.refund_count(order_id).await, 1);
    assert_eq!(app.order_state(order_id).await.refunded_amount, 300);
    // the replay shows the refund as it was answered, even after the order moved on
    app.refund(&org.write_token, order_id, 700).await;
    let replay = keyed(&app, &org.write_token, Some(b"retry-1"), &body).await;
    assert_replay_of(&replay, &first);
    // without a key nothing changes: the same body refunds again (here: nothing is left)
    let unkeyed = keyed(&app, &org.write_token, None, &body).await;
    assert_eq!(unkeyed.status, StatusCode::FORBIDDEN, "{}", unkeyed.text);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_key_used_for_another_request_is_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let first = keyed(
        &app,
        &org.write_token,
        Some(b"k"),
        &refund_body(order_id, 100),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);

    let other = keyed(
        &app,
        &org.write_token,
        Some(b"k"),
        &refund_body(order_id, 101),
    )
    .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_fresh(&other);
    assert_eq!(
        other.json(),
        json!({"error": "PolarRequestValidationError", "detail": [{
            "type": "idempotency_key_reused",
            "loc": ["header", "Idempotency-Key"],
            "msg": "This idempotency key was already used for a different request",
            "input": "k",
        }]})
    );
    // a key first used on another route is refused the same way
    sqlx::query("UPDATE idempotency_keys SET route = '/admin/payments/{id}/refund'")
        .execute(&app.pool)
        .await
        .unwrap();
    let same_body = keyed(
        &app,
        &org.write_token,
        Some(b"k"),
        &refund_body(order_id, 100),
    )
    .await;
    assert_eq!(same_body.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        same_body.json()["detail"][0]["type"],
        "idempotency_key_reused"
    );
    assert_eq!(app.refund_count(order_id).await, 1);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn refusals_of_the_rules_are_kept_and_replayed(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;

    // the over-refund echoes the amount as it was sent
    let over = r#"{"order_id": "ORDER", "reason": "other", "amount": 1001}"#
        .replace("ORDER", &order_id.to_string());
    let first = keyed(&app, &org.write_token, Some(b"over"), &over).await;
    assert_eq!(
        first.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        first.text
    );
    assert_eq!(first.json()["detail"][0]["input"], 1001);
    assert_replay_of(
        &keyed(&app, &org.write_token, Some(b"over"), &over).await,
        &first,
    );

    app.refund(&org.write_token, order_id, 1000).await;
    let body = refund_body(order_id, 5);
    let refused = keyed(&app, &org.write_token, Some(b"late"), &body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.json()["error"], "RefundedAlready");
    assert_replay_of(
        &keyed(&app, &org.write_token, Some(b"late"), &body).await,
        &refused,
    );

    // an order the caller cannot see
    let unknown = refund_body(Uuid::new_v4(), 5);
    let missing = keyed(&app, &org.write_token, Some(b"missing"), &unknown).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_replay_of(
        &keyed(&app, &org.write_token, Some(b"missing"), &unknown).await,
        &missing,
    );
    assert_eq!(key_count(&app.pool).await, 3);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn validation_auth_and_server_failures_are_not_kept(pool: PgPool) {
    let app = spawn_app_with_processor(pool, ScriptedProcessor).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let body = refund_body(order_id, 100);

    let invalid = r#"{"order_id": "ORDER", "reason": "other", "amount": 0}"#
        .replace("ORDER", &order_id.to_string());
    let rejected = keyed(&app, &org.write_token, Some(b"k1"), &invalid).await;
    assert_eq!(rejected.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unauthenticated = keyed(&app, "polar_oat_nope", Some(b"k1"), &body).await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    let forbidden = keyed(&app, &org.read_token, Some(b"k1"), &body).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(key_count(&app.pool).await, 0);
    // the key is still free for the corrected request
    let created = keyed(&app, &org.write_token, Some(b"k1"), &body).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_fresh(&created);

    // the scripted processor fails on 13: a server failure, which a retry runs again
    let failing = refund_body(order_id, 13);
    for _ in 0..2 {
        let failed = keyed(&app, &org.write_token, Some(b"k2"), &failing).await;
        assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_fresh(&failed);
    }
    assert_eq!(key_count(&app.pool).await, 1);
    assert_eq!(app.order_state(order_id).await.refunded_amount, 100);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_rolled_back_create_keeps_no_key(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    // makes the refund's INSERT fail after the key was taken: the transaction rolls back
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_refund() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
         CREATE TRIGGER refuse_refund BEFORE INSERT ON refunds
             FOR EACH ROW EXECUTE FUNCTION refuse_refund();",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let body = refund_body(order_id, 100);
    let failed = keyed(&app, &org.write_token, Some(b"k"), &body).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(key_count(&app.pool).await, 0);

    sqlx::query("DROP TRIGGER refuse_refund ON refunds")
        .execute(&app.pool)
        .await
        .unwrap();
    let created = keyed(&app, &org.write_token, Some(b"k"), &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_fresh(&created);
    assert_eq!(app.refund_count(order_id).await, 1);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_key_held_by_a_running_request_answers_409(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let body = refund_body(order_id, 100);

    // another instance's request holding the key, mid-transaction
    let mut holder = app.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))")
        .bind(format!("organization:{}", org.id))
        .bind("busy")
        .execute(&mut *holder)
        .await
        .unwrap();
    let busy = keyed(&app, &org.write_token, Some(b"busy"), &body).await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    assert_eq!(busy.header("retry-after"), Some("1"));
    assert_eq!(
        busy.json(),
        json!({"error": "IdempotencyKeyInUse",
               "detail": "A request with this idempotency key is still in progress; retry shortly"})
    );
    holder.rollback().await.unwrap();
    let created = keyed(&app, &org.write_token, Some(b"busy"), &body).await;
    assert_eq!(created.status, StatusCode::CREATED);

    // a key written before an outside processor answered, by a process that then died
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, method, route, fingerprint, expires_at)
         SELECT scope, 'cut-off', method, route, fingerprint, expires_at FROM idempotency_keys",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let cut_off = keyed(&app, &org.write_token, Some(b"cut-off"), &body).await;
    assert_eq!(cut_off.status, StatusCode::CONFLICT, "{}", cut_off.text);
    assert_eq!(app.refund_count(order_id).await, 1);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn concurrent_requests_with_one_key_refund_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 100_000, 0).await;
    let body = refund_body(order_id, 100);
    let answers = futures::future::join_all(
        (0..30).map(|_| keyed(&app, &org.write_token, Some(b"race"), &body)),
    )
    .await;
    let created: Vec<&Response> = answers
        .iter()
        .filter(|answer| answer.status == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty());
    for answer in &answers {
        assert!(
            answer.status == StatusCode::CONFLICT || answer.text == created[0].text,
            "{} {}",
            answer.status,
            answer.text
        );
    }
    assert_eq!(app.refund_count(order_id).await, 1);
    assert_eq!(app.order_state(order_id).await.refunded_amount, 100);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn keys_belong_to_the_caller(pool: PgPool) {
    let app = spawn_app(pool).await;
    let a = app.organization("Alpha").await;
    let b = app.organization("Beta").await;
    let (order_a, order_b) = (
        app.order(a.id, 1000, 0).await,
        app.order(b.id, 1000, 0).await,
    );
    let in_a = keyed(
        &app,
        &a.write_token,
        Some(b"shared"),
        &refund_body(order_a, 10),
    )
    .await;
    let in_b = keyed(
        &app,
        &b.write_token,
        Some(b"shared"),
        &refund_body(order_b, 10),
    )
    .await;
    assert_eq!(
        (in_a.status, in_b.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_fresh(&in_b);
    // B's key does not replay A's refund to B, even for A's body
    let crossed = keyed(
        &app,
        &b.write_token,
        Some(b"shared"),
        &refund_body(order_a, 10),
    )
    .await;
    assert_eq!(crossed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        crossed.json()["detail"][0]["type"],
        "idempotency_key_reused"
    );

    // a personal token's keys are its user's, apart from its organizations' own
    let user = organizations::create_user(&app.pool, "ada@example.com")
        .await
        .unwrap();
    organizations::add_membership(&app.pool, user.id, a.id)
        .await
        .unwrap();
    let pat = create_token(
        &app.pool,
        TokenOwner::User(user.id),
        scopes(&["refunds:write"]),
        None,
    )
    .await
    .unwrap()
    .token;
    let personal = keyed(&app, &pat, Some(b"shared"), &refund_body(order_a, 10)).await;
    assert_eq!(personal.status, StatusCode::CREATED, "{}", personal.text);
    assert_fresh(&personal);
    assert_eq!(app.refund_count(order_a).await, 2);
    assert_eq!(app.refund_count(order_b).await, 1);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn keys_expire(pool: PgPool) {
    let mut state = AppState::new(pool);
    state.idempotency_key_lifetime = Duration::from_millis(1500);
    let app = spawn_app_with(state).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let body = refund_body(order_id, 100);
    let first = keyed(&app, &org.write_token, Some(b"k"), &body).await;
    assert_replay_of(
        &keyed(&app, &org.write_token, Some(b"k"), &body).await,
        &first,
    );
    assert_eq!(
        refunds_server::idempotency::repo::purge_expired(&app.pool)
            .await
            .unwrap(),
        0
    );

    tokio::time::sleep(Duration::from_millis(1600)).await;
    // an expired key is free again, for any request
    let other_body = refund_body(order_id, 200);
    let again = keyed(&app, &org.write_token, Some(b"k"), &other_body).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_fresh(&again);
    assert_eq!(key_count(&app.pool).await, 1);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        refunds_server::idempotency::repo::purge_expired(&app.pool)
            .await
            .unwrap(),
        1
    );
    assert_eq!(key_count(&app.pool).await, 0);
    assert_eq!(app.refund_count(order_id).await, 2);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_malformed_key_answers_422(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let body = refund_body(order_id, 100);
    let long = vec![b'k'; 256];
    let cases: [(&[u8], &str); 4] = [
        (b"", "string_too_short"),
        (&long, "string_too_long"),
        ("cl\u{e9}".as_bytes(), "string_pattern_mismatch"),
        (br#""a"b""#, "string_pattern_mismatch"),
    ];
    for (key, kind) in cases {
        let response = keyed(&app, &org.write_token, Some(key), &body).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{key:?}");
        let issue = &response.json()["detail"][0];
        assert_eq!(issue["type"], kind, "{}", response.text);
        assert_eq!(issue["loc"], json!(["header", "Idempotency-Key"]));
    }
    let twice = app
        .client
        .post(format!("{}/v1/refunds/", app.address))
        .bearer_auth(&org.write_token)
        .header("content-type", "application/json")
        .header("Idempotency-Key", "a")
        .header("Idempotency-Key", "b")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let twice = into_response(twice).await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        twice.json()["detail"][0]["loc"],
        json!(["header", "Idempotency-Key"])
    );
    assert_eq!(app.refund_count(order_id).await, 0);
}

/// An outside processor that answers by amount, and checks while it is being called that
/// the key was written with the pending refund and holds no answer yet.
struct KeyCheckingProcessor {
    pool: PgPool,
}

#[async_trait::async_trait]
impl PaymentProcessor for KeyCheckingProcessor {
    fn name(&self) -> &'static str {
        "remote"
    }

    async fn refund(&self, request: &ProcessorRefund) -> Result<ProcessorOutcome, ProcessorError> {
        let (refund_id, answered): (Option<Uuid>, bool) = sqlx::query_as(
            "SELECT refund_id, response_status IS NOT NULL FROM idempotency_keys
             WHERE refund_id = $1",
        )
        .bind(request.refund_id)
        .fetch_one(&self.pool)
        .await
        .expect("the key is committed with the pending refund");
        assert_eq!(refund_id, Some(request.refund_id));
        assert!(!answered);
        match request.amount {
            11 => Err(ProcessorError::AlreadyRefunded),
            13 => Err(ProcessorError::Unavailable("timed out".into())),
            14 => Err(ProcessorError::Other("card network down".into())),
            _ => Ok(ProcessorOutcome {
                state: ProcessorRefundState::Succeeded,
                processor_id: format!("re_{}", request.refund_id.simple()),
                failure_reason: None,
            }),
        }
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn with_an_outside_processor_the_key_is_completed_after_the_call(pool: PgPool) {
    let app = spawn_app_with_processor(pool.clone(), KeyCheckingProcessor { pool }).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;

    let mut answers: Vec<(String, Response)> = Vec::new();
    for (key, amount, status) in [
        ("ok", 100, StatusCode::CREATED),
        ("no-answer", 13, StatusCode::CREATED),
        ("refused", 11, StatusCode::FORBIDDEN),
    ] {
        let body = refund_body(order_id, amount);
        let first = keyed(&app, &org.write_token, Some(key.as_bytes()), &body).await;
        assert_eq!(first.status, status, "{key}: {}", first.text);
        answers.push((body, first));
    }
    assert_eq!(answers[1].1.json()["status"], "pending");
    for ((body, first), key) in answers.iter().zip(["ok", "no-answer", "refused"]) {
        let replay = keyed(&app, &org.write_token, Some(key.as_bytes()), body).await;
        assert_replay_of(&replay, first);
    }
    // a failure of the processor is not kept: the key is released and a retry runs again
    let failing = refund_body(order_id, 14);
    for _ in 0..2 {
        let failed = keyed(&app, &org.write_token, Some(b"broken"), &failing).await;
        assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_fresh(&failed);
    }
    assert_eq!(key_count(&app.pool).await, 3);
    assert_eq!(app.refund_count(order_id).await, 5);
    assert_eq!(
        app.order_state(order_id).await,
        OrderState {
            status: "partially_refunded".into(),
            refunded_amount: 100,
            refunded_tax_amount: 0,
            pending_amount: 13,
            pending_tax_amount: 0,
        }
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_key_taken_after_the_claim_looked_is_not_overwritten(pool: PgPool) {
    use refunds_server::idempotency::{KeyedRequest, StoredAnswer, repo};
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let body = refund_body(order_id, 100);
    let first = keyed(&app, &org.write_token, Some(b"k"), &body).await;
    assert_eq!(first.status, StatusCode::CREATED);

    // what a request whose read predates that commit would try to write
    let principal = refunds_server::auth::service::authenticate(
        &app.pool,
        Some(&format!("Bearer {}", org.write_token)),
    )
    .await
    .unwrap();
    let late = KeyedRequest::new(
        &principal,
        "k".into(),
        "POST",
        "/v1/refunds/",
        body.as_bytes(),
    );
    let answer = StoredAnswer {
        status: 201,
        body: b"{}".to_vec(),
    };
    let mut tx = app.pool.begin().await.unwrap();
    let refused = repo::keep(&mut tx, &late, None, Some(&answer), Duration::from_secs(60)).await;
    assert!(
        matches!(refused, Err(refunds_server::Error::IdempotencyKeyInUse)),
        "{refused:?}"
    );
    drop(tx);
    assert_replay_of(
        &keyed(&app, &org.write_token, Some(b"k"), &body).await,
        &first,
    );
}

/// An outside processor that takes its time and counts its calls.
struct SlowProcessor {
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    delay: Duration,
}

#[async_trait::async_trait]
impl PaymentProcessor for SlowProcessor {
    fn name(&self) -> &'static str {
        "slow"
    }

    async fn refund(&self, request: &ProcessorRefund) -> Result<ProcessorOutcome, ProcessorError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        Ok(ProcessorOutcome {
            state: ProcessorRefundState::Succeeded,
            processor_id: format!("re_{}", request.refund_id.simple()),
            failure_reason: None,
        })
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn one_key_calls_a_slow_processor_once_and_survives_a_client_that_hangs_up(pool: PgPool) {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let processor = SlowProcessor {
        calls: calls.clone(),
        delay: Duration::from_millis(600),
    };
    let app = spawn_app_with_processor(pool, processor).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let body = refund_body(order_id, 100);

    let answers = futures::future::join_all(
        (0..10).map(|_| keyed(&app, &org.write_token, Some(b"slow"), &body)),
    )
    .await;
    let created: Vec<&Response> = answers
        .iter()
        .filter(|answer| answer.status == StatusCode::CREATED)
        .collect();
    assert_eq!(
        created.len(),
        1,
        "the others arrive while the first is running"
    );
    assert!(answers.iter().all(|a| a.status == StatusCode::CREATED
        || (a.status == StatusCode::CONFLICT && a.header("retry-after") == Some("1"))));
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_replay_of(
        &keyed(&app, &org.write_token, Some(b"slow"), &body).await,
        created[0],
    );

    // the client gives up during the call: the refund settles all the same, and its answer
    // is kept for the retry
    let hasty = app
        .client
        .post(format!("{}/v1/refunds/", app.address))
        .bearer_auth(&org.write_token)
        .header("content-type", "application/json")
        .header("Idempotency-Key", "hasty")
        // Long enough for the reserving transaction to commit on a loaded machine, shorter
        // than the processor's call.
        .timeout(Duration::from_millis(400))
        .body(refund_body(order_id, 200))
        .send()
        .await;
    assert!(hasty.is_err(), "the client timed out");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let retried = keyed(
        &app,
        &org.write_token,
        Some(b"hasty"),
        &refund_body(order_id, 200),
    )
    .await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.text);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    assert_eq!(retried.json()["status"], "succeeded");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(
        app.order_state(order_id).await,
        OrderState {
            status: "partially_refunded".into(),
            refunded_amount: 300,
            refunded_tax_amount: 0,
            pending_amount: 0,
            pending_tax_amount: 0,
        }
    );
}

/// Keyed creates are made in batches too: the key is kept with its answer in the batch's
/// statement, a retry replays it byte for byte, and many requests with one key at once
/// refund once, whichever way each went.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn keyed_creates_in_batches_refund_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 100_000, 0).await;
    let body = refund_body(order_id, 100);

    let first = keyed(&app, &org.write_token, Some(b"batched"), &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_fresh(&first);
    assert_eq!(
        app.metric("refunds_batched_total", r#"outcome="created""#)
            .await,
        1.0,
        "the first create was batched"
    );
    let replay = keyed(&app, &org.write_token, Some(b"batched"), &body).await;
    assert_replay_of(&replay, &first);
    assert_eq!(app.refund_count(order_id).await, 1);

    let other_order = app.order(org.id, 100_000, 0).await;
    let other_body = refund_body(other_order, 100);
    let together = futures::future::join_all(
        (0..20).map(|_| keyed(&app, &org.write_token, Some(b"together"), &other_body)),
    )
    .await;
    let created: Vec<&Response> = together
        .iter()
        .filter(|response| response.status == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty());
    for response in &together {
        assert!(
            [StatusCode::CREATED, StatusCode::CONFLICT].contains(&response.status),
            "{}",
            response.text
        );
    }
    // Every 201 is the one refund's answer, byte for byte.
    assert!(
        created
            .iter()
            .all(|response| response.text == created[0].text)
    );
    assert_eq!(app.refund_count(other_order).await, 1);
    assert_eq!(key_count(&app.pool).await, 2);
}

/// Waits until a batch's statement waits for a lock in this test's database; other
/// statements, such as the purge of expired keys, may wait too. The statement is known by its
/// opening words: PostgreSQL shows only the start of a long one.
async fn until_the_batch_waits_for_a_lock(pool: &PgPool) {
    for _ in 0..200 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock' \
               AND query LIKE '%WITH request AS%'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no batch came to wait for the lock");
}

/// A key another request takes after a batch looked its keys up, but before the batch's
/// statement writes, fails that statement as a whole: nothing of the batch is written, and
/// the create, made one by one, finds the key used for another request.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_key_taken_while_its_batch_writes_fails_the_batch_and_is_answered_as_reused(
    pool: PgPool,
) {
    let app = spawn_app(pool.clone()).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 100_000, 0).await;
    let body = refund_body(order_id, 100);

    // Reads of keys go on while this is held; writes of keys wait.
    let mut other_request = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE idempotency_keys IN SHARE MODE")
        .execute(&mut *other_request)
        .await
        .unwrap();
    let take_the_key = async {
        until_the_batch_waits_for_a_lock(&pool).await;
        sqlx::query(
            "INSERT INTO idempotency_keys \
               (scope, key, method, route, fingerprint, response_status, response_body, expires_at) \
             VALUES ($1, 'raced', 'POST', '/v1/refunds/', $2, 201, '{}', now() + interval '1 day')",
        )
        .bind(format!("organization:{}", org.id))
        .bind(vec![0u8; 32])
        .execute(&mut *other_request)
        .await
        .unwrap();
        other_request.commit().await.unwrap();
    };
    let (answer, ()) = tokio::join!(
        keyed(&app, &org.write_token, Some(b"raced"), &body),
        take_the_key
    );

    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
    assert_eq!(answer.json()["detail"][0]["type"], "idempotency_key_reused");
    assert_eq!(app.refund_count(order_id).await, 0);
    assert_eq!(app.order_state(order_id).await.refunded_amount, 0);
    assert_eq!(
        app.metric("refunds_batched_total", r#"outcome="declined""#)
            .await,
        1.0,
        "the create was declined by its batch"
    );
}

/// The lookups of stored keys go through the primary key even on a connection that cached
/// their plans while the table was empty, as it is in a new database or once its keys
/// expire: a plan made then scanned the whole table on every call as it grew.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn key_lookups_use_the_primary_key_after_the_table_grows_from_empty(pool: PgPool) {
    use refunds_server::idempotency::{Claim, KeyedRequest, repo};

    sqlx::query("VACUUM ANALYZE idempotency_keys")
        .execute(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let request = |key: &str| KeyedRequest {
        scope: "scope".into(),
        key: key.into(),
        method: "POST",
        route: "/v1/refunds/".into(),
        fingerprint: [7; 32],
    };
    let scopes = vec!["scope".to_owned(); 2];
    // More calls than PostgreSQL plans one by one before it caches a plan.
    for _ in 0..8 {
        let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
        let found = repo::existing_keys(&mut tx, &scopes, &["k1".into(), "k2".into()])
            .await
            .unwrap();
        assert!(found.is_empty());
        let claim = repo::claim(&mut tx, &request("k1")).await.unwrap();
        assert!(matches!(claim, Claim::Fresh));
        tx.rollback().await.unwrap();
    }
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, method, route, fingerprint, expires_at)
         SELECT 'scope', 'k' || g, 'POST', '/v1/refunds/', '\\x07', now() + interval '1 day'
         FROM generate_series(1, 5000) AS g",
    )
    .execute(&pool)
    .await
    .unwrap();

    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    // Counted within one transaction, which keeps the counts of this connection's scans
    // until it ends.
    let scans = "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables
                 WHERE relname = 'idempotency_keys'";
    let (sequential_before, indexed_before): (i64, i64) =
        sqlx::query_as(scans).fetch_one(&mut *tx).await.unwrap();
    let found = repo::existing_keys(&mut tx, &scopes, &["k17".into(), "absent".into()])
        .await
        .unwrap();
    assert_eq!(found, vec![("scope".to_owned(), "k17".to_owned())]);
    let claim = repo::claim(&mut tx, &request("k18")).await.unwrap();
    assert!(
        matches!(claim, Claim::Reused),
        "k18 was stored for another body"
    );
    let (sequential, indexed): (i64, i64) =
        sqlx::query_as(scans).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(sequential, sequential_before, "no lookup scanned the table");
    assert!(
        indexed - indexed_before >= 3,
        "the lookups used the primary key: {}",
        indexed - indexed_before
    );
}
