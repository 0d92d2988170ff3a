//! A processor outside the process: it is called between the transaction that reserves the
//! refund and the one that settles it, never while the order's row is locked.

use refunds_server::payments::{
    PaymentProcessor, ProcessorError, ProcessorOutcome, ProcessorRefund, ProcessorRefundState,
};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{OrderState, spawn_app_with_processor};

/// Answers by amount, as a remote processor would, after checking from a connection of its
/// own that the order's row is not locked and that the refund is already reserved.
struct RemoteProcessor {
    pool: PgPool,
}

#[async_trait::async_trait]
impl PaymentProcessor for RemoteProcessor {
    fn name(&self) -> &'static str {
        "remote"
    }

    async fn refund(&self, request: &ProcessorRefund) -> Result<ProcessorOutcome, ProcessorError> {
        let mut tx = self.pool.begin().await.unwrap();
        let (status, pending): (String, i64) = sqlx::query_as(
            "SELECT r.status, o.pending_amount FROM refunds r JOIN orders o ON o.id = r.order_id
             WHERE r.id = $1 FOR UPDATE OF o NOWAIT",
        )
        .bind(request.refund_id)
        .fetch_one(&mut *tx)
        .await
        .expect("the order is not locked during the call, and the refund is committed");
        assert_eq!(status, "pending");
        assert!(pending >= request.amount, "{pending} reserved");
        tx.rollback().await.unwrap();

        let state = match request.amount {
            11 => return Err(ProcessorError::AlreadyRefunded),
            13 => return Err(ProcessorError::Unavailable("timed out".into())),
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

fn body(order_id: uuid::Uuid, amount: i64) -> serde_json::Value {
    json!({"order_id": order_id, "reason": "customer_request", "amount": amount})
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn an_outside_processor_is_called_between_reserve_and_settle(pool: PgPool) {
    let app = spawn_app_with_processor(pool.clone(), RemoteProcessor { pool }).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;

    let succeeded = app.refund(&org.write_token, order_id, 100).await;
    assert_eq!(succeeded["status"], "succeeded");
    let pending = app.refund(&org.write_token, order_id, 600).await;
    assert_eq!(pending["status"], "pending");
    let failed = app.refund(&org.write_token, order_id, 7).await;
    assert_eq!(failed["status"], "failed");
    // no answer: the refund stays pending with its amount reserved, for the outcome to follow
    let unanswered = app.refund(&org.write_token, order_id, 13).await;
    assert_eq!(unanswered["status"], "pending");
    let refused = app
        .create_refund(&org.write_token, body(order_id, 11))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.json()["error"], "RefundedAlready");

    assert_eq!(
        app.order_state(order_id).await,
        OrderState {
            status: "partially_refunded".into(),
            refunded_amount: 100,
            refunded_tax_amount: 0,
            pending_amount: 613,
            pending_tax_amount: 0,
        }
    );
    let listed = app.list_ok(&org.read_token, "sorting=amount").await;
    let statuses: Vec<(i64, String)> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["amount"].as_i64().unwrap(),
                item["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (7, "failed".into()),
            (11, "failed".into()),
            (13, "pending".into()),
            (100, "succeeded".into()),
            (600, "pending".into())
        ]
    );
    let (stored_processor_id,): (Option<String>,) =
        sqlx::query_as("SELECT processor_id FROM refunds WHERE amount = 100")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(stored_processor_id.unwrap().starts_with("re_"));
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn refunds_move_forward_only_and_a_reversal_takes_the_amount_back(pool: PgPool) {
    use refunds_server::domain::{Error, RefundStatus};
    use refunds_server::refunds::service::{RefundMove, move_refund};

    let app = crate::helpers::spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let succeeded = app.refund(&org.write_token, order_id, 100).await;
    let refund_id: uuid::Uuid = succeeded["id"].as_str().unwrap().parse().unwrap();
    let before = app.order_state(order_id).await;
    assert_eq!(before.status, "partially_refunded");

    let mut tx = app.pool.begin().await.unwrap();
    let back = move_refund(&mut tx, refund_id, RefundMove::to(RefundStatus::Pending)).await;
    assert!(
        matches!(
            back,
            Err(Error::InvalidRefundMove {
                current: RefundStatus::Succeeded,
                ..
            })
        ),
        "{back:?}"
    );
    drop(tx);
    assert_eq!(app.order_state(order_id).await, before);

    let mut tx = app.pool.begin().await.unwrap();
    let reversed = move_refund(&mut tx, refund_id, RefundMove::to(RefundStatus::Failed))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(reversed.status, RefundStatus::Failed);
    assert!(reversed.modified_at.is_some());
    let after = app.order_state(order_id).await;
    assert_eq!((after.status.as_str(), after.refunded_amount), ("paid", 0));

    let mut tx = app.pool.begin().await.unwrap();
    let again = move_refund(&mut tx, refund_id, RefundMove::to(RefundStatus::Succeeded)).await;
    assert!(matches!(
        again,
        Err(Error::InvalidRefundMove {
            current: RefundStatus::Failed,
            ..
        })
    ));
}
