//! The binary itself: the set-up subcommands of the README walk-through, and `serve`.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use refunds_server_process::{ServerCommand, ServerProcess, Stream};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::spawn_app;

const BINARY: &str = env!("CARGO_BIN_EXE_refunds-server");

/// The URL of the test's own database, built from the server URL the tests run against.
fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let name = pool
        .connect_options()
        .get_database()
        .expect("database name")
        .to_owned();
    with_database(&base, &name)
}

fn with_database(url: &str, name: &str) -> String {
    let (server, _) = url.rsplit_once('/').expect("URL with a database");
    format!("{server}/{name}")
}

fn run_cli(database_url: &str, args: &[&str]) -> Value {
    let output = Command::new(BINARY)
        .args(args)
        .env("DATABASE_URL", database_url)
        .output()
        .expect("run the binary");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_readme_walk_through_works_from_the_command_line(pool: PgPool) {
    let url = database_url(&pool);
    let organization = run_cli(&url, &["create-organization", "--name", "Acme Inc"]);
    assert_eq!(organization["slug"], "acme-inc");
    let org_id = id(&organization);
    let token = run_cli(
        &url,
        &[
            "create-token",
            "--organization-id",
            &org_id,
            "--scopes",
            "refunds:read,refunds:write",
        ],
    );
    let token = token["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("polar_oat_"));
    let customer = run_cli(
        &url,
        &[
            "create-customer",
            "--organization-id",
            &org_id,
            "--email",
            "jane@example.com",
            "--external-id",
            "cus_1",
        ],
    );
    let order = run_cli(
        &url,
        &[
            "create-order",
            "--organization-id",
            &org_id,
            "--customer-id",
            &id(&customer),
            "--net-amount",
            "9990",
            "--tax-amount",
            "2498",
        ],
    );

    let app = spawn_app(pool).await;
    let refund = app
        .refund(&token, Uuid::parse_str(&id(&order)).unwrap(), 1110)
        .await;
    assert_eq!(refund["tax_amount"], 278);
    let listed = app.list_ok(&token, "external_customer_id=cus_1").await;
    assert_eq!(listed["pagination"]["total_count"], 1);

    let user = run_cli(&url, &["create-user", "--email", "ops@example.com"]);
    run_cli(
        &url,
        &[
            "add-member",
            "--user-id",
            &id(&user),
            "--organization-id",
            &org_id,
        ],
    );
    let personal = run_cli(
        &url,
        &[
            "create-token",
            "--user-id",
            &id(&user),
            "--scopes",
            "refunds:read",
        ],
    );
    let personal = personal["token"].as_str().unwrap();
    assert!(personal.starts_with("polar_pat_"));
    assert_eq!(
        app.list_ok(personal, "").await["items"][0]["id"],
        refund["id"]
    );

    // An order with every detail the CLI takes, read back as Polar shows it.
    let reader = run_cli(
        &url,
        &[
            "create-token",
            "--organization-id",
            &org_id,
            "--scopes",
            "orders:read,payments:read",
        ],
    );
    let reader = reader["token"].as_str().unwrap();
    let subscription_id = Uuid::new_v4().to_string();
    let detailed = run_cli(
        &url,
        &[
            "create-order",
            "--organization-id",
            &org_id,
            "--customer-id",
            &id(&customer),
            "--net-amount",
            "3000",
            "--tax-amount",
            "300",
            "--subscription-id",
            &subscription_id,
            "--billing-reason",
            "subscription_cycle",
            "--billing-name",
            "Jane Ltd",
            "--billing-country",
            "NL",
            "--billing-city",
            "Amsterdam",
            "--product-name",
            "Gold",
            "--product-recurring-interval",
            "week",
            "--item",
            "Gold=2500:250",
            "--item",
            "Seat=500:50",
            "--payment-method",
            "ideal",
            "--metadata",
            "plan=pro",
            "--metadata",
            "seats=3",
        ],
    );
    let order = app
        .request(
            reqwest::Method::GET,
            &format!("/v1/orders/{}", id(&detailed)),
            Some(reader),
            None,
        )
        .await
        .json();
    assert_eq!(
        (
            &order["billing_reason"],
            &order["billing_name"],
            &order["billing_address"]["city"],
            &order["product"]["name"],
            &order["subscription"]["recurring_interval"],
            &order["metadata"],
            &order["items"][1]["label"],
            &order["items"][1]["tax_amount"],
        ),
        (
            &json!("subscription_cycle"),
            &json!("Jane Ltd"),
            &json!("Amsterdam"),
            &json!("Gold"),
            &json!("week"),
            &json!({"plan": "pro", "seats": "3"}),
            &json!("Seat"),
            &json!(50),
        )
    );
    let payments = app
        .request(
            reqwest::Method::GET,
            &format!("/v1/payments/?order_id={}", id(&detailed)),
            Some(reader),
            None,
        )
        .await
        .json();
    assert_eq!(
        (
            &payments["items"][0]["method"],
            &payments["items"][0]["amount"]
        ),
        (&json!("ideal"), &json!(3300))
    );
}

#[test]
fn bad_settings_fail_at_start_up_with_one_line_naming_them() {
    let output = Command::new(BINARY)
        .args(["serve"])
        .env("REFUNDS_BIND", "not-an-address")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--bind") && stderr.contains("not-an-address"),
        "{stderr}"
    );

    let output = Command::new(BINARY)
        .args(["migrate"])
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

/// A server process started from the binary, with everything it prints collected.
struct ServerWithOutput {
    process: ServerProcess,
    address: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl ServerWithOutput {
    async fn start(args: &[&str], envs: &[(&str, &str)]) -> ServerWithOutput {
        let (stdout, stderr) = (Arc::default(), Arc::<Mutex<String>>::default());
        let mut command = ServerCommand::new(BINARY, args);
        for (key, value) in envs {
            command = command.env(key, value);
        }
        let (stdout_sink, stderr_sink) = (Arc::clone(&stdout), Arc::clone(&stderr));
        let process = command
            .on_line(move |stream, line| {
                let sink = match stream {
                    Stream::Stdout => &stdout_sink,
                    Stream::Stderr => &stderr_sink,
                };
                let mut text = sink.lock().unwrap();
                text.push_str(line);
                text.push('\n');
            })
            .start()
            .await
            .unwrap_or_else(|error| panic!("{error:#}"));
        ServerWithOutput {
            address: process.url.clone(),
            process,
            stdout,
            stderr,
        }
    }

    /// SIGTERM, then the exit status and everything printed.
    async fn stop(mut self) -> (std::process::ExitStatus, String, String) {
        let status = self.process.stop(Duration::from_secs(60)).await.unwrap();
        let stdout = self.stdout.lock().unwrap().clone();
        let stderr = self.stderr.lock().unwrap().clone();
        (status, stdout, stderr)
    }
}

/// A database name that does not exist yet, and its URL; dropped by `drop_database`.
fn fresh_database() -> (String, String) {
    let name = format!("refunds_cli_{}", Uuid::new_v4().simple());
    let url = with_database(&std::env::var("DATABASE_URL").expect("DATABASE_URL"), &name);
    (name, url)
}

async fn drop_database(name: &str) {
    let admin = sqlx::PgPool::connect(&std::env::var("DATABASE_URL").unwrap())
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .unwrap();
}

#[tokio::test]
async fn serve_creates_its_database_and_stops_cleanly_on_sigterm() {
    let (name, url) = fresh_database();
    let server = ServerWithOutput::start(&["serve"], &[("DATABASE_URL", &url)]).await;
    let response = reqwest::get(format!("{}/v1/refunds/", server.address))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "Unauthorized", "detail": "Unauthorized"})
    );
    let (status, _, _) = server.stop().await;
    assert!(status.success(), "exit status {status:?}");
    drop_database(&name).await;
}

/// The value printed after `label` in the demo banner.
fn banner_value(banner: &str, label: &str) -> String {
    let line = banner
        .lines()
        .find(|line| line.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("{label} in {banner}"));
    line.trim_start()[label.len()..].trim().to_owned()
}

#[tokio::test]
async fn demo_mode_seeds_an_empty_database_once_and_prints_how_to_use_it() {
    let (name, url) = fresh_database();
    let server = ServerWithOutput::start(&["demo"], &[("DATABASE_URL", &url)]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let banner = server.stdout.lock().unwrap().clone();
    assert!(banner.contains("demo data created"), "{banner}");
    let write_token = banner_value(&banner, "read-write token");
    let read_token = banner_value(&banner, "read-only token");
    let order_ids: Vec<&str> = banner
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| Uuid::parse_str(word).is_ok())
        .collect();
    assert_eq!(order_ids.len(), 12, "{banner}");
    assert!(banner.contains(&format!("curl -s -X POST {}/v1/refunds/", server.address)));

    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/v1/refunds/", server.address))
        .bearer_auth(&write_token)
        .json(&json!({"order_id": order_ids[0], "reason": "customer_request", "amount": 1110}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.json::<Value>().await.unwrap()["tax_amount"], 278);
    let refused = client
        .post(format!("{}/v1/refunds/", server.address))
        .bearer_auth(&read_token)
        .json(&json!({"order_id": order_ids[0], "reason": "other", "amount": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(banner.contains(&format!(
        "curl -s {}/v1/orders/{}",
        server.address, order_ids[0]
    )));
    let order: Value = client
        .get(format!("{}/v1/orders/{}", server.address, order_ids[0]))
        .bearer_auth(&read_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (order["status"].as_str(), order["refunded_amount"].as_i64()),
        (Some("partially_refunded"), Some(1110))
    );
    let (status, _, _) = server.stop().await;
    assert!(status.success());

    // again on the same database: no new orders, fresh tokens that work
    let server = ServerWithOutput::start(&["serve", "--demo"], &[("DATABASE_URL", &url)]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let banner = server.stdout.lock().unwrap().clone();
    assert!(banner.contains("existing demo data"), "{banner}");
    let new_token = banner_value(&banner, "read-only token");
    assert_ne!(new_token, read_token);
    let listed = client
        .get(format!("{}/v1/refunds/", server.address))
        .bearer_auth(&new_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.json::<Value>().await.unwrap()["pagination"]["total_count"],
        1
    );
    server.stop().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(orders, 12);
    pool.close().await;
    drop_database(&name).await;
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn demo_mode_leaves_a_database_with_other_data_alone(pool: PgPool) {
    refunds_server::organizations::service::create_organization(&pool, "Real Company", None)
        .await
        .unwrap();
    let server =
        ServerWithOutput::start(&["demo"], &[("DATABASE_URL", &database_url(&pool))]).await;
    let (status, stdout, stderr) = server.stop().await;
    assert!(status.success());
    assert!(!stdout.contains("token"), "{stdout}");
    assert!(stderr.contains("no demo data created"), "{stderr}");
    let organizations: i64 = sqlx::query_scalar("SELECT count(*) FROM organizations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(organizations, 1);
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn logs_are_json_with_request_ids_and_never_show_tokens_or_bodies(pool: PgPool) {
    let admin_token = format!("admin-{}", Uuid::new_v4().simple());
    let server = ServerWithOutput::start(
        &["serve"],
        &[
            ("DATABASE_URL", &database_url(&pool)),
            ("REFUNDS_LOG_FORMAT", "json"),
            ("REFUNDS_ADMIN_TOKEN", &admin_token),
            ("RUST_LOG", "debug"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let admin = |path: &str, body: Value| {
        client
            .post(format!("{}{path}", server.address))
            .bearer_auth(&admin_token)
            .json(&body)
            .send()
    };
    let org: Value = admin("/admin/organizations", json!({"name": "Acme"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org_id = org["id"].as_str().unwrap();
    let token: Value = admin(
        &format!("/admin/organizations/{org_id}/access-tokens"),
        json!({"scopes": ["refunds:write"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let customer: Value = admin(
        "/admin/customers",
        json!({"organization_id": org_id, "email": "secret-email-marker@example.com"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let order: Value = admin("/admin/orders", json!({"organization_id": org_id, "customer_id": customer["id"], "net_amount": 1000, "tax_amount": 0, "currency": "usd"})).await.unwrap().json().await.unwrap();
    let refund = client.post(format!("{}/v1/refunds/", server.address)).bearer_auth(&token)
        .json(&json!({"order_id": order["id"], "reason": "other", "amount": 5, "comment": "secret-comment-marker"})).send().await.unwrap();
    assert_eq!(refund.status(), StatusCode::CREATED);
    let bad = client
        .get(format!("{}/v1/refunds/", server.address))
        .bearer_auth("polar_oat_secretbadtokenmarker")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let request_id = bad.headers()["x-request-id"].to_str().unwrap().to_owned();

    let (status, _, logs) = server.stop().await;
    assert!(status.success());
    for secret in [
        admin_token.as_str(),
        token.as_str(),
        &token["polar_oat_".len()..],
        "secretbadtokenmarker",
        "secret-comment-marker",
        "secret-email-marker",
    ] {
        assert!(!logs.contains(secret), "{secret:?} appears in the logs");
    }
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert!(lines.len() > 5);
    assert!(
        lines
            .iter()
            .any(|line| line["span"]["request_id"] == request_id.as_str()
                && line["fields"]["status"] == 401),
        "the request's log line carries its id"
    );
}

fn help(args: &[&str]) -> String {
    let output = Command::new(BINARY)
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success(), "{args:?} --help");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_subcommand_has_help() {
    let top = help(&[]);
    let subcommands = [
        "serve",
        "demo",
        "migrate",
        "seed",
        "create-organization",
        "create-user",
        "add-member",
        "create-token",
        "create-customer",
        "create-order",
    ];
    for subcommand in subcommands {
        assert!(
            top.contains(subcommand),
            "{subcommand} in the top-level help"
        );
        let text = help(&[subcommand]);
        assert!(
            text.contains("Usage: refunds-server") && text.contains("--database-url"),
            "{subcommand}: {text}"
        );
    }
    assert!(help(&["serve"]).contains("[env: REFUNDS_ADMIN_TOKEN"));
}

/// There is no Docker engine here, so the compose file and the Dockerfile are checked
/// against the binary: the commands they run exist and every variable they set is read.
#[test]
fn docker_compose_and_dockerfile_run_what_the_binary_offers() {
    let root = env!("CARGO_MANIFEST_DIR");
    let compose = std::fs::read_to_string(format!("{root}/docker-compose.yml")).unwrap();
    let dockerfile = std::fs::read_to_string(format!("{root}/Dockerfile")).unwrap();
    let server = &compose[compose.find("\n  server:").expect("a server service")..];
    let command = server
        .lines()
        .find_map(|line| line.trim().strip_prefix("command: [\""))
        .expect("a command");
    let command = command.trim_end_matches("\"]");
    let command_help = help(&[command]);
    let environment = &server[server.find("environment:").unwrap()..];
    let variables: Vec<&str> = environment
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with("      "))
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.trim().split_once(':').map(|(key, _)| key))
        .collect();
    assert!(variables.contains(&"DATABASE_URL") && variables.contains(&"REFUNDS_ADMIN_TOKEN"));
    for variable in variables.iter().filter(|v| **v != "RUST_LOG") {
        assert!(
            command_help.contains(&format!("[env: {variable}")),
            "`{command}` does not read {variable}"
        );
    }
    assert!(compose.contains("condition: service_healthy") && compose.contains("pg_isready"));
    assert!(
        dockerfile.contains("CMD [\"serve\"]")
            && dockerfile.contains("ENV REFUNDS_BIND=0.0.0.0:8000")
    );
    assert!(dockerfile.contains("SQLX_OFFLINE=true") && dockerfile.contains("USER refunds"));
    // cargo loads every workspace member, so the build context must hold them all
    let manifest = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap();
    let members = manifest
        .lines()
        .find(|line| line.starts_with("members"))
        .expect("a workspace");
    for member in members
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|member| *member != ".")
    {
        let top = member.split('/').next().unwrap();
        assert!(
            dockerfile.contains(&format!("COPY {top} {top}")),
            "the Dockerfile copies {member}"
        );
    }
    assert!(help(&["serve"]).contains("[env: REFUNDS_BIND"));
}

/// SIGTERM starts a lame-duck phase: readiness fails at once so that a load balancer moves
/// away, but the listener stays open and every request is served (each answer closing its
/// connection) until the shutdown delay is over; then the process drains and exits 0.
#[tokio::test]
async fn sigterm_keeps_serving_through_the_shutdown_delay_with_readiness_failing() {
    let (name, url) = fresh_database();
    let server = ServerWithOutput::start(
        &["serve"],
        &[
            ("DATABASE_URL", &url),
            ("REFUNDS_SHUTDOWN_DELAY_MS", "1500"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{}{path}", server.address)).send();
    let before = get("/readyz").await.unwrap();
    assert_eq!(before.status(), StatusCode::OK);
    assert_eq!(before.headers().get("connection"), None);

    let signalled = Instant::now();
    server.process.terminate();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready
            .headers()
            .get("connection")
            .map(|v| v.to_str().unwrap()),
        Some("close")
    );
    // A new connection, well after the signal, is still served.
    let fresh = reqwest::Client::new();
    for _ in 0..3 {
        let listed = fresh
            .get(format!("{}/v1/refunds/", server.address))
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), StatusCode::UNAUTHORIZED);
        assert!(signalled.elapsed() < Duration::from_millis(1_400));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let address = server.address.clone();
    let (status, _, stderr) = server.stop().await;
    assert!(status.success(), "exit status {status:?}: {stderr}");
    assert!(
        signalled.elapsed() >= Duration::from_millis(1_500),
        "exited {:?} after SIGTERM, before the delay",
        signalled.elapsed()
    );
    assert!(stderr.contains("SIGTERM: /readyz answers 503"), "{stderr}");
    assert!(reqwest::get(format!("{address}/healthz")).await.is_err());
    drop_database(&name).await;
}

#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_server_deletes_expired_idempotency_keys_by_itself(pool: PgPool) {
    let expired_and_answered = "INSERT INTO idempotency_keys
        (scope, key, method, route, fingerprint, response_status, response_body, expires_at)
        VALUES ('organization:x', $1, 'POST', '/v1/refunds/', '\\x00', 201, '{}',
                now() - interval '1 second')";
    for key in ["old-1", "old-2"] {
        sqlx::query(expired_and_answered)
            .bind(key)
            .execute(&pool)
            .await
            .unwrap();
    }
    let server = ServerWithOutput::start(
        &["serve"],
        &[
            ("DATABASE_URL", &database_url(&pool)),
            ("REFUNDS_IDEMPOTENCY_KEY_TTL", "1"),
        ],
    )
    .await;
    let mut left = 2;
    for _ in 0..50 {
        left = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM idempotency_keys")
            .fetch_one(&pool)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "expired keys are still there");
    server.stop().await;
}
