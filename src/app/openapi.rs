//! The OpenAPI 3.1 document, generated from the handlers' annotations and the wire types,
//! served at `/openapi.json` with an offline API reference page at `/docs/`.
//!
//! Where a body or query is parsed by hand (to answer in pydantic's shapes), a documentation
//! type stands in for it here and `openapi/openapi.json` is compared with Polar's official
//! fragment by a test, so the two cannot drift apart unnoticed.

use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::polar::schema::{
    DetailOnly, ErrorBody, HttpValidationError, OAuth2Error, PolarError, RefundedAlready,
    ResourceNotFound, Unauthorized,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Refunds API",
        description = "A refunds server wire-compatible with Polar's refunds API (`/v1/refunds/`), \
                       with an admin API for sandboxes and operational routes.",
        license(name = "MIT"),
    ),
    tags(
        (name = "refunds", description = "Polar-compatible refunds."),
        (name = "orders", description = "Polar-compatible orders, as refunds see them."),
        (name = "payments", description = "Polar-compatible payments of orders."),
        (name = "integrations", description = "Events from payment processors (Stripe's webhooks)."),
        (name = "webhooks", description = "Polar-compatible webhook endpoints and deliveries."),
        (name = "admin", description = "Setting up data for sandboxes, test suites and ingestion. \
                                         Off unless `REFUNDS_ADMIN_TOKEN` is set; takes that token."),
        (name = "medusa", description = "Medusa v1's Admin API route to refund a payment, over the same \
                                          refunds as Polar's API. Takes an access token with `refunds:write`, \
                                          not the admin token, and answers in Medusa's shapes."),
        (name = "operations", description = "Liveness, readiness and metrics."),
    ),
    components(schemas(
        PolarError,
        OAuth2Error,
        Unauthorized,
        RefundedAlready,
        ResourceNotFound,
        DetailOnly,
        ErrorBody,
        HttpValidationError,
        crate::refunds::model::RefundSort,
        crate::disputes::model::RefundDispute,
        crate::polar::schema::MetadataQuery,
        crate::orders::model::OrderSort,
        crate::orders::model::ProductBillingType,
        crate::orders::model::CustomerType,
        crate::orders::model::SubscriptionStatus,
        crate::orders::model::ProductVisibility,
        crate::orders::model::TrialInterval,
        crate::orders::model::CustomerCancellationReason,
        crate::orders::model::Address,
        crate::orders::model::OrderCustomer,
        crate::orders::model::OrderProduct,
        crate::orders::model::OrderSubscription,
        crate::domain::RecurringInterval,
        crate::domain::PaymentTrigger,
        crate::orders::payments::model::PaymentSort,
    )),
    modifiers(&SecuritySchemes),
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme("pat", bearer("A Personal Access Token (`polar_pat_…`)."));
        components.add_security_scheme(
            "oat",
            bearer("An Organization Access Token (`polar_oat_…`)."),
        );
        components.add_security_scheme(
            "medusa_api_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::medusa::api::ACCESS_TOKEN_HEADER,
                "An organization or personal access token, as Medusa's client sends an API key.",
            ))),
        );
        components
            .add_security_scheme("admin_token", bearer("The value of `REFUNDS_ADMIN_TOKEN`."));
    }
}

/// Every documented route; the application serves exactly these.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::refunds::api::routes())
        .merge(crate::orders::api::routes())
        .merge(crate::orders::payments::api::routes())
        .merge(crate::webhooks::api::routes())
        .merge(crate::admin::api::routes())
        .merge(crate::medusa::api::routes())
        .merge(crate::integrations::stripe::api::routes())
        .merge(super::ops::routes())
}

/// The OpenAPI document as served (and committed as `openapi/openapi.json`).
pub fn document() -> serde_json::Value {
    let mut document =
        serde_json::to_value(routes().into_openapi()).expect("the document serializes");
    strip_integer_formats(&mut document);
    require_path_parameters(&mut document);
    document
}

/// OpenAPI requires every path parameter to be `required`; utoipa leaves those described by a
/// custom schema optional.
fn require_path_parameters(document: &mut serde_json::Value) {
    let Some(paths) = document
        .get_mut("paths")
        .and_then(|paths| paths.as_object_mut())
    else {
        return;
    };
    for operation in paths.values_mut().filter_map(|path| path.as_object_mut()) {
        for parameters in operation
            .values_mut()
            .filter_map(|operation| operation.get_mut("parameters"))
            .filter_map(|parameters| parameters.as_array_mut())
        {
            for parameter in parameters.iter_mut().filter(|p| p["in"] == "path") {
                parameter["required"] = serde_json::Value::Bool(true);
            }
        }
    }
}

/// Polar's integers carry no `int32`/`int64` format; utoipa adds one for Rust integers.
fn strip_integer_formats(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(object) => {
            let integer = match object.get("type") {
                Some(serde_json::Value::String(kind)) => kind == "integer",
                // A nullable integer: `["integer", "null"]`.
                Some(serde_json::Value::Array(kinds)) => kinds.iter().any(|kind| kind == "integer"),
                _ => false,
            };
            if integer {
                object.remove("format");
            }
            object.values_mut().for_each(strip_integer_formats);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_integer_formats),
        _ => {}
    }
}

/// `GET /openapi.json` and the API reference page at `/docs/`, whose assets this server
/// serves itself (no CDN, so it works offline).
pub fn reference_routes() -> axum::Router<AppState> {
    let config = utoipa_swagger_ui::Config::from("/openapi.json")
        .validator_url("none")
        .display_operation_id(true);
    axum::Router::from(
        utoipa_swagger_ui::SwaggerUi::new("/docs")
            .external_url_unchecked("/openapi.json", document())
            .config(config),
    )
}
