//! The web edge every API surface shares: the layers around the routes, path
//! normalization, Polar's version header, and the framework-level answers (Starlette's 404
//! and 405, panics, timeouts).

pub mod extract;

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::polar::error::{
    BeforeCachingPolicy, MAX_BODY_BYTES, detail_only, internal_error, json_response,
    refused_before_caching_policy,
};

pub const POLAR_VERSION_HEADER: &str = "polar-version";
const REQUEST_ID_HEADER: &str = "x-request-id";
pub const DEFAULT_POLAR_VERSION: &str = "2026-04";
pub const SUPPORTED_POLAR_VERSIONS: &[&str] = &["2026-04", "2026-10", "2027-01"];

/// Wraps a router of resolved routes (state applied) in the layers every request passes:
/// request ids and tracing, panic catching, metrics, the body limit, Polar's versions and
/// the request timeout, with Starlette's answers for unknown paths and methods.
/// `normalize_path` must wrap the result, because path rewriting has to happen before routing.
pub fn with_edge_layers(routes: Router, request_timeout: Duration) -> Router {
    let routed = routes
        .fallback(|| async { detail_only(StatusCode::NOT_FOUND, "Not Found") })
        .method_not_allowed_fallback(|| async {
            detail_only(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        })
        .layer(middleware::from_fn(move |request, next| {
            enforce_timeout(request_timeout, request, next)
        }))
        .layer(middleware::from_fn(polar_version))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(record_request))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_unusable_request_id))
        .layer(middleware::from_fn(private_answers));
    // The router writes `Allow` after its routes' layers have run, so the layer that edits
    // it wraps the router as a whole.
    Router::new()
        .fallback_service(routed)
        .layer(middleware::from_fn(allow_first_method))
        .layer(middleware::from_fn(cross_origin))
}

/// The request headers a browser may send cross-origin: the CORS-safelisted ones and the two
/// the API reads.
const CORS_ALLOWED_HEADERS: &str =
    "Accept, Accept-Language, Authorization, Content-Language, Content-Type, Polar-Version";

/// Polar lets browsers of any origin call its API without credentials (tokens travel in the
/// Authorization header, never in cookies), and answers preflights itself.
async fn cross_origin(request: Request, next: Next) -> Response {
    if !request.headers().contains_key(header::ORIGIN) {
        return next.run(request).await;
    }
    let preflight = request.method() == axum::http::Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if !preflight {
        let mut response = next.run(request).await;
        insert_static(
            response.headers_mut(),
            &[
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                (header::ACCESS_CONTROL_EXPOSE_HEADERS, "Polar-Version"),
            ],
        );
        return response;
    }
    let allowed = CORS_ALLOWED_HEADERS.to_ascii_lowercase();
    let allowed: Vec<&str> = allowed.split(", ").collect();
    let requested = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let refused = requested
        .split(',')
        .map(str::trim)
        .any(|name| !name.is_empty() && !allowed.contains(&name));
    let (status, body) = if refused {
        (StatusCode::BAD_REQUEST, "Disallowed CORS headers")
    } else {
        (StatusCode::OK, "OK")
    };
    // Polar's version middleware runs before its CORS answer, so a preflight names a version.
    let version = resolved_version(request.headers()).unwrap_or(DEFAULT_POLAR_VERSION);
    let mut response = (status, body).into_response();
    insert_static(
        response.headers_mut(),
        &[
            (
                header::HeaderName::from_static(POLAR_VERSION_HEADER),
                version,
            ),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT",
            ),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, CORS_ALLOWED_HEADERS),
            (header::ACCESS_CONTROL_MAX_AGE, "600"),
        ],
    );
    response
}

fn insert_static(
    headers: &mut axum::http::HeaderMap,
    values: &[(header::HeaderName, &'static str)],
) {
    for (name, value) in values {
        headers.insert(name.clone(), HeaderValue::from_static(value));
    }
}

/// Counts requests and their latency by route template and status.
async fn record_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("refunds_http_requests_total", &labels).increment(1);
    metrics::histogram!("refunds_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Answers 503 in Polar's shape when a request takes longer than the configured timeout.
async fn enforce_timeout(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(?timeout, "request timed out");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "RequestTimeout", "detail": "The request took too long to complete"}),
            )
        }
    }
}

/// A caller's request id is echoed and logged, so only a short, plain one is kept; any other
/// is replaced by a fresh one.
async fn drop_unusable_request_id(mut request: Request) -> Request {
    let usable = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        (1..=128).contains(&bytes.len())
            && bytes
                .iter()
                .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(byte))
    };
    if request
        .headers()
        .get(REQUEST_ID_HEADER)
        .is_some_and(|value| !usable(value))
    {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    request
}

/// Refunds and orders are private financial data: like Polar, every API answer forbids
/// caching unless it chose its own policy (the OAuth errors say `no-store`). The API
/// reference's static assets may be cached.
async fn private_answers(request: Request, next: Next) -> Response {
    let cacheable = request.uri().path().starts_with("/docs");
    let mut response = next.run(request).await;
    let refused_early = response.extensions().get::<BeforeCachingPolicy>().is_some();
    if !cacheable && !refused_early && !response.headers().contains_key(header::CACHE_CONTROL) {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    response
}

/// On Polar's paths, Starlette answers a wrong method with the methods of the first route
/// whose path matched, which for Polar's collections is the list route alone; axum lists
/// every method of the path, as the routes of our own (admin, operations) keep doing.
async fn allow_first_method(request: Request, next: Next) -> Response {
    let polar_path = request.uri().path().starts_with("/v1/");
    // FastAPI's routes take no HEAD: a HEAD to an API path Polar serves answers 405.
    let head_to_api = polar_path && request.method() == axum::http::Method::HEAD;
    let mut response = next.run(request).await;
    if head_to_api && response.status() != StatusCode::NOT_FOUND {
        let mut refused = detail_only(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        let headers = refused.headers_mut();
        for name in [REQUEST_ID_HEADER, POLAR_VERSION_HEADER] {
            if let Some(value) = response.headers().get(name) {
                headers.insert(name, value.clone());
            }
        }
        headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        return refused;
    }
    if polar_path
        && response.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = response.headers().get(header::ALLOW)
    {
        let first = allow
            .to_str()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .find(|method| !method.is_empty() && *method != "HEAD")
            .and_then(|method| HeaderValue::from_str(method).ok());
        match first {
            Some(method) => response.headers_mut().insert(header::ALLOW, method),
            None => response.headers_mut().remove(header::ALLOW),
        };
    }
    response
}

/// Every log line of a request carries its id. Only the method and path are recorded:
/// headers (tokens) and bodies never reach the logs.
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    internal_error()
}

/// Accepts the API versions Polar's clients send and echoes the resolved one. Like Polar,
/// an unsupported version answers 404 for every path, and an empty header counts as none.
async fn polar_version(request: Request, next: Next) -> Response {
    let Some(version) = resolved_version(request.headers()) else {
        return refused_before_caching_policy(detail_only(StatusCode::NOT_FOUND, "Not Found"));
    };
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(POLAR_VERSION_HEADER, HeaderValue::from_static(version));
    response
}

/// The version a request asks for: the default when it names none, `None` when it names one
/// Polar does not know.
fn resolved_version(headers: &axum::http::HeaderMap) -> Option<&'static str> {
    let requested = headers
        .get(POLAR_VERSION_HEADER)
        .map(|value| value.as_bytes().trim_ascii())
        .filter(|value| !value.is_empty());
    match requested {
        None => Some(DEFAULT_POLAR_VERSION),
        Some(value) => SUPPORTED_POLAR_VERSIONS
            .iter()
            .find(|supported| value == supported.as_bytes())
            .copied(),
    }
}

/// Collapses repeated slashes (an SDK joining a base URL that ends in `/`) and strips
/// Polar's `/api` prefix, so that routing sees canonical paths.
pub fn normalize_path(mut request: Request) -> Request {
    let path = request.uri().path();
    let collapsed = collapse_slashes(path);
    let canonical = match collapsed.strip_prefix("/api/v1/") {
        Some(rest) => format!("/v1/{rest}"),
        None => collapsed,
    };
    if canonical != path {
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{canonical}?{query}"),
            None => canonical,
        };
        let mut parts = request.uri().clone().into_parts();
        if let Ok(rewritten) = path_and_query.parse() {
            parts.path_and_query = Some(rewritten);
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    request
}

fn collapse_slashes(path: &str) -> String {
    let mut collapsed = String::with_capacity(path.len());
    for character in path.chars() {
        if !(character == '/' && collapsed.ends_with('/')) {
            collapsed.push(character);
        }
    }
    collapsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_repeated_slashes() {
        assert_eq!(collapse_slashes("//v1/refunds/"), "/v1/refunds/");
        assert_eq!(collapse_slashes("/v1///refunds"), "/v1/refunds");
        assert_eq!(collapse_slashes("/v1/refunds/"), "/v1/refunds/");
    }

    #[test]
    fn rewrites_the_api_prefix_and_keeps_the_query() {
        let request = Request::builder()
            .uri("//api/v1/refunds/?page=2")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(normalize_path(request).uri(), "/v1/refunds/?page=2");
    }
}
