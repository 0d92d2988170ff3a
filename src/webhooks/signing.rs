//! Endpoint secrets and the signature headers of a delivery.
//!
//! A delivery carries two `v1,` signatures of `"<id>.<timestamp>.<body>"` (HMAC-SHA256): one
//! keyed with the UTF-8 bytes of the whole secret, the scheme Polar has always used and the
//! only one older SDKs accept, and one keyed with the base64-decoded part after `whsec_`,
//! Standard Webhooks proper, which generic verifiers expect. A verifier accepts a header when
//! any of its signatures matches.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";

/// A new secret: `whsec_` and the standard base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

fn sign_with(key: &[u8], content: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(content);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header of a delivery of `body` as event `id` at `timestamp`
/// (Unix seconds).
pub fn signature_header(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut content = Vec::with_capacity(id.len() + body.len() + 24);
    content.extend_from_slice(id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.to_string().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    let legacy = sign_with(secret.as_bytes(), &content);
    let decoded = secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|encoded| STANDARD.decode(encoded).ok());
    match decoded {
        Some(key) => format!("{legacy} {}", sign_with(&key, &content)),
        None => legacy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_base64_of_32_bytes() {
        let secret = generate_secret();
        let encoded = secret.strip_prefix(SECRET_PREFIX).expect("prefix");
        assert_eq!(STANDARD.decode(encoded).expect("base64").len(), 32);
        assert_ne!(secret, generate_secret());
    }

    #[test]
    fn two_signatures_with_both_keys() {
        let secret = format!("{SECRET_PREFIX}{}", STANDARD.encode([7u8; 32]));
        let header = signature_header(&secret, "msg_1", 1_700_000_000, b"{}");
        let signatures: Vec<&str> = header.split(' ').collect();
        assert_eq!(signatures.len(), 2);
        let content = b"msg_1.1700000000.{}";
        assert_eq!(signatures[0], sign_with(secret.as_bytes(), content));
        assert_eq!(signatures[1], sign_with(&[7u8; 32], content));
        assert_ne!(signatures[0], signatures[1]);
    }
}
