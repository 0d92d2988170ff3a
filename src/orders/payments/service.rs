//! Reading payments as Polar shows them, scoped to the caller's organizations.

use serde_json::Map;
use uuid::Uuid;

use super::model::{
    CardPayment, CardPaymentMetadata, GenericPayment, Payment, PaymentList, PaymentListQuery,
    PaymentProcessor,
};
use super::repo::{self, PaymentRecord};
use crate::auth::Principal;
use crate::domain::{Error, Result};
use crate::orders::service::visible_organizations;
use crate::polar::schema::Pagination;
use crate::state::{Reader, snapshot};

/// A payment as Polar's `Payment`: a card payment carries its card, any other is generic.
pub fn payment_from_record(record: PaymentRecord) -> Payment {
    let card = match (&record.card_brand, &record.card_last4) {
        (Some(brand), Some(last4)) if record.method == "card" => Some(CardPaymentMetadata {
            brand: brand.clone(),
            last4: last4.clone(),
        }),
        _ => None,
    };
    macro_rules! payment {
        ($kind:ident { $($extra:tt)* }) => {
            $kind {
                created_at: record.created_at,
                modified_at: record.modified_at,
                id: record.id,
                processor: PaymentProcessor::Stripe,
                status: record.status,
                amount: record.amount,
                currency: record.currency,
                method: record.method,
                trigger: record.trigger,
                decline_reason: record.decline_reason,
                decline_message: record.decline_message,
                organization_id: record.organization_id,
                checkout_id: None,
                order_id: Some(record.order_id),
                processor_metadata: Map::new(),
                $($extra)*
            }
        };
    }
    match card {
        Some(method_metadata) => Payment::Card(payment!(CardPayment { method_metadata })),
        None => Payment::Generic(payment!(GenericPayment {})),
    }
}

#[tracing::instrument(name = "payments.get", skip_all, fields(route = "/v1/payments/{id}"))]
pub async fn read_payment(
    reader: &Reader,
    principal: &Principal,
    payment_id: Uuid,
) -> Result<Payment> {
    let organization_ids = principal.organization_ids.as_slice();
    reader
        .read(|db| async move {
            repo::find_readable_payment(&db, payment_id, organization_ids)
                .await?
                .map(payment_from_record)
                .ok_or(Error::ResourceNotFound)
        })
        .await
}

#[tracing::instrument(name = "payments.list", skip_all, fields(route = "/v1/payments/"))]
pub async fn list_payments(
    reader: &Reader,
    principal: &Principal,
    query: &PaymentListQuery,
) -> Result<PaymentList> {
    let organization_ids = visible_organizations(principal, &query.organization_ids);
    if organization_ids.is_empty() {
        return Ok(PaymentList {
            items: Vec::new(),
            pagination: Pagination::of(0, query.limit),
        });
    }
    let organization_ids = organization_ids.as_slice();
    reader
        .read(|db| async move {
            let mut snapshot = snapshot(&db).await?;
            let records = repo::list_payments(&mut *snapshot, organization_ids, query).await?;
            let total_count = repo::count_payments(&mut *snapshot, organization_ids, query).await?;
            snapshot.commit().await?;
            Ok(PaymentList {
                items: records.into_iter().map(payment_from_record).collect(),
                pagination: Pagination::of(total_count, query.limit),
            })
        })
        .await
}
