use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::spawn_app;

/// 50 simultaneous refunds of 300 against a net of 10,000: the row lock lets exactly 33
/// through (9,900) and refuses the other 17, and the order's counters equal its refunds.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn fifty_simultaneous_refunds_never_over_refund(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 10_000, 2_000).await;

    let attempts = (0..50).map(|_| {
        app.create_refund(
            &org.write_token,
            json!({"order_id": order_id, "reason": "other", "amount": 300}),
        )
    });
    let responses = join_all(attempts).await;
    let created = responses
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let refused = responses
        .iter()
        .filter(|r| r.status == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!((created, refused), (33, 17));
    for response in responses
        .iter()
        .filter(|r| r.status == StatusCode::UNPROCESSABLE_ENTITY)
    {
        assert_eq!(
            response.json()["detail"][0]["msg"],
            "Refund amount exceeds refundable amount"
        );
    }

    let (count, amount, tax): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(amount)::bigint, sum(tax_amount)::bigint FROM refunds WHERE order_id = $1 AND status = 'succeeded'",
    ).bind(order_id).fetch_one(&app.pool).await.unwrap();
    let state = app.order_state(order_id).await;
    assert_eq!(count, 33);
    assert_eq!(
        (state.refunded_amount, state.refunded_tax_amount),
        (amount, tax)
    );
    assert_eq!(state.refunded_amount, 9_900);
    assert!(state.refunded_tax_amount <= 2_000);
    assert_eq!(state.status, "partially_refunded");
}
