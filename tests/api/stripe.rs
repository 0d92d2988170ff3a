//! The Stripe connector end to end: the server on a real socket, talking over HTTP to the
//! fake Stripe of `tools/fake-stripe`, which calls its webhook endpoint back with signed
//! events.

use std::sync::Arc;
use std::time::Duration;

use fake_stripe::{FakeStripe, Faults, RefundMode, Settings, signature_header};
use refunds_server::AppState;
use refunds_server::config::Secret;
use refunds_server::orders::service::{OrderDetails, PaidOrderInput, PaymentSource};
use refunds_server::payments::stripe::StripeProcessor;
use refunds_server::refunds::recovery;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{ADMIN_TOKEN, OrderState, TestApp, TestOrg, spawn_app_with};

const SECRET_KEY: &str = "sk_test_refunds_e2e";
const WEBHOOK_SECRET: &str = "whsec_refunds_e2e";

struct StripeApp {
    app: TestApp,
    fake: FakeStripe,
    state: AppState,
    org: TestOrg,
}

/// How long the server waits for the fake before it counts a call as unanswered.
const CALL_TIMEOUT: Duration = Duration::from_millis(700);

async fn spawn_stripe_app(pool: PgPool) -> StripeApp {
    let fake = FakeStripe::start(
        "127.0.0.1:0".parse().unwrap(),
        Settings {
            secret_key: SECRET_KEY.into(),
            webhook_secret: WEBHOOK_SECRET.into(),
        },
    )
    .await
    .unwrap();
    let mut state = AppState::new(pool).with_admin_token(Some(ADMIN_TOKEN));
    state.processor =
        Arc::new(StripeProcessor::new(&fake.url(), Secret::new(SECRET_KEY), CALL_TIMEOUT).unwrap());
    state.stripe_webhook_secret = Some(Secret::new(WEBHOOK_SECRET));
    state.recovery_after = Duration::from_millis(100);
    let app = spawn_app_with(state.clone()).await;
    fake.set_webhook_url(&format!("{}/v1/integrations/stripe/webhook", app.address));
    let org = app.organization("Acme").await;
    StripeApp {
        app,
        fake,
        state,
        org,
    }
}

impl StripeApp {
    /// A paid order whose payment is the Stripe charge `charge_id`, known to the fake.
    async fn order(&self, charge_id: &str, net_amount: i64, tax_amount: i64) -> Uuid {
        self.fake
            .add_charge(charge_id, net_amount + tax_amount, "usd");
        let customer_id = self.app.customer(self.org.id, None).await;
        self.app
            .order_with(PaidOrderInput {
                organization_id: self.org.id,
                customer_id,
                subscription_id: None,
                currency: "usd".into(),
                net_amount,
                tax_amount,
                applied_balance_amount: 0,
                metadata: json!({}),
                details: OrderDetails {
                    payment: Some(PaymentSource {
                        processor: "stripe".into(),
                        processor_id: charge_id.into(),
                    }),
                    ..Default::default()
                },
            })
            .await
    }

    async fn create(&self, order_id: Uuid, amount: i64, reason: &str) -> crate::helpers::Response {
        self.app
            .create_refund(
                &self.org.write_token,
                json!({"order_id": order_id, "reason": reason, "amount": amount}),
            )
            .await
    }

    async fn refund_status(&self, refund_id: &str) -> String {
        let listed = self
            .app
            .list_ok(&self.org.read_token, &format!("id={refund_id}"))
            .await;
        listed["items"][0]["status"].as_str().unwrap().to_owned()
    }

    /// Waits (up to 10 s) until the refund is listed with `status`.
    async fn wait_for_status(&self, refund_id: &str, status: &str) {
        for _ in 0..200 {
            if self.refund_status(refund_id).await == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "refund {refund_id} is still {}, not {status}",
            self.refund_status(refund_id).await
        );
    }

    /// Waits until every webhook the fake sent was accepted.
    async fn wait_for_webhooks(&self) {
        for _ in 0..200 {
            if self.fake.undelivered_webhooks() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("webhooks still undelivered: {:?}", self.fake.counters());
    }

    async fn post_webhook(&self, signature: Option<&str>, body: &str) -> crate::helpers::Response {
        let mut request = self
            .app
            .client
            .post(format!(
                "{}/v1/integrations/stripe/webhook",
                self.app.address
            ))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        crate::helpers::into_response(request.send().await.unwrap()).await
    }

    /// The fake's refunds that carry our refund id.
    fn fake_refunds_of(&self, refund_id: &str) -> Vec<fake_stripe::RefundObject> {
        self.fake
            .refunds()
            .into_iter()
            .filter(|refund| {
                refund.metadata.get("refund_id").map(String::as_str) == Some(refund_id)
            })
            .collect()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_refund_is_made_at_stripe_with_polars_parameters_and_our_id_as_key(pool: PgPool) {
    let s = spawn_stripe_app(pool).await;
    let order_id = s.order("ch_params", 1000, 250).await;

    let created = s.create(order_id, 400, "fraudulent").await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let refund = created.json();
    assert_eq!(refund["status"], "succeeded");
    assert_eq!(
        (refund["amount"].as_i64(), refund["tax_amount"].as_i64()),
        (Some(400), Some(100))
    );
    let refund_id = refund["id"].as_str().unwrap();

    let requests = s.fake.requests();
    assert_eq!(requests.len(), 1);
    let param = |name: &str| {
        requests[0]
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(param("charge"), Some("ch_params"));
    assert_eq!(param("amount"), Some("500"), "net plus tax");
    assert_eq!(
        param("reason"),
        Some("requested_by_customer"),
        "fraudulent is never forwarded"
    );
    assert_eq!(param("metadata[refund_id]"), Some(refund_id));
    assert_eq!(
        param("metadata[order_id]"),
        Some(order_id.to_string().as_str())
    );
    assert_eq!(param("metadata[charge_id]"), Some("ch_params"));
    assert_eq!(param("metadata[amount]"), Some("400"));
    assert_eq!(param("metadata[refund_amount]"), Some("400"));
    assert_eq!(param("metadata[refund_tax_amount]"), Some("100"));
    assert_eq!(param("metadata[revoke_benefits]"), Some("0"));

    let made = s.fake_refunds_of(refund_id);
    assert_eq!(made.len(), 1);
    let (stored,): (Option<String>,) =
        sqlx::query_as("SELECT processor_id FROM refunds WHERE id = $1")
            .bind(Uuid::parse_str(refund_id).unwrap())
            .fetch_one(&s.app.pool)
            .await
            .unwrap();
    assert_eq!(stored.as_deref(), Some(made[0].id.as_str()));
    assert_eq!(s.fake.refunded("ch_params"), 500);
    let order = s.app.order_state(order_id).await;
    assert_eq!(
        (
            order.status.as_str(),
            order.refunded_amount,
            order.refunded_tax_amount,
            order.pending_amount
        ),
        ("partially_refunded", 400, 100, 0)
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_pending_refund_settles_or_fails_by_stripes_signed_webhooks(pool: PgPool) {
    let s = spawn_stripe_app(pool).await;
    let order_id = s.order("ch_pending", 1000, 0).await;
    s.fake.set_mode(RefundMode::Pending {
        settle_after: Duration::from_millis(300),
        settle_to: "succeeded",
    });
    let pending = s.create(order_id, 300, "customer_request").await.json();
    assert_eq!(pending["status"], "pending");
    assert_eq!(s.app.order_state(order_id).await.pending_amount, 300);
    s.wait_for_status(pending["id"].as_str().unwrap(), "succeeded")
        .await;

    s.fake.set_mode(RefundMode::Pending {
        settle_after: Duration::from_millis(300),
        settle_to: "failed",
    });
    let failing = s.create(order_id, 200, "customer_request").await.json();
    assert_eq!(failing["status"], "pending");
    s.wait_for_status(failing["id"].as_str().unwrap(), "failed")
        .await;
    s.wait_for_webhooks().await;
    let (failure_reason,): (Option<String>,) =
        sqlx::query_as("SELECT failure_reason FROM refunds WHERE id = $1")
            .bind(Uuid::parse_str(failing["id"].as_str().unwrap()).unwrap())
            .fetch_one(&s.app.pool)
            .await
            .unwrap();
    assert_eq!(failure_reason.as_deref(), Some("declined"));
    assert_eq!(
        s.app.order_state(order_id).await,
        OrderState {
            status: "partially_refunded".into(),
            refunded_amount: 300,
            refunded_tax_amount: 0,
            pending_amount: 0,
            pending_tax_amount: 0,
        }
    );

    // A reversal at Stripe takes the amount back.
    let stripe_id = s.fake_refunds_of(pending["id"].as_str().unwrap())[0]
        .id
        .clone();
    s.fake
        .move_refund(&stripe_id, "failed", Some("lost_or_stolen_card"));
    s.wait_for_status(pending["id"].as_str().unwrap(), "failed")
        .await;
    let order = s.app.order_state(order_id).await;
    assert_eq!((order.status.as_str(), order.refunded_amount), ("paid", 0));
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn stripe_refusals_answer_as_polar_and_release_the_reservation(pool: PgPool) {
    let s = spawn_stripe_app(pool).await;
    // Our counters say 1,000 is refundable; Stripe says the charge has nothing left.
    let refunded = s.order("ch_refunded", 1000, 0).await;
    s.fake.add_charge("ch_refunded", 0, "usd");
    let refused = s.create(refunded, 100, "customer_request").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(refused.json()["error"], "RefundedAlready");

    let disputed = s.order("ch_disputed", 1000, 0).await;
    s.fake.set_disputed("ch_disputed", true);
    let refused = s.create(disputed, 100, "customer_request").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(refused.json()["error"], "RefundDisputedPayment");

    for order_id in [refunded, disputed] {
        let order = s.app.order_state(order_id).await;
        assert_eq!(
            (
                order.status.as_str(),
                order.pending_amount,
                order.refunded_amount
            ),
            ("paid", 0, 0)
        );
    }
    let listed = s.app.list_ok(&s.org.read_token, "").await;
    let statuses: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "failed"]);
    assert!(s.fake.refunds().is_empty());
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn an_unanswered_call_leaves_the_refund_pending_and_recovery_makes_it_exactly_once(
    pool: PgPool,
) {
    let s = spawn_stripe_app(pool).await;
    // Without webhooks, which would otherwise tell the server what its calls could not.
    s.fake.stop_webhooks();
    let order_id = s.order("ch_faults", 10_000, 0).await;
    let faults = [
        // made at Stripe, the connection breaks before the answer
        Faults {
            reset_after: 1.0,
            ..Faults::default()
        },
        // made at Stripe, the answer comes after our timeout
        Faults {
            hang_after: 1.0,
            hang: Duration::from_secs(3),
            ..Faults::default()
        },
        // Stripe fails before making it
        Faults {
            server_error: 1.0,
            ..Faults::default()
        },
    ];
    let mut refund_ids = Vec::new();
    for (index, fault) in faults.into_iter().enumerate() {
        s.fake.set_faults(fault);
        let created = s
            .create(order_id, 100 + index as i64, "customer_request")
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let refund = created.json();
        assert_eq!(refund["status"], "pending", "fault {index}");
        refund_ids.push(refund["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(s.app.order_state(order_id).await.pending_amount, 303);
    assert_eq!(s.fake_refunds_of(&refund_ids[0]).len(), 1);
    assert_eq!(s.fake_refunds_of(&refund_ids[2]).len(), 0);

    s.fake.set_faults(Faults::default());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(recovery::recover_unanswered(&s.state).await.unwrap(), 3);
    for refund_id in &refund_ids {
        assert_eq!(s.refund_status(refund_id).await, "succeeded");
        assert_eq!(
            s.fake_refunds_of(refund_id).len(),
            1,
            "exactly one Stripe refund"
        );
    }
    assert!(s.fake.counters().replays >= 2, "{:?}", s.fake.counters());
    let order = s.app.order_state(order_id).await;
    assert_eq!((order.refunded_amount, order.pending_amount), (303, 0));
    assert_eq!(s.fake.refunded("ch_faults"), 303);
    // Nothing is left to recover.
    assert_eq!(recovery::recover_unanswered(&s.state).await.unwrap(), 0);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn recovery_completes_the_key_of_a_create_cut_off_between_the_phases(pool: PgPool) {
    let s = spawn_stripe_app(pool).await;
    s.fake.stop_webhooks();
    let order_id = s.order("ch_key", 1000, 0).await;
    s.fake.set_faults(Faults {
        reset_after: 1.0,
        ..Faults::default()
    });
    let body = json!({"order_id": order_id, "reason": "customer_request", "amount": 250});
    let send = || async {
        let response = s
            .app
            .client
            .post(format!("{}/v1/refunds/", s.app.address))
            .bearer_auth(&s.org.write_token)
            .header("Idempotency-Key", "cut-off-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        crate::helpers::into_response(response).await
    };
    let first = send().await;
    assert_eq!(first.json()["status"], "pending");
    // What a process killed between the two phases leaves: the key without its answer.
    sqlx::query(
        "UPDATE idempotency_keys SET response_status = NULL, response_body = NULL WHERE key = 'cut-off-key'",
    )
    .execute(&s.app.pool)
    .await
    .unwrap();
    assert_eq!(send().await.status, StatusCode::CONFLICT);

    s.fake.set_faults(Faults::default());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(recovery::recover_unanswered(&s.state).await.unwrap(), 1);
    let retried = send().await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.text);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    let refund = retried.json();
    assert_eq!(refund["id"], first.json()["id"]);
    assert_eq!(refund["status"], "succeeded");
    assert_eq!(s.fake.refunds().len(), 1);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_webhook_endpoint_checks_signatures_and_handles_an_event_once(pool: PgPool) {
    let s = spawn_stripe_app(pool).await;
    let order_id = s.order("ch_hook", 1000, 250).await;
    let event = json!({
        "id": "evt_dashboard_1",
        "object": "event",
        "type": "refund.created",
        "data": {"object": {
            "id": "re_dashboard_1", "object": "refund", "amount": 500, "charge": "ch_hook",
            "currency": "usd", "status": "succeeded", "reason": "requested_by_customer",
            "metadata": {}
        }}
    })
    .to_string();
    let good = signature_header(WEBHOOK_SECRET, now(), event.as_bytes());

    assert_eq!(
        s.post_webhook(None, &event).await.status,
        StatusCode::BAD_REQUEST
    );
    let wrong_secret = signature_header("whsec_other", now(), event.as_bytes());
    assert_eq!(
        s.post_webhook(Some(&wrong_secret), &event).await.status,
        StatusCode::UNAUTHORIZED
    );
    let stale = signature_header(WEBHOOK_SECRET, now() - 301, event.as_bytes());
    assert_eq!(
        s.post_webhook(Some(&stale), &event).await.status,
        StatusCode::UNAUTHORIZED
    );
    let tampered = event.replace("500", "900");
    assert_eq!(
        s.post_webhook(Some(&good), &tampered).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        s.app.list_ok(&s.org.read_token, "").await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    for _ in 0..2 {
        let accepted = s.post_webhook(Some(&good), &event).await;
        assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text);
    }
    // A refund made in Stripe's dashboard, imported once, with Polar's reason mapping and tax
    // split from its total.
    let listed = s.app.list_ok(&s.org.read_token, "").await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["reason"], "customer_request");
    assert_eq!(items[0]["status"], "succeeded");
    assert_eq!(
        (items[0]["amount"].as_i64(), items[0]["tax_amount"].as_i64()),
        (Some(400), Some(100))
    );
    let order = s.app.order_state(order_id).await;
    assert_eq!(
        (order.refunded_amount, order.refunded_tax_amount),
        (400, 100)
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_webhook_that_arrives_before_the_answer_is_recorded_is_not_lost(pool: PgPool) {
    let s = spawn_stripe_app(pool).await;
    let order_id = s.order("ch_early", 1000, 0).await;
    // Stripe answers `pending`, but settles and announces it before the answer arrives.
    s.fake.set_mode(RefundMode::Pending {
        settle_after: Duration::ZERO,
        settle_to: "succeeded",
    });
    s.fake.set_faults(Faults {
        hang_after: 1.0,
        hang: Duration::from_millis(400),
        ..Faults::default()
    });
    let created = s.create(order_id, 100, "customer_request").await.json();
    let refund_id = created["id"].as_str().unwrap();
    s.wait_for_webhooks().await;
    s.wait_for_status(refund_id, "succeeded").await;
    let order = s.app.order_state(order_id).await;
    assert_eq!((order.refunded_amount, order.pending_amount), (100, 0));
    assert_eq!(s.fake_refunds_of(refund_id).len(), 1);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn stripe_disputes_open_block_refunds_and_close(pool: PgPool) {
    let s = spawn_stripe_app(pool).await;
    let order_id = s.order("ch_dispute", 1000, 250).await;
    let dispute = |status: &str| {
        json!({"id": "dp_1", "object": "dispute", "amount": 1250, "charge": "ch_dispute",
               "currency": "usd", "status": status, "reason": "fraudulent"})
    };
    s.fake
        .send_event("charge.dispute.created", dispute("needs_response"));
    s.wait_for_webhooks().await;
    let refused = s.create(order_id, 100, "customer_request").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(refused.json()["error"], "RefundDisputedPayment");
    let (status, amount, tax_amount): (String, i64, i64) = sqlx::query_as(
        "SELECT status, amount, tax_amount FROM disputes WHERE processor_id = 'dp_1'",
    )
    .fetch_one(&s.app.pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), amount, tax_amount),
        ("needs_response", 1000, 250)
    );

    s.fake
        .send_event("charge.dispute.updated", dispute("under_review"));
    s.fake.send_event("charge.dispute.closed", dispute("won"));
    s.wait_for_webhooks().await;
    let (status,): (String,) =
        sqlx::query_as("SELECT status FROM disputes WHERE processor_id = 'dp_1'")
            .fetch_one(&s.app.pool)
            .await
            .unwrap();
    // Whichever of the two arrived first, a closed dispute stays closed.
    assert_eq!(status, "won");
    let created = s.create(order_id, 100, "customer_request").await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
}

#[test]
fn start_up_fails_with_one_line_when_a_stripe_setting_is_missing() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_refunds-server"))
        .arg("serve")
        .env("REFUNDS_PROCESSOR", "stripe")
        .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env_remove("STRIPE_SECRET_KEY")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("REFUNDS_BIND", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(
        lines,
        ["error: STRIPE_SECRET_KEY must be set when REFUNDS_PROCESSOR=stripe"],
        "{stderr}"
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn past_the_key_window_recovery_looks_the_refund_up_instead_of_asking_again(pool: PgPool) {
    let s = spawn_stripe_app(pool).await;
    s.fake.stop_webhooks();
    let order_id = s.order("ch_old", 1000, 0).await;
    s.fake.set_faults(Faults {
        reset_after: 1.0,
        ..Faults::default()
    });
    let made = s.create(order_id, 100, "customer_request").await.json();
    s.fake.set_faults(Faults {
        server_error: 1.0,
        ..Faults::default()
    });
    let never_made = s.create(order_id, 200, "customer_request").await.json();
    s.fake.set_faults(Faults::default());
    // Both were created more than a day ago: Stripe has forgotten their keys.
    sqlx::query(
        "UPDATE refunds SET created_at = now() - interval '25 hours', recover_after = now()",
    )
    .execute(&s.app.pool)
    .await
    .unwrap();
    let calls_before = s.fake.counters().refund_requests;

    assert_eq!(recovery::recover_unanswered(&s.state).await.unwrap(), 2);
    assert_eq!(
        s.fake.counters().refund_requests,
        calls_before,
        "no refund is asked for again once its key may be forgotten"
    );
    assert_eq!(
        s.refund_status(made["id"].as_str().unwrap()).await,
        "succeeded"
    );
    assert_eq!(
        s.refund_status(never_made["id"].as_str().unwrap()).await,
        "failed"
    );
    let order = s.app.order_state(order_id).await;
    assert_eq!((order.refunded_amount, order.pending_amount), (100, 0));
    assert_eq!(s.fake.refunds().len(), 1);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_fake_stripe_keeps_stripes_rules(pool: PgPool) {
    let s = spawn_stripe_app(pool).await;
    s.fake.stop_webhooks();
    s.fake.add_charge("ch_rules", 1000, "usd");
    let http = reqwest::Client::new();
    let post = |key: Option<&str>, idempotency: &str, form: &str, content_type: &str| {
        let mut request = http
            .post(format!("{}/v1/refunds", s.fake.url()))
            .header("Idempotency-Key", idempotency)
            .header("content-type", content_type)
            .body(form.to_owned());
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        async move { crate::helpers::into_response(request.send().await.unwrap()).await }
    };
    let form = "application/x-www-form-urlencoded";
    assert_eq!(
        post(None, "k0", "charge=ch_rules&amount=10", form)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(Some("sk_test_wrong"), "k0", "charge=ch_rules", form)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let json_body = post(
        Some(SECRET_KEY),
        "k0",
        r#"{"charge":"ch_rules"}"#,
        "application/json",
    )
    .await;
    assert_eq!(json_body.status, StatusCode::BAD_REQUEST);

    let first = post(
        Some(SECRET_KEY),
        "k1",
        "charge=ch_rules&amount=600&metadata[refund_id]=x",
        form,
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let replay = post(
        Some(SECRET_KEY),
        "k1",
        "charge=ch_rules&amount=600&metadata[refund_id]=x",
        form,
    )
    .await;
    assert_eq!(replay.text, first.text);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let changed = post(Some(SECRET_KEY), "k1", "charge=ch_rules&amount=601", form).await;
    assert_eq!(changed.status, StatusCode::BAD_REQUEST);
    assert_eq!(changed.json()["error"]["type"], "idempotency_error");

    let too_much = post(Some(SECRET_KEY), "k2", "charge=ch_rules&amount=401", form).await;
    assert_eq!(too_much.status, StatusCode::BAD_REQUEST);
    assert_eq!(too_much.json()["error"]["code"], "amount_too_large");
    let rest = post(Some(SECRET_KEY), "k3", "charge=ch_rules", form).await;
    assert_eq!(rest.json()["amount"], 400, "no amount refunds what is left");
    let after = post(Some(SECRET_KEY), "k4", "charge=ch_rules&amount=1", form).await;
    assert_eq!(after.json()["error"]["code"], "charge_already_refunded");
    assert_eq!(s.fake.refunded("ch_rules"), 1000);

    // A request still running holds its key: a second one with it is 409.
    s.fake.set_faults(Faults {
        slow: 1.0,
        slow_delay: Duration::from_millis(500),
        ..Faults::default()
    });
    s.fake.add_charge("ch_slow", 1000, "usd");
    let (slow, conflict) = tokio::join!(
        post(Some(SECRET_KEY), "k5", "charge=ch_slow&amount=5", form),
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            post(Some(SECRET_KEY), "k5", "charge=ch_slow&amount=5", form).await
        }
    );
    assert_eq!(slow.status, StatusCode::OK);
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(conflict.json()["error"]["code"], "idempotency_key_in_use");

    let listed = http
        .get(format!(
            "{}/v1/refunds?charge=ch_rules&limit=1",
            s.fake.url()
        ))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(listed["has_more"], true);
    assert_eq!(listed["data"][0]["amount"], 400, "newest first");
}
