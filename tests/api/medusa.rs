//! `POST /admin/payments/{id}/refund`, Medusa v1's refund route: its answers and errors in
//! Medusa's shapes, its authentication, and the same refunds, counters and rules as Polar's
//! API, over a real socket.

use futures::future::join_all;
use refunds_server::domain::DisputeStatus;
use refunds_server::orders::service::{PaidOrderInput, create_paid_order};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{ADMIN_TOKEN, Response, TestApp, into_response, spawn_admin_app, spawn_app};

/// A paid order and its payment.
struct Paid {
    order_id: Uuid,
    payment_id: Uuid,
}

async fn paid_order(
    app: &TestApp,
    organization_id: Uuid,
    net_amount: i64,
    tax_amount: i64,
) -> Paid {
    let customer_id = app.customer(organization_id, None).await;
    let created = create_paid_order(
        &app.pool,
        PaidOrderInput {
            organization_id,
            customer_id,
            subscription_id: None,
            currency: "usd".into(),
            net_amount,
            tax_amount,
            applied_balance_amount: 0,
            metadata: json!({}),
            details: Default::default(),
        },
    )
    .await
    .unwrap();
    Paid {
        order_id: created.id,
        payment_id: created.payment_id,
    }
}

/// How a request presents its token.
enum Credential<'a> {
    MedusaHeader(&'a str),
    Bearer(&'a str),
    None,
}

async fn refund_payment(
    app: &TestApp,
    payment: &str,
    credential: Credential<'_>,
    key: Option<&str>,
    body: Value,
) -> Response {
    let mut request = app
        .client
        .post(format!("{}/admin/payments/{payment}/refund", app.address))
        .json(&body);
    request = match credential {
        Credential::MedusaHeader(token) => request.header("x-medusa-access-token", token),
        Credential::Bearer(token) => request.bearer_auth(token),
        Credential::None => request,
    };
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    into_response(request.send().await.expect("request sent")).await
}

/// A refund through Medusa's route with Medusa's header, that must answer 200.
async fn medusa_refund(app: &TestApp, token: &str, payment_id: Uuid, body: Value) -> Value {
    let response = refund_payment(
        app,
        &payment_id.to_string(),
        Credential::MedusaHeader(token),
        None,
        body,
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    response.json()
}

/// A Medusa error body: exactly `type` and `message` (and `code` where Medusa gives one),
/// never a Polar body.
fn assert_medusa_error(response: &Response, status: StatusCode, kind: &str, message: &str) {
    assert_eq!(response.status, status, "{}", response.text);
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{}",
        response.text
    );
    let body = response.json();
    assert_eq!(body["type"], kind, "{}", response.text);
    assert_eq!(body["message"], message, "{}", response.text);
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.retain(|key| *key != "code");
    assert_eq!(keys, ["type", "message"], "{}", response.text);
}

fn assert_unauthorized(response: &Response) {
    assert_eq!(
        response.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        response.text
    );
    assert_eq!(response.text, "Unauthorized");
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
}

/// The refunds of an order as Polar's API lists them, oldest first.
async fn polar_refunds(app: &TestApp, token: &str, order_id: Uuid) -> Vec<Value> {
    let body = app
        .list_ok(
            token,
            &format!("order_id={order_id}&sorting=created_at&limit=100"),
        )
        .await;
    body["items"].as_array().unwrap().clone()
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_medusa_refund_is_answered_in_medusa_shape_and_is_the_same_polar_refund(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let paid = paid_order(&app, org.id, 9990, 2498).await;

    let body = medusa_refund(
        &app,
        &org.write_token,
        paid.payment_id,
        json!({"amount": 1388, "reason": "return", "note": "Do not like it"}),
    )
    .await;
    let refund = &body["refund"];
    let keys: Vec<&str> = refund
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "order_id",
            "payment_id",
            "amount",
            "note",
            "reason",
            "metadata",
            "idempotency_key",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(refund["order_id"], paid.order_id.to_string());
    assert_eq!(refund["payment_id"], paid.payment_id.to_string());
    assert_eq!(refund["amount"], 1388);
    assert_eq!(refund["note"], "Do not like it");
    assert_eq!(refund["reason"], "return");
    assert_eq!(refund["metadata"], json!({}));
    assert_eq!(refund["idempotency_key"], Value::Null);
    // JavaScript's Date.toJSON: milliseconds and Z
    let created_at = refund["created_at"].as_str().unwrap();
    assert_eq!(
        created_at.len(),
        "2019-08-24T14:15:22.123Z".len(),
        "{created_at}"
    );
    assert!(created_at.ends_with('Z'));
    assert_eq!(refund["updated_at"], refund["created_at"]);

    // The same refund through Polar's API: the gross split as Polar would split it.
    let listed = polar_refunds(&app, &org.read_token, paid.order_id).await;
    assert_eq!(listed.len(), 1);
    let polar = &listed[0];
    assert_eq!(polar["id"], refund["id"]);
    assert_eq!(
        (polar["amount"].as_i64(), polar["tax_amount"].as_i64()),
        (Some(1110), Some(278))
    );
    assert_eq!(polar["reason"], "customer_request");
    assert_eq!(polar["status"], "succeeded");
    let comment: Option<String> = sqlx::query_scalar("SELECT comment FROM refunds WHERE id = $1")
        .bind(Uuid::parse_str(refund["id"].as_str().unwrap()).unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(comment.as_deref(), Some("Do not like it"));

    // Every other Medusa reason is Polar's `other`; a refund emptying the payment takes
    // exactly what is left of net and tax.
    for (amount, reason) in [(1000, "discount"), (1000, "swap"), (1000, "claim")] {
        medusa_refund(
            &app,
            &org.write_token,
            paid.payment_id,
            json!({"amount": amount, "reason": reason}),
        )
        .await;
    }
    let rest = 12488 - 1388 - 3000;
    let last = medusa_refund(
        &app,
        &org.write_token,
        paid.payment_id,
        json!({"amount": rest, "reason": "other"}),
    )
    .await;
    assert_eq!(last["refund"]["amount"], rest);
    assert_eq!(last["refund"]["note"], Value::Null);
    let listed = polar_refunds(&app, &org.read_token, paid.order_id).await;
    assert_eq!(listed.len(), 5);
    for polar in &listed[1..] {
        assert_eq!(polar["reason"], "other");
    }
    let gross: Vec<i64> = listed
        .iter()
        .map(|refund| refund["amount"].as_i64().unwrap() + refund["tax_amount"].as_i64().unwrap())
        .collect();
    assert_eq!(gross, [1388, 1000, 1000, 1000, rest]);
    let state = app.order_state(paid.order_id).await;
    assert_eq!(
        (
            state.status.as_str(),
            state.refunded_amount,
            state.refunded_tax_amount
        ),
        ("refunded", 9990, 2498)
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn it_takes_access_tokens_in_either_header_with_or_without_the_admin_api(pool: PgPool) {
    for (app, name) in [
        (spawn_app(pool.clone()).await, "Admin API off"),
        (spawn_admin_app(pool.clone()).await, "Admin API on"),
    ] {
        let org = app.organization(name).await;
        let paid = paid_order(&app, org.id, 1000, 0).await;
        let payment = paid.payment_id.to_string();
        let body = || json!({"amount": 10, "reason": "other"});

        let by_header = refund_payment(
            &app,
            &payment,
            Credential::MedusaHeader(&org.write_token),
            None,
            body(),
        )
        .await;
        assert_eq!(by_header.status, StatusCode::OK, "{}", by_header.text);
        let by_bearer = refund_payment(
            &app,
            &payment,
            Credential::Bearer(&org.write_token),
            None,
            body(),
        )
        .await;
        assert_eq!(by_bearer.status, StatusCode::OK, "{}", by_bearer.text);
        // A personal access token of a member works too.
        let user = refunds_server::organizations::service::create_user(
            &app.pool,
            &format!("{}@example.com", Uuid::new_v4().simple()),
        )
        .await
        .unwrap();
        refunds_server::organizations::service::add_membership(&app.pool, user.id, org.id)
            .await
            .unwrap();
        let personal = refunds_server::auth::service::create_token(
            &app.pool,
            refunds_server::auth::service::TokenOwner::User(user.id),
            vec!["refunds:write".into()],
            None,
        )
        .await
        .unwrap()
        .token;
        let by_personal = refund_payment(
            &app,
            &payment,
            Credential::MedusaHeader(&personal),
            None,
            body(),
        )
        .await;
        assert_eq!(by_personal.status, StatusCode::OK, "{}", by_personal.text);

        for refused in [
            refund_payment(&app, &payment, Credential::None, None, body()).await,
            refund_payment(
                &app,
                &payment,
                Credential::MedusaHeader("polar_oat_nope"),
                None,
                body(),
            )
            .await,
            refund_payment(
                &app,
                &payment,
                Credential::MedusaHeader("garbage"),
                None,
                body(),
            )
            .await,
            refund_payment(
                &app,
                &payment,
                Credential::Bearer("polar_oat_nope"),
                None,
                body(),
            )
            .await,
            // the admin token does not open it
            refund_payment(
                &app,
                &payment,
                Credential::Bearer(ADMIN_TOKEN),
                None,
                body(),
            )
            .await,
            refund_payment(
                &app,
                &payment,
                Credential::MedusaHeader(ADMIN_TOKEN),
                None,
                body(),
            )
            .await,
            // a token that may not refund
            refund_payment(
                &app,
                &payment,
                Credential::MedusaHeader(&org.read_token),
                None,
                body(),
            )
            .await,
        ] {
            assert_unauthorized(&refused);
        }
        // Authentication comes before the body: an invalid body without credentials is 401.
        assert_unauthorized(
            &refund_payment(&app, &payment, Credential::None, None, json!({})).await,
        );
        assert_eq!(app.order_state(paid.order_id).await.refunded_amount, 30);
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn unknown_and_foreign_payments_are_not_found(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let other = app.organization("Other").await;
    let foreign = paid_order(&app, other.id, 1000, 0).await;
    let body = json!({"amount": 10, "reason": "other"});
    let unknown = Uuid::new_v4().to_string();
    for payment in [
        foreign.payment_id.to_string(),
        unknown,
        "pay_01G8ZCC5W42ZNY842124G7P5R9".to_owned(),
        // not percent-decodable: named as sent
        "%FF".to_owned(),
    ] {
        let response = refund_payment(
            &app,
            &payment,
            Credential::MedusaHeader(&org.write_token),
            None,
            body.clone(),
        )
        .await;
        assert_medusa_error(
            &response,
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("Payment with id {payment} was not found"),
        );
    }
    assert_eq!(app.order_state(foreign.order_id).await.refunded_amount, 0);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn invalid_bodies_answer_invalid_data_with_class_validator_messages(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let paid = paid_order(&app, org.id, 1000, 250).await;
    let payment = paid.payment_id.to_string();
    let reasons =
        "reason must be one of the following values: discount, return, swap, claim, other";
    let cases = [
        (
            json!({}),
            format!(
                "amount should not be empty, amount must be an integer number, reason should not be empty, {reasons}"
            ),
        ),
        (
            json!({"amount": "10", "reason": "return"}),
            "amount must be an integer number".to_owned(),
        ),
        (
            json!({"amount": 10.5, "reason": "return"}),
            "amount must be an integer number".to_owned(),
        ),
        (
            json!({"amount": 10, "reason": "refund"}),
            reasons.to_owned(),
        ),
        (
            json!({"amount": 10, "reason": "return", "note": 5}),
            "note must be a string".to_owned(),
        ),
        (
            json!({"amount": 10, "reason": "return", "order_id": "x"}),
            "property order_id should not exist".to_owned(),
        ),
        (
            json!({"amount": 0, "reason": "return"}),
            "amount must be a positive number".to_owned(),
        ),
        (
            json!({"amount": -100, "reason": "return"}),
            "amount must be a positive number".to_owned(),
        ),
        (
            json!([1, 2]),
            "The request body must be a JSON object".to_owned(),
        ),
    ];
    for (body, message) in cases {
        let response = refund_payment(
            &app,
            &payment,
            Credential::MedusaHeader(&org.write_token),
            None,
            body.clone(),
        )
        .await;
        assert_medusa_error(&response, StatusCode::BAD_REQUEST, "invalid_data", &message);
    }
    // JSON that does not parse, and a body too large, are Medusa-shaped too.
    let broken = app
        .client
        .post(format!("{}/admin/payments/{payment}/refund", app.address))
        .header("x-medusa-access-token", &org.write_token)
        .header("content-type", "application/json")
        .body("{\"amount\": ")
        .send()
        .await
        .unwrap();
    let broken = into_response(broken).await;
    assert_medusa_error(
        &broken,
        StatusCode::BAD_REQUEST,
        "invalid_data",
        "The request body is not valid JSON",
    );
    let huge = app
        .client
        .post(format!("{}/admin/payments/{payment}/refund", app.address))
        .header("x-medusa-access-token", &org.write_token)
        .header("content-type", "application/json")
        .body(vec![b' '; 10 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    let huge = into_response(huge).await;
    assert_medusa_error(
        &huge,
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_data",
        "The request body is larger than 10485760 bytes",
    );
    assert_eq!(app.order_state(paid.order_id).await.refunded_amount, 0);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn refunds_the_rules_refuse_answer_not_allowed(pool: PgPool) {
    let app = spawn_admin_app(pool).await;
    let org = app.organization("Acme").await;
    let token = org.write_token.as_str();
    let app = &app;
    let refund = |payment: Uuid, amount: i64| async move {
        let payment = payment.to_string();
        let body = json!({"amount": amount, "reason": "return"});
        refund_payment(app, &payment, Credential::MedusaHeader(token), None, body).await
    };

    // More than is left: what is left is net and tax together, as Medusa counts it.
    let taxed = paid_order(app, org.id, 1000, 250).await;
    assert_medusa_error(
        &refund(taxed.payment_id, 1251).await,
        StatusCode::BAD_REQUEST,
        "not_allowed",
        &format!(
            "Only 1250 can be refunded from Payment {}",
            taxed.payment_id
        ),
    );
    // a Polar refund of net 400 takes 100 of tax: 750 is left
    app.refund(token, taxed.order_id, 400).await;
    assert_medusa_error(
        &refund(taxed.payment_id, 751).await,
        StatusCode::BAD_REQUEST,
        "not_allowed",
        &format!("Only 750 can be refunded from Payment {}", taxed.payment_id),
    );
    assert_medusa_error(
        &refund(taxed.payment_id, i64::MAX).await,
        StatusCode::BAD_REQUEST,
        "not_allowed",
        &format!("Only 750 can be refunded from Payment {}", taxed.payment_id),
    );
    assert_eq!(refund(taxed.payment_id, 750).await.status, StatusCode::OK);
    assert_medusa_error(
        &refund(taxed.payment_id, 1).await,
        StatusCode::BAD_REQUEST,
        "not_allowed",
        &format!(
            "Payment {} is already fully refunded (order {})",
            taxed.payment_id, taxed.order_id
        ),
    );

    let blocked = paid_order(app, org.id, 1000, 0).await;
    app.admin_ok(
        Method::PATCH,
        &format!("/admin/orders/{}", blocked.order_id),
        json!({"refunds_blocked": true}),
        StatusCode::OK,
    )
    .await;
    assert_medusa_error(
        &refund(blocked.payment_id, 10).await,
        StatusCode::BAD_REQUEST,
        "not_allowed",
        &format!(
            "Refunds are blocked for order {} of Payment {}",
            blocked.order_id, blocked.payment_id
        ),
    );

    let disputed = paid_order(app, org.id, 1000, 0).await;
    app.dispute(disputed.order_id, DisputeStatus::NeedsResponse, None, None)
        .await;
    assert_medusa_error(
        &refund(disputed.payment_id, 10).await,
        StatusCode::BAD_REQUEST,
        "not_allowed",
        &format!(
            "Payment {} is disputed and cannot be refunded while the dispute is open",
            disputed.payment_id
        ),
    );

    for order in [&blocked, &disputed] {
        assert_eq!(app.order_state(order.order_id).await.refunded_amount, 0);
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn an_idempotency_key_replays_its_medusa_answer_on_its_own_route(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let paid = paid_order(&app, org.id, 1000, 250).await;
    let other = paid_order(&app, org.id, 1000, 250).await;
    let payment = paid.payment_id.to_string();
    let token = Credential::MedusaHeader(&org.write_token);
    let body = json!({"amount": 125, "reason": "claim", "note": "broken"});

    let first = refund_payment(
        &app,
        &payment,
        Credential::MedusaHeader(&org.write_token),
        Some("medusa-key-1"),
        body.clone(),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.json()["refund"]["idempotency_key"], "medusa-key-1");
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = refund_payment(&app, &payment, token, Some("medusa-key-1"), body.clone()).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.text, first.text);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        polar_refunds(&app, &org.read_token, paid.order_id)
            .await
            .len(),
        1
    );

    // Bound to its payment and body, and to its route: not a Polar create.
    let elsewhere = refund_payment(
        &app,
        &other.payment_id.to_string(),
        Credential::MedusaHeader(&org.write_token),
        Some("medusa-key-1"),
        body.clone(),
    )
    .await;
    assert_medusa_error(
        &elsewhere,
        StatusCode::UNPROCESSABLE_ENTITY,
        "duplicate_error",
        "Idempotency-Key medusa-key-1 was already used for a different request",
    );
    assert_eq!(elsewhere.json()["code"], "invalid_request_error");
    let polar = app
        .client
        .post(format!("{}/v1/refunds/", app.address))
        .bearer_auth(&org.write_token)
        .header("idempotency-key", "medusa-key-1")
        .json(&json!({"order_id": paid.order_id, "reason": "other", "amount": 100}))
        .send()
        .await
        .unwrap();
    let polar = into_response(polar).await;
    assert_eq!(
        polar.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        polar.text
    );
    assert_eq!(polar.json()["detail"][0]["type"], "idempotency_key_reused");

    // A refusal by the rules is kept as well, in Medusa's shape.
    let over = json!({"amount": 5000, "reason": "other"});
    let refused = refund_payment(
        &app,
        &payment,
        Credential::MedusaHeader(&org.write_token),
        Some("medusa-key-2"),
        over.clone(),
    )
    .await;
    assert_medusa_error(
        &refused,
        StatusCode::BAD_REQUEST,
        "not_allowed",
        &format!("Only 1125 can be refunded from Payment {payment}"),
    );
    let replayed = refund_payment(
        &app,
        &payment,
        Credential::MedusaHeader(&org.write_token),
        Some("medusa-key-2"),
        over,
    )
    .await;
    assert_eq!(
        (replayed.status, replayed.text.as_str()),
        (StatusCode::BAD_REQUEST, refused.text.as_str())
    );
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));

    // A malformed key is invalid data.
    let malformed = refund_payment(
        &app,
        &payment,
        Credential::MedusaHeader(&org.write_token),
        Some(""),
        body.clone(),
    )
    .await;
    assert_medusa_error(
        &malformed,
        StatusCode::BAD_REQUEST,
        "invalid_data",
        "Idempotency-Key must be 1 to 255 printable ASCII characters",
    );

    // While another request holds the key: 409 conflict, to retry.
    let mut holder = app.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))")
        .bind(format!("organization:{}", org.id))
        .bind("medusa-key-3")
        .execute(&mut *holder)
        .await
        .unwrap();
    let busy = refund_payment(
        &app,
        &payment,
        Credential::MedusaHeader(&org.write_token),
        Some("medusa-key-3"),
        body.clone(),
    )
    .await;
    assert_medusa_error(
        &busy,
        StatusCode::CONFLICT,
        "conflict",
        "The request conflicted with another request. You may retry the request with the provided Idempotency-Key.",
    );
    assert_eq!(busy.json()["code"], "invalid_state_error");
    assert_eq!(busy.header("retry-after"), Some("1"));
    holder.rollback().await.unwrap();
    let after = refund_payment(
        &app,
        &payment,
        Credential::MedusaHeader(&org.write_token),
        Some("medusa-key-3"),
        body,
    )
    .await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text);
    let state = app.order_state(paid.order_id).await;
    assert_eq!(
        (state.refunded_amount, state.refunded_tax_amount),
        (200, 50)
    );
}

/// 50 Medusa refunds of one payment raced with 50 Polar refunds of its order: never more
/// than was paid, and the counters equal the sum of the refunds.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn medusa_and_polar_refunds_racing_on_one_order_never_refund_more_than_paid(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let paid = paid_order(&app, org.id, 10_000, 2_000).await;
    let payment = paid.payment_id.to_string();

    let medusa = (0..50).map(|index| {
        refund_payment(
            &app,
            &payment,
            Credential::MedusaHeader(&org.write_token),
            None,
            json!({"amount": 173 + index, "reason": "return"}),
        )
    });
    let polar = (0..50).map(|index| {
        app.create_refund(
            &org.write_token,
            json!({"order_id": paid.order_id, "reason": "other", "amount": 97 + index}),
        )
    });
    let (medusa, polar) = futures::join!(join_all(medusa), join_all(polar));
    let mut granted = 0;
    for response in &medusa {
        match response.status {
            StatusCode::OK => {
                granted += response.json()["refund"]["amount"].as_i64().unwrap();
            }
            _ => {
                assert_eq!(
                    response.status,
                    StatusCode::BAD_REQUEST,
                    "{}",
                    response.text
                );
                assert_eq!(response.json()["type"], "not_allowed", "{}", response.text);
            }
        }
    }
    for response in &polar {
        match response.status {
            StatusCode::CREATED => {
                let body = response.json();
                granted += body["amount"].as_i64().unwrap() + body["tax_amount"].as_i64().unwrap();
            }
            status => assert!(
                status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::FORBIDDEN,
                "{}",
                response.text
            ),
        }
    }
    let medusa_ok = medusa.iter().filter(|r| r.status == StatusCode::OK).count();
    let polar_ok = polar
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert!(
        medusa_ok > 0 && polar_ok > 0,
        "{medusa_ok} Medusa and {polar_ok} Polar refunds"
    );

    let (count, amount, tax): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(amount)::bigint, sum(tax_amount)::bigint FROM refunds WHERE order_id = $1 AND status = 'succeeded'",
    )
    .bind(paid.order_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(count as usize, medusa_ok + polar_ok);
    assert_eq!(amount + tax, granted);
    let state = app.order_state(paid.order_id).await;
    assert_eq!(
        (state.refunded_amount, state.refunded_tax_amount),
        (amount, tax)
    );
    assert!(state.refunded_amount <= 10_000 && state.refunded_tax_amount <= 2_000);
    // The sum of what was asked for exceeds the order, so some were refused.
    assert!(medusa_ok + polar_ok < 100);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_served_document_describes_the_route(pool: PgPool) {
    let app = spawn_app(pool).await;
    let document = app
        .request(Method::GET, "/openapi.json", None, None)
        .await
        .json();
    let operation = &document["paths"]["/admin/payments/{id}/refund"]["post"];
    assert_eq!(operation["operationId"], "PostPaymentsPaymentRefunds");
    assert_eq!(
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/MedusaAdminPostPaymentRefundsReq"
    );
    let answer = |status: &str| {
        operation["responses"][status]["content"]["application/json"]["schema"]["$ref"].clone()
    };
    assert_eq!(answer("200"), "#/components/schemas/MedusaAdminRefundRes");
    for status in ["400", "404", "409", "422", "500"] {
        assert_eq!(
            answer(status),
            "#/components/schemas/MedusaError",
            "{status}"
        );
    }
    assert_eq!(
        operation["responses"]["401"]["content"]["text/plain"]["schema"]["type"],
        "string"
    );
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["MedusaRefundReason"]["enum"],
        json!(["discount", "return", "swap", "claim", "other"])
    );
    assert_eq!(
        schemas["MedusaAdminPostPaymentRefundsReq"]["required"],
        json!(["amount", "reason"])
    );
    assert_eq!(
        document["components"]["securitySchemes"]["medusa_api_token"]["name"],
        "x-medusa-access-token"
    );
}

/// What the processor answers, in Medusa's terms: a refusal of an already refunded or a
/// disputed payment is `not_allowed`; a failure, or a refund it failed, is Medusa's
/// `Failed to refund Payment` (500), and moves nothing; a pending refund is answered with it.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_processors_answers_in_medusa_terms(pool: PgPool) {
    let app =
        crate::helpers::spawn_app_with_processor(pool, crate::helpers::ScriptedProcessor).await;
    let org = app.organization("Acme").await;
    let paid = paid_order(&app, org.id, 1000, 0).await;
    let payment = paid.payment_id.to_string();
    let refund = |amount: i64| {
        let (app, payment, token) = (&app, payment.clone(), org.write_token.clone());
        async move {
            refund_payment(
                app,
                &payment,
                Credential::MedusaHeader(&token),
                None,
                json!({"amount": amount, "reason": "other"}),
            )
            .await
        }
    };
    assert_medusa_error(
        &refund(11).await,
        StatusCode::BAD_REQUEST,
        "not_allowed",
        &format!(
            "Payment {payment} is already fully refunded (order {})",
            paid.order_id
        ),
    );
    assert_medusa_error(
        &refund(12).await,
        StatusCode::BAD_REQUEST,
        "not_allowed",
        &format!("Payment {payment} is disputed and cannot be refunded while the dispute is open"),
    );
    for failing in [13, 7] {
        assert_medusa_error(
            &refund(failing).await,
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_state",
            &format!("Failed to refund Payment {payment}"),
        );
    }
    let pending = refund(600).await;
    assert_eq!(pending.status, StatusCode::OK, "{}", pending.text);
    assert_eq!(pending.json()["refund"]["amount"], 600);
    let state = app.order_state(paid.order_id).await;
    assert_eq!((state.refunded_amount, state.pending_amount), (0, 600));
}
