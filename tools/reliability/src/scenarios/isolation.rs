//! [isolation]: two organizations, organization tokens, personal tokens of users who are
//! members of one, both or none of them. For every (token, other organization's object)
//! pair, creating on the other's order and listing with each filter naming the other's
//! objects answers a denial or an empty list, never another organization's data.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use uuid::Uuid;

use crate::Ctx;
use crate::client::{self, Admin, OrderSpec, Outcome};
use crate::db;
use crate::report::{Counts, Report};

/// What one organization holds.
struct Org {
    label: &'static str,
    id: Uuid,
    orders: Vec<Uuid>,
    customers: Vec<Uuid>,
    subscriptions: Vec<Uuid>,
    /// External customer ids only this organization uses.
    external_ids: Vec<String>,
    refunds: Vec<Uuid>,
}

/// A token and the organizations it may see.
struct Principal {
    label: String,
    token: String,
    sees: Vec<Uuid>,
    writes: bool,
}

pub async fn run(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let server = ctx.start_server("isolation", &ctx.options()).await?;
    let base = server.url.clone();
    let admin = Admin::new(&base, &ctx.admin_token);
    let http = client::http_client(Duration::from_secs(30));
    let shared_external = format!("shared-{}", Uuid::new_v4().simple());

    let mut orgs = Vec::new();
    let mut writers = Vec::new();
    for label in ["A", "B"] {
        let id = admin
            .organization(&format!("iso{}", label.to_lowercase()))
            .await?;
        let token = admin
            .organization_token(id, &["refunds:read", "refunds:write"])
            .await?;
        let own_external = format!("{label}-only-{}", Uuid::new_v4().simple());
        let customers = vec![
            admin.customer(id, Some(&shared_external)).await?,
            admin.customer(id, Some(&own_external)).await?,
        ];
        let subscription = Uuid::new_v4();
        let mut orders = Vec::new();
        for (i, customer) in customers.iter().enumerate() {
            let spec = OrderSpec {
                net: 10_000,
                tax: 2_000,
                balance: 0,
                subscription: (i == 1).then_some(subscription),
            };
            orders.push(admin.order(id, *customer, spec).await?);
        }
        let mut refunds = Vec::new();
        for order in &orders {
            let body = client::refund_body(*order, 1_000, "other", &Uuid::new_v4().to_string());
            let (outcome, _) =
                client::send(client::refund_request(&http, &base, &token, &body)).await;
            let created = outcome.json().context("refund of the set-up")?;
            refunds.push(
                created["id"]
                    .as_str()
                    .and_then(|id| id.parse().ok())
                    .with_context(|| format!("set-up refund: {}", outcome.label()))?,
            );
        }
        writers.push(token);
        orgs.push(Org {
            label,
            id,
            orders,
            customers,
            subscriptions: vec![subscription],
            external_ids: vec![own_external],
            refunds,
        });
    }
    let (a, b) = (&orgs[0], &orgs[1]);
    let read_a = admin.organization_token(a.id, &["refunds:read"]).await?;
    let orders_a = admin.organization_token(a.id, &["orders:read"]).await?;
    let member_of_a = admin.user().await?;
    admin.membership(member_of_a, a.id).await?;
    let pat_a = admin
        .personal_token(member_of_a, &["refunds:read", "refunds:write"])
        .await?;
    let member_of_both = admin.user().await?;
    admin.membership(member_of_both, a.id).await?;
    admin.membership(member_of_both, b.id).await?;
    let pat_both = admin
        .personal_token(member_of_both, &["refunds:read", "refunds:write"])
        .await?;
    let member_of_none = admin.user().await?;
    let pat_none = admin
        .personal_token(member_of_none, &["refunds:read", "refunds:write"])
        .await?;

    let principals = vec![
        Principal {
            label: "org token A (read-write)".into(),
            token: writers[0].clone(),
            sees: vec![a.id],
            writes: true,
        },
        Principal {
            label: "org token A (read-only)".into(),
            token: read_a,
            sees: vec![a.id],
            writes: false,
        },
        Principal {
            label: "org token A (orders:read only)".into(),
            token: orders_a,
            sees: vec![],
            writes: false,
        },
        Principal {
            label: "org token B (read-write)".into(),
            token: writers[1].clone(),
            sees: vec![b.id],
            writes: true,
        },
        Principal {
            label: "personal token, member of A".into(),
            token: pat_a,
            sees: vec![a.id],
            writes: true,
        },
        Principal {
            label: "personal token, member of none".into(),
            token: pat_none,
            sees: vec![],
            writes: true,
        },
    ];

    let refunds_before: Vec<i64> = {
        let mut counts = Vec::new();
        for org in &orgs {
            counts.push(db::refund_count(&ctx.pool, org.id).await?);
        }
        counts
    };
    let mut matrix = 0usize;
    let mut outcomes = Counts::default();
    for principal in &principals {
        for other in orgs.iter().filter(|org| !principal.sees.contains(&org.id)) {
            let own = orgs.iter().find(|org| principal.sees.contains(&org.id));
            // Create on the other's orders.
            for order in &other.orders {
                let body =
                    client::refund_body(*order, 100, "other", &Uuid::new_v4().simple().to_string());
                let (outcome, _) = client::send(client::refund_request(
                    &http,
                    &base,
                    &principal.token,
                    &body,
                ))
                .await;
                matrix += 1;
                outcomes.add(outcome.label());
                report.check(
                    matches!(outcome.status(), Some(401 | 403 | 404 | 422)),
                    format!(
                        "{}: creating a refund on {}'s order {order} answered {}",
                        principal.label,
                        other.label,
                        outcome.label()
                    ),
                );
            }
            // The admin API does not take API tokens.
            for order in &other.orders {
                let (outcome, _) = client::send(
                    http.get(format!("{base}/admin/orders/{order}"))
                        .bearer_auth(&principal.token),
                )
                .await;
                matrix += 1;
                outcomes.add(outcome.label());
                report.check(
                    matches!(outcome.status(), Some(401 | 403 | 404)),
                    format!(
                        "{}: GET /admin/orders/ of {}'s order answered {}",
                        principal.label,
                        other.label,
                        outcome.label()
                    ),
                );
            }
            // List with every filter naming the other's objects.
            let mut queries: Vec<(String, Vec<(&str, String)>)> = Vec::new();
            let mut add = |what: String, params: Vec<(&'static str, String)>| {
                queries.push((what, params));
            };
            add(
                format!("organization_id={}", other.label),
                vec![("organization_id", other.id.to_string())],
            );
            for id in &other.orders {
                add(
                    format!("order_id of {}", other.label),
                    vec![("order_id", id.to_string())],
                );
            }
            for id in &other.refunds {
                add(
                    format!("id of {}'s refund", other.label),
                    vec![("id", id.to_string())],
                );
            }
            for id in &other.customers {
                add(
                    format!("customer_id of {}", other.label),
                    vec![("customer_id", id.to_string())],
                );
            }
            for id in &other.subscriptions {
                add(
                    format!("subscription_id of {}", other.label),
                    vec![("subscription_id", id.to_string())],
                );
            }
            for id in &other.external_ids {
                add(
                    format!("external_customer_id of {}", other.label),
                    vec![("external_customer_id", id.clone())],
                );
            }
            // Filters mixing the caller's own objects with the other's.
            add(
                "external_customer_id used by both".into(),
                vec![("external_customer_id", shared_external.clone())],
            );
            add("no filter".into(), vec![]);
            if let Some(own) = own {
                add(
                    "organization_id of both".to_owned(),
                    vec![
                        ("organization_id", own.id.to_string()),
                        ("organization_id", other.id.to_string()),
                    ],
                );
                add(
                    "ids of both".to_owned(),
                    vec![
                        ("id", own.refunds[0].to_string()),
                        ("id", other.refunds[0].to_string()),
                    ],
                );
                add(
                    "order_ids of both".to_owned(),
                    vec![
                        ("order_id", own.orders[0].to_string()),
                        ("order_id", other.orders[0].to_string()),
                    ],
                );
                add(
                    format!("organization_id of {} with its own order", other.label),
                    vec![
                        ("organization_id", other.id.to_string()),
                        ("order_id", other.orders[0].to_string()),
                    ],
                );
            }
            for (what, mut params) in queries {
                params.push(("limit", "100".into()));
                let (outcome, _) = client::send(
                    http.get(format!("{base}/v1/refunds/"))
                        .bearer_auth(&principal.token)
                        .query(&params),
                )
                .await;
                matrix += 1;
                outcomes.add(outcome.label());
                let leak = leaked(&outcome, &principal.sees, other);
                report.check(
                    leak.is_none(),
                    format!(
                        "{}: list with {what} -> {}",
                        principal.label,
                        leak.unwrap_or_default()
                    ),
                );
            }
        }
        // A token without refunds:write cannot create even on its own organization.
        if let (false, Some(own)) = (
            principal.writes,
            orgs.iter().find(|org| principal.sees.contains(&org.id)),
        ) {
            let body = client::refund_body(own.orders[0], 100, "other", "read-only");
            let (outcome, _) = client::send(client::refund_request(
                &http,
                &base,
                &principal.token,
                &body,
            ))
            .await;
            matrix += 1;
            outcomes.add(outcome.label());
            report.check(
                outcome.status() == Some(403),
                format!(
                    "{}: creating on its own order answered {}",
                    principal.label,
                    outcome.label()
                ),
            );
        }
    }
    for (org, before) in orgs.iter().zip(&refunds_before) {
        let after = db::refund_count(&ctx.pool, org.id).await?;
        report.check(
            after == *before,
            format!(
                "organization {} went from {before} to {after} refunds during the probes",
                org.label
            ),
        );
    }

    // Positive controls: the probes can see data where it is allowed.
    let mut controls = 0;
    for (token, org, sees) in [
        (&writers[1], b, vec![b.id]),
        (&pat_both, b, vec![a.id, b.id]),
        (&pat_both, a, vec![a.id, b.id]),
    ] {
        for id in &org.refunds {
            let (outcome, _) = client::send(
                http.get(format!("{base}/v1/refunds/"))
                    .bearer_auth(token)
                    .query(&[("id", id.to_string())]),
            )
            .await;
            controls += 1;
            let items = outcome
                .json()
                .and_then(|v| v["items"].as_array().cloned())
                .unwrap_or_default();
            report.check(
                items.len() == 1 && items[0]["id"] == Value::String(id.to_string()),
                format!(
                    "control: a token that sees {sees:?} does not list refund {id} of {}",
                    org.label
                ),
            );
        }
    }
    let (outcome, _) = client::send(
        http.get(format!("{base}/v1/refunds/"))
            .bearer_auth(&pat_both)
            .query(&[("external_customer_id", shared_external.as_str())]),
    )
    .await;
    controls += 1;
    let total = outcome
        .json()
        .and_then(|v| v["pagination"]["total_count"].as_i64())
        .unwrap_or(-1);
    report.check(
        total == 2,
        format!(
            "control: a member of both sees {total} refunds of the shared external id, expected 2"
        ),
    );

    report.figure(format!(
        "{} principals × other organization's objects: {matrix} probes ({}), {controls} positive controls",
        principals.len(),
        outcomes.summary()
    ));
    Ok(())
}

/// Why an answer leaks another organization's data, if it does.
fn leaked(outcome: &Outcome, sees: &[Uuid], other: &Org) -> Option<String> {
    match outcome {
        Outcome::Transport(error) => Some(format!("no answer: {error}")),
        Outcome::Answer(401 | 403 | 404 | 422, _) => None,
        Outcome::Answer(200, body) => {
            let Ok(list) = serde_json::from_str::<Value>(body) else {
                return Some(format!("200 that is not JSON: {body}"));
            };
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let allowed: HashSet<String> = sees.iter().map(Uuid::to_string).collect();
            let foreign: HashSet<String> = other.refunds.iter().map(Uuid::to_string).collect();
            for item in &items {
                let org = item["organization_id"].as_str().unwrap_or_default();
                let id = item["id"].as_str().unwrap_or_default();
                if !allowed.contains(org) || foreign.contains(id) {
                    return Some(format!("LEAK: refund {id} of organization {org}"));
                }
            }
            let total = list["pagination"]["total_count"].as_i64().unwrap_or(-1);
            if total < 0 || total as usize > items.len() && items.len() < 100 {
                return Some(format!(
                    "total_count {total} with {} visible items (counts the other's refunds?)",
                    items.len()
                ));
            }
            None
        }
        Outcome::Answer(status, body) => Some(format!("unexpected {status}: {body}")),
    }
}
