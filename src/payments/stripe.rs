//! Stripe: a thin typed client of the two calls refunds need (create a refund, list a
//! charge's refunds), the processor built on it, and the verification of Stripe's webhook
//! signatures. Requests are form-encoded with the secret key as bearer token, as Stripe's
//! API takes them; our refund id is the idempotency key.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::{
    PaymentProcessor, ProcessorError, ProcessorOutcome, ProcessorRefund, ProcessorRefundState,
};
use crate::config::Secret;
use crate::domain::{DisputeStatus, RefundFailureReason, RefundReason};

pub const STRIPE: &str = "stripe";

/// A refund object as Stripe returns it (the fields this server reads).
#[derive(Debug, Clone, Deserialize)]
pub struct StripeRefund {
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub charge: Option<String>,
    pub currency: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl StripeRefund {
    pub fn outcome(&self) -> ProcessorOutcome {
        let state = match self.status.as_deref() {
            Some("succeeded") => ProcessorRefundState::Succeeded,
            Some("failed") => ProcessorRefundState::Failed,
            Some("canceled") => ProcessorRefundState::Canceled,
            // `pending`, `requires_action`, or not given yet
            _ => ProcessorRefundState::Pending,
        };
        ProcessorOutcome {
            state,
            processor_id: self.id.clone(),
            failure_reason: self.failure_reason.as_deref().map(failure_reason),
        }
    }

    /// Our refund id, when the refund was made by this server.
    pub fn refund_id(&self) -> Option<uuid::Uuid> {
        self.metadata.get("refund_id")?.parse().ok()
    }
}

/// A dispute object as Stripe returns it (the fields this server reads).
#[derive(Debug, Clone, Deserialize)]
pub struct StripeDispute {
    pub id: String,
    pub amount: i64,
    pub charge: String,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
}

impl StripeDispute {
    /// Polar's `DisputeStatus.from_stripe`.
    pub fn dispute_status(&self) -> DisputeStatus {
        match self.status.as_str() {
            "lost" => DisputeStatus::Lost,
            "won" => DisputeStatus::Won,
            "under_review" | "warning_under_review" => DisputeStatus::UnderReview,
            "warning_closed" | "prevented" => DisputeStatus::Prevented,
            _ => DisputeStatus::NeedsResponse,
        }
    }
}

/// An event delivered to the webhook endpoint.
#[derive(Debug, Clone, Deserialize)]
pub struct StripeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: StripeEventData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeEventData {
    pub object: serde_json::Value,
}

/// Polar's `RefundFailureReason.from_stripe`.
pub fn failure_reason(stripe: &str) -> RefundFailureReason {
    match stripe {
        "lost_or_stolen_card" => RefundFailureReason::CardLost,
        "expired_or_canceled_card" => RefundFailureReason::CardExpired,
        "charge_for_pending_refund_disputed" => RefundFailureReason::Disputed,
        "insufficient_funds" => RefundFailureReason::InsufficientFunds,
        "merchant_request" => RefundFailureReason::MerchantRequest,
        "declined" => RefundFailureReason::Declined,
        _ => RefundFailureReason::Unknown,
    }
}

/// Polar's `RefundReason.to_stripe`: `fraudulent` is never forwarded, as it blocks the
/// customer at Stripe and can be abused.
pub fn stripe_reason(reason: RefundReason) -> &'static str {
    match reason {
        RefundReason::Duplicate => "duplicate",
        _ => "requested_by_customer",
    }
}

/// Polar's `RefundReason.from_stripe`, for refunds made in Stripe's dashboard.
pub fn reason_from_stripe(reason: Option<&str>) -> RefundReason {
    match reason {
        Some("requested_by_customer") => RefundReason::CustomerRequest,
        Some("fraudulent") => RefundReason::Fraudulent,
        Some("duplicate") => RefundReason::Duplicate,
        _ => RefundReason::Other,
    }
}

/// The form parameters of `POST /v1/refunds`, in a fixed order: Polar's parameters and
/// metadata.
pub fn refund_form(request: &ProcessorRefund) -> String {
    let total = (request.amount + request.tax_amount).to_string();
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("charge", &request.charge_id)
        .append_pair("amount", &total)
        .append_pair("reason", stripe_reason(request.reason))
        .append_pair("metadata[refund_id]", &request.refund_id.to_string())
        .append_pair("metadata[order_id]", &request.order_id.to_string())
        .append_pair("metadata[charge_id]", &request.charge_id)
        .append_pair("metadata[amount]", &request.requested_amount.to_string())
        .append_pair("metadata[refund_amount]", &request.amount.to_string())
        .append_pair(
            "metadata[refund_tax_amount]",
            &request.tax_amount.to_string(),
        )
        .append_pair(
            "metadata[revoke_benefits]",
            if request.revoke_benefits { "1" } else { "0" },
        );
    form.finish()
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: StripeApiError,
}

#[derive(Debug, Deserialize)]
struct StripeApiError {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RefundPage {
    data: Vec<StripeRefund>,
    has_more: bool,
}

/// The processor that refunds through Stripe's API.
pub struct StripeProcessor {
    http: reqwest::Client,
    api_base: String,
    secret_key: Secret,
}

impl std::fmt::Debug for StripeProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeProcessor")
            .field("api_base", &self.api_base)
            .field("secret_key", &self.secret_key)
            .finish()
    }
}

impl StripeProcessor {
    pub fn new(api_base: &str, secret_key: Secret, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("refunds-server/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            secret_key,
        })
    }

    async fn list_refunds(
        &self,
        charge_id: &str,
        starting_after: Option<&str>,
    ) -> Result<RefundPage, ProcessorError> {
        let mut query = vec![("charge", charge_id), ("limit", "100")];
        if let Some(after) = starting_after {
            query.push(("starting_after", after));
        }
        let response = self
            .http
            .get(format!("{}/v1/refunds", self.api_base))
            .bearer_auth(self.secret_key.expose())
            .query(&query)
            .send()
            .await
            .map_err(unanswered)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unanswered)?;
        if !status.is_success() {
            return Err(ProcessorError::Unavailable(format!(
                "listing refunds answered {status}"
            )));
        }
        serde_json::from_slice(&body).map_err(|error| {
            ProcessorError::Unavailable(format!("unreadable refund list: {error}"))
        })
    }
}

fn unanswered(error: reqwest::Error) -> ProcessorError {
    // reqwest's messages name the URL but never the headers, so no secret is in them.
    ProcessorError::Unavailable(error.without_url().to_string())
}

/// What an answer of `POST /v1/refunds` means for the refund.
fn refund_answer(
    status: reqwest::StatusCode,
    body: &[u8],
) -> Result<ProcessorOutcome, ProcessorError> {
    if status.is_success() {
        return serde_json::from_slice::<StripeRefund>(body)
            .map(|refund| refund.outcome())
            .map_err(|error| ProcessorError::Unavailable(format!("unreadable refund: {error}")));
    }
    let error = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|body| body.error);
    let code = error.as_ref().and_then(|error| error.code.as_deref());
    let message = error
        .as_ref()
        .and_then(|error| error.message.clone())
        .unwrap_or_else(|| format!("Stripe answered {status}"));
    match (status.as_u16(), code) {
        (_, Some("charge_already_refunded")) => Err(ProcessorError::AlreadyRefunded),
        (_, Some("charge_disputed")) => Err(ProcessorError::Disputed),
        // In flight elsewhere with the same key, rate limited, our credentials refused (a
        // setting to fix, not the refund's fault), or Stripe's own failure: ask again later.
        (409 | 429 | 401 | 403, _) | (500.., _) => Err(ProcessorError::Unavailable(message)),
        _ => {
            let kind = error.and_then(|error| error.kind).unwrap_or_default();
            Err(ProcessorError::Other(format!("{kind}: {message}")))
        }
    }
}

#[async_trait]
impl PaymentProcessor for StripeProcessor {
    fn name(&self) -> &'static str {
        STRIPE
    }

    async fn refund(&self, request: &ProcessorRefund) -> Result<ProcessorOutcome, ProcessorError> {
        let response = self
            .http
            .post(format!("{}/v1/refunds", self.api_base))
            .bearer_auth(self.secret_key.expose())
            .header("Idempotency-Key", request.refund_id.to_string())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(refund_form(request))
            .send()
            .await
            .map_err(unanswered)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unanswered)?;
        refund_answer(status, &body)
    }

    async fn find_refund(
        &self,
        request: &ProcessorRefund,
    ) -> Result<Option<ProcessorOutcome>, ProcessorError> {
        let mut after: Option<String> = None;
        loop {
            let page = self
                .list_refunds(&request.charge_id, after.as_deref())
                .await?;
            if let Some(found) = page
                .data
                .iter()
                .find(|refund| refund.refund_id() == Some(request.refund_id))
            {
                return Ok(Some(found.outcome()));
            }
            match (page.has_more, page.data.last()) {
                (true, Some(last)) => after = Some(last.id.clone()),
                _ => return Ok(None),
            }
        }
    }
}

/// Why a webhook's signature is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    #[error("the timestamp is outside the tolerance")]
    Expired,
    #[error("no v1 signature matches")]
    Mismatch,
}

/// How far a webhook's timestamp may be from now (Stripe's libraries use 300 s).
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// Checks `Stripe-Signature` (`t=…,v1=…[,v1=…]`): an HMAC-SHA256, keyed with the bytes of
/// the whole `whsec_…` secret, of `"<t>.<body>"`, matching any of the `v1` entries, with a
/// timestamp within the tolerance of `now` (Unix seconds).
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    secret: &Secret,
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::Expired);
    }
    let matches = signatures.iter().any(|signature| {
        // `verify_slice` compares in constant time.
        signing_mac(secret, timestamp, body)
            .verify_slice(signature)
            .is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn signing_mac(secret: &Secret, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Stripe-Signature` header Stripe would send for `body` at `timestamp`.
pub fn signature_header(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let signature = signing_mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ProcessorRefund {
        ProcessorRefund {
            refund_id: uuid::Uuid::nil(),
            order_id: uuid::Uuid::max(),
            payment_id: uuid::Uuid::nil(),
            charge_id: "ch_1".into(),
            requested_amount: 1000,
            amount: 1000,
            tax_amount: 250,
            currency: "usd".into(),
            reason: RefundReason::Fraudulent,
            revoke_benefits: true,
            sandbox_outcome: crate::domain::SandboxRefundOutcome::Succeeded,
        }
    }

    #[test]
    fn the_form_carries_polars_parameters_and_never_fraudulent() {
        let form = refund_form(&request());
        assert!(form.starts_with("charge=ch_1&amount=1250&reason=requested_by_customer&"));
        assert!(form.contains("metadata%5Brefund_amount%5D=1000"));
        assert!(form.contains("metadata%5Brefund_tax_amount%5D=250"));
        assert!(form.contains("metadata%5Brevoke_benefits%5D=1"));
        assert!(!form.contains("fraudulent"));
        let duplicate = ProcessorRefund {
            reason: RefundReason::Duplicate,
            ..request()
        };
        assert!(refund_form(&duplicate).contains("reason=duplicate"));
    }

    #[test]
    fn refusals_map_as_polar_maps_them() {
        let body = |code: &str| {
            format!(
                r#"{{"error":{{"type":"invalid_request_error","code":"{code}","message":"m"}}}}"#
            )
        };
        let bad = reqwest::StatusCode::BAD_REQUEST;
        assert_eq!(
            refund_answer(bad, body("charge_already_refunded").as_bytes()),
            Err(ProcessorError::AlreadyRefunded)
        );
        assert_eq!(
            refund_answer(bad, body("charge_disputed").as_bytes()),
            Err(ProcessorError::Disputed)
        );
        assert!(matches!(
            refund_answer(bad, body("amount_too_large").as_bytes()),
            Err(ProcessorError::Other(_))
        ));
        for status in [409, 429, 500, 503] {
            let status = reqwest::StatusCode::from_u16(status).unwrap();
            assert!(matches!(
                refund_answer(status, b"<html>"),
                Err(ProcessorError::Unavailable(_))
            ));
        }
        let ok = refund_answer(
            reqwest::StatusCode::OK,
            br#"{"id":"re_1","amount":5,"currency":"usd","status":"failed","failure_reason":"expired_or_canceled_card"}"#,
        )
        .unwrap();
        assert_eq!(ok.state, ProcessorRefundState::Failed);
        assert_eq!(ok.failure_reason, Some(RefundFailureReason::CardExpired));
    }

    #[test]
    fn signatures_are_checked_with_any_v1_and_a_tolerance() {
        let secret = Secret::new("whsec_test");
        let body = br#"{"id":"evt_1"}"#;
        let good = signature_header(&secret, 1_000, body);
        assert_eq!(verify_signature(Some(&good), body, &secret, 1_100), Ok(()));
        let several = format!("t=1000,v1={},{}", "00".repeat(32), &good[7..]);
        assert_eq!(
            verify_signature(Some(&several), body, &secret, 1_000),
            Ok(())
        );
        assert_eq!(
            verify_signature(Some(&good), b"{}", &secret, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(&good), body, &Secret::new("whsec_other"), 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(&good), body, &secret, 1_301),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify_signature(Some("v1=abcd"), body, &secret, 1_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(None, body, &secret, 1_000),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn dashboard_reasons_and_dispute_statuses_map_as_polar_maps_them() {
        assert_eq!(
            reason_from_stripe(Some("requested_by_customer")),
            RefundReason::CustomerRequest
        );
        assert_eq!(
            reason_from_stripe(Some("expired_uncaptured_charge")),
            RefundReason::Other
        );
        assert_eq!(reason_from_stripe(None), RefundReason::Other);
        let dispute = |status: &str| StripeDispute {
            id: "dp_1".into(),
            amount: 1,
            charge: "ch_1".into(),
            status: status.into(),
            reason: None,
        };
        assert_eq!(
            dispute("warning_needs_response").dispute_status(),
            DisputeStatus::NeedsResponse
        );
        assert_eq!(
            dispute("under_review").dispute_status(),
            DisputeStatus::UnderReview
        );
        assert_eq!(dispute("won").dispute_status(), DisputeStatus::Won);
        assert_eq!(dispute("lost").dispute_status(), DisputeStatus::Lost);
    }
}
