use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{Response, spawn_app};

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_bare_and_double_slashed_paths_are_served_without_redirects(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let body = json!({"order_id": order_id, "reason": "other", "amount": 10});
    for path in [
        "/v1/refunds",
        "/v1/refunds/",
        "//v1/refunds/",
        "/api/v1/refunds/",
    ] {
        let created = app
            .request(
                Method::POST,
                path,
                Some(&org.write_token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "POST {path}");
        let listed = app
            .request(Method::GET, path, Some(&org.read_token), None)
            .await;
        assert_eq!(listed.status, StatusCode::OK, "GET {path}");
        assert_eq!(listed.header("content-type"), Some("application/json"));
    }
    assert_eq!(app.order_state(order_id).await.refunded_amount, 40);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn unknown_routes_and_methods_answer_like_starlette(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    for path in [
        "/v1/refunds/3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "/nope",
        "/v1/subscriptions/",
    ] {
        let response = app
            .request(Method::GET, path, Some(&org.read_token), None)
            .await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.json(), json!({"detail": "Not Found"}));
        assert_eq!(response.header("content-type"), Some("application/json"));
    }
    // Starlette names the methods of the first route that matched the path: the list's.
    for method in [Method::DELETE, Method::PUT, Method::PATCH, Method::OPTIONS] {
        let response = app
            .request(method.clone(), "/v1/refunds/", Some(&org.write_token), None)
            .await;
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(response.json(), json!({"detail": "Method Not Allowed"}));
        assert_eq!(response.header("allow"), Some("GET"), "{method}");
    }
    // FastAPI's routes take no HEAD
    let head = app
        .request(Method::HEAD, "/v1/refunds/", Some(&org.read_token), None)
        .await;
    assert_eq!(head.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(head.header("allow"), Some("GET"));
    assert!(head.header("x-request-id").is_some());
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn polar_version_is_accepted_echoed_and_defaulted(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let send = |version: Option<&'static str>| {
        let mut request = app
            .client
            .get(format!("{}/v1/refunds/", app.address))
            .bearer_auth(&org.read_token);
        if let Some(version) = version {
            request = request.header("Polar-Version", version);
        }
        async move { request.send().await.unwrap() }
    };
    let response = send(None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["polar-version"], "2026-04");
    for version in ["2026-04", "2026-10", "2027-01"] {
        let response = send(Some(version)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["polar-version"], version);
    }
    // An empty header is no header.
    for version in ["", " "] {
        let response = send(Some(version)).await;
        assert_eq!(response.status(), StatusCode::OK, "{version:?}");
        assert_eq!(response.headers()["polar-version"], "2026-04");
    }
    for version in ["2025-01", "latest"] {
        let response = send(Some(version)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{version:?}");
        // refused before Polar's caching policy applies
        assert!(!response.headers().contains_key("cache-control"));
        assert_eq!(
            response.json::<serde_json::Value>().await.unwrap(),
            json!({"detail": "Not Found"})
        );
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn headers_the_sdks_send_are_tolerated(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let listed = app
        .client
        .get(format!(
            "{}/v1/refunds/?sorting=-created_at&limit=10&page=1",
            app.address
        ))
        .bearer_auth(&org.read_token)
        .header("content-type", "application/json")
        .header("cookie", "")
        .header("polar-organization", org.id.to_string())
        .header("user-agent", "speakeasy-sdk/typescript 1.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    // the 0.x builds always send revoke_benefits and sometimes a null comment
    let created = app.create_refund(&org.write_token, json!({
        "order_id": order_id, "reason": "other", "amount": 10, "revoke_benefits": false, "comment": null, "metadata": {}
    })).await;
    assert_eq!(created.status, StatusCode::CREATED);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn request_bodies_are_validated_like_fastapi(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let body_error =
        |detail: serde_json::Value| json!({"error": "RequestValidationError", "detail": detail});
    let literal = "Input should be <RefundReason.duplicate: 'duplicate'>, <RefundReason.fraudulent: 'fraudulent'>, <RefundReason.customer_request: 'customer_request'>, <RefundReason.service_disruption: 'service_disruption'>, <RefundReason.satisfaction_guarantee: 'satisfaction_guarantee'> or <RefundReason.other: 'other'>";
    let valid = |amount: serde_json::Value| json!({"order_id": order_id, "reason": "other", "amount": amount});

    let cases: Vec<(Option<&str>, Vec<u8>, serde_json::Value)> = vec![
        (None, vec![], body_error(json!([{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]))),
        (Some("application/json"), b"{}".to_vec(), body_error(json!([
            {"type": "missing", "loc": ["body", "order_id"], "msg": "Field required", "input": {}},
            {"type": "missing", "loc": ["body", "reason"], "msg": "Field required", "input": {}},
            {"type": "missing", "loc": ["body", "amount"], "msg": "Field required", "input": {}}]))),
        (Some("application/json"), b"{bad".to_vec(), body_error(json!([
            {"type": "json_invalid", "loc": ["body", 1], "msg": "JSON decode error", "input": {}, "ctx": {"error": "Expecting property name enclosed in double quotes"}}]))),
        (Some("application/json"), b"[1]".to_vec(), body_error(json!([
            {"type": "model_attributes_type", "loc": ["body"], "msg": "Input should be a valid dictionary or object to extract fields from", "input": [1]}]))),
        (Some("application/json"), valid(json!(0)).to_string().into_bytes(), body_error(json!([
            {"type": "greater_than", "loc": ["body", "amount"], "msg": "Input should be greater than 0", "input": 0, "ctx": {"gt": 0}}]))),
        (Some("application/json"), valid(json!(10.5)).to_string().into_bytes(), body_error(json!([
            {"type": "int_from_float", "loc": ["body", "amount"], "msg": "Input should be a valid integer, got a number with a fractional part", "input": 10.5}]))),
        (Some("application/json"), valid(json!(null)).to_string().into_bytes(), body_error(json!([
            {"type": "int_type", "loc": ["body", "amount"], "msg": "Input should be a valid integer", "input": null}]))),
        (Some("application/json"), json!({"order_id": "abc", "reason": "other", "amount": 1}).to_string().into_bytes(), body_error(json!([
            {"type": "uuid_parsing", "loc": ["body", "order_id"], "msg": "Input should be a valid UUID, invalid length: expected length 32 for simple format, found 3", "input": "abc", "ctx": {"error": "invalid length: expected length 32 for simple format, found 3"}}]))),
        (Some("application/json"), json!({"order_id": "3fa85f64-5717-1562-b3fc-2c963f66afa6", "reason": "other", "amount": 1}).to_string().into_bytes(), body_error(json!([
            {"type": "uuid_version", "loc": ["body", "order_id"], "msg": "UUID version 4 expected", "input": "3fa85f64-5717-1562-b3fc-2c963f66afa6", "ctx": {"expected_version": 4}}]))),
        (Some("application/json"), json!({"order_id": order_id, "reason": "dispute_prevention", "amount": 1}).to_string().into_bytes(), body_error(json!([
            {"type": "literal_error", "loc": ["body", "reason"], "msg": literal, "input": "dispute_prevention", "ctx": {"expected": &literal["Input should be ".len()..]}}]))),
        (Some("application/json"), json!({"order_id": order_id, "reason": "other", "amount": 1, "comment": "a\u{0}b"}).to_string().into_bytes(), body_error(json!([
            {"type": "value_error", "loc": ["body", "comment"], "msg": "Value error, This value contains invalid characters", "input": "a\u{0}b", "ctx": {"error": {}}}]))),
    ];
    for (content_type, body, expected) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let response = app.post_raw(&org.write_token, content_type, body).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{shown}");
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.json(), expected, "{shown}");
    }

    let unreadable = app
        .post_raw(
            &org.write_token,
            Some("application/json"),
            vec![b'{', 0xff, 0xfe, b'}'],
        )
        .await;
    assert_eq!(unreadable.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unreadable.json(),
        json!({"detail": "There was an error parsing the body"})
    );

    // lax coercions are accepted like pydantic's
    for amount in [json!("10"), json!(10.0), json!(true)] {
        let response: Response = app
            .create_refund(&org.write_token, valid(amount.clone()))
            .await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "{amount}: {}",
            response.text
        );
    }
    assert_eq!(app.order_state(order_id).await.refunded_amount, 21);
}

/// A body of many tiny values would cost far more memory parsed than as text: refused
/// before parsing.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_body_of_too_many_values_is_refused_before_parsing(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let values = vec!["0"; 20_000].join(",");
    let body = format!(
        r#"{{"order_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "reason": "other", "amount": 1, "metadata": {{"a": [{values}]}}}}"#
    );
    let response = app
        .post_raw(
            &org.write_token,
            Some("application/json"),
            body.into_bytes(),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json(),
        json!({"detail": "There was an error parsing the body"})
    );
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn browsers_of_any_origin_may_call_the_api_without_credentials(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let preflight = app
        .client
        .request(Method::OPTIONS, format!("{}/v1/refunds/", app.address))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::OK);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(
        headers["access-control-allow-methods"],
        "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
    );
    assert_eq!(headers["access-control-max-age"], "600");
    assert_eq!(headers["polar-version"], "2026-04");
    assert_eq!(preflight.text().await.unwrap(), "OK");

    let refused = app
        .client
        .request(Method::OPTIONS, format!("{}/v1/refunds/", app.address))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let listed = app
        .client
        .get(format!("{}/v1/refunds/", app.address))
        .bearer_auth(&org.read_token)
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(listed.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        listed.headers()["access-control-expose-headers"],
        "Polar-Version"
    );
}
