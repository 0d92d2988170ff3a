use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use super::model::{PaymentListQuery, PaymentSort};
use crate::domain::{PaymentStatus, PaymentTrigger};

#[derive(Debug, sqlx::FromRow)]
pub struct PaymentRecord {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub order_id: Uuid,
    pub status: PaymentStatus,
    pub amount: i64,
    pub currency: String,
    pub method: String,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub trigger: Option<PaymentTrigger>,
    pub decline_reason: Option<String>,
    pub decline_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub modified_at: Option<DateTime<Utc>>,
}

const PAYMENT_SELECT: &str = "SELECT p.id, p.organization_id, p.order_id, p.status, p.amount, \
     p.currency, p.method, p.card_brand, p.card_last4, p.trigger, p.decline_reason, \
     p.decline_message, p.created_at, p.modified_at FROM payments p";

/// The payment, if it belongs to one of `organization_ids`.
pub async fn find_readable_payment(
    db: impl PgExecutor<'_>,
    payment_id: Uuid,
    organization_ids: &[Uuid],
) -> sqlx::Result<Option<PaymentRecord>> {
    let mut builder = QueryBuilder::new(PAYMENT_SELECT);
    builder.push(" WHERE p.id = ");
    builder.push_bind(payment_id);
    builder.push(" AND p.organization_id = ANY(");
    builder.push_bind(organization_ids);
    builder.push(")");
    builder.build_query_as().fetch_optional(db).await
}

fn push_payment_filters(
    builder: &mut QueryBuilder<Postgres>,
    organization_ids: &[Uuid],
    query: &PaymentListQuery,
) {
    builder.push(" WHERE p.organization_id = ANY(");
    builder.push_bind(organization_ids.to_vec());
    builder.push(")");
    // No payment here comes from a checkout: filtering by one matches nothing.
    if !query.checkout_ids.is_empty() {
        builder.push(" AND false");
    }
    if !query.order_ids.is_empty() {
        builder.push(" AND p.order_id = ANY(");
        builder.push_bind(query.order_ids.clone());
        builder.push(")");
    }
    if !query.customer_ids.is_empty() {
        builder
            .push(" AND p.order_id IN (SELECT o.id FROM orders o WHERE o.organization_id = ANY(");
        builder.push_bind(organization_ids.to_vec());
        builder.push(") AND o.customer_id = ANY(");
        builder.push_bind(query.customer_ids.clone());
        builder.push("))");
    }
    if !query.statuses.is_empty() {
        let statuses: Vec<&str> = query.statuses.iter().map(|s| s.as_str()).collect();
        builder.push(" AND p.status = ANY(");
        builder.push_bind(statuses);
        builder.push(")");
    }
    if !query.methods.is_empty() {
        builder.push(" AND p.method = ANY(");
        builder.push_bind(query.methods.clone());
        builder.push(")");
    }
    if !query.customer_emails.is_empty() {
        builder.push(" AND p.customer_email = ANY(");
        builder.push_bind(query.customer_emails.clone());
        builder.push(")");
    }
}

/// `ORDER BY` for the requested criteria (status and method as text, as Polar sorts its
/// columns), with `id` as the tie-break in the direction of the first criterion.
fn payment_order_by(sorting: &[PaymentSort]) -> String {
    let mut terms: Vec<&str> = Vec::new();
    let mut columns: Vec<&str> = Vec::new();
    for sort in sorting {
        let (column, term) = match sort {
            PaymentSort::CreatedAt => ("created_at", "p.created_at ASC"),
            PaymentSort::CreatedAtDesc => ("created_at", "p.created_at DESC"),
            PaymentSort::Status => ("status", "p.status ASC"),
            PaymentSort::StatusDesc => ("status", "p.status DESC"),
            PaymentSort::Amount => ("amount", "p.amount ASC"),
            PaymentSort::AmountDesc => ("amount", "p.amount DESC"),
            PaymentSort::Method => ("method", "p.method ASC"),
            PaymentSort::MethodDesc => ("method", "p.method DESC"),
        };
        if !columns.contains(&column) {
            columns.push(column);
            terms.push(term);
        }
    }
    let tie_break = match sorting.first() {
        Some(
            PaymentSort::CreatedAt
            | PaymentSort::Status
            | PaymentSort::Amount
            | PaymentSort::Method,
        ) => "p.id ASC",
        _ => "p.id DESC",
    };
    terms.push(tie_break);
    format!(" ORDER BY {}", terms.join(", "))
}

pub async fn list_payments(
    db: impl PgExecutor<'_>,
    organization_ids: &[Uuid],
    query: &PaymentListQuery,
) -> sqlx::Result<Vec<PaymentRecord>> {
    let mut builder = QueryBuilder::new(PAYMENT_SELECT);
    push_payment_filters(&mut builder, organization_ids, query);
    builder.push(payment_order_by(&query.sorting));
    builder.push(" LIMIT ");
    builder.push_bind(query.limit);
    builder.push(" OFFSET ");
    builder.push_bind((query.page - 1).saturating_mul(query.limit));
    builder.build_query_as().fetch_all(db).await
}

pub async fn count_payments(
    db: impl PgExecutor<'_>,
    organization_ids: &[Uuid],
    query: &PaymentListQuery,
) -> sqlx::Result<i64> {
    let mut builder = QueryBuilder::new("SELECT count(*) FROM payments p");
    push_payment_filters(&mut builder, organization_ids, query);
    builder.build_query_scalar().fetch_one(db).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_by_each_column_once_with_an_id_tie_break() {
        assert_eq!(
            payment_order_by(&[PaymentSort::CreatedAtDesc]),
            " ORDER BY p.created_at DESC, p.id DESC"
        );
        assert_eq!(
            payment_order_by(&[
                PaymentSort::Method,
                PaymentSort::AmountDesc,
                PaymentSort::MethodDesc
            ]),
            " ORDER BY p.method ASC, p.amount DESC, p.id ASC"
        );
    }
}
