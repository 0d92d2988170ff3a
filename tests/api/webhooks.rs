//! Webhooks end to end: Polar's endpoint API over a real socket, and deliveries from the
//! outbox to a real receiver on another socket, verified with the `standardwebhooks` crate.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine;
use refunds_server::AppState;
use refunds_server::webhooks::{DeliverySettings, run_delivery};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// A processor outside the process, settling refunds after the create committed: 100
/// succeeds, 7 fails.
struct OutsideProcessor;

#[async_trait::async_trait]
impl refunds_server::payments::PaymentProcessor for OutsideProcessor {
    fn name(&self) -> &'static str {
        "outside"
    }

    async fn refund(
        &self,
        request: &refunds_server::payments::ProcessorRefund,
    ) -> Result<refunds_server::payments::ProcessorOutcome, refunds_server::payments::ProcessorError>
    {
        use refunds_server::payments::ProcessorRefundState;
        Ok(refunds_server::payments::ProcessorOutcome {
            state: match request.amount {
                7 => ProcessorRefundState::Failed,
                _ => ProcessorRefundState::Succeeded,
            },
            processor_id: format!("re_{}", request.refund_id.simple()),
            failure_reason: None,
        })
    }
}

/// A delivery as the receiver saw it.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> &str {
        self.headers[name].to_str().unwrap()
    }
}

/// A webhook receiver on a real socket: records every request and answers with the next
/// scripted status (200 once the script is used up).
#[derive(Clone)]
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(script: Vec<u16>) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(script));
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post({
                let received = received.clone();
                let script = script.clone();
                move |headers: HeaderMap, body: axum::body::Bytes| async move {
                    received.lock().unwrap().push(Received {
                        headers,
                        body: body.to_vec(),
                    });
                    let mut script = script.lock().unwrap();
                    let status = if script.is_empty() {
                        200
                    } else {
                        script.remove(0)
                    };
                    (StatusCode::from_u16(status).unwrap(), "thanks")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `count` deliveries arrived.
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..400 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {count} deliveries, got {}", self.received().len());
    }
}

/// An app that accepts local endpoint URLs, with a delivery worker whose retries come fast.
async fn spawn_webhook_app(pool: PgPool, worker_allows_private: bool) -> TestApp {
    spawn_webhook_app_with(AppState::new(pool), worker_allows_private).await
}

async fn spawn_webhook_app_with(mut state: AppState, worker_allows_private: bool) -> TestApp {
    let pool = state.pool.clone();
    state.webhook_allow_private_urls = true;
    let app = spawn_app_with(state).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // The worker runs as long as the test; the sender is leaked so it never stops early.
    std::mem::forget(stop);
    tokio::spawn(run_delivery(
        pool,
        DeliverySettings {
            timeout: Duration::from_secs(2),
            retry_base: Duration::from_millis(20),
            allow_private_urls: worker_allows_private,
        },
        stopped,
    ));
    app
}

async fn webhook_token(app: &TestApp, organization_id: Uuid) -> String {
    app.org_token(
        organization_id,
        &[
            "refunds:read",
            "refunds:write",
            "webhooks:read",
            "webhooks:write",
        ],
    )
    .await
}

async fn create_endpoint(app: &TestApp, token: &str, url: &str, events: &[&str]) -> Value {
    let response = app
        .request(
            Method::POST,
            "/v1/webhooks/endpoints",
            Some(token),
            Some(json!({"url": url, "format": "raw", "events": events})),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    response.json()
}

const REFUND_EVENTS: [&str; 3] = ["refund.created", "order.updated", "order.refunded"];

fn verifier(secret: &str) -> standardwebhooks::Webhook {
    standardwebhooks::Webhook::new(secret).unwrap()
}

/// The verifier of Polar's original scheme, keyed with the UTF-8 bytes of the secret.
fn legacy_verifier(secret: &str) -> standardwebhooks::Webhook {
    standardwebhooks::Webhook::from_bytes(secret.as_bytes().to_vec()).unwrap()
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn endpoints_are_managed_as_polar_does(pool: PgPool) {
    let app = spawn_webhook_app(pool, true).await;
    let org = app.organization("Hooks").await;
    let other = app.organization("Other").await;
    let token = webhook_token(&app, org.id).await;
    let read_token = app.org_token(org.id, &["webhooks:read"]).await;
    let other_token = webhook_token(&app, other.id).await;

    let first = create_endpoint(&app, &token, "https://example.com/a", &["refund.created"]).await;
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "created_at",
            "modified_at",
            "id",
            "url",
            "name",
            "api_version",
            "format",
            "secret",
            "organization_id",
            "events",
            "enabled",
            "uses_standard_webhook_signature"
        ]
    );
    assert_eq!(first["organization_id"], json!(org.id));
    assert_eq!(first["api_version"], "2026-04");
    assert_eq!(first["enabled"], true);
    assert_eq!(first["uses_standard_webhook_signature"], true);
    let secret = first["secret"].as_str().unwrap();
    let key = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap()
            .len(),
        32
    );
    let second = create_endpoint(&app, &token, "https://example.com/b", &["order.updated"]).await;
    let id = first["id"].as_str().unwrap();

    // Newest first; the read scope reads; another organization sees nothing.
    let list = app
        .request(
            Method::GET,
            "/v1/webhooks/endpoints",
            Some(&read_token),
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let list = list.json();
    assert_eq!(list["pagination"], json!({"total_count": 2, "max_page": 1}));
    assert_eq!(list["items"][0]["id"], second["id"]);
    assert_eq!(list["items"][1]["id"], first["id"]);
    let foreign = app
        .request(
            Method::GET,
            "/v1/webhooks/endpoints",
            Some(&other_token),
            None,
        )
        .await
        .json();
    assert_eq!(foreign["items"], json!([]));
    let path = format!("/v1/webhooks/endpoints/{id}");
    let not_found = app
        .request(Method::GET, &path, Some(&other_token), None)
        .await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);
    assert_eq!(
        not_found.json(),
        json!({"error": "ResourceNotFound", "detail": "Not found"})
    );

    // Reading needs a webhooks scope, writing the write scope.
    let refunds_only = app
        .request(
            Method::GET,
            "/v1/webhooks/endpoints",
            Some(&org.write_token),
            None,
        )
        .await;
    assert_eq!(refunds_only.status, StatusCode::FORBIDDEN);
    let read_only = app
        .request(
            Method::POST,
            "/v1/webhooks/endpoints",
            Some(&read_token),
            Some(json!({"url": "https://example.com", "format": "raw", "events": []})),
        )
        .await;
    assert_eq!(read_only.status, StatusCode::FORBIDDEN);

    // Update: every field optional.
    let updated = app
        .request(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"name": "Orders", "events": ["order.refunded"], "api_version": "2026-10"})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    let updated = updated.json();
    assert_eq!(updated["name"], "Orders");
    assert_eq!(updated["events"], json!(["order.refunded"]));
    assert_eq!(updated["api_version"], "2026-10");
    assert_eq!(updated["url"], "https://example.com/a");
    assert!(updated["modified_at"].is_string());

    let reset = app
        .request(Method::PATCH, &format!("{path}/secret"), Some(&token), None)
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text);
    let new_secret = reset.json()["secret"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("whsec_"));
    assert_ne!(new_secret, secret);

    let deleted = app.request(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.text, "");
    let gone = app.request(Method::GET, &path, Some(&token), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let again = app.request(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let bad_id = app
        .request(
            Method::GET,
            "/v1/webhooks/endpoints/nope",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(bad_id.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn endpoint_input_is_refused_in_polars_words(pool: PgPool) {
    let mut state = AppState::new(pool);
    state.webhook_allow_private_urls = false;
    let app = spawn_app_with(state).await;
    let org = app.organization("Hooks").await;
    let token = webhook_token(&app, org.id).await;
    let create = |body: Value| {
        let app = &app;
        let token = token.clone();
        async move {
            app.request(
                Method::POST,
                "/v1/webhooks/endpoints",
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    let issue = |response: crate::helpers::Response| {
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            response.text
        );
        let body = response.json();
        (
            body["error"].as_str().unwrap().to_owned(),
            body["detail"][0]["type"].as_str().unwrap().to_owned(),
            body["detail"][0]["loc"].clone(),
            body["detail"][0]["msg"].as_str().unwrap().to_owned(),
        )
    };
    let base = |url: &str| json!({"url": url, "format": "raw", "events": ["refund.created"]});

    let (error, kind, loc, _) = issue(create(base("http://example.com/hook")).await);
    assert_eq!(
        (error.as_str(), kind.as_str(), loc),
        (
            "RequestValidationError",
            "url_scheme",
            json!(["body", "url"])
        )
    );
    for private in [
        "https://localhost/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest",
    ] {
        let (_, kind, _, msg) = issue(create(base(private)).await);
        assert_eq!(kind, "value_error", "{private}");
        assert_eq!(
            msg,
            "Value error, Webhook URLs cannot point to localhost or private IP addresses."
        );
    }
    let (_, kind, loc, _) = issue(
        create(json!({"url": "https://example.com", "format": "raw", "events": ["refund.nope"]}))
            .await,
    );
    assert_eq!((kind.as_str(), loc), ("enum", json!(["body", "events", 0])));
    let (_, kind, loc, msg) = issue(
        create(json!({"url": "https://example.com", "format": "discord", "events": []})).await,
    );
    assert_eq!(
        (kind.as_str(), loc),
        ("value_error", json!(["body", "format"]))
    );
    assert!(msg.contains("not supported"), "{msg}");

    // An organization token may not name an organization; a personal token must.
    let (error, kind, loc, _) = issue(
        create(
            json!({"url": "https://example.com", "format": "raw", "events": [],
                      "organization_id": org.id}),
        )
        .await,
    );
    assert_eq!(
        (error.as_str(), kind.as_str(), loc),
        (
            "PolarRequestValidationError",
            "organization_token",
            json!(["body", "organization_id"])
        )
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_refund_delivers_its_three_events_signed_and_in_order(pool: PgPool) {
    let app = spawn_webhook_app(pool.clone(), true).await;
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Hooks").await;
    let token = webhook_token(&app, org.id).await;
    let endpoint = create_endpoint(&app, &token, &receiver.url, &REFUND_EVENTS).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    // Another organization's endpoint hears nothing of it.
    let other = app.organization("Other").await;
    let other_receiver = Receiver::start(vec![]).await;
    let other_token = webhook_token(&app, other.id).await;
    create_endpoint(&app, &other_token, &other_receiver.url, &REFUND_EVENTS).await;

    let order_id = app.order(org.id, 1000, 250).await;
    let refund = app.refund(&token, order_id, 400).await;

    let received = receiver.wait_for(3).await;
    let types: Vec<String> = received
        .iter()
        .map(|delivery| delivery.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, REFUND_EVENTS);
    for delivery in &received {
        assert_eq!(delivery.header("user-agent"), "polar.sh webhooks");
        assert_eq!(delivery.header("content-type"), "application/json");
        let signatures: Vec<&str> = delivery.header("webhook-signature").split(' ').collect();
        assert_eq!(signatures.len(), 2);
        assert!(
            signatures
                .iter()
                .all(|signature| signature.starts_with("v1,"))
        );
        // Both schemes verify: Standard Webhooks' decoded key and Polar's UTF-8 key.
        verifier(&secret)
            .verify(&delivery.body, &delivery.headers)
            .expect("Standard Webhooks signature");
        legacy_verifier(&secret)
            .verify(&delivery.body, &delivery.headers)
            .expect("Polar's original signature");
        let text = std::str::from_utf8(&delivery.body).unwrap();
        assert!(text.starts_with(r#"{"type":""#), "{text}");
        assert!(!text.contains(": "), "compact JSON: {text}");
        let keys: Vec<String> = delivery
            .json()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["type", "timestamp", "api_version", "data"]);
        assert_eq!(delivery.json()["api_version"], "2026-04");
    }
    assert_eq!(received[0].json()["data"], refund);
    assert_eq!(
        app.metric("refunds_batched_total", r#"outcome="created""#)
            .await,
        1.0,
        "made in a batch"
    );
    let order = &received[1].json()["data"];
    assert_eq!(order["id"], json!(order_id));
    assert_eq!(order["refunded_amount"], 400);
    assert_eq!(order["status"], "partially_refunded");
    assert_eq!(received[2].json()["data"], *order);
    let ids: Vec<&str> = received
        .iter()
        .map(|delivery| delivery.header("webhook-id"))
        .collect();
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        3
    );

    // The deliveries are listed, newest first, with their events.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let deliveries = app
        .request(Method::GET, "/v1/webhooks/deliveries", Some(&token), None)
        .await;
    assert_eq!(deliveries.status, StatusCode::OK, "{}", deliveries.text);
    let deliveries = deliveries.json();
    assert_eq!(deliveries["pagination"]["total_count"], 3);
    let first = &deliveries["items"][0];
    assert_eq!(first["succeeded"], true);
    assert_eq!(first["http_code"], 200);
    assert_eq!(first["response"], "thanks");
    assert_eq!(first["webhook_event"]["succeeded"], true);
    assert_eq!(first["webhook_event"]["skipped"], false);
    assert_eq!(first["webhook_event"]["is_archived"], false);
    let payloads: Vec<&str> = deliveries["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["webhook_event"]["payload"].as_str().unwrap())
        .collect();
    for delivery in &received {
        assert!(payloads.contains(&std::str::from_utf8(&delivery.body).unwrap()));
    }
    let refunded_only = app
        .request(
            Method::GET,
            "/v1/webhooks/deliveries?event_type=order.refunded&http_code_class=2xx&succeeded=true",
            Some(&token),
            None,
        )
        .await
        .json();
    assert_eq!(refunded_only["pagination"]["total_count"], 1);
    assert!(other_receiver.received().is_empty());

    // A redelivery sends the same event again, with the same id and bytes.
    let event_id = received[0].header("webhook-id").to_owned();
    let redeliver = app
        .request(
            Method::POST,
            &format!("/v1/webhooks/events/{event_id}/redeliver"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(redeliver.status, StatusCode::ACCEPTED);
    assert_eq!(redeliver.text, "null");
    let again = receiver.wait_for(4).await;
    assert_eq!(again[3].header("webhook-id"), event_id);
    assert_eq!(again[3].body, received[0].body);
    let unknown = app
        .request(
            Method::POST,
            &format!("/v1/webhooks/events/{}/redeliver", Uuid::new_v4()),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn signatures_refuse_a_tampered_body_a_wrong_secret_and_a_stale_timestamp(pool: PgPool) {
    let app = spawn_webhook_app(pool, true).await;
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Hooks").await;
    let token = webhook_token(&app, org.id).await;
    let endpoint = create_endpoint(&app, &token, &receiver.url, &["refund.created"]).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let order_id = app.order(org.id, 1000, 0).await;
    app.refund(&token, order_id, 100).await;
    let delivery = receiver.wait_for(1).await.remove(0);
    verifier(&secret)
        .verify(&delivery.body, &delivery.headers)
        .expect("the delivery verifies");

    let mut tampered = delivery.body.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 1;
    assert!(
        verifier(&secret)
            .verify(&tampered, &delivery.headers)
            .is_err()
    );
    assert!(
        legacy_verifier(&secret)
            .verify(&tampered, &delivery.headers)
            .is_err()
    );

    let wrong = refunds_server::webhooks::signing::generate_secret();
    assert!(
        verifier(&wrong)
            .verify(&delivery.body, &delivery.headers)
            .is_err()
    );
    assert!(
        legacy_verifier(&wrong)
            .verify(&delivery.body, &delivery.headers)
            .is_err()
    );

    // Signed correctly, but an hour ago.
    let id = delivery.header("webhook-id");
    let stale = chrono::Utc::now().timestamp() - 3600;
    let mut headers = delivery.headers.clone();
    headers.insert("webhook-timestamp", stale.to_string().parse().unwrap());
    let signature =
        refunds_server::webhooks::signing::signature_header(&secret, id, stale, &delivery.body);
    headers.insert("webhook-signature", signature.parse().unwrap());
    assert!(verifier(&secret).verify(&delivery.body, &headers).is_err());
    assert!(
        legacy_verifier(&secret)
            .verify(&delivery.body, &headers)
            .is_err()
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn failed_deliveries_are_retried_until_the_receiver_recovers(pool: PgPool) {
    let app = spawn_webhook_app(pool, true).await;
    let receiver = Receiver::start(vec![500, 503, 302]).await;
    let org = app.organization("Hooks").await;
    let token = webhook_token(&app, org.id).await;
    create_endpoint(&app, &token, &receiver.url, &["refund.created"]).await;
    let order_id = app.order(org.id, 1000, 0).await;
    app.refund(&token, order_id, 100).await;
    let received = receiver.wait_for(4).await;
    let ids: Vec<&str> = received
        .iter()
        .map(|delivery| delivery.header("webhook-id"))
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert!(
        received
            .iter()
            .all(|delivery| delivery.body == received[0].body)
    );
    // The last attempt is recorded after its answer arrived.
    let mut deliveries = Value::Null;
    for _ in 0..100 {
        deliveries = app
            .request(Method::GET, "/v1/webhooks/deliveries", Some(&token), None)
            .await
            .json();
        if deliveries["items"].as_array().unwrap().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let codes: Vec<&Value> = deliveries["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| &item["http_code"])
        .collect();
    // Newest first; a redirect is not followed and counts as a failure.
    assert_eq!(codes, [&json!(200), &json!(302), &json!(503), &json!(500)]);
    assert_eq!(deliveries["items"][0]["webhook_event"]["succeeded"], true);
    assert_eq!(deliveries["items"][3]["succeeded"], false);
    let failed = app
        .request(
            Method::GET,
            "/v1/webhooks/deliveries?succeeded=false&http_code_class=5xx",
            Some(&token),
            None,
        )
        .await
        .json();
    assert_eq!(failed["pagination"]["total_count"], 2);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn an_endpoint_is_disabled_after_ten_events_failed_in_a_row(pool: PgPool) {
    let app = spawn_webhook_app(pool.clone(), true).await;
    let receiver = Receiver::start(vec![500; 1000]).await;
    let org = app.organization("Hooks").await;
    let token = webhook_token(&app, org.id).await;
    let endpoint = create_endpoint(&app, &token, &receiver.url, &["refund.created"]).await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    let order_id = app.order(org.id, 100_000, 0).await;
    for _ in 0..10 {
        app.refund(&token, order_id, 10).await;
    }
    let mut disabled = false;
    for _ in 0..600 {
        let endpoint = app
            .request(
                Method::GET,
                &format!("/v1/webhooks/endpoints/{endpoint_id}"),
                Some(&token),
                None,
            )
            .await
            .json();
        if endpoint["enabled"] == false {
            disabled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(disabled, "the endpoint is disabled");
    // Every event was tried ten times, then failed for good.
    let states: Vec<(String, i32)> =
        sqlx::query_as("SELECT state, attempts FROM webhook_events ORDER BY seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(states, vec![("failed".to_owned(), 10); 10]);
    assert_eq!(receiver.received().len(), 100);
    // A disabled endpoint gets no new events.
    app.refund(&token, order_id, 10).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 10);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn delivery_refuses_private_addresses_when_they_are_not_allowed(pool: PgPool) {
    // The endpoint was saved while private URLs were allowed; the worker no longer allows
    // them, so it calls nothing and records why.
    let app = spawn_webhook_app(pool, false).await;
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Hooks").await;
    let token = webhook_token(&app, org.id).await;
    create_endpoint(&app, &token, &receiver.url, &["refund.created"]).await;
    let order_id = app.order(org.id, 1000, 0).await;
    app.refund(&token, order_id, 100).await;
    let mut deliveries = Value::Null;
    for _ in 0..100 {
        deliveries = app
            .request(Method::GET, "/v1/webhooks/deliveries", Some(&token), None)
            .await
            .json();
        if deliveries["pagination"]["total_count"].as_i64() > Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = &deliveries["items"][0];
    assert_eq!(first["succeeded"], false);
    assert_eq!(first["http_code"], Value::Null);
    assert!(
        first["response"].as_str().unwrap().contains("https"),
        "{first}"
    );
    assert!(receiver.received().is_empty());
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_refused_or_rolled_back_refund_emits_nothing(pool: PgPool) {
    let app = spawn_webhook_app(pool.clone(), true).await;
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Hooks").await;
    let token = webhook_token(&app, org.id).await;
    create_endpoint(&app, &token, &receiver.url, &REFUND_EVENTS).await;
    let order_id = app.order(org.id, 1000, 0).await;

    let over = app
        .create_refund(
            &token,
            json!({"order_id": order_id, "reason": "customer_request", "amount": 5000}),
        )
        .await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A refund recorded (with its events) in a transaction that rolls back.
    let mut tx = pool.begin().await.unwrap();
    let order = refunds_server::orders::repo::lock_for_refund(&mut tx, order_id, &[org.id])
        .await
        .unwrap()
        .unwrap();
    let record = refunds_server::refunds::service::RefundRecord {
        id: Uuid::new_v4(),
        status: refunds_server::domain::RefundStatus::Succeeded,
        reason: refunds_server::domain::RefundReason::CustomerRequest,
        split: order.amounts.split(100).unwrap(),
        subscription_id: None,
        payment_id: order.payment_id.unwrap(),
        dispute: None,
        comment: None,
        processor: "sandbox",
        processor_id: None,
        revoke_benefits: false,
        metadata: Default::default(),
        failure_reason: None,
        awaiting: None,
    };
    refunds_server::refunds::service::record_refund(&mut tx, &order, record)
        .await
        .unwrap();
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        written, 3,
        "the events are written in the refund's transaction"
    );
    tx.rollback().await.unwrap();

    tokio::time::sleep(Duration::from_millis(700)).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
    assert!(receiver.received().is_empty());
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_dispute_refund_emits_the_same_events(pool: PgPool) {
    let app = spawn_webhook_app(pool, true).await;
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Hooks").await;
    let token = webhook_token(&app, org.id).await;
    create_endpoint(&app, &token, &receiver.url, &REFUND_EVENTS).await;
    let order_id = app.order(org.id, 1000, 250).await;
    app.dispute(
        order_id,
        refunds_server::domain::DisputeStatus::Prevented,
        None,
        None,
    )
    .await;
    let received = receiver.wait_for(3).await;
    let types: Vec<String> = received
        .iter()
        .map(|delivery| delivery.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, REFUND_EVENTS);
    assert_eq!(received[0].json()["data"]["reason"], "dispute_prevention");
    assert_eq!(received[1].json()["data"]["status"], "refunded");
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_refund_settled_after_the_create_sends_refund_updated(pool: PgPool) {
    let mut state = AppState::new(pool);
    state.processor = Arc::new(OutsideProcessor);
    let app = spawn_webhook_app_with(state, true).await;
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Hooks").await;
    let token = webhook_token(&app, org.id).await;
    create_endpoint(
        &app,
        &token,
        &receiver.url,
        &[
            "refund.created",
            "refund.updated",
            "order.updated",
            "order.refunded",
        ],
    )
    .await;
    let order_id = app.order(org.id, 1000, 0).await;
    let settled = app.refund(&token, order_id, 100).await;
    assert_eq!(settled["status"], "succeeded");
    let received = receiver.wait_for(4).await;
    let seen: Vec<(String, Value)> = received
        .iter()
        .map(|delivery| {
            let body = delivery.json();
            (
                body["type"].as_str().unwrap().to_owned(),
                body["data"]["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("refund.created".to_owned(), json!("pending")),
            ("refund.updated".to_owned(), json!("succeeded")),
            ("order.updated".to_owned(), json!("partially_refunded")),
            ("order.refunded".to_owned(), json!("partially_refunded")),
        ]
    );
    assert_eq!(received[1].json()["data"], settled);

    // A refund the processor refuses: created pending, then moved to failed; the order
    // Polar shows does not change.
    app.create_refund(
        &token,
        json!({"order_id": order_id, "reason": "customer_request", "amount": 7}),
    )
    .await;
    let received = receiver.wait_for(6).await;
    let later: Vec<(String, Value)> = received[4..]
        .iter()
        .map(|delivery| {
            let body = delivery.json();
            (
                body["type"].as_str().unwrap().to_owned(),
                body["data"]["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        later,
        [
            ("refund.created".to_owned(), json!("pending")),
            ("refund.updated".to_owned(), json!("failed")),
        ]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 6);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_medusa_refund_emits_the_same_events(pool: PgPool) {
    let app = spawn_webhook_app(pool, true).await;
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Hooks").await;
    let token = webhook_token(&app, org.id).await;
    create_endpoint(&app, &token, &receiver.url, &REFUND_EVENTS).await;
    let order_id = app.order(org.id, 1000, 250).await;
    let payment_id: Uuid = sqlx::query_scalar("SELECT id FROM payments WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let response = app
        .client
        .post(format!(
            "{}/admin/payments/{payment_id}/refund",
            app.address
        ))
        .header("x-medusa-access-token", &token)
        .json(&json!({"amount": 1250, "reason": "return", "note": "all of it"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let refund_id = response.json::<Value>().await.unwrap()["refund"]["id"].clone();

    let received = receiver.wait_for(3).await;
    let types: Vec<String> = received
        .iter()
        .map(|delivery| delivery.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, REFUND_EVENTS);
    let refund = &received[0].json()["data"];
    assert_eq!(refund["id"], refund_id);
    assert_eq!(refund["reason"], "customer_request");
    assert_eq!(
        (refund["amount"].clone(), refund["tax_amount"].clone()),
        (json!(1000), json!(250))
    );
    assert_eq!(received[1].json()["data"]["status"], "refunded");
}

/// An organization whose endpoints want no order events has its creates made in batches,
/// `refund.created` included: the event is written by the batch's statement, signed and
/// shaped as every other.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_batched_create_sends_refund_created(pool: PgPool) {
    let app = spawn_webhook_app(pool.clone(), true).await;
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Batched hooks").await;
    let token = webhook_token(&app, org.id).await;
    let endpoint = create_endpoint(&app, &token, &receiver.url, &["refund.created"]).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let order_id = app.order(org.id, 1000, 250).await;

    let refund = app.refund(&token, order_id, 400).await;

    let received = receiver.wait_for(1).await;
    verifier(&secret)
        .verify(&received[0].body, &received[0].headers)
        .expect("Standard Webhooks signature");
    let event = received[0].json();
    assert_eq!(event["type"], "refund.created");
    assert_eq!(event["api_version"], "2026-04");
    assert_eq!(event["data"], refund);
    let keys: Vec<&String> = event.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["type", "timestamp", "api_version", "data"]);
    assert_eq!(
        app.metric("refunds_batched_total", r#"outcome="created""#)
            .await,
        1.0,
        "made in a batch"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.received().len(), 1);
}

/// The batch learns from its read of the orders which of a create's events each order's
/// organization wants: those its enabled, undeleted endpoints are subscribed to, among the
/// events asked about, and nothing for an organization whose endpoints want none of them.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_batch_read_of_orders_says_which_events_their_organizations_want(pool: PgPool) {
    use refunds_server::orders::repo::read_for_refunds;

    let app = spawn_webhook_app(pool.clone(), true).await;
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Wants some").await;
    let token = webhook_token(&app, org.id).await;
    create_endpoint(
        &app,
        &token,
        &receiver.url,
        &["refund.created", "refund.updated"],
    )
    .await;
    create_endpoint(&app, &token, &receiver.url, &["refund.created"]).await;
    let disabled = create_endpoint(&app, &token, &receiver.url, &["order.updated"]).await;
    let path = format!(
        "/v1/webhooks/endpoints/{}",
        disabled["id"].as_str().unwrap()
    );
    let patched = app
        .request(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let deleted = create_endpoint(&app, &token, &receiver.url, &["order.refunded"]).await;
    let path = format!("/v1/webhooks/endpoints/{}", deleted["id"].as_str().unwrap());
    let response = app.request(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    let order_id = app.order(org.id, 1000, 250).await;
    let quiet = app.organization("Wants none of them").await;
    let quiet_token = webhook_token(&app, quiet.id).await;
    create_endpoint(&app, &quiet_token, &receiver.url, &["refund.updated"]).await;
    let quiet_order_id = app.order(quiet.id, 1000, 250).await;

    let mut conn = pool.acquire().await.unwrap();
    // As a batch asks: every order with every organization of the caller.
    let read = read_for_refunds(
        &mut conn,
        &[order_id, order_id, quiet_order_id, quiet_order_id],
        &[org.id, quiet.id, org.id, quiet.id],
        &REFUND_EVENTS,
    )
    .await
    .unwrap();

    let mut wanted: Vec<(Uuid, Vec<String>)> = read
        .into_iter()
        .map(|(order, events)| (order.id, events))
        .collect();
    wanted.sort_by_key(|(id, _)| *id != order_id);
    assert_eq!(
        wanted,
        [
            (order_id, vec!["refund.created".to_owned()]),
            (quiet_order_id, vec![])
        ]
    );
}

/// Event payloads, an order's often over the size at which PostgreSQL compresses a row, are
/// compressed with lz4 on a server that has it, as this one does.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn event_payloads_are_compressed_with_lz4(pool: PgPool) {
    let compression: String = sqlx::query_scalar(
        "SELECT attcompression::text FROM pg_attribute \
         WHERE attrelid = 'webhook_events'::regclass AND attname = 'payload'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(compression, "l");
}

/// A delivered event's new row version is written on the page of the old one: the outbox
/// keeps room on each page, where PostgreSQL logs only the bytes that changed instead of the
/// whole row with its payload, as it does for a version written on another page.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_delivered_event_is_rewritten_on_its_own_page(pool: PgPool) {
    let mut state = AppState::new(pool.clone());
    state.webhook_allow_private_urls = true;
    // No delivery worker yet: the events are read where they were first written.
    let app = spawn_app_with(state).await;
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Same page").await;
    let token = webhook_token(&app, org.id).await;
    create_endpoint(&app, &token, &receiver.url, &REFUND_EVENTS).await;
    for _ in 0..10 {
        app.refund(&token, app.order(org.id, 1000, 250).await, 400)
            .await;
    }
    let pages =
        "SELECT id, (ctid::text::point)[0]::bigint AS page FROM webhook_events ORDER BY seq";
    let written: Vec<(Uuid, i64)> = sqlx::query_as(pages).fetch_all(&pool).await.unwrap();
    assert_eq!(written.len(), 30);
    assert!(
        written.last().unwrap().1 > 2,
        "the events fill several pages: {written:?}"
    );

    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(run_delivery(
        pool.clone(),
        DeliverySettings {
            allow_private_urls: true,
            ..DeliverySettings::default()
        },
        stopped,
    ));
    receiver.wait_for(30).await;
    // The worker records its attempts after it has sent them.
    let mut undelivered = written.len() as i64;
    for _ in 0..200 {
        undelivered =
            sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE state <> 'succeeded'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if undelivered == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.send(true).unwrap();
    assert_eq!(undelivered, 0, "every event is recorded as delivered");
    let delivered: Vec<(Uuid, i64)> = sqlx::query_as(pages).fetch_all(&pool).await.unwrap();
    assert_eq!(delivered, written);
}

/// The batch's statement makes a refund only while what the batch read of its
/// organization's endpoints holds: a refund written without its `refund.created` event,
/// because no endpoint wanted it, is not made once an endpoint subscribed to that event
/// exists (its create then goes one by one, which writes the event). The same refund with
/// its event is made.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_batched_refund_without_its_event_is_not_made_once_an_endpoint_wants_it(pool: PgPool) {
    use refunds_server::domain::{OrderStatus, RefundReason, RefundStatus};
    use refunds_server::refunds::repo::{BatchedRefund, OrderRefundState, insert_batch};

    let app = spawn_webhook_app(pool.clone(), true).await;
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Subscribed meanwhile").await;
    let token = webhook_token(&app, org.id).await;
    let order_id = app.order(org.id, 1000, 250).await;
    let (customer_id, payment_id): (Uuid, Uuid) = sqlx::query_as(
        "SELECT o.customer_id, p.id FROM orders o JOIN payments p ON p.order_id = o.id \
         WHERE o.id = $1",
    )
    .bind(order_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    create_endpoint(&app, &token, &receiver.url, &["refund.created"]).await;

    let metadata = serde_json::Map::new();
    let refund = |with_refund_events: bool| BatchedRefund {
        id: Uuid::new_v4(),
        organization_id: org.id,
        order_id,
        customer_id,
        subscription_id: None,
        payment_id,
        status: RefundStatus::Succeeded,
        reason: RefundReason::CustomerRequest,
        amount: 400,
        tax_amount: 100,
        currency: "usd",
        comment: None,
        processor_id: if with_refund_events {
            "re_with"
        } else {
            "re_without"
        },
        revoke_benefits: false,
        metadata: &metadata,
        read: OrderRefundState {
            status: OrderStatus::Paid,
            refunded_amount: 0,
            refunded_tax_amount: 0,
            pending_amount: 0,
            pending_tax_amount: 0,
        },
        written: OrderRefundState {
            status: OrderStatus::PartiallyRefunded,
            refunded_amount: 400,
            refunded_tax_amount: 100,
            pending_amount: 0,
            pending_tax_amount: 0,
        },
        events: vec![],
        unbuilt_events: match with_refund_events {
            true => vec!["order.updated", "order.refunded"],
            false => vec!["refund.created", "order.updated", "order.refunded"],
        },
        key: None,
    };
    let mut conn = pool.acquire().await.unwrap();
    let lifetime = Duration::from_secs(60);

    for with_refund_events in [false, true] {
        let batch = [refund(with_refund_events)];
        let created = insert_batch(
            &mut conn,
            "sandbox",
            chrono::Utc::now(),
            lifetime,
            &batch,
            &[],
            &[],
        )
        .await
        .unwrap();
        match with_refund_events {
            false => assert!(
                created.is_empty(),
                "made without the event an endpoint wants: {created:?}"
            ),
            true => assert_eq!(created, [batch[0].id]),
        }
    }
}

/// The events of a batch take their payloads' tails by index from one list for the whole
/// batch: every event of every refund gets its own refund's or order's data, the two order
/// events of a refund sharing one tail.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn each_batched_event_carries_the_data_of_its_own_refund(pool: PgPool) {
    use refunds_server::domain::{OrderStatus, RefundReason, RefundStatus};
    use refunds_server::refunds::repo::{
        BatchedEvent, BatchedRefund, OrderRefundState, insert_batch,
    };
    use refunds_server::webhooks::emit::{payload, payload_head, payload_tail};

    let app = spawn_webhook_app(pool.clone(), true).await;
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Two in one batch").await;
    let token = webhook_token(&app, org.id).await;
    let endpoint = create_endpoint(&app, &token, &receiver.url, &REFUND_EVENTS).await;
    let api_version = endpoint["api_version"].as_str().unwrap().to_owned();
    let metadata = serde_json::Map::new();
    let at = chrono::Utc::now();
    let state = |refunded_amount| OrderRefundState {
        status: match refunded_amount {
            0 => OrderStatus::Paid,
            _ => OrderStatus::PartiallyRefunded,
        },
        refunded_amount,
        refunded_tax_amount: 0,
        pending_amount: 0,
        pending_tax_amount: 0,
    };
    let mut orders = Vec::new();
    let mut tails = Vec::new();
    for (name, processor_id) in [("first", "re_first"), ("second", "re_second")] {
        let order_id = app.order(org.id, 1000, 0).await;
        let (customer_id, payment_id): (Uuid, Uuid) = sqlx::query_as(
            "SELECT o.customer_id, p.id FROM orders o JOIN payments p ON p.order_id = o.id \
             WHERE o.id = $1",
        )
        .bind(order_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        tails.push(payload_tail(&json!({"refund": name}).to_string()));
        tails.push(payload_tail(&json!({"order": name}).to_string()));
        let (refund_tail, order_tail) = (tails.len() - 1, tails.len());
        orders.push((
            order_id,
            customer_id,
            payment_id,
            processor_id,
            refund_tail,
            order_tail,
        ));
    }
    let batch: Vec<BatchedRefund> = orders
        .iter()
        .map(
            |&(order_id, customer_id, payment_id, processor_id, refund_tail, order_tail)| {
                BatchedRefund {
                    id: Uuid::new_v4(),
                    organization_id: org.id,
                    order_id,
                    customer_id,
                    subscription_id: None,
                    payment_id,
                    status: RefundStatus::Succeeded,
                    reason: RefundReason::CustomerRequest,
                    amount: 400,
                    tax_amount: 0,
                    currency: "usd",
                    comment: None,
                    processor_id,
                    revoke_benefits: false,
                    metadata: &metadata,
                    read: state(0),
                    written: state(400),
                    events: [
                        ("refund.created", refund_tail),
                        ("order.updated", order_tail),
                        ("order.refunded", order_tail),
                    ]
                    .into_iter()
                    .enumerate()
                    .map(|(position, (event_type, tail))| BatchedEvent {
                        position,
                        event_type,
                        head: payload_head(event_type, &at),
                        tail,
                    })
                    .collect(),
                    unbuilt_events: vec![],
                    key: None,
                }
            },
        )
        .collect();
    let mut conn = pool.acquire().await.unwrap();
    let created = insert_batch(
        &mut conn,
        "sandbox",
        at,
        Duration::from_secs(60),
        &batch,
        &tails,
        &[],
    )
    .await
    .unwrap();
    assert_eq!(created.len(), 2);

    let written: Vec<(String, String)> =
        sqlx::query_as("SELECT type, payload FROM webhook_events ORDER BY seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    let expected: Vec<(String, String)> = ["first", "second"]
        .into_iter()
        .flat_map(|name| {
            let refund = json!({"refund": name}).to_string();
            let order = json!({"order": name}).to_string();
            [
                ("refund.created", refund),
                ("order.updated", order.clone()),
                ("order.refunded", order),
            ]
        })
        .map(|(event_type, data)| {
            (
                event_type.to_owned(),
                payload(event_type, &at, &api_version, &data),
            )
        })
        .collect();
    assert_eq!(written, expected);
}

/// A lease looks for first attempts only a little below the last one an endpoint was sent,
/// so that it does not walk every delivered event: one that committed long after later
/// events, and so lies further below, is found by the full look made every few seconds,
/// and the first attempts go on being sent from where they were.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn first_attempts_far_below_the_last_sent_are_delivered_all_the_same(pool: PgPool) {
    let app = spawn_webhook_app(pool.clone(), true).await;
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Late hooks").await;
    let token = webhook_token(&app, org.id).await;
    create_endpoint(&app, &token, &receiver.url, &["refund.created"]).await;
    let order_id = app.order(org.id, 10_000, 0).await;
    app.refund(&token, order_id, 100).await;
    receiver.wait_for(1).await;
    // The highest seq sent, once the worker has recorded at least `at_least`.
    let sent_seq = |at_least: i64| {
        let pool = pool.clone();
        async move {
            for _ in 0..200 {
                let seq: i64 =
                    sqlx::query_scalar("SELECT first_attempts_sent_seq FROM webhook_endpoints")
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                if seq >= at_least {
                    return seq;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the worker did not record sending seq {at_least}");
        }
    };
    let first_seq: i64 = sqlx::query_scalar("SELECT max(seq) FROM webhook_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sent_seq(first_seq).await, first_seq);

    // Later events are numbered far above the one that comes late.
    sqlx::query("ALTER TABLE webhook_events ALTER COLUMN seq RESTART WITH 100000")
        .execute(&pool)
        .await
        .unwrap();
    app.refund(&token, order_id, 200).await;
    receiver.wait_for(2).await;
    sent_seq(100_000).await;
    sqlx::query(
        "INSERT INTO webhook_events (id, seq, organization_id, endpoint_id, type, api_version, \
                                     payload, created_at, next_attempt_at) \
         OVERRIDING SYSTEM VALUE \
         SELECT gen_random_uuid(), $1, organization_id, endpoint_id, type, api_version, \
                replace(payload, 'refund.created', 'refund.late'), now(), now() \
         FROM webhook_events WHERE seq = $1 - 1",
    )
    .bind(first_seq + 1)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("SELECT pg_notify('webhook_events', '')")
        .execute(&pool)
        .await
        .unwrap();

    let received = tokio::time::timeout(Duration::from_secs(10), receiver.wait_for(3))
        .await
        .expect("the late event is delivered within a full look");
    assert_eq!(received[2].json()["type"], "refund.late");
    app.refund(&token, order_id, 300).await;
    let received = receiver.wait_for(4).await;
    assert_eq!(received[3].json()["data"]["amount"], 300);
}

/// The queue's depth for the metrics counts the events still to be tried, first attempts
/// and retries, and its age is that of the oldest of them; events tried for good or
/// skipped do not count however old.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_queue_depth_counts_first_attempts_and_retries_still_to_be_tried(pool: PgPool) {
    sqlx::query(
        "WITH org AS ( \
           INSERT INTO organizations (id, name, slug) VALUES (gen_random_uuid(), 'Q', 'q') \
           RETURNING id), \
         endpoint AS ( \
           INSERT INTO webhook_endpoints (id, organization_id, url, format, secret, events, \
                                          api_version) \
           SELECT gen_random_uuid(), id, 'https://example.com/hook', 'raw', 'whsec_x', \
                  '{refund.created}', '2026-10' FROM org RETURNING id, organization_id) \
         INSERT INTO webhook_events (id, organization_id, endpoint_id, type, api_version, \
                                     payload, created_at, next_attempt_at, state, attempts) \
         SELECT gen_random_uuid(), organization_id, id, 'refund.created', '2026-10', '{}', \
                now() - make_interval(secs => age), now(), state, attempts \
         FROM endpoint, (VALUES ('pending', 0, 30), ('pending', 0, 10), ('pending', 3, 60), \
                                ('succeeded', 1, 600), ('failed', 10, 900), \
                                ('skipped', 0, 1200)) AS e (state, attempts, age)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let depth = || async {
        refunds_server::webhooks::repo::queue_depth(&pool)
            .await
            .unwrap()
    };
    let (waiting, oldest) = depth().await;
    assert_eq!(waiting, 3);
    assert!((60.0..70.0).contains(&oldest), "{oldest}");

    sqlx::query("UPDATE webhook_events SET state = 'succeeded' WHERE state = 'pending'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(depth().await, (0, 0.0));
}

/// The workers are woken with a notification that names the endpoint an event went to,
/// from a batched create and from a change written one by one (a dispute's refund): a
/// worker already sending to that endpoint need not look at the queue for it.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_wake_up_names_the_endpoint_of_the_events(pool: PgPool) {
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .unwrap();
    listener
        .listen(refunds_server::webhooks::delivery::WAKE_CHANNEL)
        .await
        .unwrap();
    let app = spawn_webhook_app(pool, true).await;
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Named hooks").await;
    let token = webhook_token(&app, org.id).await;
    let endpoint = create_endpoint(&app, &token, &receiver.url, &REFUND_EVENTS).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let order_id = app.order(org.id, 10_000, 0).await;
    app.refund(&token, order_id, 100).await;
    assert_eq!(next_payload(&mut listener).await, endpoint_id);
    let disputed = app.order(org.id, 1000, 250).await;
    app.dispute(
        disputed,
        refunds_server::domain::DisputeStatus::Prevented,
        None,
        None,
    )
    .await;
    assert_eq!(next_payload(&mut listener).await, endpoint_id);
}

/// The payload of the next notification on `listener`.
async fn next_payload(listener: &mut sqlx::postgres::PgListener) -> String {
    tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("a notification arrives")
        .unwrap()
        .payload()
        .to_owned()
}

/// A batch of an organization whose endpoints wanted order events when its orders were last
/// read reads Polar's `Order` beside its read of the orders, not after it: each order event
/// still shows the order as its refund left it, as the API shows it afterwards.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_batch_foresees_the_orders_of_its_order_events(pool: PgPool) {
    let app = spawn_webhook_app(pool.clone(), true).await;
    // The `Order`s are foreseen only on connections the pool holds idle.
    let opened = futures::future::join_all((0..4).map(|_| pool.acquire())).await;
    drop(opened);
    let receiver = Receiver::start(vec![]).await;
    let org = app.organization("Foreseen").await;
    let token = app
        .org_token(org.id, &["orders:read", "refunds:write", "webhooks:write"])
        .await;
    create_endpoint(&app, &token, &receiver.url, &REFUND_EVENTS).await;
    let read_after = r#"stage="order""#;
    let count = "refunds_batch_stage_duration_seconds_count";

    let mut shown = Vec::new();
    for (round, (net, tax, refunded)) in [(1000, 250, 400), (2000, 0, 2000)].iter().enumerate() {
        let order_id = app.order(org.id, *net, *tax).await;
        app.refund(&token, order_id, *refunded).await;
        let order = app
            .request(
                Method::GET,
                &format!("/v1/orders/{order_id}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(order.status, StatusCode::OK, "{}", order.text);
        shown.push(order.json());
        // The first batch learns that the organization wants order events and reads its
        // `Order` after its orders; the second reads it beside them.
        assert_eq!(app.metric(count, read_after).await, 1.0, "round {round}");
        // The worker gives its connections back once it has delivered.
        receiver.wait_for(3 * (round + 1)).await;
    }

    let received = receiver.wait_for(6).await;
    for (refund, order) in received.chunks(3).zip(&shown) {
        assert_eq!(refund[1].json()["type"], "order.updated");
        assert_eq!(refund[1].json()["data"], *order);
        assert_eq!(refund[2].json()["data"], *order);
    }
    assert_eq!(shown[1]["status"], "refunded");
}

/// An order read beside a batch's orders that no refund of the batch changes (its
/// organization no longer wants order events, or it belongs to another organization of the
/// caller) is no event's data: only the orders changed are shown, as their changes leave
/// them.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn only_the_orders_changed_are_shown_of_those_read(pool: PgPool) {
    use refunds_server::domain::{OrderAmounts, OrderStatus};
    use refunds_server::orders::service::{RefundStateChange, read_orders};

    let app = spawn_app(pool.clone()).await;
    let org = app.organization("Two orders").await;
    let (changed, unchanged) = (
        app.order(org.id, 1000, 0).await,
        app.order(org.id, 800, 0).await,
    );
    let mut conn = pool.acquire().await.unwrap();
    let read = read_orders(&mut conn, None, &[changed, unchanged], &[org.id, org.id])
        .await
        .unwrap();
    let modified_at = chrono::Utc::now();
    let amounts = OrderAmounts {
        net_amount: 1000,
        tax_amount: 0,
        applied_balance_amount: 0,
        refunded_amount: 300,
        refunded_tax_amount: 0,
        pending_amount: 0,
        pending_tax_amount: 0,
    };
    let change = RefundStateChange {
        order_id: changed,
        organization_id: org.id,
        status: OrderStatus::PartiallyRefunded,
        amounts,
        modified_at,
    };
    assert!(read.covers(std::slice::from_ref(&change)));
    let shown = read.as_changed(&[change]).unwrap();
    assert_eq!(shown.keys().collect::<Vec<_>>(), [&changed]);
    let order = serde_json::to_value(&shown[&changed]).unwrap();
    assert_eq!(order["refunded_amount"], 300);
    assert_eq!(order["status"], "partially_refunded");
}
