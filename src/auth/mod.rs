//! Access tokens, scopes and the authenticated principal.

pub mod cache;
pub mod extract;
pub mod repo;
pub mod service;

use uuid::Uuid;

pub const ORGANIZATION_TOKEN_PREFIX: &str = "polar_oat_";
pub const PERSONAL_TOKEN_PREFIX: &str = "polar_pat_";
/// Polar treats this prefix as anonymous rather than as a bad token.
const ANONYMOUS_TOKEN_PREFIX: &str = "polar_crt_";

pub const REFUNDS_READ: &str = "refunds:read";
pub const REFUNDS_WRITE: &str = "refunds:write";
pub const ORDERS_READ: &str = "orders:read";
pub const ORDERS_WRITE: &str = "orders:write";
pub const PAYMENTS_READ: &str = "payments:read";
pub const WEBHOOKS_READ: &str = "webhooks:read";
pub const WEBHOOKS_WRITE: &str = "webhooks:write";
/// Scopes this server understands; tokens may carry only these. (`orders:write` grants
/// nothing here, as it grants no read in Polar.)
pub const KNOWN_SCOPES: &[&str] = &[
    REFUNDS_READ,
    REFUNDS_WRITE,
    ORDERS_READ,
    ORDERS_WRITE,
    PAYMENTS_READ,
    WEBHOOKS_READ,
    WEBHOOKS_WRITE,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Organization(Uuid),
    User(Uuid),
}

/// Who is calling, what the token allows, and the organizations it may see.
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: Subject,
    pub scopes: Vec<String>,
    pub organization_ids: Vec<Uuid>,
}

impl Principal {
    pub fn has_any_scope(&self, wanted: &[&str]) -> bool {
        self.scopes
            .iter()
            .any(|scope| wanted.contains(&scope.as_str()))
    }
}

/// What an `Authorization` header holds, before any lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// No header, another scheme, or a token Polar treats as anonymous.
    Anonymous,
    /// A bearer token this server can look up.
    Token(&'a str),
    /// A bearer token no lookup can succeed for.
    Invalid,
}

pub fn parse_authorization(header: Option<&str>) -> Credentials<'_> {
    let Some(header) = header else {
        return Credentials::Anonymous;
    };
    // Polar splits at the first space and strips whitespace around the rest, so extra
    // spaces or tabs before the token still authenticate, and an empty token is no token.
    let (scheme, token) = header.split_once(' ').unwrap_or((header, ""));
    let token = token.trim_matches(|character: char| character.is_ascii_whitespace());
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || !token.is_ascii() {
        return Credentials::Anonymous;
    }
    if token.starts_with(ANONYMOUS_TOKEN_PREFIX) {
        Credentials::Anonymous
    } else if token.starts_with(ORGANIZATION_TOKEN_PREFIX)
        || token.starts_with(PERSONAL_TOKEN_PREFIX)
    {
        Credentials::Token(token)
    } else {
        Credentials::Invalid
    }
}

/// A new random token with the given prefix: 43 characters of base62 after the prefix.
pub fn generate_token(prefix: &str) -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    let secret: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(43)
        .map(char::from)
        .collect();
    format!("{prefix}{secret}")
}

pub use crate::domain::hash_token;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_authorization_headers() {
        assert_eq!(parse_authorization(None), Credentials::Anonymous);
        assert_eq!(
            parse_authorization(Some("Basic abc")),
            Credentials::Anonymous
        );
        assert_eq!(
            parse_authorization(Some("Bearer polar_crt_x")),
            Credentials::Anonymous
        );
        assert_eq!(
            parse_authorization(Some("bearer polar_oat_abc")),
            Credentials::Token("polar_oat_abc")
        );
        assert_eq!(
            parse_authorization(Some("Bearer polar_pat_abc")),
            Credentials::Token("polar_pat_abc")
        );
        assert_eq!(parse_authorization(Some("Bearer")), Credentials::Anonymous);
        assert_eq!(
            parse_authorization(Some("Bearer   ")),
            Credentials::Anonymous
        );
        assert_eq!(
            parse_authorization(Some("Bearer  \tpolar_oat_abc")),
            Credentials::Token("polar_oat_abc")
        );
        assert_eq!(
            parse_authorization(Some("Bearer\tpolar_oat_abc")),
            Credentials::Anonymous
        );
        assert_eq!(
            parse_authorization(Some("Bearer nope")),
            Credentials::Invalid
        );
        assert_eq!(
            parse_authorization(Some("Bearer polar_cst_abc")),
            Credentials::Invalid
        );
    }

    #[test]
    fn generated_tokens_are_distinct_and_hash_to_32_bytes() {
        let first = generate_token(ORGANIZATION_TOKEN_PREFIX);
        let second = generate_token(ORGANIZATION_TOKEN_PREFIX);
        assert!(first.starts_with("polar_oat_"));
        assert_eq!(first.len(), "polar_oat_".len() + 43);
        assert_ne!(first, second);
        assert_eq!(hash_token(&first).len(), 32);
        assert_ne!(hash_token(&first), hash_token(&second));
    }
}
