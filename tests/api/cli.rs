//! The binary itself: the set-up subcommands of the README walk-through, and `serve`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

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

#[sqlx::test(migrator = "refunds_server::startup::MIGRATOR")]
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

#[tokio::test]
async fn serve_creates_its_database_and_stops_cleanly_on_sigterm() {
    let name = format!("refunds_serve_{}", Uuid::new_v4().simple());
    let url = with_database(&std::env::var("DATABASE_URL").expect("DATABASE_URL"), &name);
    let mut child = Command::new(BINARY)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("127.0.0.1:") {
                let address: String = line[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                let _ = address_tx.send(address);
            }
        }
    });
    let address = address_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server says where it listens");

    let response = reqwest::get(format!("http://{address}/v1/refunds/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "Unauthorized", "detail": "Unauthorized"})
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");

    let admin = sqlx::PgPool::connect(&std::env::var("DATABASE_URL").unwrap())
        .await
        .unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&admin)
            .await
            .unwrap();
    assert!(exists, "serve created its database");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .unwrap();
}
