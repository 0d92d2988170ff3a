//! HTTP clients: the admin API for seeding, the refunds API, and a raw HTTP/1.1 connection
//! for the scenarios that need to know exactly when bytes left (shutdown) or to send what a
//! well-behaved client would not (slow bodies, invalid UTF-8, oversized bodies).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

/// What a request came back with.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// An HTTP answer: status and body.
    Answer(u16, String),
    /// No HTTP answer: connection refused or reset, timeout...
    Transport(String),
}

impl Outcome {
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Answer(status, _) => Some(*status),
            Outcome::Transport(_) => None,
        }
    }

    pub fn json(&self) -> Option<Value> {
        match self {
            Outcome::Answer(_, body) => serde_json::from_str(body).ok(),
            Outcome::Transport(_) => None,
        }
    }

    /// "201", "422", "transport: connect" ...
    pub fn label(&self) -> String {
        match self {
            Outcome::Answer(status, _) => status.to_string(),
            Outcome::Transport(kind) => format!("transport: {kind}"),
        }
    }
}

fn transport_kind(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout".into()
    } else if error.is_connect() {
        "connect".into()
    } else {
        // reqwest's message alone ("error sending request") says little; walk the sources.
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            message = inner.to_string();
            source = inner.source();
        }
        message
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> (Outcome, Duration) {
    let started = Instant::now();
    let outcome = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(body) => Outcome::Answer(status, body),
                Err(error) => Outcome::Transport(format!("body: {}", transport_kind(&error))),
            }
        }
        Err(error) => Outcome::Transport(transport_kind(&error)),
    };
    (outcome, started.elapsed())
}

/// `POST /v1/refunds/`
pub fn refund_request(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    http.post(format!("{base}/v1/refunds/"))
        .bearer_auth(token)
        .json(body)
}

/// The body of a refund carrying the suite's marker.
pub fn refund_body(order_id: Uuid, amount: i64, reason: &str, marker: &str) -> Value {
    json!({
        "order_id": order_id,
        "amount": amount,
        "reason": reason,
        "comment": format!("reliability {marker}"),
        "metadata": {"rel_marker": marker, "suite": "reliability"},
    })
}

pub const REASONS: &[&str] = &[
    "duplicate",
    "fraudulent",
    "customer_request",
    "service_disruption",
    "satisfaction_guarantee",
    "other",
];

/// The admin API of one server, for seeding.
#[derive(Clone)]
pub struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

#[derive(Debug, Clone, Copy)]
pub struct OrderSpec {
    pub net: i64,
    pub tax: i64,
    pub balance: i64,
    pub subscription: Option<Uuid>,
}

impl OrderSpec {
    pub fn simple(net: i64, tax: i64) -> Self {
        Self {
            net,
            tax,
            balance: 0,
            subscription: None,
        }
    }

    /// What can be refunded in total (net part).
    pub fn paid_net(&self) -> i64 {
        (self.net + self.balance).max(0)
    }
}

/// An organization with a read-write organization token and a few customers.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub org: Uuid,
    pub token: String,
    pub customers: Vec<Uuid>,
}

impl Admin {
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            http: http_client(Duration::from_secs(30)),
            base: base.to_owned(),
            token: token.to_owned(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
        let response = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: {text}"))
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, body).await
    }

    fn id(value: &Value) -> Result<Uuid> {
        value["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .with_context(|| format!("no id in {value}"))
    }

    pub async fn organization(&self, label: &str) -> Result<Uuid> {
        let suffix = Uuid::new_v4().simple().to_string();
        let slug = format!("rel-{label}-{}", &suffix[..12]);
        Self::id(
            &self
                .post(
                    "/admin/organizations",
                    json!({"name": format!("Reliability {label}"), "slug": slug}),
                )
                .await?,
        )
    }

    pub async fn organization_token(&self, org: Uuid, scopes: &[&str]) -> Result<String> {
        let created = self
            .post(
                &format!("/admin/organizations/{org}/access-tokens"),
                json!({ "scopes": scopes }),
            )
            .await?;
        created["token"]
            .as_str()
            .map(str::to_owned)
            .context("no token")
    }

    pub async fn customer(&self, org: Uuid, external_id: Option<&str>) -> Result<Uuid> {
        let email = format!("c{}@example.com", Uuid::new_v4().simple());
        Self::id(
            &self
                .post(
                    "/admin/customers",
                    json!({"organization_id": org, "email": email, "external_id": external_id}),
                )
                .await?,
        )
    }

    pub async fn order(&self, org: Uuid, customer: Uuid, spec: OrderSpec) -> Result<Uuid> {
        let mut body = json!({
            "organization_id": org,
            "customer_id": customer,
            "net_amount": spec.net,
            "tax_amount": spec.tax,
            "currency": "usd",
            "applied_balance_amount": spec.balance,
        });
        if let Some(subscription) = spec.subscription {
            body["subscription_id"] = json!(subscription);
        }
        Self::id(&self.post("/admin/orders", body).await?)
    }

    pub async fn user(&self) -> Result<Uuid> {
        let email = format!("u{}@example.com", Uuid::new_v4().simple());
        Self::id(&self.post("/admin/users", json!({ "email": email })).await?)
    }

    pub async fn membership(&self, user: Uuid, org: Uuid) -> Result<()> {
        self.post(
            &format!("/admin/users/{user}/memberships"),
            json!({ "organization_id": org }),
        )
        .await?;
        Ok(())
    }

    pub async fn personal_token(&self, user: Uuid, scopes: &[&str]) -> Result<String> {
        let created = self
            .post(
                &format!("/admin/users/{user}/access-tokens"),
                json!({ "scopes": scopes }),
            )
            .await?;
        created["token"]
            .as_str()
            .map(str::to_owned)
            .context("no token")
    }

    /// An organization with a read-write token and `customers` customers.
    pub async fn tenant(&self, label: &str, customers: usize) -> Result<Tenant> {
        let org = self.organization(label).await?;
        let token = self
            .organization_token(org, &["refunds:read", "refunds:write"])
            .await?;
        let mut ids = Vec::new();
        for i in 0..customers {
            ids.push(
                self.customer(org, Some(&format!("{label}-cus-{i}-{}", Uuid::new_v4())))
                    .await?,
            );
        }
        Ok(Tenant {
            org,
            token,
            customers: ids,
        })
    }
}

/// Fetches refunds by id through `GET /v1/refunds/?id=...`, 100 at a time; answers the
/// items by id.
pub async fn refunds_by_id(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, Value>> {
    let mut found = std::collections::HashMap::new();
    for chunk in ids.chunks(100) {
        let mut query: Vec<(&str, String)> =
            chunk.iter().map(|id| ("id", id.to_string())).collect();
        query.push(("limit", "100".into()));
        let response = http
            .get(format!("{base}/v1/refunds/"))
            .bearer_auth(token)
            .query(&query)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if status != 200 {
            bail!("GET /v1/refunds/?id=... answered {status}: {text}");
        }
        let list: Value = serde_json::from_str(&text)?;
        for item in list["items"].as_array().context("no items")? {
            if let Some(id) = item["id"].as_str().and_then(|id| id.parse().ok()) {
                found.insert(id, item.clone());
            }
        }
    }
    Ok(found)
}

// ---------------------------------------------------------------------------------------
// A raw HTTP/1.1 connection
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub body: Vec<u8>,
    /// The server announced `connection: close`.
    pub close: bool,
}

pub struct RawConn {
    pub stream: TcpStream,
    buffer: Vec<u8>,
}

/// Request head and body as bytes.
pub fn raw_request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if let Some(body) = body {
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<RawConn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawConn {
            stream,
            buffer: Vec::new(),
        })
    }

    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads one response (`content-length` bodies, or up to EOF), at most `timeout`.
    pub async fn read_response(&mut self, timeout: Duration) -> Result<RawResponse> {
        tokio::time::timeout(timeout, read_response(&mut self.stream, &mut self.buffer))
            .await
            .context("timed out waiting for the response")?
    }
}

/// Reads one HTTP/1.1 response from `stream`, keeping what follows it in `buffer`.
pub async fn read_response<R: AsyncReadExt + Unpin>(
    stream: &mut R,
    buffer: &mut Vec<u8>,
) -> Result<RawResponse> {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_len) = response.parse(buffer)? {
            let status = response.code.unwrap_or_default();
            let header = |name: &str| {
                response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
            };
            let length: Option<usize> = header("content-length").and_then(|v| v.parse().ok());
            let close = header("connection").is_some_and(|v| v.contains("close"));
            let mut eof = false;
            match length {
                Some(length) => {
                    while buffer.len() < head_len + length {
                        let read = stream.read(&mut chunk).await?;
                        if read == 0 {
                            bail!("connection closed in the middle of a response body");
                        }
                        buffer.extend_from_slice(&chunk[..read]);
                    }
                    let body = buffer[head_len..head_len + length].to_vec();
                    buffer.drain(..head_len + length);
                    return Ok(RawResponse {
                        status,
                        body,
                        close,
                    });
                }
                None => {
                    while !eof {
                        let read = stream.read(&mut chunk).await?;
                        eof = read == 0;
                        buffer.extend_from_slice(&chunk[..read]);
                    }
                    let body = buffer[head_len..].to_vec();
                    buffer.clear();
                    return Ok(RawResponse {
                        status,
                        body,
                        close: true,
                    });
                }
            }
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            bail!("connection closed before a response");
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}
