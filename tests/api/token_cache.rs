//! The token cache across server processes: two (or more) `refunds-server serve` processes
//! on one database, each caching the tokens it has seen, must stop honouring a revoked
//! token, a removed membership or an expired token within a second, whichever process the
//! change went through or whether it went through any.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use refunds_server::AppState;
use refunds_server::auth::cache::{self, TokenCache};
use refunds_server_process::{ServerCommand, ServerProcess};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app_with};

const BINARY: &str = env!("CARGO_BIN_EXE_refunds-server");
const ADMIN_TOKEN: &str = "token-cache-admin";
/// Within this time of a change, every process must answer by it.
const PROPAGATION: Duration = Duration::from_secs(1);

/// The URL of the test's own database.
fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (server, _) = base.rsplit_once('/').expect("URL with a database");
    let name = pool
        .connect_options()
        .get_database()
        .expect("name")
        .to_owned();
    format!("{server}/{name}")
}

struct Server {
    process: ServerProcess,
    client: reqwest::Client,
}

impl Server {
    /// A server process on the test's database whose cache keeps tokens for `ttl_ms`, once
    /// its listener is connected (if it has one).
    async fn start(pool: &PgPool, ttl_ms: u64) -> Server {
        let process = ServerCommand::new(BINARY, &["serve"])
            .env("DATABASE_URL", database_url(pool))
            .env("REFUNDS_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("REFUNDS_TOKEN_CACHE_TTL_MS", ttl_ms.to_string())
            .env("REFUNDS_DB_MAX_CONNECTIONS", "4")
            .env("REFUNDS_SHUTDOWN_DELAY_MS", "0")
            .start()
            .await
            .unwrap_or_else(|error| panic!("{error:#}"));
        let server = Server {
            process,
            client: reqwest::Client::new(),
        };
        if ttl_ms > 0 {
            server.wait_until_listening().await;
        }
        server
    }

    async fn get(&self, path: &str, token: &str) -> StatusCode {
        self.client
            .get(format!("{}{path}", self.process.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
            .status()
    }

    async fn admin(&self, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.process.url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), StatusCode::CREATED, "POST {path}");
        response.json().await.unwrap()
    }

    /// A metric's value, 0 when the series is absent.
    async fn metric(&self, series: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.process.url))
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .unwrap();
        metric_value(&text, series)
    }

    async fn hits(&self) -> f64 {
        self.metric(r#"refunds_token_cache_lookups_total{outcome="hit"}"#)
            .await
    }

    async fn wait_until_listening(&self) {
        let started = Instant::now();
        while self.metric("refunds_token_cache_listening").await != 1.0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the token cache listener did not connect within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Uses `token` until this server answers it from its cache.
    async fn cache(&self, path: &str, token: &str) {
        let before = self.hits().await;
        for _ in 0..50 {
            assert_eq!(self.get(path, token).await, StatusCode::OK, "{path}");
            if self.hits().await > before {
                return;
            }
        }
        panic!("{path} was never answered from the cache");
    }

    /// Waits until `path` with `token` answers `expected`; panics if it still does not at
    /// `deadline`. Returns when it first did.
    async fn until(
        &self,
        path: &str,
        token: &str,
        expected: StatusCode,
        deadline: Instant,
    ) -> Instant {
        loop {
            let status = self.get(path, token).await;
            let now = Instant::now();
            if status == expected {
                return now;
            }
            assert!(
                now < deadline,
                "{path} still answers {status}, not {expected}, past the deadline"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A metric's value in Prometheus text, 0 when the series is absent.
fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().expect("a number"))
        .unwrap_or(0.0)
}

/// An organization made through the admin API, and an organization token for it.
async fn organization(server: &Server, name: &str, token_body: Value) -> (Uuid, Value) {
    let organization = server
        .admin("/admin/organizations", json!({ "name": name }))
        .await;
    let id: Uuid = organization["id"].as_str().unwrap().parse().unwrap();
    let token = server
        .admin(
            &format!("/admin/organizations/{id}/access-tokens"),
            token_body,
        )
        .await;
    (id, token)
}

/// A paid order in `organization_id`, made through the admin API.
async fn order(server: &Server, organization_id: Uuid) -> Uuid {
    let customer = server
        .admin(
            "/admin/customers",
            json!({"organization_id": organization_id, "email": format!("{}@example.com", Uuid::new_v4().simple())}),
        )
        .await;
    let order = server
        .admin(
            "/admin/orders",
            json!({"organization_id": organization_id, "customer_id": customer["id"],
                   "net_amount": 1000, "tax_amount": 0, "currency": "usd"}),
        )
        .await;
    order["id"].as_str().unwrap().parse().unwrap()
}

fn token_of(created: &Value) -> String {
    created["token"].as_str().unwrap().to_owned()
}

fn id_of(created: &Value) -> Uuid {
    created["id"].as_str().unwrap().parse().unwrap()
}

/// Revokes a token without any notification, as if the one sent had been lost: only the
/// cache's lifetime, or noticing that notifications may have been lost, can then stop it.
async fn revoke_silently(pool: &PgPool, token_id: Uuid) {
    let mut transaction = pool.begin().await.unwrap();
    // Triggers do not fire in this mode.
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *transaction)
        .await
        .unwrap();
    sqlx::query("UPDATE access_tokens SET revoked_at = now() WHERE id = $1")
        .bind(token_id)
        .execute(&mut *transaction)
        .await
        .unwrap();
    transaction.commit().await.unwrap();
}

const REFUNDS: &str = "/v1/refunds/";

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_revoked_token_stops_working_on_every_instance_within_a_second(pool: PgPool) {
    let (a, b) = tokio::join!(Server::start(&pool, 5000), Server::start(&pool, 5000));
    let (_, created) = organization(&a, "Acme", json!({"scopes": ["refunds:read"]})).await;
    let token = token_of(&created);
    // A token made a moment ago works at once on the other instance: misses are not kept.
    assert_eq!(b.get(REFUNDS, &token).await, StatusCode::OK);
    a.cache(REFUNDS, &token).await;
    b.cache(REFUNDS, &token).await;

    // No admin route revokes a token: the operator's UPDATE is what the trigger sees.
    sqlx::query("UPDATE access_tokens SET revoked_at = now() WHERE id = $1")
        .bind(id_of(&created))
        .execute(&pool)
        .await
        .unwrap();
    let deadline = Instant::now() + PROPAGATION;
    for server in [&a, &b] {
        server
            .until(REFUNDS, &token, StatusCode::UNAUTHORIZED, deadline)
            .await;
    }
    // Deleted outright: the same.
    let (_, other) = organization(&a, "Globex", json!({"scopes": ["refunds:read"]})).await;
    let other_token = token_of(&other);
    b.cache(REFUNDS, &other_token).await;
    sqlx::query("DELETE FROM access_tokens WHERE id = $1")
        .bind(id_of(&other))
        .execute(&pool)
        .await
        .unwrap();
    let deadline = Instant::now() + PROPAGATION;
    b.until(REFUNDS, &other_token, StatusCode::UNAUTHORIZED, deadline)
        .await;
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn membership_changes_reach_every_instance_within_a_second(pool: PgPool) {
    let (a, b) = tokio::join!(Server::start(&pool, 5000), Server::start(&pool, 5000));
    let mut orders = Vec::new();
    let mut organizations = Vec::new();
    for name in ["Acme", "Globex", "Initech"] {
        let (id, _) = organization(&a, name, json!({"scopes": ["refunds:read"]})).await;
        organizations.push(id);
        orders.push(format!("/v1/orders/{}", order(&a, id).await));
    }
    let user = a
        .admin("/admin/users", json!({"email": "ada@example.com"}))
        .await;
    let user_id = id_of(&user);
    for organization_id in &organizations[..2] {
        a.admin(
            &format!("/admin/users/{user_id}/memberships"),
            json!({ "organization_id": organization_id }),
        )
        .await;
    }
    let token = token_of(
        &a.admin(
            &format!("/admin/users/{user_id}/access-tokens"),
            json!({"scopes": ["orders:read"]}),
        )
        .await,
    );
    for server in [&a, &b] {
        server.cache(&orders[0], &token).await;
        server.cache(&orders[1], &token).await;
        assert_eq!(server.get(&orders[2], &token).await, StatusCode::NOT_FOUND);
    }

    // The admin API cannot remove a membership: SQL, which the trigger sees as well.
    sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND organization_id = $2")
        .bind(user_id)
        .bind(organizations[1])
        .execute(&pool)
        .await
        .unwrap();
    let deadline = Instant::now() + PROPAGATION;
    for server in [&a, &b] {
        server
            .until(&orders[1], &token, StatusCode::NOT_FOUND, deadline)
            .await;
        assert_eq!(server.get(&orders[0], &token).await, StatusCode::OK);
    }

    // A membership added through one instance shows on the other as quickly.
    a.admin(
        &format!("/admin/users/{user_id}/memberships"),
        json!({ "organization_id": organizations[2] }),
    )
    .await;
    let deadline = Instant::now() + PROPAGATION;
    b.until(&orders[2], &token, StatusCode::OK, deadline).await;
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_cached_token_stops_working_when_it_expires(pool: PgPool) {
    let (a, b) = tokio::join!(Server::start(&pool, 5000), Server::start(&pool, 5000));
    let (_, created) = organization(
        &a,
        "Acme",
        json!({"scopes": ["refunds:read"], "expires_in_seconds": 2}),
    )
    .await;
    let token = token_of(&created);
    let expires_at: DateTime<Utc> = created["expires_at"].as_str().unwrap().parse().unwrap();
    a.cache(REFUNDS, &token).await;
    b.cache(REFUNDS, &token).await;
    let left = (expires_at - Utc::now()).to_std().expect("not expired yet");
    let expires = Instant::now() + left;
    // Well before the cache's 5 s would run out.
    let deadline = expires + Duration::from_millis(300);
    for server in [&a, &b] {
        let refused = server
            .until(REFUNDS, &token, StatusCode::UNAUTHORIZED, deadline)
            .await;
        assert!(
            refused + Duration::from_millis(100) >= expires,
            "refused {:?} before it expired",
            expires - refused
        );
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_ttl_bounds_an_entry_and_zero_turns_the_cache_off(pool: PgPool) {
    let ttl = Duration::from_millis(1500);
    let (cached, uncached) = tokio::join!(
        Server::start(&pool, ttl.as_millis() as u64),
        Server::start(&pool, 0)
    );
    let (_, created) = organization(&cached, "Acme", json!({"scopes": ["refunds:read"]})).await;
    let token = token_of(&created);
    for _ in 0..3 {
        assert_eq!(uncached.get(REFUNDS, &token).await, StatusCode::OK);
    }
    cached.cache(REFUNDS, &token).await;
    let cached_at = Instant::now();

    revoke_silently(&pool, id_of(&created)).await;
    assert_eq!(
        uncached.get(REFUNDS, &token).await,
        StatusCode::UNAUTHORIZED,
        "TTL 0 looks every token up"
    );
    assert_eq!(uncached.hits().await, 0.0);
    assert_eq!(
        uncached
            .metric(r#"refunds_token_cache_lookups_total{outcome="miss"}"#)
            .await,
        0.0,
        "TTL 0 has no cache to miss"
    );
    assert_eq!(
        cached.get(REFUNDS, &token).await,
        StatusCode::OK,
        "the cache answered: it did not hear of the revocation"
    );
    cached
        .until(
            REFUNDS,
            &token,
            StatusCode::UNAUTHORIZED,
            cached_at + ttl + Duration::from_millis(300),
        )
        .await;
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_lost_listener_connection_empties_the_cache_and_reconnects(pool: PgPool) {
    let (a, b) = tokio::join!(Server::start(&pool, 5000), Server::start(&pool, 5000));
    let (_, created) = organization(&a, "Acme", json!({"scopes": ["refunds:read"]})).await;
    let token = token_of(&created);
    a.cache(REFUNDS, &token).await;
    b.cache(REFUNDS, &token).await;

    // A change whose notification is lost, then the listeners' connections: what a
    // PostgreSQL restart does to a change committed just before it.
    revoke_silently(&pool, id_of(&created)).await;
    for server in [&a, &b] {
        assert_eq!(
            server.get(REFUNDS, &token).await,
            StatusCode::OK,
            "still cached"
        );
    }
    let terminated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() \
           AND application_name = 'refunds-server-token-cache') AS t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(terminated, 2, "one listener per instance");
    let deadline = Instant::now() + PROPAGATION;
    for server in [&a, &b] {
        server
            .until(REFUNDS, &token, StatusCode::UNAUTHORIZED, deadline)
            .await;
    }

    // Both reconnect by themselves, emptied, and use their caches again.
    let (_, other) = organization(&a, "Globex", json!({"scopes": ["refunds:read"]})).await;
    for server in [&a, &b] {
        server.wait_until_listening().await;
        assert_eq!(server.get(REFUNDS, &token).await, StatusCode::UNAUTHORIZED);
        server.cache(REFUNDS, &token_of(&other)).await;
    }
}

/// A TCP proxy in front of PostgreSQL that can stall: it stops passing bytes on without
/// closing anything, as a network that drops every packet does.
struct StallingProxy {
    port: u16,
    stalled: Arc<AtomicBool>,
}

impl StallingProxy {
    async fn start(upstream: (String, u16)) -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = stalled.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect((upstream.0.as_str(), upstream.1)).await
                else {
                    continue;
                };
                let (from_client, to_client) = inbound.into_split();
                let (from_server, to_server) = outbound.into_split();
                tokio::spawn(pass_on(from_client, to_server, flag.clone()));
                tokio::spawn(pass_on(from_server, to_client, flag.clone()));
            }
        });
        StallingProxy { port, stalled }
    }

    fn stall(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }
}

async fn pass_on(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, stalled: Arc<AtomicBool>) {
    let mut buffer = vec![0; 8192];
    loop {
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

async fn app_metric(app: &TestApp, series: &str) -> f64 {
    metric_value(
        &app.request(Method::GET, "/metrics", None, None).await.text,
        series,
    )
}

/// Waits until the in-process app's listener gauge reads `value`.
async fn until_listening_is(app: &TestApp, value: f64, within: Duration) {
    let started = Instant::now();
    while app_metric(app, "refunds_token_cache_listening").await != value {
        assert!(
            started.elapsed() < within,
            "refunds_token_cache_listening is not {value} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn a_listener_connection_that_goes_silent_is_distrusted_within_a_second(pool: PgPool) {
    // Only the listener's connection goes through the proxy: requests still reach the
    // database, as when a firewall drops one idle-looking connection.
    let options = pool.connect_options();
    let proxy = StallingProxy::start((options.get_host().to_owned(), options.get_port())).await;
    let token_cache = Arc::new(TokenCache::new(
        Duration::from_secs(5),
        cache::DEFAULT_CAPACITY,
    ));
    tokio::spawn(cache::listen(
        token_cache.clone(),
        (*options).clone().host("127.0.0.1").port(proxy.port),
    ));
    let mut state = AppState::new(pool.clone());
    state.token_cache = token_cache;
    let app = spawn_app_with(state).await;
    until_listening_is(&app, 1.0, Duration::from_secs(10)).await;
    let org = app.organization("Acme").await;
    let hits = r#"refunds_token_cache_lookups_total{outcome="hit"}"#;
    for _ in 0..2 {
        assert_eq!(app.list(&org.read_token, "").await.status, StatusCode::OK);
    }
    assert!(
        app_metric(&app, hits).await >= 1.0,
        "answered from the cache"
    );

    proxy.stall(true);
    // Its notification is sent, and held up with everything else on that connection.
    sqlx::query("UPDATE access_tokens SET revoked_at = now() WHERE token_hash = $1")
        .bind(refunds_server::auth::hash_token(&org.read_token))
        .execute(&pool)
        .await
        .unwrap();
    let deadline = Instant::now() + PROPAGATION;
    loop {
        let status = app.list(&org.read_token, "").await.status;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} past the deadline"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The listener gives the silent connection up; it cannot connect again while stalled.
    until_listening_is(&app, 0.0, Duration::from_secs(5)).await;
    assert!(
        app_metric(
            &app,
            r#"refunds_token_cache_lookups_total{outcome="bypassed"}"#
        )
        .await
            >= 1.0
    );

    proxy.stall(false);
    until_listening_is(&app, 1.0, Duration::from_secs(10)).await;
    let before = app_metric(&app, hits).await;
    for _ in 0..2 {
        assert_eq!(app.list(&org.write_token, "").await.status, StatusCode::OK);
    }
    assert!(
        app_metric(&app, hits).await > before,
        "the cache is used again"
    );
}
