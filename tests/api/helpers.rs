//! Spawning the server on a real socket against a fresh database, and typed helpers per
//! endpoint and per piece of setup data.

use std::sync::Arc;

use refunds_server::AppState;
use refunds_server::app::Application;
use refunds_server::auth::service::{TokenOwner, create_token};
use refunds_server::customers::service as customers;
use refunds_server::disputes::model::DisputeOpening;
use refunds_server::disputes::model::RefundDispute;
use refunds_server::domain::DisputeStatus;
use refunds_server::orders::service::{PaidOrderInput, create_paid_order};
use refunds_server::organizations::service as organizations;
use refunds_server::payments::{
    PaymentProcessor, ProcessorError, ProcessorOutcome, ProcessorRefund, ProcessorRefundState,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub client: reqwest::Client,
}

pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(AppState::new(pool)).await
}

pub async fn spawn_app_with_processor(pool: PgPool, processor: impl PaymentProcessor) -> TestApp {
    let mut state = AppState::new(pool);
    state.processor = Arc::new(processor);
    spawn_app_with(state).await
}

pub const ADMIN_TOKEN: &str = "test-admin-secret";

/// An app whose admin API is on, guarded by `ADMIN_TOKEN`.
pub async fn spawn_admin_app(pool: PgPool) -> TestApp {
    spawn_app_with(AppState::new(pool).with_admin_token(Some(ADMIN_TOKEN))).await
}

pub async fn spawn_app_with(state: AppState) -> TestApp {
    let pool = state.pool.clone();
    let application = Application::bind("127.0.0.1:0".parse().unwrap(), state)
        .await
        .expect("bind");
    let address = format!("http://{}", application.local_addr());
    tokio::spawn(application.serve(std::future::pending()));
    TestApp {
        address,
        pool,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

/// An organization with a read-write and a read-only organization token.
pub struct TestOrg {
    pub id: Uuid,
    pub write_token: String,
    pub read_token: String,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

pub fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl TestApp {
    pub async fn organization(&self, name: &str) -> TestOrg {
        let organization = organizations::create_organization(&self.pool, name, None)
            .await
            .unwrap();
        TestOrg {
            id: organization.id,
            write_token: self
                .org_token(organization.id, &["refunds:read", "refunds:write"])
                .await,
            read_token: self.org_token(organization.id, &["refunds:read"]).await,
        }
    }

    pub async fn org_token(&self, organization_id: Uuid, scope_list: &[&str]) -> String {
        create_token(
            &self.pool,
            TokenOwner::Organization(organization_id),
            scopes(scope_list),
            None,
        )
        .await
        .unwrap()
        .token
    }

    pub async fn customer(&self, organization_id: Uuid, external_id: Option<&str>) -> Uuid {
        let email = format!("{}@example.com", Uuid::new_v4().simple());
        customers::create_customer(&self.pool, organization_id, &email, None, external_id)
            .await
            .unwrap()
            .id
    }

    pub async fn order_with(&self, input: PaidOrderInput) -> Uuid {
        create_paid_order(&self.pool, input).await.unwrap().id
    }

    /// A paid one-time order in USD for a new customer.
    pub async fn order(&self, organization_id: Uuid, net_amount: i64, tax_amount: i64) -> Uuid {
        let customer_id = self.customer(organization_id, None).await;
        self.order_with(PaidOrderInput {
            organization_id,
            customer_id,
            subscription_id: None,
            currency: "usd".into(),
            net_amount,
            tax_amount,
            applied_balance_amount: 0,
            metadata: json!({}),
            details: Default::default(),
        })
        .await
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.address, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        into_response(request.send().await.expect("request sent")).await
    }

    /// POST /v1/refunds/ with raw bytes and an optional content type.
    pub async fn post_raw(
        &self,
        token: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        let mut request = self
            .client
            .post(format!("{}/v1/refunds/", self.address))
            .bearer_auth(token)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        into_response(request.send().await.expect("request sent")).await
    }

    pub async fn create_refund(&self, token: &str, body: Value) -> Response {
        self.request(Method::POST, "/v1/refunds/", Some(token), Some(body))
            .await
    }

    /// Creates a refund that must succeed and returns its body.
    pub async fn refund(&self, token: &str, order_id: Uuid, amount: i64) -> Value {
        let response = self
            .create_refund(
                token,
                json!({"order_id": order_id, "reason": "customer_request", "amount": amount}),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
        response.json()
    }

    /// A request to the admin API with the admin token.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        self.request(method, path, Some(ADMIN_TOKEN), body).await
    }

    /// An admin request that must answer `expected`; returns the body.
    pub async fn admin_ok(
        &self,
        method: Method,
        path: &str,
        body: Value,
        expected: StatusCode,
    ) -> Value {
        let response = self.admin(method.clone(), path, Some(body)).await;
        assert_eq!(
            response.status, expected,
            "{method} {path}: {}",
            response.text
        );
        response.json()
    }

    pub async fn list(&self, token: &str, query: &str) -> Response {
        self.request(
            Method::GET,
            &format!("/v1/refunds/?{query}"),
            Some(token),
            None,
        )
        .await
    }

    /// Lists and returns the body of a 200.
    pub async fn list_ok(&self, token: &str, query: &str) -> Value {
        let response = self.list(token, query).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
        response.json()
    }

    /// Opens a dispute through the service (amounts default to what is refundable).
    pub async fn dispute(
        &self,
        order_id: Uuid,
        status: DisputeStatus,
        amount: Option<i64>,
        tax_amount: Option<i64>,
    ) -> RefundDispute {
        let opening = DisputeOpening {
            amount,
            tax_amount,
            ..DisputeOpening::new(status)
        };
        refunds_server::refunds::disputes::open_dispute(
            &AppState::new(self.pool.clone()),
            order_id,
            opening,
        )
        .await
        .unwrap()
    }

    pub async fn refund_count(&self, order_id: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM refunds WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The sum of a metric's series whose labels include `labels`, from `/metrics`.
    pub async fn metric(&self, name: &str, labels: &str) -> f64 {
        let text = self.request(Method::GET, "/metrics", None, None).await.text;
        text.lines()
            .filter(|line| line.starts_with(name) && line.contains(labels))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub async fn order_state(&self, order_id: Uuid) -> OrderState {
        sqlx::query_as(
            "SELECT status, refunded_amount, refunded_tax_amount, pending_amount, pending_tax_amount \
             FROM orders WHERE id = $1",
        )
        .bind(order_id)
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }
}

#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderState {
    pub status: String,
    pub refunded_amount: i64,
    pub refunded_tax_amount: i64,
    pub pending_amount: i64,
    pub pending_tax_amount: i64,
}

pub async fn into_response(response: reqwest::Response) -> Response {
    Response {
        status: response.status(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap(),
    }
}

/// The ids in a list body, in order.
pub fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A processor whose answer depends on the requested net amount, to drive every outcome:
/// 11, 12 and 13 are refused, 600 stays pending, 7 fails, anything else succeeds.
pub struct ScriptedProcessor;

#[async_trait::async_trait]
impl PaymentProcessor for ScriptedProcessor {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn answers_in_process(&self) -> bool {
        true
    }

    async fn refund(&self, request: &ProcessorRefund) -> Result<ProcessorOutcome, ProcessorError> {
        let state = match request.amount {
            11 => return Err(ProcessorError::AlreadyRefunded),
            12 => return Err(ProcessorError::Disputed),
            13 => return Err(ProcessorError::Other("card network down".into())),
            600 => ProcessorRefundState::Pending,
            7 => ProcessorRefundState::Failed,
            _ => ProcessorRefundState::Succeeded,
        };
        Ok(ProcessorOutcome {
            state,
            processor_id: format!("re_{}", request.refund_id.simple()),
            failure_reason: None,
        })
    }
}
