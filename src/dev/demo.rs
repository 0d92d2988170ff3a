//! Demo data for a local sandbox: an organization with a read-write and a read-only token,
//! a few customers and a dozen paid orders, printed with ready-to-paste curl commands.

use std::fmt::Write;
use std::net::SocketAddr;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::service::{TokenOwner, create_token};
use crate::customers::service as customers;
use crate::domain::Result;
use crate::orders::service::{OrderDetails, PaidOrderInput, create_paid_order};
use crate::organizations::service as organizations;

pub const DEMO_SLUG: &str = "demo";

/// What the demo shows: fresh tokens and the demo organization's orders.
pub struct Demo {
    pub organization_id: Uuid,
    pub write_token: String,
    pub read_token: String,
    pub orders: Vec<DemoOrder>,
    /// Whether this run created the demo data (false: it was there already).
    pub seeded: bool,
}

pub struct DemoOrder {
    pub id: Uuid,
    pub net_amount: i64,
    pub tax_amount: i64,
    pub currency: String,
    pub subscription: bool,
}

/// (net, tax, currency, subscription) of the demo orders.
const ORDERS: &[(i64, i64, &str, bool)] = &[
    (9990, 2498, "usd", false),
    (1000, 250, "usd", false),
    (4900, 0, "usd", false),
    (1500, 0, "usd", true),
    (2900, 580, "eur", true),
    (19900, 3980, "eur", false),
    (500, 0, "usd", false),
    (12000, 960, "usd", true),
    (7500, 1500, "gbp", false),
    (2500, 0, "usd", true),
    (99900, 19980, "usd", false),
    (3333, 667, "eur", false),
];

/// Seeds the demo on an empty database. On a database that already holds the demo it only
/// issues a new pair of tokens (tokens are stored hashed and cannot be shown again). On a
/// database with other data it does nothing and answers `None`.
pub async fn prepare(pool: &PgPool) -> Result<Option<Demo>> {
    let existing: Option<Uuid> =
        sqlx::query_scalar!("SELECT id FROM organizations WHERE slug = $1", DEMO_SLUG)
            .fetch_optional(pool)
            .await?;
    let has_data: bool =
        sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM organizations) AS "exists!""#)
            .fetch_one(pool)
            .await?;
    let (organization_id, seeded) = match existing {
        Some(id) => (id, false),
        None if has_data => return Ok(None),
        None => (seed(pool).await?, true),
    };
    let token = |scopes: &[&str]| {
        create_token(
            pool,
            TokenOwner::Organization(organization_id),
            scopes.iter().map(|s| s.to_string()).collect(),
            None,
        )
    };
    let write_token = token(&[
        "refunds:read",
        "refunds:write",
        "orders:read",
        "payments:read",
        "webhooks:read",
        "webhooks:write",
    ])
    .await?
    .token;
    let read_token = token(&["refunds:read", "orders:read", "payments:read"])
        .await?
        .token;
    let orders = sqlx::query_as!(
        DemoOrder,
        r#"
        SELECT id, net_amount, tax_amount, currency, subscription_id IS NOT NULL AS "subscription!"
        FROM orders WHERE organization_id = $1 ORDER BY created_at, id
        "#,
        organization_id
    )
    .fetch_all(pool)
    .await?;
    Ok(Some(Demo {
        organization_id,
        write_token,
        read_token,
        orders,
        seeded,
    }))
}

async fn seed(pool: &PgPool) -> Result<Uuid> {
    let organization =
        organizations::create_organization(pool, "Demo Store", Some(DEMO_SLUG)).await?;
    let mut customers = Vec::new();
    for (email, name, external_id) in [
        ("ada@example.com", "Ada Lovelace", Some("cus_ada")),
        ("grace@example.com", "Grace Hopper", Some("cus_grace")),
        ("alan@example.com", "Alan Turing", None),
    ] {
        let customer =
            customers::create_customer(pool, organization.id, email, Some(name), external_id)
                .await?;
        customers.push(customer.id);
    }
    for (index, &(net_amount, tax_amount, currency, subscription)) in ORDERS.iter().enumerate() {
        create_paid_order(
            pool,
            PaidOrderInput {
                organization_id: organization.id,
                customer_id: customers[index % customers.len()],
                subscription_id: subscription.then(Uuid::new_v4),
                currency: currency.to_owned(),
                net_amount,
                tax_amount,
                applied_balance_amount: 0,
                metadata: json!({"demo": true}),
                details: OrderDetails::default(),
            },
        )
        .await?;
    }
    Ok(organization.id)
}

/// The text printed at start-up: tokens, orders and commands to paste.
pub fn banner(demo: &Demo, address: SocketAddr) -> String {
    let base = format!("http://{address}");
    let mut text = String::new();
    let _ = writeln!(
        text,
        "\nRefunds sandbox ({}) at {base}",
        if demo.seeded {
            "demo data created"
        } else {
            "existing demo data"
        }
    );
    let _ = writeln!(text, "  organization      {}", demo.organization_id);
    let _ = writeln!(text, "  read-write token  {}", demo.write_token);
    let _ = writeln!(text, "  read-only token   {}", demo.read_token);
    let _ = writeln!(text, "\n  orders (net + tax, minor units):");
    for order in &demo.orders {
        let kind = if order.subscription {
            "subscription"
        } else {
            "one-time"
        };
        let _ = writeln!(
            text,
            "    {}  {:>6} + {:>5} {}  {kind}",
            order.id, order.net_amount, order.tax_amount, order.currency
        );
    }
    if let Some(order) = demo.orders.first() {
        let _ = writeln!(text, "\n  Refund part of the first order:");
        let _ = writeln!(
            text,
            "    curl -s -X POST {base}/v1/refunds/ -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' -d '{{\"order_id\": \"{}\", \"reason\": \"customer_request\", \"amount\": 1110}}'",
            demo.write_token, order.id
        );
    }
    if let Some(order) = demo.orders.first() {
        let _ = writeln!(text, "\n  Read it back as Polar's Order, and its payment:");
        let _ = writeln!(
            text,
            "    curl -s {base}/v1/orders/{} -H 'Authorization: Bearer {}'",
            order.id, demo.read_token
        );
        let _ = writeln!(
            text,
            "    curl -s '{base}/v1/payments/?order_id={}' -H 'Authorization: Bearer {}'",
            order.id, demo.read_token
        );
    }
    let _ = writeln!(text, "\n  List refunds:");
    let _ = writeln!(
        text,
        "    curl -s '{base}/v1/refunds/?sorting=-created_at&limit=10' -H 'Authorization: Bearer {}'\n",
        demo.read_token
    );
    text
}
