//! The authenticated principal as an extractor, with its scope checked, so that a handler
//! cannot forget tenancy or scopes.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::{
    ORDERS_READ, PAYMENTS_READ, Principal, REFUNDS_READ, REFUNDS_WRITE, WEBHOOKS_READ,
    WEBHOOKS_WRITE,
};
use crate::domain::Error;
use crate::polar::ApiError;
use crate::state::AppState;

async fn principal_with_scope(
    parts: &Parts,
    state: &AppState,
    scopes: &'static [&'static str],
) -> Result<Principal, ApiError> {
    // A header that is not ASCII holds no token Polar would read: the caller is anonymous.
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().unwrap_or_default());
    let principal =
        super::service::authenticate_cached(&state.token_cache, &state.pool, header).await?;
    if principal.has_any_scope(scopes) {
        Ok(principal)
    } else {
        Err(Error::InsufficientScope(scopes).into())
    }
}

macro_rules! scoped_principal {
    ($(#[$meta:meta])* $name:ident, $scopes:expr) => {
        $(#[$meta])*
        pub struct $name(pub Principal);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

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
    &[REFUNDS_READ, REFUNDS_WRITE]
);
scoped_principal!(
    /// A caller whose token holds `refunds:write`.
    RefundsWrite,
    &[REFUNDS_WRITE]
);
scoped_principal!(
    /// A caller whose token holds `orders:read`.
    OrdersRead,
    &[ORDERS_READ]
);
scoped_principal!(
    /// A caller whose token holds `payments:read`.
    PaymentsRead,
    &[PAYMENTS_READ]
);
scoped_principal!(
    /// A caller whose token holds `webhooks:read` or `webhooks:write`.
    WebhooksRead,
    &[WEBHOOKS_READ, WEBHOOKS_WRITE]
);
scoped_principal!(
    /// A caller whose token holds `webhooks:write`.
    WebhooksWrite,
    &[WEBHOOKS_WRITE]
);
