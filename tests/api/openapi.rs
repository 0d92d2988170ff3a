//! The OpenAPI document: committed as generated, and compatible with Polar's official
//! fragment (`openapi/polar-reference.json`, copied from shared/reference) for the refunds
//! operations and schemas.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

const POLAR_SCHEMAS: &[&str] = &[
    "Refund",
    "RefundCreate",
    "RefundDispute",
    "ListResource_Refund_",
    "Pagination",
    "RefundReason",
    "RefundStatus",
    "RefundSortProperty",
    "DisputeStatus",
    "MetadataOutputType",
    "RefundedAlready",
    "HTTPValidationError",
    "ValidationError",
    "Order",
    "OrderCustomer",
    "OrderProduct",
    "OrderSubscription",
    "OrderItemSchema",
    "Address",
    "OrderStatus",
    "OrderBillingReason",
    "OrderSortProperty",
    "ProductBillingType",
    "ListResource_Order_",
    "Payment",
    "CardPayment",
    "GenericPayment",
    "CardPaymentMetadata",
    "PaymentProcessor",
    "PaymentStatus",
    "PaymentTrigger",
    "PaymentSortProperty",
    "ListResource_Payment_",
    "MetadataQuery",
    "CustomerType",
    "SubscriptionStatus",
    "ProductVisibility",
    "TrialInterval",
    "RecurringInterval",
    "CustomerCancellationReason",
    "ResourceNotFound",
];

/// Differences we mean, each with its reason. A key is the path of a difference.
fn allowed_differences() -> BTreeMap<&'static str, &'static str> {
    const SDK_REQUIRES: &str = "polar-sdk 1.0.2 requires this key although Polar's document omits it; ours documents what it sends (null)";
    BTreeMap::from([
        (
            "paths./v1/refunds/.post.responses.403",
            "Polar declares only RefundedAlready for 403 but answers RefundsBlocked, RefundDisputedPayment and insufficient_scope with 403 too; ours documents all of them (RefundedAlready first)",
        ),
        (
            "paths./v1/refunds/.post.parameters",
            "the optional Idempotency-Key header is ours: Polar has no protection against a retried create",
        ),
        ("components.schemas.Order.properties.units", SDK_REQUIRES),
        (
            "components.schemas.Order.properties.discount",
            "this server holds no discounts: an order's discount is always null, and the document says so",
        ),
        ("components.schemas.Order.required", SDK_REQUIRES),
        (
            "components.schemas.OrderSubscription.properties.units",
            SDK_REQUIRES,
        ),
        (
            "components.schemas.OrderSubscription.required",
            SDK_REQUIRES,
        ),
        (
            "components.schemas.OrderItemSchema.properties.start_timestamp",
            SDK_REQUIRES,
        ),
        (
            "components.schemas.OrderItemSchema.properties.end_timestamp",
            SDK_REQUIRES,
        ),
        ("components.schemas.OrderItemSchema.required", SDK_REQUIRES),
    ])
}

/// The Polar operations we serve, with the statuses we document beyond Polar's: answers
/// Polar's server gives too, undeclared there.
const OPERATIONS: &[(&str, &str, &[&str])] = &[
    ("/v1/refunds/", "get", &["401", "403", "503"]),
    (
        "/v1/refunds/",
        "post",
        &["400", "401", "404", "409", "413", "503"],
    ),
    ("/v1/orders/", "get", &["401", "403", "503"]),
    ("/v1/orders/{id}", "get", &["401", "403", "503"]),
    ("/v1/payments/", "get", &["401", "403", "503"]),
    ("/v1/payments/{id}", "get", &["401", "403", "503"]),
];

fn root() -> String {
    env!("CARGO_MANIFEST_DIR").to_owned()
}

fn read_json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{}/{path}", root())).unwrap()).unwrap()
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated =
        serde_json::to_string_pretty(&refunds_server::app::openapi::document()).unwrap();
    let committed = std::fs::read_to_string(format!("{}/openapi/openapi.json", root())).unwrap();
    assert!(
        generated.trim() == committed.trim(),
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

/// Keeps what a client depends on (types, formats, enums, required fields, structure) in
/// one canonical form: `const` is a one-value `enum`, `type: [T, "null"]` and `oneOf` are
/// `anyOf`, and titles, descriptions and examples are dropped.
fn normalize(schema: &Value) -> Value {
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            "type" => match value {
                Value::Array(types) => {
                    let members: Vec<Value> = types
                        .iter()
                        .map(|t| {
                            let mut member = object.clone();
                            member.insert("type".into(), t.clone());
                            if t == "null" {
                                json!({"type": "null"})
                            } else {
                                normalize(&Value::Object(member))
                            }
                        })
                        .collect();
                    return sorted_any_of(members);
                }
                _ => {
                    out.insert("type".into(), value.clone());
                }
            },
            "const" => {
                out.insert("enum".into(), json!([value]));
            }
            "anyOf" | "oneOf" => {
                let members = value.as_array().unwrap().iter().map(normalize).collect();
                return sorted_any_of(members);
            }
            "properties" => {
                let properties: Map<String, Value> = value
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(name, property)| (name.clone(), normalize(property)))
                    .collect();
                out.insert(key.clone(), Value::Object(properties));
            }
            "required" => {
                let mut names: Vec<String> = value
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_owned())
                    .collect();
                names.sort();
                out.insert(key.clone(), json!(names));
            }
            "items" | "additionalProperties" | "propertyNames" => {
                out.insert(key.clone(), normalize(value));
            }
            "exclusiveMinimum" => {
                out.insert(key.clone(), json!(value.as_f64()));
            }
            "format" | "enum" | "$ref" | "default" | "minLength" | "maxLength"
            | "maxProperties" => {
                out.insert(key.clone(), value.clone());
            }
            _ => {} // title, description, examples, x-…
        }
    }
    Value::Object(out)
}

fn sorted_any_of(mut members: Vec<Value>) -> Value {
    members.sort_by_key(|member| member.to_string());
    json!({"anyOf": members})
}

/// Every difference between two normalized schemas, as `path: official ≠ ours`.
fn differences(path: &str, official: &Value, ours: &Value, found: &mut Vec<String>) {
    match (official, ours) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|key| !a.contains_key(*key))) {
                let here = format!("{path}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => differences(&here, x, y, found),
                    (x, y) => {
                        found.push(format!("{here}: official {} ≠ ours {}", show(x), show(y)))
                    }
                }
            }
        }
        (a, b) if a != b => found.push(format!("{path}: official {a} ≠ ours {b}")),
        _ => {}
    }
}

fn show(value: Option<&Value>) -> String {
    value.map_or("(absent)".into(), Value::to_string)
}

#[test]
fn the_polar_operations_are_compatible_with_polars_official_fragment() {
    let official = read_json("openapi/polar-reference.json");
    let ours = read_json("openapi/openapi.json");
    let mut found = Vec::new();

    for name in POLAR_SCHEMAS {
        let path = format!("components.schemas.{name}");
        differences(
            &path,
            &normalize(&official["components"]["schemas"][name]),
            &normalize(&ours["components"]["schemas"][name]),
            &mut found,
        );
    }

    for (route, method, extra) in OPERATIONS {
        let path = format!("paths.{route}.{method}");
        let (a, b) = (
            &official["paths"][route][method],
            &ours["paths"][route][method],
        );
        assert!(
            a.is_object(),
            "{path} is missing from the official fragment"
        );
        assert!(b.is_object(), "{path} is missing");
        differences(
            &format!("{path}.operationId"),
            &a["operationId"],
            &b["operationId"],
            &mut found,
        );
        differences(
            &format!("{path}.requestBody"),
            &normalize(&a["requestBody"]["content"]),
            &normalize(&b["requestBody"]["content"]),
            &mut found,
        );
        differences(
            &format!("{path}.requestBody.required"),
            &a["requestBody"]["required"],
            &b["requestBody"]["required"],
            &mut found,
        );

        let parameters = |operation: &Value| -> BTreeMap<String, Value> {
            operation["parameters"].as_array().map(|list| list.iter().map(|parameter| {
                (parameter["name"].as_str().unwrap().to_owned(),
                 json!({"in": parameter["in"], "required": parameter["required"], "style": parameter["style"], "schema": normalize(&parameter["schema"])}))
            }).collect()).unwrap_or_default()
        };
        let (pa, pb) = (parameters(a), parameters(b));
        differences(
            &format!("{path}.parameters"),
            &json!(pa),
            &json!(pb),
            &mut found,
        );

        let statuses = |operation: &Value| -> Vec<String> {
            operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        for status in statuses(a) {
            let here = format!("{path}.responses.{status}");
            differences(
                &here,
                &normalize(&a["responses"][&status]["content"]["application/json"]["schema"]),
                &normalize(&b["responses"][&status]["content"]["application/json"]["schema"]),
                &mut found,
            );
        }
        let mut added: Vec<String> = statuses(b)
            .into_iter()
            .filter(|status| !statuses(a).contains(status))
            .collect();
        added.sort();
        assert_eq!(
            added,
            extra.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{path}: statuses beyond Polar's"
        );
    }

    let allowed = allowed_differences();
    let unexpected: Vec<&String> = found
        .iter()
        .filter(|difference| !allowed.keys().any(|prefix| difference.starts_with(prefix)))
        .collect();
    assert!(
        unexpected.is_empty(),
        "differences from Polar's official fragment:\n{}",
        unexpected
            .iter()
            .map(|d| format!("  {d}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for prefix in allowed.keys() {
        assert!(
            found
                .iter()
                .any(|difference| difference.starts_with(prefix)),
            "allow-list entry {prefix} no longer matches a difference: remove it"
        );
    }
}

#[test]
fn the_normalization_treats_equivalent_forms_alike() {
    assert_eq!(
        normalize(&json!({"type": ["string", "null"], "title": "x"})),
        normalize(&json!({"anyOf": [{"type": "null"}, {"type": "string"}]}))
    );
    assert_eq!(
        normalize(&json!({"const": "A"})),
        normalize(&json!({"enum": ["A"]}))
    );
    let mut found = Vec::new();
    differences(
        "x",
        &normalize(&json!({"type": "integer"})),
        &normalize(&json!({"type": "string"})),
        &mut found,
    );
    assert_eq!(found.len(), 1);
}

/// The API reference page, rendered by headless Chromium (Debian's `chromium`, which
/// scripts/test.sh installs): it shows the refunds operations and every request it makes
/// stays on this machine.
#[sqlx::test(migrator = "refunds_server::app::MIGRATOR")]
async fn the_api_reference_page_renders_offline(pool: sqlx::PgPool) {
    let app = crate::helpers::spawn_app(pool).await;
    let spec = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(spec.status(), 200);
    let served: Value = spec.json().await.unwrap();
    assert_eq!(served, refunds_server::app::openapi::document());

    let profile = std::env::temp_dir().join(format!("chromium-{}", uuid::Uuid::new_v4().simple()));
    let net_log = profile.join("net-log.json");
    let url = format!("{}/docs/", app.address);
    let args = [
        "--headless".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--no-first-run".into(),
        "--disable-quic".into(),
        "--disable-default-apps".into(),
        "--disable-domain-reliability".into(),
        "--no-pings".into(),
        "--disable-client-side-phishing-detection".into(),
        "--disable-features=AutofillServerCommunication,Translate,OptimizationHints,MediaRouter"
            .into(),
        format!("--user-data-dir={}", profile.display()),
        format!("--log-net-log={}", net_log.display()),
        "--virtual-time-budget=15000".into(),
        "--dump-dom".into(),
        url,
    ];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("chromium")
            .args(args)
            .output()
            .expect("chromium is installed (scripts/test.sh installs it)")
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "refunds:list",
        "refunds:create",
        "/v1/refunds/",
        "List Refunds",
        "Create Refund",
    ] {
        assert!(
            dom.contains(expected),
            "the page shows {expected:?}; chromium said: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // Chromium's own services may still call home; what matters is what the page asks for:
    // the page itself and every request it initiates.
    let log: Value = serde_json::from_str(
        &std::fs::read_to_string(&net_log).expect("chromium wrote its network log"),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    let page = app.address.clone();
    let mut requested: Vec<String> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| {
            let initiator = event["params"]["initiator"].as_str().unwrap_or_default();
            let url = event["params"]["url"].as_str().unwrap_or_default();
            initiator.starts_with(&page) || url.starts_with(&page)
        })
        .filter_map(|event| event["params"]["url"].as_str().map(str::to_owned))
        .collect();
    requested.sort();
    requested.dedup();
    assert!(
        requested.iter().any(|url| url.ends_with("/openapi.json")),
        "the page loaded the document: {requested:?}"
    );
    assert!(
        requested.iter().any(|url| url.ends_with(".js")),
        "the page loaded its scripts: {requested:?}"
    );
    let outside: Vec<&String> = requested
        .iter()
        .filter(|url| !url.starts_with(&page))
        .collect();
    assert!(
        outside.is_empty(),
        "the page requested outside this server: {outside:?}"
    );
}
