use refunds_server::domain::DisputeStatus;
use refunds_server::orders::service::PaidOrderInput;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{
    ScriptedProcessor, TestApp, TestOrg, ids, spawn_app, spawn_app_with_processor,
};

fn validation(detail: Value) -> Value {
    json!({"error": "RequestValidationError", "detail": detail})
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn invalid_queries_answer_pydantics_422_bodies(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let sorting_error = |input: &str| {
        validation(json!([{
        "type": "enum", "loc": ["query", "sorting", 0],
        "msg": "Input should be 'created_at', '-created_at', 'amount' or '-amount'", "input": input,
        "ctx": {"expected": "'created_at', '-created_at', 'amount' or '-amount'"}}]))
    };
    let cases = [
        (
            "page=0&limit=0",
            validation(json!([
            {"type": "greater_than", "loc": ["query", "page"], "msg": "Input should be greater than 0", "input": "0", "ctx": {"gt": 0}},
            {"type": "greater_than", "loc": ["query", "limit"], "msg": "Input should be greater than 0", "input": "0", "ctx": {"gt": 0}}])),
        ),
        (
            "page=abc",
            validation(json!([
            {"type": "int_parsing", "loc": ["query", "page"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "abc"}])),
        ),
        ("sorting=foo", sorting_error("foo")),
        ("sorting=", sorting_error("")),
        (
            "succeeded=maybe",
            validation(json!([
            {"type": "bool_parsing", "loc": ["query", "succeeded"], "msg": "Input should be a valid boolean, unable to interpret input", "input": "maybe"}])),
        ),
        (
            "id=xyz",
            validation(json!([
            {"type": "uuid_type", "loc": ["query", "id", "uuid"], "msg": "UUID input should be a string, bytes or UUID object", "input": ["xyz"]},
            {"type": "uuid_parsing", "loc": ["query", "id", "json-or-python[json=list[uuid],python=chain[is-instance[Sequence],function-wrap[sequence_validator()]]]", 0],
             "msg": "Input should be a valid UUID, invalid character: found `x` at 1", "input": "xyz", "ctx": {"error": "invalid character: found `x` at 1"}}])),
        ),
    ];
    for (query, expected) in cases {
        let response = app.list(&org.read_token, query).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.json(), expected, "{query}");
    }
    // commas are not split: the whole value is one (invalid) UUID
    let a = Uuid::new_v4();
    let response = app
        .list(&org.read_token, &format!("order_id={a},{a}"))
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    // a v1 UUID is refused
    let response = app
        .list(
            &org.read_token,
            "customer_id=3fa85f64-5717-1562-b3fc-2c963f66afa6",
        )
        .await;
    assert_eq!(response.json()["detail"][1]["type"], "uuid_version");
}

/// Two customers (one with an external id), a subscription order and a one-time order,
/// refunds of distinct amounts.
struct Fixture {
    org: TestOrg,
    subscription_id: Uuid,
    subscription_order: Uuid,
    one_time_order: Uuid,
    external_customer: Uuid,
    refunds: Vec<Value>,
}

async fn fixture(app: &TestApp) -> Fixture {
    let org = app.organization("Acme").await;
    let external_customer = app.customer(org.id, Some("ext-42")).await;
    let subscription_id = Uuid::new_v4();
    let subscription_order = app
        .order_with(PaidOrderInput {
            organization_id: org.id,
            customer_id: external_customer,
            subscription_id: Some(subscription_id),
            currency: "usd".into(),
            net_amount: 10_000,
            tax_amount: 0,
            applied_balance_amount: 0,
            metadata: json!({}),
            details: Default::default(),
        })
        .await;
    let one_time_order = app.order(org.id, 10_000, 0).await;
    let mut refunds = Vec::new();
    for (order_id, amount) in [
        (subscription_order, 100),
        (one_time_order, 300),
        (subscription_order, 200),
        (one_time_order, 400),
    ] {
        refunds.push(app.refund(&org.write_token, order_id, amount).await);
    }
    Fixture {
        org,
        subscription_id,
        subscription_order,
        one_time_order,
        external_customer,
        refunds,
    }
}

fn amounts(body: &Value) -> Vec<i64> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"].as_i64().unwrap())
        .collect()
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn every_filter_narrows_the_list(pool: PgPool) {
    let app = spawn_app(pool).await;
    let f = fixture(&app).await;
    let token = &f.org.read_token;
    let id = |i: usize| f.refunds[i]["id"].as_str().unwrap().to_owned();

    let cases: Vec<(String, Vec<i64>)> = vec![
        (String::new(), vec![400, 200, 300, 100]),
        (format!("id={}", id(1)), vec![300]),
        (format!("id={}&id={}", id(0), id(3)), vec![400, 100]),
        (
            format!("organization_id={}", f.org.id),
            vec![400, 200, 300, 100],
        ),
        (format!("order_id={}", f.subscription_order), vec![200, 100]),
        (
            format!(
                "order_id={}&order_id={}",
                f.subscription_order, f.one_time_order
            ),
            vec![400, 200, 300, 100],
        ),
        (
            format!("subscription_id={}", f.subscription_id),
            vec![200, 100],
        ),
        (
            format!("customer_id={}", f.external_customer),
            vec![200, 100],
        ),
        ("external_customer_id=ext-42".into(), vec![200, 100]),
        (
            "external_customer_id=ext-42&external_customer_id=nobody".into(),
            vec![200, 100],
        ),
        ("external_customer_id=nobody".into(), vec![]),
        (
            format!(
                "order_id={}&customer_id={}",
                f.one_time_order, f.external_customer
            ),
            vec![],
        ),
        ("succeeded=true".into(), vec![400, 200, 300, 100]),
        ("succeeded=false".into(), vec![]),
        (
            format!("ID={}&id%5B%5D=x&unknown=1", id(0)),
            vec![400, 200, 300, 100],
        ),
    ];
    for (query, expected) in cases {
        let body = app.list_ok(token, &query).await;
        assert_eq!(amounts(&body), expected, "{query}");
        assert_eq!(body["pagination"]["total_count"], expected.len(), "{query}");
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn succeeded_splits_succeeded_from_every_other_status(pool: PgPool) {
    let app = spawn_app_with_processor(pool, ScriptedProcessor).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    for amount in [600, 7, 50] {
        app.refund(&org.write_token, order_id, amount).await;
    }
    for (value, expected) in [
        ("true", vec![50]),
        ("TRUE", vec![50]),
        ("1", vec![50]),
        ("yes", vec![50]),
        ("on", vec![50]),
        ("t", vec![50]),
        ("Y", vec![50]),
        ("false", vec![7, 600]),
        ("0", vec![7, 600]),
        ("no", vec![7, 600]),
        ("off", vec![7, 600]),
        ("f", vec![7, 600]),
        ("n", vec![7, 600]),
    ] {
        let body = app
            .list_ok(
                &org.read_token,
                &format!("succeeded={value}&sorting=-created_at"),
            )
            .await;
        assert_eq!(amounts(&body), expected, "succeeded={value}");
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn sorting_applies_each_criterion_in_order_with_a_stable_tie_break(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 100_000, 0).await;
    // amounts 30, 10, 20, 10 created one minute apart
    let mut created = Vec::new();
    for (minute, amount) in [30, 10, 20, 10].into_iter().enumerate() {
        let refund = app.refund(&org.write_token, order_id, amount).await;
        let id = Uuid::parse_str(refund["id"].as_str().unwrap()).unwrap();
        sqlx::query("UPDATE refunds SET created_at = '2026-01-01T00:00:00Z'::timestamptz + make_interval(mins => $2) WHERE id = $1")
            .bind(id).bind(minute as i32).execute(&app.pool).await.unwrap();
        created.push(refund["id"].as_str().unwrap().to_owned());
    }
    let by_created: Vec<&str> = created.iter().map(String::as_str).collect();
    let reversed: Vec<&str> = by_created.iter().rev().copied().collect();

    assert_eq!(
        ids(&app.list_ok(&org.read_token, "").await),
        reversed,
        "default is -created_at"
    );
    assert_eq!(
        ids(&app.list_ok(&org.read_token, "sorting=-created_at").await),
        reversed
    );
    assert_eq!(
        ids(&app.list_ok(&org.read_token, "sorting=created_at").await),
        by_created
    );
    let body = app
        .list_ok(&org.read_token, "sorting=amount&sorting=-created_at")
        .await;
    assert_eq!(
        ids(&body),
        vec![by_created[3], by_created[1], by_created[2], by_created[0]]
    );
    let body = app
        .list_ok(&org.read_token, "sorting=-amount&sorting=created_at")
        .await;
    assert_eq!(
        ids(&body),
        vec![by_created[0], by_created[2], by_created[1], by_created[3]]
    );
    let body = app.list_ok(&org.read_token, "sorting=amount").await;
    assert_eq!(amounts(&body), vec![10, 10, 20, 30]);
    let body = app.list_ok(&org.read_token, "sorting=-amount").await;
    assert_eq!(amounts(&body), vec![30, 20, 10, 10]);

    // equal sort keys: pages of one never repeat or skip a refund
    sqlx::query("UPDATE refunds SET created_at = '2026-01-01T00:00:00Z', amount = 10")
        .execute(&app.pool)
        .await
        .unwrap();
    for sorting in ["-created_at", "created_at", "amount", "-amount"] {
        let mut seen = Vec::new();
        for page in 1..=4 {
            let body = app
                .list_ok(
                    &org.read_token,
                    &format!("limit=1&page={page}&sorting={sorting}"),
                )
                .await;
            seen.extend(ids(&body));
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 4, "{sorting}: {seen:?}");
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn pagination_counts_pages_with_the_clamped_limit(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    assert_eq!(
        app.list_ok(&org.read_token, "").await,
        json!({"items": [], "pagination": {"total_count": 0, "max_page": 0}})
    );

    let order_id = app.order(org.id, 1_000_000, 0).await;
    let total: i64 = 105;
    let customer_id: Uuid = sqlx::query_scalar("SELECT customer_id FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO refunds (id, organization_id, order_id, customer_id, status, reason, amount, tax_amount, currency, processor) \
         SELECT gen_random_uuid(), $1, $2, $3, 'succeeded', 'other', n, 0, 'usd', 'sandbox' FROM generate_series(1, $4) AS n",
    ).bind(org.id).bind(order_id).bind(customer_id).bind(total).execute(&app.pool).await.unwrap();

    let first = app.list_ok(&org.read_token, "").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 10);
    assert_eq!(
        first["pagination"],
        json!({"total_count": 105, "max_page": 11})
    );
    let clamped = app.list_ok(&org.read_token, "limit=500").await;
    assert_eq!(clamped["items"].as_array().unwrap().len(), 100);
    assert_eq!(
        clamped["pagination"],
        json!({"total_count": 105, "max_page": 2})
    );
    let last = app.list_ok(&org.read_token, "limit=100&page=2").await;
    assert_eq!(last["items"].as_array().unwrap().len(), 5);
    let past = app.list_ok(&org.read_token, "limit=100&page=3").await;
    assert_eq!(
        past,
        json!({"items": [], "pagination": {"total_count": 105, "max_page": 2}})
    );
    let exact = app
        .list_ok(&org.read_token, "limit=21&sorting=amount&page=5")
        .await;
    assert_eq!(exact["pagination"]["max_page"], 5);
    assert_eq!(amounts(&exact), (85..=105).collect::<Vec<i64>>());
    let repeated = app
        .list_ok(
            &org.read_token,
            "limit=1&limit=7&page=9&page=2&sorting=amount",
        )
        .await;
    assert_eq!(
        amounts(&repeated),
        (8..=14).collect::<Vec<i64>>(),
        "the last occurrence wins"
    );
    let huge = app
        .list_ok(&org.read_token, "page=99999999999999999999")
        .await;
    assert_eq!(huge["items"], json!([]));

    // every page of the SDK's walk until max_page yields each refund once
    let mut seen = 0;
    for page in 1..=11 {
        seen += app.list_ok(&org.read_token, &format!("page={page}")).await["items"]
            .as_array()
            .unwrap()
            .len();
    }
    assert_eq!(seen, total as usize);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_refund_made_for_a_dispute_lists_with_the_dispute_embedded(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 250).await;
    let dispute = app
        .dispute(order_id, DisputeStatus::EarlyWarning, None, None)
        .await;
    assert_eq!(dispute.status, DisputeStatus::Prevented);
    let payment_id: Uuid = sqlx::query_scalar("SELECT id FROM payments WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    app.refund(&org.write_token, app.order(org.id, 500, 0).await, 100)
        .await;

    let body = app.list_ok(&org.read_token, "sorting=-amount").await;
    let embedded = &body["items"][0]["dispute"];
    let keys: Vec<&String> = embedded.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "created_at",
            "modified_at",
            "id",
            "status",
            "resolved",
            "closed",
            "amount",
            "tax_amount",
            "currency",
            "reason",
            "evidence_due_by",
            "past_due",
            "order_id",
            "payment_id"
        ]
    );
    assert_eq!(embedded["id"], dispute.id.to_string());
    assert_eq!(embedded["status"], "prevented");
    assert_eq!(
        (
            embedded["reason"].clone(),
            embedded["evidence_due_by"].clone(),
            embedded["past_due"].clone()
        ),
        (Value::Null, Value::Null, json!(false))
    );
    assert_eq!(
        (embedded["resolved"].clone(), embedded["closed"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(
        (embedded["amount"].clone(), embedded["tax_amount"].clone()),
        (json!(1000), json!(250))
    );
    assert_eq!(embedded["payment_id"], payment_id.to_string());
    let prevention = &body["items"][0];
    assert_eq!(prevention["reason"], "dispute_prevention");
    assert_eq!(
        (
            prevention["status"].clone(),
            prevention["revoke_benefits"].clone()
        ),
        (json!("succeeded"), json!(true))
    );
    assert_eq!(prevention["subscription_id"], Value::Null);
    assert_eq!(app.order_state(order_id).await.status, "refunded");
    assert_eq!(body["items"][1]["dispute"], Value::Null);
}

/// `total_count` comes from maintained counts when only organizations and `succeeded`
/// filter the list; they must equal a plain count after every kind of write.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn total_counts_stay_exact_whoever_writes_refunds(pool: PgPool) {
    let app = spawn_app_with_processor(pool, ScriptedProcessor).await;
    let org = app.organization("Acme").await;
    let other = app.organization("Other").await;

    async fn check(app: &TestApp, org: &TestOrg, moment: &str) {
        for (query, condition) in [
            ("", "true"),
            ("succeeded=true", "status = 'succeeded'"),
            ("succeeded=false", "status <> 'succeeded'"),
        ] {
            let counted: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM refunds WHERE organization_id = $1 AND {condition}"
            )))
            .bind(org.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
            let listed = app
                .list_ok(
                    &org.read_token,
                    &format!("{query}&organization_id={}", org.id),
                )
                .await;
            assert_eq!(
                listed["pagination"]["total_count"], counted,
                "{moment}: {query}"
            );
            let unfiltered = app.list_ok(&org.read_token, query).await;
            assert_eq!(
                unfiltered["pagination"]["total_count"], counted,
                "{moment}: {query} (no organization filter)"
            );
        }
    }

    let order_id = app.order(org.id, 100_000, 0).await;
    for amount in [600, 7, 50, 51] {
        app.refund(&org.write_token, order_id, amount).await;
    }
    app.refund(&other.write_token, app.order(other.id, 1000, 0).await, 5)
        .await;
    check(&app, &org, "after API refunds (pending, failed, succeeded)").await;

    let attempts = (0..20).map(|_| async {
        let order_id = app.order(org.id, 1000, 0).await;
        app.refund(&org.write_token, order_id, 10).await;
    });
    futures::future::join_all(attempts).await;
    check(&app, &org, "after concurrent refunds").await;

    let customer_id: Uuid = sqlx::query_scalar("SELECT customer_id FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO refunds (id, organization_id, order_id, customer_id, status, reason, amount, tax_amount, currency, processor) \
         SELECT gen_random_uuid(), $1, $2, $3, CASE WHEN n % 3 = 0 THEN 'failed' ELSE 'succeeded' END, 'other', 1, 0, 'usd', 'sandbox' \
         FROM generate_series(1, 250) AS n",
    ).bind(org.id).bind(order_id).bind(customer_id).execute(&app.pool).await.unwrap();
    check(&app, &org, "after a bulk insert").await;

    sqlx::query("UPDATE refunds SET status = 'succeeded' WHERE status = 'pending'")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE refunds SET status = 'canceled' WHERE id IN (SELECT id FROM refunds WHERE status = 'succeeded' AND organization_id = $1 LIMIT 30)")
        .bind(org.id).execute(&app.pool).await.unwrap();
    check(&app, &org, "after status changes").await;

    sqlx::query("DELETE FROM refunds WHERE id IN (SELECT id FROM refunds WHERE organization_id = $1 LIMIT 40)")
        .bind(org.id).execute(&app.pool).await.unwrap();
    check(&app, &org, "after deletes").await;
    check(&app, &other, "the other organization").await;
}

/// A page and its `total_count` are read in one snapshot: while refunds are being created,
/// every list that fits on one page holds exactly as many refunds as it counts.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_page_and_its_count_agree_while_refunds_are_created(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let mut orders = Vec::new();
    for _ in 0..60 {
        orders.push(app.order(org.id, 1000, 0).await);
    }
    let creates = futures::future::join_all(
        orders
            .iter()
            .map(|order_id| app.refund(&org.write_token, *order_id, 10)),
    );
    let lists = async {
        let mut listed = Vec::new();
        for _ in 0..40 {
            listed.push(app.list_ok(&org.read_token, "limit=100").await);
        }
        listed
    };
    let (_, listed) = tokio::join!(creates, lists);
    for list in listed
        .iter()
        .chain([&app.list_ok(&org.read_token, "limit=100").await])
    {
        let items = list["items"].as_array().unwrap().len();
        assert_eq!(list["pagination"]["total_count"], items as i64, "{list}");
    }
    let last = app.list_ok(&org.read_token, "limit=100").await;
    assert_eq!(last["pagination"]["total_count"], 60);
}
