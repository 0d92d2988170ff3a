//! The OpenAPI 3.1 document, generated from the handlers' annotations and the wire types,
//! served at `/openapi.json` with an offline API reference page at `/docs/`.
//!
//! Where a body or query is parsed by hand (to answer in pydantic's shapes), a documentation
//! type stands in for it here and `openapi/openapi.json` is compared with Polar's official
//! fragment by a test, so the two cannot drift apart unnoticed.

use serde::Serialize;
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

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
        (name = "admin", description = "Setting up data for sandboxes, test suites and ingestion. \
                                         Off unless `REFUNDS_ADMIN_TOKEN` is set; takes that token."),
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
        crate::refunds::model::RefundDispute,
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
        components
            .add_security_scheme("admin_token", bearer("The value of `REFUNDS_ADMIN_TOKEN`."));
    }
}

/// Every documented route; `http::router` serves exactly these.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::refunds::api::routes())
        .merge(crate::admin::api::routes())
        .merge(crate::http::ops::routes())
}

/// The OpenAPI document as served (and committed as `openapi/openapi.json`).
pub fn document() -> serde_json::Value {
    let mut document =
        serde_json::to_value(routes().into_openapi()).expect("the document serializes");
    strip_integer_formats(&mut document);
    document
}

/// Polar's integers carry no `int32`/`int64` format; utoipa adds one for Rust integers.
fn strip_integer_formats(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(object) => {
            if object.get("type").and_then(|kind| kind.as_str()) == Some("integer") {
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

/// `{"error": name, "detail": message}`, the body of Polar's exceptions.
#[derive(Serialize, ToSchema)]
pub struct PolarError {
    pub error: String,
    pub detail: String,
}

/// Any error body outside Polar's routes: Polar's `{error, detail}`, the RFC 6750
/// `{error, error_description}`, or Starlette's `{detail}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: Option<String>,
    pub detail: Option<String>,
    pub error_description: Option<String>,
}

/// The RFC 6750 body of token and scope errors.
#[derive(Serialize, ToSchema)]
pub struct OAuth2Error {
    pub error: String,
    pub error_description: String,
}

/// `{"error": "<name>", "detail": message}`: Polar's body for one named exception.
fn named_error(name: &str) -> RefOr<Schema> {
    typed(Type::Object)
        .property("error", typed(Type::String).enum_values(Some([name])))
        .property("detail", typed(Type::String))
        .required("error")
        .required("detail")
        .into()
}

/// Any one of the named schemas.
fn any_of(names: &[&str]) -> RefOr<Schema> {
    names
        .iter()
        .fold(AnyOfBuilder::new(), |any_of, name| {
            any_of.item(utoipa::openapi::Ref::from_schema_name(*name))
        })
        .into()
}

macro_rules! schema {
    ($(#[$meta:meta])* $name:ident = $schema:expr) => {
        $(#[$meta])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $name {}
    };
}

schema!(RefundedAlready = named_error("RefundedAlready"));
schema!(Unauthorized = named_error("Unauthorized"));
schema!(ResourceNotFound = named_error("ResourceNotFound"));
schema!(
    /// Starlette's body for framework answers: `{"detail": message}`.
    DetailOnly = typed(Type::Object)
        .property("detail", typed(Type::String))
        .required("detail")
        .into()
);
schema!(
    /// A refused body: subscription benefits cannot be revoked (Polar's body), or the body
    /// is not UTF-8 (FastAPI's `{"detail"}`).
    CreateBadRequest = any_of(&["PolarError", "DetailOnly"])
);
schema!(
    /// A missing credential (Polar's body) or a bad token (RFC 6750 body).
    AuthFailure = any_of(&["Unauthorized", "OAuth2Error"])
);
schema!(
    /// A 403 on create. Polar declares only `RefundedAlready`, but answers the other
    /// refusals (`RefundsBlocked`, `RefundDisputedPayment`, `insufficient_scope`) with 403 too.
    CreateForbidden = any_of(&["RefundedAlready", "PolarError", "OAuth2Error"])
);

/// FastAPI's 422 body. (The server adds a top-level `error` key, as Polar does.)
#[derive(Serialize, ToSchema)]
#[schema(as = HTTPValidationError)]
pub struct HttpValidationError {
    #[schema(required = false)]
    pub detail: Vec<crate::http::validation::ValidationIssue>,
}

fn typed(kind: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(kind)
}

fn uuid4() -> ObjectBuilder {
    typed(Type::String).format(Some(SchemaFormat::Custom("uuid4".into())))
}

/// Polar's multiple-value query filter: one value, a repeated key, or nothing.
fn filter_of(item: ObjectBuilder) -> Schema {
    let item = item.build();
    AnyOfBuilder::new()
        .item(item.clone())
        .item(ArrayBuilder::new().items(RefOr::T(Schema::Object(item))))
        .item(typed(Type::Null))
        .build()
        .into()
}

pub fn uuid4_filter() -> Schema {
    filter_of(uuid4())
}

pub fn string_filter() -> Schema {
    filter_of(typed(Type::String))
}

pub fn optional_bool() -> Schema {
    AnyOfBuilder::new()
        .item(typed(Type::Boolean))
        .item(typed(Type::Null))
        .build()
        .into()
}

pub fn sorting() -> Schema {
    AnyOfBuilder::new()
        .item(
            ArrayBuilder::new().items(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "RefundSortProperty",
            ))),
        )
        .item(typed(Type::Null))
        .default(Some(serde_json::json!(["-created_at"])))
        .build()
        .into()
}

pub fn page_number(default: i64) -> Schema {
    typed(Type::Integer)
        .exclusive_minimum(Some(0))
        .default(Some(default.into()))
        .build()
        .into()
}

pub fn page() -> Schema {
    page_number(1)
}

pub fn limit() -> Schema {
    page_number(10)
}

/// The query of `GET /v1/refunds/`, as documented (parsed by `refunds::input`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListRefundsParams {
    /// Filter by refund ID.
    #[param(schema_with = uuid4_filter)]
    id: Option<Vec<String>>,
    /// Filter by organization ID.
    #[param(schema_with = uuid4_filter)]
    organization_id: Option<Vec<String>>,
    /// Filter by order ID.
    #[param(schema_with = uuid4_filter)]
    order_id: Option<Vec<String>>,
    /// Filter by subscription ID.
    #[param(schema_with = uuid4_filter)]
    subscription_id: Option<Vec<String>>,
    /// Filter by customer ID.
    #[param(schema_with = uuid4_filter)]
    customer_id: Option<Vec<String>>,
    /// Filter by customer external ID.
    #[param(schema_with = string_filter)]
    external_customer_id: Option<Vec<String>>,
    /// Filter by `succeeded`.
    #[param(schema_with = optional_bool)]
    succeeded: Option<bool>,
    /// Page number, defaults to 1.
    #[param(schema_with = page)]
    page: Option<i64>,
    /// Size of a page, defaults to 10. Maximum is 100.
    #[param(schema_with = limit)]
    limit: Option<i64>,
    /// Sorting criterion. Several criteria can be used simultaneously and will be applied in
    /// order. Add a minus sign `-` before the criteria name to sort by descending order.
    #[param(schema_with = sorting)]
    sorting: Option<Vec<String>>,
}

/// Polar's `MetadataOutputType`: string, integer, number or boolean values.
pub struct MetadataOutputType;

fn metadata_value(string: ObjectBuilder) -> AnyOfBuilder {
    AnyOfBuilder::new()
        .item(string)
        .item(typed(Type::Integer))
        .item(typed(Type::Number))
        .item(typed(Type::Boolean))
}

impl PartialSchema for MetadataOutputType {
    fn schema() -> RefOr<Schema> {
        typed(Type::Object)
            .additional_properties(Some(Schema::AnyOf(
                metadata_value(typed(Type::String)).build(),
            )))
            .into()
    }
}

impl ToSchema for MetadataOutputType {}

/// The `metadata` of a create body: at most 50 keys of 1 to 40 characters.
pub fn metadata_input() -> Schema {
    typed(Type::Object)
        .additional_properties(Some(Schema::AnyOf(
            metadata_value(
                typed(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(500)),
            )
            .build(),
        )))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
                .min_length(Some(1))
                .max_length(Some(40)),
        ))
        .max_properties(Some(50))
        .description(Some(
            "Key-value object allowing you to store additional information.\n\n\
             The key must be a string with a maximum length of **40 characters**.\n\
             The value must be either:\n\n\
             * A string with a maximum length of **500 characters**\n\
             * An integer\n* A floating-point number\n* A boolean\n\n\
             You can store up to **50 key-value pairs**.",
        ))
        .into()
}

pub fn uuid4_schema() -> Schema {
    uuid4().build().into()
}

pub fn nullable_uuid4() -> Schema {
    AnyOfBuilder::new()
        .item(uuid4())
        .item(typed(Type::Null))
        .build()
        .into()
}

pub fn nullable_dispute() -> Schema {
    AnyOfBuilder::new()
        .item(utoipa::openapi::Ref::from_schema_name("RefundDispute"))
        .item(typed(Type::Null))
        .build()
        .into()
}

pub fn date_time() -> Schema {
    typed(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build()
        .into()
}

pub fn nullable_date_time() -> Schema {
    AnyOfBuilder::new()
        .item(typed(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))))
        .item(typed(Type::Null))
        .build()
        .into()
}
