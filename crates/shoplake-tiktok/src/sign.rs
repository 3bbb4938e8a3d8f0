//! Request signing (HMAC-SHA256), exactly as the TikTok Shop Partner API verifies it.
//!
//! ```text
//! sign = lower_hex(HMAC_SHA256(key = app_secret,
//!            msg = app_secret + path + concat(sorted(k + v)) + body + app_secret))
//! ```
//! `sign` and `access_token` are never part of the signed parameters; values are signed as
//! sent on the wire before URL-encoding; the body is the raw bytes (omitted for GET and
//! multipart uploads). The same function is used by the client (to sign) and the sandbox
//! (to verify), so both sides can never drift apart.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Query keys that are never signed.
const UNSIGNED_KEYS: &[&str] = &["sign", "access_token", "x-tts-access-token"];

/// Builds the exact string that is wrapped and HMAC'd (without the wrapping secret).
pub fn string_to_sign<'a, I>(path: &str, query: I, body: &[u8]) -> Vec<u8>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut params: Vec<(&str, &str)> = query
        .into_iter()
        .filter(|(k, _)| !UNSIGNED_KEYS.contains(k))
        .collect();
    // Plain byte order, like PHP ksort / JS sort on ASCII keys.
    params.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = Vec::with_capacity(path.len() + body.len() + params.len() * 24);
    out.extend_from_slice(path.as_bytes());
    for (k, v) in params {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(body);
    out
}

/// Signs a request: lowercase hex HMAC-SHA256 of `secret + string_to_sign + secret`.
pub fn sign<'a, I>(app_secret: &str, path: &str, query: I, body: &[u8]) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    hex::encode(mac(app_secret, path, query, body).finalize().into_bytes())
}

/// Verifies a received signature in constant time.
pub fn verify<'a, I>(app_secret: &str, path: &str, query: I, body: &[u8], sign_hex: &str) -> bool
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let Ok(given) = hex::decode(sign_hex) else {
        return false;
    };
    mac(app_secret, path, query, body)
        .verify_slice(&given)
        .is_ok()
}

fn mac<'a, I>(app_secret: &str, path: &str, query: I, body: &[u8]) -> HmacSha256
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut m = HmacSha256::new_from_slice(app_secret.as_bytes()).expect("hmac takes any key");
    m.update(app_secret.as_bytes());
    m.update(&string_to_sign(path, query, body));
    m.update(app_secret.as_bytes());
    m
}

/// Webhook signature: `lower_hex(HMAC_SHA256(key = app_secret, msg = app_key + raw_body))`,
/// sent by TikTok in the `Authorization` header (no "Bearer", no timestamp).
pub fn webhook_signature(app_key: &str, app_secret: &str, raw_body: &[u8]) -> String {
    let mut m = HmacSha256::new_from_slice(app_secret.as_bytes()).expect("hmac takes any key");
    m.update(app_key.as_bytes());
    m.update(raw_body);
    hex::encode(m.finalize().into_bytes())
}

/// Verifies a webhook `Authorization` header in constant time.
pub fn verify_webhook(app_key: &str, app_secret: &str, raw_body: &[u8], header: &str) -> bool {
    let Ok(given) = hex::decode(header.trim()) else {
        return false;
    };
    let mut m = HmacSha256::new_from_slice(app_secret.as_bytes()).expect("hmac takes any key");
    m.update(app_key.as_bytes());
    m.update(raw_body);
    m.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excluded_keys_and_byte_order() {
        let q = [
            ("b", "2"),
            ("A", "1"),
            ("sign", "x"),
            ("access_token", "t"),
            ("a", "0"),
        ];
        let s = string_to_sign("/p", q, b"{}");
        assert_eq!(String::from_utf8(s).unwrap(), "/pA1a0b2{}");
    }

    #[test]
    fn verify_rejects_tampering() {
        let q = [("app_key", "k"), ("timestamp", "1")];
        let good = sign("s", "/x", q, b"");
        assert!(verify("s", "/x", q, b"", &good));
        assert!(!verify("s", "/y", q, b"", &good));
        assert!(!verify("s2", "/x", q, b"", &good));
        assert!(!verify("s", "/x", q, b"", "zz"));
    }
}
