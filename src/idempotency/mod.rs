//! Idempotency keys: a creating request retried with the same key is answered as the first
//! one was, byte for byte, and never runs twice.
//!
//! A key belongs to the caller (an organization, or the user of a personal token) and is
//! bound to the request it was first used for: its method, route and a digest of its body
//! as canonical JSON. The answer is kept in the transaction that makes the change.

pub mod extract;
pub mod repo;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth::{Principal, Subject};

pub use crate::polar::error::IDEMPOTENCY_KEY_HEADER as HEADER;

pub const MAX_KEY_CHARS: usize = 255;

/// Why a header value is not a key.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyFault {
    Empty,
    TooLong,
    /// A character outside printable ASCII, or a quoted string with a stray quote or escape.
    NotPrintable,
}

/// Reads a key from its header value: bare (`abc`) or as a structured-field string
/// (`"abc"`, where `\"` and `\\` are escapes), 1 to 255 printable ASCII characters.
pub fn parse_key(value: &[u8]) -> Result<String, KeyFault> {
    let printable = |byte: &u8| (b' '..=b'~').contains(byte);
    let key = match value {
        [b'"', inner @ .., b'"'] => unquote(inner).ok_or(KeyFault::NotPrintable)?,
        // a quoted string that does not end is not a key either
        [b'"', ..] => return Err(KeyFault::NotPrintable),
        _ if value.iter().all(printable) => String::from_utf8_lossy(value).into_owned(),
        _ => return Err(KeyFault::NotPrintable),
    };
    if !key.bytes().all(|byte| printable(&byte)) {
        return Err(KeyFault::NotPrintable);
    }
    match key.len() {
        0 => Err(KeyFault::Empty),
        length if length > MAX_KEY_CHARS => Err(KeyFault::TooLong),
        _ => Ok(key),
    }
}

fn unquote(inner: &[u8]) -> Option<String> {
    let mut key = String::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'\\' => match bytes.next() {
                Some(&escaped @ (b'"' | b'\\')) => key.push(char::from(escaped)),
                _ => return None,
            },
            b'"' => return None,
            _ => key.push(char::from(byte)),
        }
    }
    Some(key)
}

/// One use of a key: whose it is and the request it names.
#[derive(Debug, Clone)]
pub struct KeyedRequest {
    pub scope: String,
    pub key: String,
    pub method: &'static str,
    /// The path the key was used on, with its parameters (a key used for one payment is not
    /// the same request for another).
    pub route: String,
    pub fingerprint: [u8; 32],
}

impl KeyedRequest {
    pub fn new(
        principal: &Principal,
        key: String,
        method: &'static str,
        route: impl Into<String>,
        body: &[u8],
    ) -> Self {
        let scope = match principal.subject {
            Subject::Organization(id) => format!("organization:{id}"),
            Subject::User(id) => format!("user:{id}"),
        };
        Self {
            scope,
            key,
            method,
            route: route.into(),
            fingerprint: fingerprint(body),
        }
    }
}

/// SHA-256 of the body as canonical JSON (object keys sorted, no whitespace), so that key
/// order and spacing do not make two requests different. A body that is not JSON is taken
/// as it is.
pub fn fingerprint(body: &[u8]) -> [u8; 32] {
    let mut digest = Sha256::new();
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => {
            let mut canonical = Vec::with_capacity(body.len());
            write_canonical(&value, &mut canonical);
            digest.update(b"json:");
            digest.update(&canonical);
        }
        Err(_) => {
            digest.update(b"bytes:");
            digest.update(body);
        }
    }
    digest.finalize().into()
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by_key(|(key, _)| *key);
            out.push(b'{');
            for (index, (key, value)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key).expect("a string serializes");
                out.push(b':');
                write_canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a scalar serializes"),
    }
}

/// An answer kept for replay, exactly as the API surface sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What the key says about a new request.
#[derive(Debug)]
pub enum Claim {
    /// First use (or the earlier use expired): run the request.
    Fresh,
    /// The same request was answered: send this again.
    Replay(StoredAnswer),
    /// A request with this key has not finished yet.
    InUse,
    /// The key was first used for a different request.
    Reused,
}

/// Deletes expired keys every `period`, for as long as the process runs. Lookups already
/// ignore expired keys; this only gives their space back.
pub async fn purge_expired_keys(pool: sqlx::PgPool, period: std::time::Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match repo::purge_expired(&pool).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired idempotency keys deleted"),
            Err(error) => tracing::warn!(%error, "deleting expired idempotency keys failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_bare_and_quoted() {
        assert_eq!(parse_key(b"abc-123"), Ok("abc-123".to_owned()));
        assert_eq!(parse_key(b"\"abc\""), Ok("abc".to_owned()));
        assert_eq!(parse_key(br#""a\"b\\c""#), Ok(r#"a"b\c"#.to_owned()));
        assert_eq!(parse_key(b"a b"), Ok("a b".to_owned()));
        assert_eq!(parse_key(b""), Err(KeyFault::Empty));
        assert_eq!(parse_key(b"\"\""), Err(KeyFault::Empty));
        assert_eq!(parse_key(&[b'k'; 255]), Ok("k".repeat(255)));
        assert_eq!(parse_key(&[b'k'; 256]), Err(KeyFault::TooLong));
        assert_eq!(parse_key("clé".as_bytes()), Err(KeyFault::NotPrintable));
        assert_eq!(parse_key(b"a\tb"), Err(KeyFault::NotPrintable));
        assert_eq!(parse_key(br#""a"b""#), Err(KeyFault::NotPrintable));
        assert_eq!(parse_key(br#""a\b""#), Err(KeyFault::NotPrintable));
        assert_eq!(parse_key(br#""abc"#), Err(KeyFault::NotPrintable));
        assert_eq!(parse_key(b"\""), Err(KeyFault::NotPrintable));
        assert_eq!(parse_key(br#"a"b"#), Ok(r#"a"b"#.to_owned()));
    }

    #[test]
    fn fingerprint_ignores_key_order_and_whitespace_only() {
        let a = fingerprint(br#"{"amount": 10, "meta": {"x": 1, "y": [1, 2]}}"#);
        let b = fingerprint(br#"{"meta":{"y":[1,2],"x":1},"amount":10}"#);
        assert_eq!(a, b);
        assert_ne!(
            a,
            fingerprint(br#"{"amount": 11, "meta": {"x": 1, "y": [1, 2]}}"#)
        );
        assert_ne!(
            a,
            fingerprint(br#"{"amount": 10, "meta": {"x": 1, "y": [2, 1]}}"#)
        );
        assert_ne!(fingerprint(b"not json"), fingerprint(b"not  json"));
    }
}
