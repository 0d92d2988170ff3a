//! The handler of `POST /admin/payments/{id}/refund`: authenticate as Medusa does, parse,
//! call the service, answer in Medusa's shapes.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::MedusaError;
use super::input::parse_payment_refund;
use super::model::{ErrorBody, MedusaReason, MedusaRefund, PaymentRefundBody, RefundAnswer};
use super::service;
use crate::auth::{Principal, REFUNDS_WRITE};
use crate::domain::{Error, RefundStatus};
use crate::http::extract::RawBody;
use crate::idempotency::{self, KeyedRequest, StoredAnswer};
use crate::polar::ApiError;
use crate::refunds::model::Refund;
use crate::refunds::service::{Created, Keyed};
use crate::state::AppState;

/// The header Medusa's client sends an API key in.
pub const ACCESS_TOKEN_HEADER: &str = "x-medusa-access-token";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(refund_payment))
}

/// A caller whose organization or personal access token holds `refunds:write`, presented as
/// a bearer token or in `x-medusa-access-token`; like Medusa, any credential that works is
/// enough.
pub struct MedusaWriter(pub Principal);

impl FromRequestParts<AppState> for MedusaWriter {
    type Rejection = MedusaError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let api_key = parts
            .headers
            .get(ACCESS_TOKEN_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(|token| format!("Bearer {}", token.trim()));
        let mut failure = Error::Unauthorized;
        for header in [bearer, api_key].into_iter().flatten() {
            match crate::auth::service::authenticate_cached(
                &state.token_cache,
                &state.pool,
                Some(&header),
            )
            .await
            {
                Ok(principal) if principal.has_any_scope(&[REFUNDS_WRITE]) => {
                    return Ok(MedusaWriter(principal));
                }
                Ok(_) => {}
                // A database that is away is not a bad credential.
                Err(error @ (Error::DatabaseUnavailable(_) | Error::Database(_))) => {
                    failure = error
                }
                Err(_) => {}
            }
        }
        Err(MedusaError::answering(failure, ""))
    }
}

/// Refund Payment.
///
/// Medusa v1's Admin API route: refunds `amount` (net and tax together, in minor units) of
/// the payment, as `GET /v1/payments/` lists it, through the same rules and counters as
/// `POST /v1/refunds/`. The amount is split into net and tax in the order's proportion; the
/// refund, seen through `GET /v1/refunds/`, has `amount + tax_amount` equal to it, the
/// reason `customer_request` for a `return` and `other` for the others, and the note as its
/// comment. Takes an organization or personal access token with `refunds:write`, as a
/// bearer token or in `x-medusa-access-token`; not the admin token.
#[utoipa::path(
    post,
    path = "/admin/payments/{id}/refund",
    operation_id = "PostPaymentsPaymentRefunds",
    tag = "medusa",
    summary = "Refund Payment",
    params(
        ("id" = String, Path, description = "The ID of the Payment."),
        ("Idempotency-Key" = Option<String>, Header, nullable = false,
         description = "Makes a retry safe, as on `POST /v1/refunds/`: a request repeated with the same key (1 to 255 printable ASCII characters) while the key is kept is answered with the first answer, byte for byte, with `Idempotent-Replayed: true`, and refunds nothing more. The key is echoed in `idempotency_key`. The same key for another payment or body answers 422 `duplicate_error`; while the first request runs, 409 `conflict`.",
         min_length = 1, max_length = 255),
    ),
    request_body(content = PaymentRefundBody, content_type = "application/json"),
    security(("medusa_api_token" = []), ("pat" = ["refunds:write"]), ("oat" = ["refunds:write"])),
    responses(
        (status = 200, description = "OK", body = RefundAnswer,
         headers(("Idempotent-Replayed" = String, description = "`true` when this is the kept answer of an earlier request with the same `Idempotency-Key`."))),
        (status = 400, description = "The body is not valid (`invalid_data`, class-validator's messages), or the refund is not allowed (`not_allowed`): more than is left, a payment not captured, refunds blocked, an open dispute, a fully refunded order.", body = ErrorBody),
        (status = 401, description = "User is not authorized. Must log in first", content_type = "text/plain", body = String, example = json!("Unauthorized")),
        (status = 404, description = "The payment does not exist or belongs to another organization (`not_found`).", body = ErrorBody),
        (status = 409, description = "A request with the same `Idempotency-Key` is still running (`conflict`); retry.", body = ErrorBody,
         headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 413, description = "The body is larger than 10 MiB.", body = ErrorBody),
        (status = 422, description = "The `Idempotency-Key` was used for a different request (`duplicate_error`).", body = ErrorBody),
        (status = 500, description = "The processor failed the refund (`unexpected_state`) or the server failed (`unknown_error`).", body = ErrorBody),
        (status = 503, description = "The database is unavailable (`database_error`).", body = ErrorBody),
    ),
)]
async fn refund_payment(
    State(state): State<AppState>,
    MedusaWriter(principal): MedusaWriter,
    uri: Uri,
    headers: HeaderMap,
    body: Result<RawBody, ApiError>,
) -> Result<Response, MedusaError> {
    // The id as sent (`/admin/payments/{id}/refund`), not percent-decoded: a UUID needs no
    // decoding, and any other names no payment, even one that does not decode.
    let id = uri.path().split('/').nth(3).unwrap_or_default().to_owned();
    let body = body.map_err(|_| MedusaError::PayloadTooLarge)?;
    let key = idempotency_key(&headers)?;
    let refund = parse_payment_refund(body.content_type.as_deref(), &body.bytes)
        .map_err(MedusaError::InvalidData)?;
    // Medusa's ids are any string: one that is not ours names no payment.
    let payment_id = Uuid::parse_str(&id).map_err(|_| MedusaError::not_found(&id))?;
    let answer = Arc::new(Answer {
        payment_id,
        payment: id.clone(),
        reason: refund.reason,
        note: refund.note.clone(),
        idempotency_key: key.clone(),
    });
    let keyed = key.map(|key| {
        let route = format!("/admin/payments/{payment_id}/refund");
        let kept = Arc::clone(&answer);
        Keyed {
            request: KeyedRequest::new(&principal, key, "POST", route, &body.bytes),
            answer: Arc::new(move |created: &Result<Refund, Error>| kept.kept(created)),
        }
    });
    let created = service::refund_payment(&state, &principal, payment_id, &refund, keyed).await;
    let outcome = match &created {
        Ok(Created::Fresh(refund)) => refund.status.as_str(),
        Ok(Created::Replayed(_)) => "replayed",
        Err(error) => error.kind(),
    };
    metrics::counter!("refunds_created_total", "outcome" => outcome).increment(1);
    match created {
        Ok(Created::Fresh(refund)) => Ok(Json(answer.refund(&refund)?).into_response()),
        Ok(Created::Replayed(kept)) => Ok(replay(kept)),
        Err(error) => Err(MedusaError::answering(error, &id)),
    }
}

/// What the Medusa answer of a refund says beyond the refund itself.
struct Answer {
    payment_id: Uuid,
    /// The payment's id as the caller wrote it, for messages.
    payment: String,
    reason: MedusaReason,
    note: Option<String>,
    idempotency_key: Option<String>,
}

impl Answer {
    /// The answer of a refund the processor took (succeeded, or still pending: Medusa's
    /// refund has no status); one it failed is Medusa's `Failed to refund Payment`.
    fn refund(&self, refund: &Refund) -> Result<RefundAnswer, MedusaError> {
        if refund.status == RefundStatus::Failed {
            return Err(MedusaError::Unexpected(format!(
                "Failed to refund Payment {}",
                self.payment
            )));
        }
        Ok(RefundAnswer {
            refund: MedusaRefund {
                id: refund.id,
                order_id: refund.order_id,
                payment_id: self.payment_id,
                amount: refund.amount + refund.tax_amount,
                note: self.note.clone(),
                reason: self.reason,
                metadata: refund.metadata.clone(),
                idempotency_key: self.idempotency_key.clone(),
                created_at: refund.created_at,
                updated_at: refund.modified_at.unwrap_or(refund.created_at),
            },
        })
    }

    /// The answer a keyed refund keeps: its success and the refusals that follow from the
    /// request and the order, never a conflict or a failure of the server.
    fn kept(&self, created: &Result<Refund, Error>) -> Option<StoredAnswer> {
        let (status, body) = match created {
            // A failed refund moved nothing: a retry may try again.
            Ok(refund) => (
                StatusCode::OK,
                serde_json::to_vec(&self.refund(refund).ok()?).ok()?,
            ),
            Err(error) => {
                let refused = MedusaError::from_domain(error, &self.payment);
                if !refused.is_kept() {
                    return None;
                }
                let (status, body) = refused.answer()?;
                (status, serde_json::to_vec(&body).ok()?)
            }
        };
        Some(StoredAnswer {
            status: status.as_u16(),
            body,
        })
    }
}

/// The `Idempotency-Key` header: absent, one valid key, or a 400.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, MedusaError> {
    let mut values = headers.get_all(idempotency::HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(MedusaError::InvalidData(
            "Send one Idempotency-Key header".to_owned(),
        ));
    }
    idempotency::parse_key(value.as_bytes())
        .map(Some)
        .map_err(|_| {
            MedusaError::InvalidData(format!(
                "Idempotency-Key must be 1 to {} printable ASCII characters",
                idempotency::MAX_KEY_CHARS
            ))
        })
}

fn replay(answer: StoredAnswer) -> Response {
    let Ok(status) = StatusCode::from_u16(answer.status) else {
        return MedusaError::answering(
            Error::Corrupt(format!("kept status {}", answer.status)),
            "",
        )
        .into_response();
    };
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
