use refunds_server::Error;
use refunds_server::dev::seed::{SeedOptions, SeedReport, seed};
use refunds_server::organizations::service as organizations;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::spawn_app;

async fn seed_ok(pool: &PgPool, options: SeedOptions) -> SeedReport {
    seed(pool, &options).await.expect("seeded")
}

fn options(orders: u64, refunds_per_order: u32) -> SeedOptions {
    SeedOptions {
        orders,
        refunds_per_order,
        ..SeedOptions::default()
    }
}

async fn count(pool: &PgPool, query: &'static str, organization_id: Uuid) -> i64 {
    sqlx::query_scalar(query)
        .bind(organization_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn counts(pool: &PgPool, organization_id: Uuid) -> (i64, i64, i64) {
    (
        count(
            pool,
            "SELECT count(*) FROM orders WHERE organization_id = $1",
            organization_id,
        )
        .await,
        count(
            pool,
            "SELECT count(*) FROM payments WHERE organization_id = $1 AND status = 'succeeded'",
            organization_id,
        )
        .await,
        count(
            pool,
            "SELECT count(*) FROM refunds WHERE organization_id = $1 AND status = 'succeeded'",
            organization_id,
        )
        .await,
    )
}

/// The orders of the organization whose counters or status disagree with their succeeded
/// refunds, or that lack exactly one succeeded payment of what was paid.
async fn inconsistent_orders(pool: &PgPool, organization_id: Uuid) -> i64 {
    count(
        pool,
        r#"
        SELECT count(*)
        FROM orders o
        LEFT JOIN (SELECT order_id, sum(amount) AS amount, sum(tax_amount) AS tax_amount
                   FROM refunds WHERE status = 'succeeded' GROUP BY order_id) r
               ON r.order_id = o.id
        WHERE o.organization_id = $1
          AND (o.refunded_amount <> coalesce(r.amount, 0)
               OR o.refunded_tax_amount <> coalesce(r.tax_amount, 0)
               OR o.pending_amount <> 0
               OR o.pending_tax_amount <> 0
               OR o.status <> CASE
                      WHEN coalesce(r.amount, 0) = 0 THEN 'paid'
                      WHEN r.amount >= o.net_amount + o.applied_balance_amount THEN 'refunded'
                      ELSE 'partially_refunded' END
               OR (SELECT count(*) FROM payments p
                   WHERE p.order_id = o.id AND p.status = 'succeeded'
                     AND p.amount = o.net_amount + o.tax_amount + o.applied_balance_amount) <> 1)
        "#,
        organization_id,
    )
    .await
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn seeds_consistent_orders_and_refunds(pool: PgPool) {
    let report = seed_ok(
        &pool,
        SeedOptions {
            batch_size: 700,
            ..options(2_000, 2)
        },
    )
    .await;
    let org = report.organization_id;
    assert_eq!((report.orders, report.refunds), (2_000, 4_000));
    assert_eq!(counts(&pool, org).await, (2_000, 2_000, 4_000));
    assert_eq!(inconsistent_orders(&pool, org).await, 0);

    let name: String = sqlx::query_scalar("SELECT name FROM organizations WHERE id = $1")
        .bind(org)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(name.starts_with("Seed "), "{name}");
    let customers = count(
        &pool,
        "SELECT count(*) FROM customers WHERE organization_id = $1",
        org,
    )
    .await;
    assert_eq!(customers, 1_000);

    // The mix the benchmarks rely on is there.
    let (taxed, subscribed, refunded, partially_refunded): (i64, i64, i64, i64) = sqlx::query_as(
        r#"
        SELECT count(*) FILTER (WHERE tax_amount > 0),
               count(*) FILTER (WHERE subscription_id IS NOT NULL),
               count(*) FILTER (WHERE status = 'refunded'),
               count(*) FILTER (WHERE status = 'partially_refunded')
        FROM orders WHERE organization_id = $1
        "#,
    )
    .bind(org)
    .fetch_one(&pool)
    .await
    .unwrap();
    for share in [taxed, subscribed, refunded, partially_refunded] {
        assert!(share > 50 && share < 1_950, "{share}");
    }
    let (reasons, in_last_year): (i64, bool) = sqlx::query_as(
        r#"
        SELECT count(DISTINCT reason),
               bool_and(created_at BETWEEN now() - interval '365 days' AND now())
        FROM refunds WHERE organization_id = $1
        "#,
    )
    .bind(org)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(reasons, 6);
    assert!(in_last_year);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn seeded_refunds_are_listed_by_the_api(pool: PgPool) {
    let app = spawn_app(pool).await;
    let report = seed_ok(&app.pool, options(2_000, 2)).await;
    let token = app
        .org_token(report.organization_id, &["refunds:read"])
        .await;

    let body = app.list_ok(&token, "limit=100&sorting=-created_at").await;
    assert_eq!(body["pagination"]["total_count"], 4_000);
    assert_eq!(body["pagination"]["max_page"], 40);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 100);
    let created: Vec<_> = items
        .iter()
        .map(|item| {
            chrono::DateTime::parse_from_rfc3339(item["created_at"].as_str().unwrap()).unwrap()
        })
        .collect();
    assert!(created.windows(2).all(|pair| pair[0] >= pair[1]));

    let order_id = items[0]["order_id"].as_str().unwrap();
    let body = app.list_ok(&token, &format!("order_id={order_id}")).await;
    assert_eq!(body["pagination"]["total_count"], 2);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn seeds_into_an_existing_organization_only(pool: PgPool) {
    let org = organizations::create_organization(&pool, "Acme", None)
        .await
        .unwrap();
    let into_acme = SeedOptions {
        organization_id: Some(org.id),
        ..options(300, 1)
    };
    // Twice: the second run's customers must not collide with the first's.
    for _ in 0..2 {
        let report = seed_ok(&pool, into_acme.clone()).await;
        assert_eq!(report.organization_id, org.id);
        assert_eq!((report.orders, report.refunds), (300, 300));
    }
    assert_eq!(counts(&pool, org.id).await, (600, 600, 600));
    assert_eq!(inconsistent_orders(&pool, org.id).await, 0);

    let missing = Uuid::new_v4();
    let error = seed(
        &pool,
        &SeedOptions {
            organization_id: Some(missing),
            ..options(10, 1)
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, Error::NotFound("Organization")),
        "{error:?}"
    );
    assert_eq!(counts(&pool, missing).await, (0, 0, 0));
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn seeds_orders_without_refunds(pool: PgPool) {
    let report = seed_ok(&pool, options(500, 0)).await;
    let org = report.organization_id;
    assert_eq!((report.orders, report.refunds), (500, 0));
    assert_eq!(counts(&pool, org).await, (500, 500, 0));
    assert_eq!(inconsistent_orders(&pool, org).await, 0);
    let paid = count(
        &pool,
        "SELECT count(*) FROM orders WHERE organization_id = $1 AND status = 'paid'",
        org,
    )
    .await;
    assert_eq!(paid, 500);
}
