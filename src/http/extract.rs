//! Extractors that answer in Polar's shapes: the authenticated principal with its scope
//! checked (so a handler cannot forget tenancy or scopes), and the raw body.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;

use crate::AppState;
use crate::auth::{self, Principal};
use crate::error::Error;

async fn principal_with_scope(
    parts: &Parts,
    state: &AppState,
    scopes: &'static [&'static str],
) -> Result<Principal, Error> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().map_err(|_| Error::InvalidToken))
        .transpose()?;
    let principal = auth::service::authenticate(&state.pool, header).await?;
    if principal.has_any_scope(scopes) {
        Ok(principal)
    } else {
        Err(Error::InsufficientScope(scopes))
    }
}

macro_rules! scoped_principal {
    ($(#[$meta:meta])* $name:ident, $scopes:expr) => {
        $(#[$meta])*
        pub struct $name(pub Principal);

        impl FromRequestParts<AppState> for $name {
            type Rejection = Error;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                principal_with_scope(parts, state, $scopes).await.map($name)
            }
        }
    };
}

scoped_principal!(
    /// A caller whose token holds `refunds:read` or `refunds:write`.
    RefundsRead,
    &[auth::REFUNDS_READ, auth::REFUNDS_WRITE]
);
scoped_principal!(
    /// A caller whose token holds `refunds:write`.
    RefundsWrite,
    &[auth::REFUNDS_WRITE]
);

/// The request body with its `Content-Type`, for parsers that answer in pydantic's shapes.
pub struct RawBody {
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| Error::PayloadTooLarge)?;
        Ok(RawBody {
            content_type,
            bytes,
        })
    }
}
