use refunds_server::auth::hash_token;
use refunds_server::auth::service::{TokenOwner, create_token};
use refunds_server::organizations::service as organizations;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{Response, TestApp, ids, into_response, scopes, spawn_app};

const INVALID_TOKEN: &str =
    "The access token provided is expired, revoked, malformed, or invalid for other reasons.";
const INSUFFICIENT_SCOPE: &str =
    "The request requires higher privileges than provided by the access token.";

/// A 401 with this body and `WWW-Authenticate` challenge, as JSON.
fn assert_unauthorized_with(response: &Response, body: Value, challenge: &str) {
    assert_eq!(
        response.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        response.text
    );
    assert_eq!(response.json(), body);
    assert_eq!(response.header("www-authenticate"), Some(challenge));
    assert_eq!(response.header("content-type"), Some("application/json"));
}

fn assert_invalid_token(response: &Response) {
    // OAuth's own error answers forbid caching in their own words
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(response.header("pragma"), Some("no-cache"));
    assert_unauthorized_with(
        response,
        json!({"error": "invalid_token", "error_description": INVALID_TOKEN}),
        &format!(
            r#"Bearer realm="polar", error="invalid_token", error_description="{INVALID_TOKEN}""#
        ),
    );
}

fn assert_unauthorized(response: &Response) {
    assert_eq!(response.header("cache-control"), Some("private, no-store"));
    assert_unauthorized_with(
        response,
        json!({"error": "Unauthorized", "detail": "Unauthorized"}),
        r#"Bearer realm="polar""#,
    );
}

async fn send(app: &TestApp, method: Method, path: &str, authorization: Option<&str>) -> Response {
    let mut request = app.client.request(method, format!("{}{path}", app.address));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    into_response(request.send().await.unwrap()).await
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn missing_or_anonymous_credentials_are_unauthorized_before_any_validation(pool: PgPool) {
    let app = spawn_app(pool).await;
    for authorization in [
        None,
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer polar_crt_abc"),
        // a bearer scheme with no token is no credential at all
        Some("Bearer"),
        Some("Bearer "),
        Some("Bearer  \t "),
    ] {
        // no body at all: auth is resolved first
        assert_unauthorized(&send(&app, Method::POST, "/v1/refunds/", authorization).await);
        // an invalid page: auth still wins
        assert_unauthorized(&send(&app, Method::GET, "/v1/refunds/?page=0", authorization).await);
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn unknown_expired_revoked_or_foreign_kind_tokens_are_invalid(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let expired = app.org_token(org.id, &["refunds:write"]).await;
    sqlx::query(
        "UPDATE access_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
    )
    .bind(hash_token(&expired))
    .execute(&app.pool)
    .await
    .unwrap();
    let revoked = app.org_token(org.id, &["refunds:write"]).await;
    sqlx::query("UPDATE access_tokens SET revoked_at = now() WHERE token_hash = $1")
        .bind(hash_token(&revoked))
        .execute(&app.pool)
        .await
        .unwrap();

    let tampered = format!("{}x", org.write_token);
    for token in [
        "polar_oat_doesnotexist",
        "polar_pat_doesnotexist",
        "polar_cst_customer",
        "polar_mst_member",
        "polar_at_u_oauth",
        "sk_live_other",
        &expired,
        &revoked,
        &tampered,
    ] {
        assert_invalid_token(
            &send(
                &app,
                Method::POST,
                "/v1/refunds/",
                Some(&format!("Bearer {token}")),
            )
            .await,
        );
        assert_invalid_token(
            &send(
                &app,
                Method::GET,
                "/v1/refunds/",
                Some(&format!("Bearer {token}")),
            )
            .await,
        );
    }
    // a token that expires in the future works
    let fresh = create_token(
        &app.pool,
        TokenOwner::Organization(org.id),
        scopes(&["refunds:read"]),
        Some(3600),
    )
    .await
    .unwrap();
    assert_eq!(app.list(&fresh.token, "").await.status, StatusCode::OK);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn scopes_decide_who_lists_and_who_creates(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;

    let response = app
        .create_refund(
            &org.read_token,
            json!({"order_id": order_id, "reason": "other", "amount": 1}),
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(
        response.json(),
        json!({"error": "insufficient_scope", "error_description": INSUFFICIENT_SCOPE})
    );
    assert_eq!(
        response.header("www-authenticate"),
        Some(format!(r#"Bearer realm="polar", scope="refunds:write", error="insufficient_scope", error_description="{INSUFFICIENT_SCOPE}""#).as_str())
    );
    // the OAuth error's own caching policy, as Polar sends it
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(response.header("pragma"), Some("no-cache"));
    // scope is checked before the body
    let no_body = send(
        &app,
        Method::POST,
        "/v1/refunds/",
        Some(&format!("Bearer {}", org.read_token)),
    )
    .await;
    assert_eq!(no_body.status, StatusCode::FORBIDDEN);

    assert_eq!(app.list(&org.read_token, "").await.status, StatusCode::OK);
    let write_only = app.org_token(org.id, &["refunds:write"]).await;
    assert_eq!(app.list(&write_only, "").await.status, StatusCode::OK);
    app.refund(&write_only, order_id, 1).await;

    let orders_only = app.org_token(org.id, &["orders:read"]).await;
    let response = app.list(&orders_only, "").await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(
        response.header("www-authenticate"),
        Some(format!(r#"Bearer realm="polar", scope="refunds:read refunds:write", error="insufficient_scope", error_description="{INSUFFICIENT_SCOPE}""#).as_str())
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn organizations_are_isolated_in_both_directions(pool: PgPool) {
    let app = spawn_app(pool).await;
    let a = app.organization("Alpha").await;
    let b = app.organization("Beta").await;
    let order_a = app.order(a.id, 1000, 0).await;
    let order_b = app.order(b.id, 1000, 0).await;
    let refund_a = app.refund(&a.write_token, order_a, 100).await;
    let refund_b = app.refund(&b.write_token, order_b, 200).await;

    for (me, mine, other_org, their_order, their_refund) in [
        (&a, &refund_a, b.id, order_b, &refund_b),
        (&b, &refund_b, a.id, order_a, &refund_a),
    ] {
        let listed = app.list_ok(&me.read_token, "").await;
        assert_eq!(ids(&listed), vec![mine["id"].as_str().unwrap()]);
        assert_eq!(
            listed["pagination"],
            json!({"total_count": 1, "max_page": 1})
        );
        for query in [
            format!("organization_id={other_org}"),
            format!("order_id={their_order}"),
            format!("id={}", their_refund["id"].as_str().unwrap()),
            format!(
                "customer_id={}",
                their_refund["customer_id"].as_str().unwrap()
            ),
        ] {
            let listed = app.list_ok(&me.read_token, &query).await;
            assert_eq!(
                listed,
                json!({"items": [], "pagination": {"total_count": 0, "max_page": 0}}),
                "{query}"
            );
        }
        let response = app
            .create_refund(
                &me.write_token,
                json!({"order_id": their_order, "reason": "other", "amount": 1}),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.json()["detail"][0]["msg"], "Order not found");
    }
    assert_eq!(app.order_state(order_a).await.refunded_amount, 100);
    assert_eq!(app.order_state(order_b).await.refunded_amount, 200);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_personal_token_sees_the_organizations_of_its_user(pool: PgPool) {
    let app = spawn_app(pool).await;
    let a = app.organization("Alpha").await;
    let b = app.organization("Beta").await;
    let c = app.organization("Gamma").await;
    let user = organizations::create_user(&app.pool, "Ada@Example.com")
        .await
        .unwrap();
    assert_eq!(user.email, "ada@example.com");
    organizations::add_membership(&app.pool, user.id, a.id)
        .await
        .unwrap();
    organizations::add_membership(&app.pool, user.id, b.id)
        .await
        .unwrap();
    let pat = create_token(
        &app.pool,
        TokenOwner::User(user.id),
        scopes(&["refunds:read", "refunds:write"]),
        None,
    )
    .await
    .unwrap()
    .token;
    assert!(pat.starts_with("polar_pat_"));

    let (order_a, order_b, order_c) = (
        app.order(a.id, 1000, 0).await,
        app.order(b.id, 1000, 0).await,
        app.order(c.id, 1000, 0).await,
    );
    app.refund(&pat, order_a, 10).await;
    app.refund(&pat, order_b, 20).await;
    app.refund(&c.write_token, order_c, 30).await;
    let response = app
        .create_refund(
            &pat,
            json!({"order_id": order_c, "reason": "other", "amount": 1}),
        )
        .await;
    assert_eq!(response.json()["detail"][0]["msg"], "Order not found");

    let listed = app.list_ok(&pat, "sorting=amount").await;
    let amounts: Vec<Value> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"].clone())
        .collect();
    assert_eq!(amounts, vec![json!(10), json!(20)]);
    let only_b = app
        .list_ok(&pat, &format!("organization_id={}", b.id))
        .await;
    assert_eq!(only_b["items"][0]["amount"], 20);
    assert_eq!(only_b["pagination"]["total_count"], 1);
    let not_mine = app
        .list_ok(&pat, &format!("organization_id={}", c.id))
        .await;
    assert_eq!(not_mine["pagination"]["total_count"], 0);

    // a user with no memberships sees nothing
    let loner = organizations::create_user(&app.pool, "loner@example.com")
        .await
        .unwrap();
    let loner_pat = create_token(
        &app.pool,
        TokenOwner::User(loner.id),
        scopes(&["refunds:read"]),
        None,
    )
    .await
    .unwrap()
    .token;
    assert_eq!(
        app.list_ok(&loner_pat, "").await["pagination"]["total_count"],
        0
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn tokens_are_stored_only_as_hashes(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let created = create_token(
        &app.pool,
        TokenOwner::Organization(org.id),
        scopes(&["refunds:read"]),
        None,
    )
    .await
    .unwrap();
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM access_tokens WHERE id = $1")
        .bind(created.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, hash_token(&created.token));
    let dump: String = sqlx::query_scalar("SELECT string_agg(t::text, ' ') FROM access_tokens t")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!dump.contains(&created.token["polar_oat_".len()..]));

    let unknown_scope = create_token(
        &app.pool,
        TokenOwner::Organization(org.id),
        scopes(&["refunds:admin"]),
        None,
    )
    .await;
    assert!(unknown_scope.is_err());
    let missing_owner = create_token(
        &app.pool,
        TokenOwner::Organization(Uuid::new_v4()),
        scopes(&["refunds:read"]),
        None,
    )
    .await;
    assert!(missing_owner.is_err());
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn spaces_or_tabs_before_the_token_still_authenticate(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    for separator in ["  ", " \t", " \t  "] {
        let authorization = format!("Bearer{separator}{}", org.read_token);
        let response = send(&app, Method::GET, "/v1/refunds/", Some(&authorization)).await;
        assert_eq!(response.status, StatusCode::OK, "{separator:?}");
        assert_eq!(response.header("cache-control"), Some("private, no-store"));
    }
    // the scheme ends at the first space: a tab alone does not separate it from the token
    let glued = format!("Bearer\t{}", org.read_token);
    assert_unauthorized(&send(&app, Method::GET, "/v1/refunds/", Some(&glued)).await);
}
