//! Polar's shapes as OpenAPI schemas: error bodies, uuid4 and date-time formats, list
//! filters and metadata. Where a body or query is parsed by hand (to answer in pydantic's
//! shapes), these stand in for it in the generated document.

use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::{PartialSchema, ToSchema};

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
pub fn named_error(name: &str) -> RefOr<Schema> {
    typed(Type::Object)
        .property("error", typed(Type::String).enum_values(Some([name])))
        .property("detail", typed(Type::String))
        .required("error")
        .required("detail")
        .into()
}

/// Any one of the named schemas.
pub fn any_of(names: &[&str]) -> RefOr<Schema> {
    names
        .iter()
        .fold(AnyOfBuilder::new(), |any_of, name| {
            any_of.item(utoipa::openapi::Ref::from_schema_name(*name))
        })
        .into()
}

/// A documentation-only schema type: `schema!(Name = builder)`.
macro_rules! schema {
    ($(#[$meta:meta])* $name:ident = $schema:expr) => {
        $(#[$meta])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use schema;

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
    /// A missing credential (Polar's body) or a bad token (RFC 6750 body).
    AuthFailure = any_of(&["Unauthorized", "OAuth2Error"])
);
/// FastAPI's 422 body. (The server adds a top-level `error` key, as Polar does.)
#[derive(Serialize, ToSchema)]
#[schema(as = HTTPValidationError)]
pub struct HttpValidationError {
    #[schema(required = false)]
    pub detail: Vec<super::validation::ValidationIssue>,
}

/// Polar's `Pagination` of a list answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pagination {
    pub total_count: i64,
    pub max_page: i64,
}

impl Pagination {
    /// The pagination of `total_count` items in pages of `limit`.
    pub fn of(total_count: i64, limit: i64) -> Self {
        Self {
            total_count,
            max_page: (total_count + limit - 1) / limit,
        }
    }
}

pub fn typed(kind: Type) -> ObjectBuilder {
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

/// A multiple-value filter of a named enum schema.
pub fn enum_filter(name: &str) -> Schema {
    AnyOfBuilder::new()
        .item(utoipa::openapi::Ref::from_schema_name(name))
        .item(ArrayBuilder::new().items(utoipa::openapi::Ref::from_schema_name(name)))
        .item(typed(Type::Null))
        .build()
        .into()
}

schema!(
    /// `metadata[key]=value` filters (Polar's `MetadataQuery`, in the `deepObject` style).
    MetadataQuery = {
        let value = AnyOfBuilder::new()
            .item(typed(Type::String))
            .item(typed(Type::Integer))
            .item(typed(Type::Boolean))
            .item(ArrayBuilder::new().items(typed(Type::String)))
            .item(ArrayBuilder::new().items(typed(Type::Integer)))
            .item(ArrayBuilder::new().items(typed(Type::Boolean)));
        AnyOfBuilder::new()
            .item(typed(Type::Object).additional_properties(Some(Schema::AnyOf(value.build()))))
            .item(typed(Type::Null))
            .into()
    }
);

pub fn metadata_query() -> Schema {
    Schema::AnyOf(
        AnyOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name("MetadataQuery"))
            .build(),
    )
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

/// `sorting`: a list of the named sort property schema, defaulting to `[-created_at]`.
pub fn sorting_of(property_schema: &str) -> Schema {
    AnyOfBuilder::new()
        .item(
            ArrayBuilder::new().items(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                property_schema,
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
