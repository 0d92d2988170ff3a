use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use refunds_server::AppState;
use refunds_server::payments::{
    PaymentProcessor, ProcessorError, ProcessorOutcome, ProcessorRefund,
};
use refunds_server::state::ReadReplica;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::helpers::{spawn_app, spawn_app_with, spawn_app_with_processor};

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn health_and_readiness_answer_ok(pool: PgPool) {
    let app = spawn_app(pool).await;
    for path in ["/healthz", "/readyz"] {
        let response = app.request(Method::GET, path, None, None).await;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        assert_eq!(response.json(), json!({"status": "ok"}));
    }
}

#[sqlx::test(migrations = false)]
async fn readiness_fails_until_the_migrations_are_applied(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let response = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.json()["error"], "ServiceUnavailable");
    assert_eq!(
        app.request(Method::GET, "/healthz", None, None)
            .await
            .status,
        StatusCode::OK
    );
    refunds_server::app::MIGRATOR.run(&pool).await.unwrap();
    assert_eq!(
        app.request(Method::GET, "/readyz", None, None).await.status,
        StatusCode::OK
    );
}

/// A TCP proxy in front of PostgreSQL that can be cut and restored, so a test can take the
/// database away from one server without disturbing the other tests that share it.
struct PgProxy {
    port: u16,
    upstream: (String, u16),
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl PgProxy {
    async fn start(upstream: (String, u16)) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = PgProxy {
            port,
            upstream,
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let upstream = self.upstream.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        TcpStream::connect((upstream.0.as_str(), upstream.1)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(connection.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }

    /// Refuses new connections and resets the open ones, like a stopped server.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_database_outage_answers_503_quickly_and_recovers_by_itself(pool: PgPool) {
    let options = pool.connect_options();
    let proxy = PgProxy::start((options.get_host().to_owned(), options.get_port())).await;
    let proxied = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with((*options).clone().host("127.0.0.1").port(proxy.port));
    let app = spawn_app_with(AppState::new(proxied)).await;
    let seed = spawn_app(pool).await;
    let org = seed.organization("Acme").await;
    let order_id = seed.order(org.id, 1000, 0).await;
    assert_eq!(
        app.request(Method::GET, "/readyz", None, None).await.status,
        StatusCode::OK
    );
    app.refund(&org.write_token, order_id, 100).await;

    proxy.cut();
    let started = Instant::now();
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.json(),
        json!({"error": "ServiceUnavailable", "detail": "The service is temporarily unavailable, try again shortly"})
    );
    let refused = app
        .create_refund(
            &org.write_token,
            json!({"order_id": order_id, "reason": "other", "amount": 100}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.header("content-type"), Some("application/json"));
    let listed = app.list(&org.read_token, "").await;
    assert_eq!(listed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "no request waits past the pool timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(
        app.request(Method::GET, "/healthz", None, None)
            .await
            .status,
        StatusCode::OK,
        "the process stays up"
    );

    proxy.restore().await;
    let restored = Instant::now();
    loop {
        if app.request(Method::GET, "/readyz", None, None).await.status == StatusCode::OK {
            break;
        }
        assert!(
            restored.elapsed() < Duration::from_secs(5),
            "ready again within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.refund(&org.write_token, order_id, 100).await;
    assert_eq!(
        seed.order_state(order_id).await.refunded_amount,
        200,
        "the refused refund took no effect"
    );
}

fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter(|line| {
            labels
                .iter()
                .all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn metrics_count_requests_outcomes_and_pool_use(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let scrape = || async { app.request(Method::GET, "/metrics", None, None).await };
    let before = scrape().await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(
        before
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let created_before = metric(
        &before.text,
        "refunds_http_requests_total",
        &[("route", "/v1/refunds/"), ("status", "201")],
    );

    app.refund(&org.write_token, order_id, 600).await;
    app.create_refund(
        &org.write_token,
        json!({"order_id": order_id, "reason": "other", "amount": 600}),
    )
    .await;
    app.list_ok(&org.read_token, "").await;

    let after = scrape().await.text;
    assert_eq!(
        metric(
            &after,
            "refunds_http_requests_total",
            &[("route", "/v1/refunds/"), ("status", "201")]
        ),
        created_before + 1.0
    );
    assert!(
        metric(
            &after,
            "refunds_http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/v1/refunds/"),
                ("status", "200")
            ]
        ) >= 1.0
    );
    assert!(
        metric(
            &after,
            "refunds_http_request_duration_seconds_count",
            &[("route", "/v1/refunds/")]
        ) >= 3.0
    );
    assert_eq!(
        metric(&after, "refunds_created_total", &[("outcome", "succeeded")]),
        1.0
    );
    assert_eq!(
        metric(
            &after,
            "refunds_created_total",
            &[("outcome", "over_refund")]
        ),
        1.0
    );
    assert!(metric(&after, "refunds_db_pool_max_connections", &[]) >= 1.0);
    assert!(after.contains("refunds_db_pool_connections"));
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn every_response_carries_a_request_id(pool: PgPool) {
    let app = spawn_app(pool).await;
    let first = app.request(Method::GET, "/v1/refunds/", None, None).await;
    let second = app.request(Method::GET, "/nope", None, None).await;
    let (first, second) = (
        first.header("x-request-id").unwrap(),
        second.header("x-request-id").unwrap(),
    );
    assert_ne!(first, second);
    assert!(uuid::Uuid::parse_str(first).is_ok());
    let echoed = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", "caller-chosen-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "caller-chosen-42");
    // a long or unusual id is not echoed into logs and answers: a fresh one replaces it
    for unusable in ["x".repeat(129), "has space".into(), "semi;colon".into()] {
        let replaced = app
            .client
            .get(format!("{}/healthz", app.address))
            .header("x-request-id", &unusable)
            .send()
            .await
            .unwrap();
        let id = replaced.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{unusable:?} gave {id}");
    }
    let longest = "a.b_c-".repeat(21) + "ab";
    let kept = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", &longest)
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], longest.as_str());
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn api_answers_are_private_and_uncached_but_reference_assets_are_not(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    for (path, token) in [
        ("/v1/refunds/", Some(org.read_token.as_str())),
        ("/v1/refunds/?page=0", Some(org.read_token.as_str())),
        ("/nope", None),
        ("/healthz", None),
    ] {
        let response = app.request(Method::GET, path, token, None).await;
        assert_eq!(
            response.header("cache-control"),
            Some("private, no-store"),
            "{path}"
        );
    }
    let asset = app.request(Method::GET, "/docs/", None, None).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert_eq!(asset.header("cache-control"), None);
}

struct PanickingProcessor;

#[async_trait::async_trait]
impl PaymentProcessor for PanickingProcessor {
    fn name(&self) -> &'static str {
        "panicking"
    }

    fn answers_in_process(&self) -> bool {
        true
    }

    async fn refund(&self, _: &ProcessorRefund) -> Result<ProcessorOutcome, ProcessorError> {
        panic!("processor bug")
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_panic_answers_500_in_polars_shape_and_the_server_goes_on(pool: PgPool) {
    let app = spawn_app_with_processor(pool, PanickingProcessor).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    let response = app
        .create_refund(
            &org.write_token,
            json!({"order_id": order_id, "reason": "other", "amount": 1}),
        )
        .await;
    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        response.json(),
        json!({"error": "InternalServerError", "detail": "Internal Server Error"})
    );
    assert_eq!(app.list(&org.read_token, "").await.status, StatusCode::OK);
    assert_eq!(app.order_state(order_id).await.refunded_amount, 0);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_slow_request_times_out_with_503(pool: PgPool) {
    let mut state = AppState::new(pool);
    state.request_timeout = Duration::from_millis(500);
    let app = spawn_app_with(state).await;
    let org = app.organization("Acme").await;
    // headers announce a body that never comes
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /v1/refunds/ HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{",
        org.write_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains(
            r#"{"error":"RequestTimeout","detail":"The request took too long to complete"}"#
        ),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn an_oversized_body_is_refused_with_413(pool: PgPool) {
    let app = spawn_app(pool).await;
    let org = app.organization("Acme").await;
    let body = vec![b' '; 10 * 1024 * 1024 + 1];
    let response = app
        .post_raw(&org.write_token, Some("application/json"), body)
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.json()["error"], "RequestBodyTooLarge");
    assert_eq!(
        response.json()["detail"],
        "Request body exceeded the maximum allowed size of 10485760 bytes."
    );
    // refused before any caching policy applies, as Polar does
    assert_eq!(response.header("cache-control"), None);
    let _: Value = response.json();
}

/// A client that never finishes its request head is cut off, instead of holding its
/// connection (and a graceful shutdown) for ever.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_request_head_that_never_ends_is_cut_off(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buffer = [0; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
        .await
        .expect("the server closes the connection within the header timeout");
    assert!(
        matches!(read, Ok(0) | Err(_))
            || String::from_utf8_lossy(&buffer).starts_with("HTTP/1.1 408")
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "not before the timeout: {:?}",
        started.elapsed()
    );
    // the server goes on serving
    assert_eq!(
        app.request(Method::GET, "/healthz", None, None)
            .await
            .status,
        StatusCode::OK
    );
}

/// The replica readiness reports, waiting up to `within` for `in_use` to become `expected`.
async fn wait_for_replica(
    app: &crate::helpers::TestApp,
    expected: bool,
    within: Duration,
) -> Value {
    let started = Instant::now();
    loop {
        let ready = app.request(Method::GET, "/readyz", None, None).await;
        assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
        let replica = ready.json()["read_replica"].clone();
        if replica["in_use"] == json!(expected) {
            return replica;
        }
        assert!(
            started.elapsed() < within,
            "replica in_use still not {expected} after {within:?}: {replica}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lists read the replica (here a second pool reaching the same database through a proxy
/// that can be cut), `Cache-Control: no-cache` reads the primary, and a replica that goes
/// away is bypassed without a failed request, then used again when it is back.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn lists_read_the_replica_unless_asked_or_it_is_away(pool: PgPool) {
    let options = pool.connect_options();
    let proxy = PgProxy::start((options.get_host().to_owned(), options.get_port())).await;
    let through_proxy = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with((*options).clone().host("127.0.0.1").port(proxy.port));
    let replica = ReadReplica::new(through_proxy, Duration::from_secs(5));
    tokio::spawn(replica.clone().monitor(pool.clone()));
    let mut state = AppState::new(pool);
    state.replica = Some(replica);
    let app = spawn_app_with(state).await;
    let org = app.organization("Acme").await;
    let order_id = app.order(org.id, 1000, 0).await;
    app.refund(&org.write_token, order_id, 100).await;

    // Not a standby: nothing to replay, so no lag.
    let status = wait_for_replica(&app, true, Duration::from_secs(5)).await;
    assert_eq!(
        status,
        json!({"in_use": true, "lag_ms": 0, "bypassed_because": null})
    );
    let reads = |database: &'static str| {
        let app = &app;
        async move {
            let text = app.request(Method::GET, "/metrics", None, None).await.text;
            metric(&text, "refunds_db_reads_total", &[("database", database)])
        }
    };
    let listed = app.list_ok(&org.read_token, "").await;
    assert_eq!(listed["pagination"]["total_count"], 1);
    assert_eq!((reads("replica").await, reads("primary").await), (1.0, 0.0));

    let fresh = app
        .client
        .get(format!("{}/v1/refunds/", app.address))
        .bearer_auth(&org.read_token)
        .header("cache-control", "no-cache")
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);
    assert_eq!((reads("replica").await, reads("primary").await), (1.0, 1.0));

    // The replica goes away: the next list still answers, from the primary.
    proxy.cut();
    let listed = app.list_ok(&org.read_token, "").await;
    assert_eq!(listed["pagination"]["total_count"], 1);
    assert_eq!(reads("primary").await, 2.0);
    let status = wait_for_replica(&app, false, Duration::from_secs(5)).await;
    assert_eq!(status["bypassed_because"], "unreachable");
    let metrics = app.request(Method::GET, "/metrics", None, None).await.text;
    assert_eq!(metric(&metrics, "refunds_db_replica_in_use", &[]), 0.0);
    app.list_ok(&org.read_token, "").await;
    assert_eq!(reads("replica").await, 1.0);

    proxy.restore().await;
    wait_for_replica(&app, true, Duration::from_secs(5)).await;
    app.list_ok(&org.read_token, "").await;
    assert_eq!(reads("replica").await, 2.0);
    let metrics = app.request(Method::GET, "/metrics", None, None).await.text;
    assert_eq!(metric(&metrics, "refunds_db_replica_in_use", &[]), 1.0);
}

/// A replica that cannot be reached from the start never serves, and never fails a read.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn an_unreachable_replica_is_bypassed_from_the_start(pool: PgPool) {
    let nowhere = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with((*pool.connect_options()).clone().host("127.0.0.1").port(1));
    let replica = ReadReplica::new(nowhere, Duration::from_secs(5));
    let mut state = AppState::new(pool);
    state.replica = Some(replica.clone());
    let app = spawn_app_with(state).await;
    let org = app.organization("Acme").await;
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        ready.json(),
        json!({"status": "ok", "read_replica": {"in_use": false, "lag_ms": null, "bypassed_because": "not_checked_yet"}})
    );
    tokio::spawn(replica.monitor(app.pool.clone()));
    let status = wait_for_replica(&app, false, Duration::from_secs(5)).await;
    let started = Instant::now();
    while wait_for_replica(&app, false, Duration::from_secs(5)).await["bypassed_because"]
        != "unreachable"
    {
        assert!(started.elapsed() < Duration::from_secs(5), "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.list_ok(&org.read_token, "").await;
}
