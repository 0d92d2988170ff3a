//! A fake of the part of Stripe's API that refunds use, behaving as Stripe documents it:
//! form-encoded requests authenticated by the secret key as bearer token; idempotency keys
//! (the first answer replayed, different parameters answered 400 `idempotency_error`, a
//! request still running answered 409); the refundable amount of each charge checked;
//! refunds answered `succeeded` or `pending`, pending ones settled later and announced by
//! signed webhooks (`Stripe-Signature: t=…,v1=…`) that are delivered again until the
//! receiver accepts them; `GET /v1/refunds?charge=` listing; and faults on demand: server
//! errors, refunds made whose answer is lost (the connection breaks) or comes too late,
//! slow answers.
//!
//! It runs in the process of a test (`FakeStripe::start`) or on its own (the binary).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Debug, Clone)]
pub struct Settings {
    pub secret_key: String,
    pub webhook_secret: String,
}

/// What a new refund is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundMode {
    /// `succeeded` at once.
    Succeeded,
    /// `pending`, then moved to `settle_to` after `settle_after`, with webhooks.
    Pending {
        settle_after: Duration,
        settle_to: &'static str,
    },
}

/// Shares of `POST /v1/refunds` calls that go wrong, each between 0 and 1.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answered 500 before anything is done.
    pub server_error: f64,
    /// The refund is made, then the connection breaks before the answer is complete.
    pub reset_after: f64,
    /// The refund is made, and the answer is held for `hang` (past the client's timeout).
    pub hang_after: f64,
    pub hang: Duration,
    /// Answered normally after `slow` (the key is in flight meanwhile).
    pub slow: f64,
    pub slow_delay: Duration,
    /// Share of `refund.created` webhooks never sent (as if the receiver had stayed away
    /// longer than Stripe retries), so that the answer to the call is all there is.
    pub dropped_webhooks: f64,
}

/// A refund as the fake holds it (Stripe's refund object).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RefundObject {
    pub id: String,
    pub object: String,
    pub amount: i64,
    pub charge: String,
    pub currency: String,
    pub created: i64,
    pub metadata: HashMap<String, String>,
    pub reason: Option<String>,
    pub status: String,
    pub failure_reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Charge {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub disputed: bool,
}

/// What the fake has seen, for tests to check.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub refund_requests: u64,
    pub replays: u64,
    pub in_flight_conflicts: u64,
    pub idempotency_errors: u64,
    pub faults: u64,
    pub webhooks_delivered: u64,
    pub webhook_attempts_refused: u64,
    pub webhooks_dropped: u64,
    /// `POST /v1/refunds` calls being answered right now.
    pub in_flight: u64,
}

enum KeyState {
    InFlight,
    Done {
        fingerprint: String,
        status: StatusCode,
        body: String,
    },
}

struct Inner {
    charges: HashMap<String, Charge>,
    refunds: Vec<RefundObject>,
    keys: HashMap<String, KeyState>,
    mode: RefundMode,
    faults: Faults,
    webhook_url: Option<String>,
    /// Webhooks not yet accepted by the receiver.
    undelivered: usize,
    counters: Counters,
    /// Form bodies of every refund request, in order.
    requests: Vec<Vec<(String, String)>>,
}

#[derive(Clone)]
struct Shared {
    settings: Arc<Settings>,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
}

/// A running fake; dropping it does not stop it (it lives as long as the runtime).
#[derive(Clone)]
pub struct FakeStripe {
    address: SocketAddr,
    shared: Shared,
}

impl FakeStripe {
    pub async fn start(address: SocketAddr, settings: Settings) -> anyhow::Result<Self> {
        let shared = Shared {
            settings: Arc::new(settings),
            inner: Arc::new(Mutex::new(Inner {
                charges: HashMap::new(),
                refunds: Vec::new(),
                keys: HashMap::new(),
                mode: RefundMode::Succeeded,
                faults: Faults::default(),
                webhook_url: None,
                undelivered: 0,
                counters: Counters::default(),
                requests: Vec::new(),
            })),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
        };
        let app = Router::new()
            .route("/v1/refunds", post(create_refund).get(list_refunds))
            .route("/fake/charges", post(add_charge_route))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { address, shared })
    }

    /// The base URL, as `STRIPE_API_BASE` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().expect("fake state")
    }

    pub fn set_webhook_url(&self, url: &str) {
        self.inner().webhook_url = Some(url.to_owned());
    }

    /// No more webhooks (to see what the server does without them).
    pub fn stop_webhooks(&self) {
        self.inner().webhook_url = None;
    }

    pub fn add_charge(&self, id: &str, amount: i64, currency: &str) {
        self.inner().charges.insert(
            id.to_owned(),
            Charge {
                id: id.to_owned(),
                amount,
                currency: currency.to_owned(),
                disputed: false,
            },
        );
    }

    pub fn set_disputed(&self, charge_id: &str, disputed: bool) {
        if let Some(charge) = self.inner().charges.get_mut(charge_id) {
            charge.disputed = disputed;
        }
    }

    pub fn set_mode(&self, mode: RefundMode) {
        self.inner().mode = mode;
    }

    pub fn set_faults(&self, faults: Faults) {
        self.inner().faults = faults;
    }

    pub fn refunds(&self) -> Vec<RefundObject> {
        self.inner().refunds.clone()
    }

    pub fn counters(&self) -> Counters {
        self.inner().counters.clone()
    }

    /// The form parameters of every `POST /v1/refunds`, in order.
    pub fn requests(&self) -> Vec<Vec<(String, String)>> {
        self.inner().requests.clone()
    }

    /// The amount refunded (succeeded refunds) of a charge.
    pub fn refunded(&self, charge_id: &str) -> i64 {
        self.inner()
            .refunds
            .iter()
            .filter(|refund| refund.charge == charge_id && refund.status == "succeeded")
            .map(|refund| refund.amount)
            .sum()
    }

    /// Webhooks sent but not yet accepted by the receiver.
    pub fn undelivered_webhooks(&self) -> usize {
        self.inner().undelivered
    }

    /// Moves a refund as Stripe would (a reversal, a late failure) and announces it.
    pub fn move_refund(&self, refund_id: &str, status: &str, failure_reason: Option<&str>) {
        let moved = {
            let mut inner = self.inner();
            let Some(refund) = inner.refunds.iter_mut().find(|r| r.id == refund_id) else {
                return;
            };
            refund.status = status.to_owned();
            refund.failure_reason = failure_reason.map(str::to_owned);
            refund.clone()
        };
        announce_refund(&self.shared, "refund.updated", &moved);
        if status == "failed" {
            announce_refund(&self.shared, "refund.failed", &moved);
        }
    }

    /// A refund made in Stripe's dashboard: no metadata, announced by a webhook.
    pub fn dashboard_refund(
        &self,
        charge_id: &str,
        amount: i64,
        reason: Option<&str>,
    ) -> RefundObject {
        let refund = {
            let mut inner = self.inner();
            let currency = inner.charges[charge_id].currency.clone();
            let refund = RefundObject {
                id: new_id("re"),
                object: "refund".into(),
                amount,
                charge: charge_id.to_owned(),
                currency,
                created: now(),
                metadata: HashMap::new(),
                reason: reason.map(str::to_owned),
                status: "succeeded".into(),
                failure_reason: None,
            };
            inner.refunds.push(refund.clone());
            refund
        };
        announce_refund(&self.shared, "refund.created", &refund);
        refund
    }

    /// Sends a signed event of any type, with `object` as its data.
    pub fn send_event(&self, kind: &str, object: Value) {
        send_event(&self.shared, kind, object);
    }
}

/// `Stripe-Signature` for `payload` at `timestamp`: HMAC-SHA256 keyed with the secret's
/// bytes over `"<timestamp>.<payload>"`.
pub fn signature_header(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

fn new_id(prefix: &str) -> String {
    let suffix: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}_{suffix}")
}

fn stripe_error(
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    message: &str,
) -> (StatusCode, String) {
    let mut error = json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    (status, json!({ "error": error }).to_string())
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let expected = format!("Bearer {}", shared.settings.secret_key);
    headers
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == expected.as_bytes())
}

fn unauthorized() -> Response {
    let (status, body) = stripe_error(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        None,
        "Invalid API Key provided",
    );
    json_response(status, body)
}

async fn create_refund(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    struct InFlight(Arc<Mutex<Inner>>);
    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.lock().expect("fake state").counters.in_flight -= 1;
        }
    }
    // As at Stripe, a request runs to its end (and its key gets its answer) even when the
    // caller hangs up or dies half-way.
    let task = tokio::spawn(async move {
        shared.inner.lock().expect("fake state").counters.in_flight += 1;
        let _in_flight = InFlight(shared.inner.clone());
        answer_refund(&shared, &headers, &body).await
    });
    task.await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn answer_refund(shared: &Shared, headers: &HeaderMap, body: &Bytes) -> Response {
    let shared = shared.clone();
    if !authorized(&shared, headers) {
        return unauthorized();
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        let (status, body) = stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            "Requests must be form-encoded",
        );
        return json_response(status, body);
    }
    let params: Vec<(String, String)> = form_pairs(body);
    let key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let fingerprint = {
        let mut sorted = params.clone();
        sorted.sort();
        format!("{sorted:?}")
    };
    let (faults, roll) = {
        let mut inner = shared.inner.lock().expect("fake state");
        inner.counters.refund_requests += 1;
        inner.requests.push(params.clone());
        if let Some(key) = &key {
            match inner.keys.get(key) {
                Some(KeyState::InFlight) => {
                    inner.counters.in_flight_conflicts += 1;
                    let (status, body) = stripe_error(
                        StatusCode::CONFLICT,
                        "idempotency_error",
                        Some("idempotency_key_in_use"),
                        "There is currently another in-progress request using this Idempotent Key",
                    );
                    return json_response(status, body);
                }
                Some(KeyState::Done {
                    fingerprint: first,
                    status,
                    body,
                }) => {
                    if *first != fingerprint {
                        inner.counters.idempotency_errors += 1;
                        let (status, body) = stripe_error(
                            StatusCode::BAD_REQUEST,
                            "idempotency_error",
                            None,
                            "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                        );
                        return json_response(status, body);
                    }
                    let mut response = json_response(*status, body.clone());
                    inner.counters.replays += 1;
                    response
                        .headers_mut()
                        .insert("idempotent-replayed", "true".parse().expect("header"));
                    return response;
                }
                None => {
                    inner.keys.insert(key.clone(), KeyState::InFlight);
                }
            }
        }
        (inner.faults.clone(), rand::rng().random::<f64>())
    };
    let forget_key = |shared: &Shared| {
        if let Some(key) = &key {
            shared.inner.lock().expect("fake state").keys.remove(key);
        }
    };
    // One roll places the call in at most one of the failures (500 before, reset after,
    // held after); slowness is rolled on its own.
    if roll < faults.server_error {
        forget_key(&shared);
        shared.inner.lock().expect("fake state").counters.faults += 1;
        let (status, body) = stripe_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            None,
            "An unknown error occurred",
        );
        return json_response(status, body);
    }
    if rand::rng().random::<f64>() < faults.slow {
        tokio::time::sleep(faults.slow_delay).await;
    }
    let (status, answer, made) = make_refund(&shared, &params);
    {
        let mut inner = shared.inner.lock().expect("fake state");
        if let Some(key) = &key {
            inner.keys.insert(
                key.clone(),
                KeyState::Done {
                    fingerprint,
                    status,
                    body: answer.clone(),
                },
            );
        }
    }
    if let Some(refund) = &made {
        announce_refund(&shared, "refund.created", refund);
        if let (
            RefundMode::Pending {
                settle_after,
                settle_to,
            },
            "pending",
        ) = (
            shared.inner.lock().expect("fake state").mode,
            refund.status.as_str(),
        ) {
            let shared = shared.clone();
            let id = refund.id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(settle_after).await;
                let fake = FakeStripe {
                    address: SocketAddr::from(([127, 0, 0, 1], 0)),
                    shared,
                };
                let reason = (settle_to == "failed").then_some("declined");
                fake.move_refund(&id, settle_to, reason);
            });
        }
    }
    let reset_until = faults.server_error + faults.reset_after;
    if roll < reset_until {
        shared.inner.lock().expect("fake state").counters.faults += 1;
        // A body that fails half-way: the connection is torn down mid-answer.
        let broken = futures::stream::iter(vec![
            Ok::<Bytes, std::io::Error>(Bytes::from_static(b"{\"id\":")),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            )),
        ]);
        return Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, answer.len().to_string())
            .body(Body::from_stream(broken))
            .expect("response");
    }
    if roll < reset_until + faults.hang_after {
        shared.inner.lock().expect("fake state").counters.faults += 1;
        tokio::time::sleep(faults.hang).await;
    }
    json_response(status, answer)
}

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// Checks the request against the charge and makes the refund: the status and body of the
/// answer, and the refund made, if any.
fn make_refund(
    shared: &Shared,
    params: &[(String, String)],
) -> (StatusCode, String, Option<RefundObject>) {
    let get = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let invalid = |code: Option<&str>, message: &str| {
        let (status, body) = stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message,
        );
        (status, body, None)
    };
    let mut inner = shared.inner.lock().expect("fake state");
    let Some(charge_id) = get("charge") else {
        return invalid(Some("parameter_missing"), "Missing required param: charge.");
    };
    let Some(charge) = inner.charges.get(&charge_id).cloned() else {
        return invalid(
            Some("resource_missing"),
            &format!("No such charge: '{charge_id}'"),
        );
    };
    if charge.disputed {
        return invalid(
            Some("charge_disputed"),
            &format!("Charge {charge_id} has been charged back; cannot issue a refund."),
        );
    }
    let taken: i64 = inner
        .refunds
        .iter()
        .filter(|refund| {
            refund.charge == charge_id && matches!(refund.status.as_str(), "succeeded" | "pending")
        })
        .map(|refund| refund.amount)
        .sum();
    let remaining = charge.amount - taken;
    if remaining <= 0 {
        return invalid(
            Some("charge_already_refunded"),
            &format!("Charge {charge_id} has already been refunded."),
        );
    }
    let amount = match get("amount").map(|amount| amount.parse::<i64>()) {
        None => remaining,
        Some(Ok(amount)) if amount > 0 => amount,
        Some(_) => return invalid(Some("parameter_invalid_integer"), "Invalid integer: amount"),
    };
    if amount > remaining {
        return invalid(
            Some("amount_too_large"),
            &format!(
                "Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})"
            ),
        );
    }
    let reason = get("reason");
    if let Some(reason) = &reason
        && !["duplicate", "fraudulent", "requested_by_customer"].contains(&reason.as_str())
    {
        return invalid(Some("parameter_invalid_string"), "Invalid reason");
    }
    let metadata: HashMap<String, String> = params
        .iter()
        .filter_map(|(key, value)| {
            let name = key.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((name.to_owned(), value.clone()))
        })
        .collect();
    let status = match inner.mode {
        RefundMode::Succeeded => "succeeded",
        RefundMode::Pending { .. } => "pending",
    };
    let refund = RefundObject {
        id: new_id("re"),
        object: "refund".into(),
        amount,
        charge: charge_id,
        currency: charge.currency,
        created: now(),
        metadata,
        reason,
        status: status.into(),
        failure_reason: None,
    };
    inner.refunds.push(refund.clone());
    let body = serde_json::to_string(&refund).expect("a refund serializes");
    (StatusCode::OK, body, Some(refund))
}

#[derive(Deserialize)]
struct ListQuery {
    charge: Option<String>,
    limit: Option<usize>,
    starting_after: Option<String>,
}

async fn list_refunds(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    if !authorized(&shared, &headers) {
        return unauthorized();
    }
    let inner = shared.inner.lock().expect("fake state");
    // Newest first, as Stripe lists.
    let mut matching: Vec<&RefundObject> = inner
        .refunds
        .iter()
        .rev()
        .filter(|refund| {
            query
                .charge
                .as_ref()
                .is_none_or(|charge| &refund.charge == charge)
        })
        .collect();
    if let Some(after) = &query.starting_after {
        match matching.iter().position(|refund| &refund.id == after) {
            Some(index) => matching.drain(..=index),
            None => matching.drain(..),
        };
    }
    let limit = query.limit.unwrap_or(10).clamp(1, 100);
    let has_more = matching.len() > limit;
    matching.truncate(limit);
    let body = json!({
        "object": "list",
        "url": "/v1/refunds",
        "has_more": has_more,
        "data": matching,
    });
    json_response(StatusCode::OK, body.to_string())
}

#[derive(Deserialize)]
struct ChargeInput {
    id: String,
    amount: i64,
    currency: String,
}

async fn add_charge_route(
    State(shared): State<Shared>,
    axum::Json(input): axum::Json<ChargeInput>,
) -> StatusCode {
    shared.inner.lock().expect("fake state").charges.insert(
        input.id.clone(),
        Charge {
            id: input.id,
            amount: input.amount,
            currency: input.currency,
            disputed: false,
        },
    );
    StatusCode::CREATED
}

fn announce_refund(shared: &Shared, kind: &str, refund: &RefundObject) {
    send_event(
        shared,
        kind,
        serde_json::to_value(refund).expect("a refund serializes"),
    );
}

/// Sends a signed event to the webhook URL, again and again (backing off up to a second)
/// until the receiver answers 2xx, as Stripe retries.
fn send_event(shared: &Shared, kind: &str, object: Value) {
    {
        let mut inner = shared.inner.lock().expect("fake state");
        if inner.webhook_url.is_none() {
            return;
        }
        if kind == "refund.created" && rand::rng().random::<f64>() < inner.faults.dropped_webhooks {
            inner.counters.webhooks_dropped += 1;
            return;
        }
    }
    let event = json!({
        "id": new_id("evt"),
        "object": "event",
        "api_version": "2024-06-20",
        "created": now(),
        "livemode": false,
        "type": kind,
        "data": {"object": object},
    });
    let payload = event.to_string();
    shared.inner.lock().expect("fake state").undelivered += 1;
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        loop {
            // Read each time: a receiver that restarts may listen elsewhere.
            let Some(url) = shared.inner.lock().expect("fake state").webhook_url.clone() else {
                shared.inner.lock().expect("fake state").undelivered -= 1;
                return;
            };
            let signature =
                signature_header(&shared.settings.webhook_secret, now(), payload.as_bytes());
            let sent = shared
                .http
                .post(&url)
                .header("Stripe-Signature", signature)
                .header(header::CONTENT_TYPE, "application/json")
                .body(payload.clone())
                .send()
                .await;
            let delivered = matches!(&sent, Ok(response) if response.status().is_success());
            {
                let mut inner = shared.inner.lock().expect("fake state");
                if delivered {
                    inner.undelivered -= 1;
                    inner.counters.webhooks_delivered += 1;
                } else {
                    inner.counters.webhook_attempts_refused += 1;
                }
            }
            if delivered {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    });
}
