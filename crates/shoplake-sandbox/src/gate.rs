//! The gateway in front of every sandbox API route, doing what the real Partner API gateway
//! does before a handler runs: rate limit, injected faults, app_key / timestamp / sign /
//! access token / shop_cipher checks, each failing with the real code in the real envelope.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::rng::Rng;
use shoplake_tiktok::sign;

/// An API error as the sandbox answers it: HTTP status + envelope code + message.
#[derive(Debug, Clone)]
pub struct ApiFault {
    /// HTTP status.
    pub status: StatusCode,
    /// Envelope code.
    pub code: i64,
    /// Envelope message.
    pub message: String,
    /// Retry-After seconds, for 429.
    pub retry_after: Option<u64>,
}

impl ApiFault {
    /// A fault with status, code and message.
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        ApiFault {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    /// 36009004 "invalid param error" (HTTP 400).
    pub fn param(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            36009004,
            format!("invalid param error: {detail}"),
        )
    }
    /// Renders the envelope with `data: null`.
    pub fn into_response_with(self, request_id: &str) -> Response {
        let body = serde_json::json!({
            "code": self.code,
            "message": self.message,
            "request_id": request_id,
            "data": null,
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(s));
        }
        resp
    }
}

/// The bytes of a success envelope around already-serialized `data` JSON.
pub fn ok_envelope_bytes(request_id: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 96);
    out.extend_from_slice(br#"{"code":0,"message":"Success","request_id":""#);
    out.extend_from_slice(request_id.as_bytes());
    out.extend_from_slice(br#"","data":"#);
    out.extend_from_slice(data);
    out.push(b'}');
    out
}

/// Renders a success envelope around already-serialized `data` JSON.
pub fn ok_envelope(request_id: &str, data: &[u8]) -> Response {
    let out = ok_envelope_bytes(request_id, data);
    (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        out,
    )
        .into_response()
}

/// How an endpoint authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Signed, access token, no shop_cipher allowed (`/authorization/*`, `/seller/*`).
    Seller,
    /// Signed, access token, shop_cipher required.
    Shop,
    /// Signed, access token, `category_asset_cipher` instead of shop_cipher (Affiliate
    /// Partner): the handler sees the first shop of the asset's market.
    Partner,
}

/// Token kinds minted by the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Access token (`x-tts-access-token`).
    Access,
    /// Refresh token.
    Refresh,
}

/// Mints and checks stateless tokens: `TTP_<payload>.<mac>`, so they survive restarts.
#[derive(Debug, Clone)]
pub struct TokenMint {
    key: Vec<u8>,
}

impl TokenMint {
    /// A mint keyed by the app and seed — not by the app secret: as on the real
    /// platform, tokens granted before an app secret rotation stay valid after it.
    pub fn new(app_key: &str, seed: u64) -> Self {
        TokenMint {
            key: format!("sandbox-token:{seed}:{app_key}").into_bytes(),
        }
    }

    fn mac(&self, payload: &str) -> String {
        use hmac::Mac;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("any key");
        m.update(payload.as_bytes());
        hex::encode(&m.finalize().into_bytes()[..16])
    }

    /// A token of `kind` expiring at `expires` (unix seconds).
    pub fn mint(&self, kind: TokenKind, expires: i64, nonce: u64) -> String {
        use base64::Engine;
        let k = if kind == TokenKind::Access { 'a' } else { 'r' };
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{k}:{expires}:{nonce:x}"));
        format!("TTP_{payload}.{}", self.mac(&payload))
    }

    /// Checks a token: `Ok(expires)` when it is authentic and of `kind`.
    pub fn check(&self, token: &str, kind: TokenKind) -> Result<i64, ()> {
        use base64::Engine;
        let rest = token.strip_prefix("TTP_").ok_or(())?;
        let (payload, mac) = rest.split_once('.').ok_or(())?;
        let expected = self.mac(payload);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            mac.as_bytes(),
        )) {
            return Err(());
        }
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| ())?;
        let text = String::from_utf8(decoded).map_err(|_| ())?;
        let mut parts = text.split(':');
        let k = parts.next().ok_or(())?;
        let want = if kind == TokenKind::Access { "a" } else { "r" };
        if k != want {
            return Err(());
        }
        parts.next().ok_or(())?.parse().map_err(|_| ())
    }
}

/// Token bucket per (app_key, endpoint template), like the real per-app-per-API limits.
#[derive(Debug)]
pub struct RateLimits {
    rps: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimits {
    /// `rps` requests per second per endpoint, burst of one second.
    pub fn new(rps: f64) -> Self {
        RateLimits {
            rps,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token, or says how long until one is free.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        if self.rps <= 0.0 {
            return Ok(());
        }
        let cap = self.rps.max(1.0);
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let entry = b.entry(key.to_string()).or_insert((cap, now));
        entry.0 = (entry.0 + now.duration_since(entry.1).as_secs_f64() * self.rps).min(cap);
        entry.1 = now;
        if entry.0 >= 1.0 {
            entry.0 -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - entry.0) / self.rps))
        }
    }
}

/// A fault chosen for a request by the `--faults` switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500, 36009003.
    ServerError,
    /// Hang for the fault delay, then HTTP 504, 36009007.
    Timeout,
    /// HTTP 429, 36009002 with Retry-After.
    RateLimited,
    /// HTTP 200 with the body cut off halfway (a dropped connection behind a proxy).
    Truncated,
    /// A `page_token` request served from a few rows earlier: the page repeats records
    /// the previous page already had (other requests: HTTP 500).
    Overlap,
    /// The access token is revoked: this and every later call with it get 105002 until
    /// the client refreshes.
    Revoked,
}

/// Draws faults with a fixed probability from a seeded generator.
#[derive(Debug)]
pub struct FaultInjector {
    share: f64,
    rng: Mutex<Rng>,
}

impl FaultInjector {
    /// `share` of requests (0.0–1.0) get a fault.
    pub fn new(share: f64, seed: u64) -> Self {
        FaultInjector {
            share,
            rng: Mutex::new(Rng::new(seed, 99)),
        }
    }

    /// The fault for the next request, if any.
    pub fn draw(&self) -> Option<Fault> {
        if self.share <= 0.0 {
            return None;
        }
        let mut r = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if !r.chance(self.share) {
            return None;
        }
        Some(match r.range(0, 6) {
            0 => Fault::ServerError,
            1 => Fault::Timeout,
            2 => Fault::RateLimited,
            3 => Fault::Truncated,
            4 => Fault::Overlap,
            _ => Fault::Revoked,
        })
    }
}

/// What the gate learned about a request that passed.
#[derive(Debug)]
pub struct Verified {
    /// Shop index for shop-scoped calls.
    pub shop: Option<usize>,
}

/// Everything the gate needs from the request.
pub struct Incoming<'a> {
    /// Request path (no query).
    pub path: &'a str,
    /// Decoded query pairs.
    pub query: &'a [(String, String)],
    /// Headers.
    pub headers: &'a HeaderMap,
    /// Raw body bytes.
    pub body: &'a Bytes,
    /// Whether the method carries a body (POST/PUT).
    pub has_body: bool,
}

/// Gate configuration.
pub struct GateConfig<'a> {
    /// Accepted app key.
    pub app_key: &'a str,
    /// App secret used to verify signatures.
    pub app_secret: &'a str,
    /// Token mint.
    pub mint: &'a TokenMint,
    /// Known shop ciphers → shop index.
    pub ciphers: &'a HashMap<String, usize>,
    /// `category_asset_cipher` → the first shop of that asset's market.
    pub assets: &'a HashMap<String, usize>,
}

fn q<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Checks a request the way the real gateway does, in the same order.
pub fn verify(
    cfg: &GateConfig<'_>,
    req: &Incoming<'_>,
    scope: Scope,
    now: i64,
) -> Result<Verified, ApiFault> {
    let unauthorized = StatusCode::UNAUTHORIZED;
    match q(req.query, "app_key") {
        Some(k) if k == cfg.app_key => {}
        Some(_) => {
            return Err(ApiFault::new(
                unauthorized,
                36009004,
                "Invalid app_key. The app_key is not valid.",
            ));
        }
        None => {
            return Err(ApiFault::new(
                unauthorized,
                36009004,
                "Missing app_key. The app_key query parameter is required.",
            ));
        }
    }
    let ts = q(req.query, "timestamp").ok_or_else(|| {
        ApiFault::new(
            unauthorized,
            36009004,
            "Missing timestamp. The timestamp query parameter is required.",
        )
    })?;
    let ts: i64 = ts.parse().map_err(|_| {
        ApiFault::new(
            unauthorized,
            36009004,
            "Invalid timestamp. The timestamp must be unix seconds.",
        )
    })?;
    if ts < 0 || ts < now - 300 || ts > now + 30 {
        return Err(ApiFault::new(
            unauthorized,
            36009004,
            "Invalid timestamp. The timestamp has expired or is too far in the future (allowed: 5 minutes in the past, 30 seconds in the future).",
        ));
    }
    let Some(given) = q(req.query, "sign") else {
        return Err(ApiFault::new(
            unauthorized,
            36009004,
            "Missing signature. The sign query parameter is required.",
        ));
    };
    if req.has_body && !req.body.is_empty() {
        let ct = req
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/json") && !ct.starts_with("multipart/form-data") {
            return Err(ApiFault::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                36009022,
                "Invalid content type. The request body must be application/json or multipart/form-data.",
            ));
        }
    }
    let pairs = req.query.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    if !sign::verify(cfg.app_secret, req.path, pairs, req.body, given) {
        return Err(ApiFault::new(
            unauthorized,
            106001,
            "Invalid credentials. The sign query parameter is invalid.",
        ));
    }
    let token = req
        .headers
        .get("x-tts-access-token")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiFault::new(
                unauthorized,
                36009004,
                "Invalid access token header. The x-tts-access-token header is missing.",
            )
        })?;
    match cfg.mint.check(token, TokenKind::Access) {
        Err(()) => {
            return Err(ApiFault::new(
                unauthorized,
                36009004,
                "Invalid access token header. The x-tts-access-token is invalid.",
            ));
        }
        Ok(exp) if exp <= now => {
            return Err(ApiFault::new(
                unauthorized,
                105002,
                "Expired credentials. The x-tts-access-token has expired.",
            ));
        }
        Ok(_) => {}
    }
    let cipher = q(req.query, "shop_cipher");
    let shop = match (scope, cipher) {
        (Scope::Seller | Scope::Partner, Some(_)) => {
            return Err(ApiFault::new(
                StatusCode::BAD_REQUEST,
                36009004,
                "Unexpected identifier. The shop_cipher query parameter is not required.",
            ));
        }
        (Scope::Seller, None) => None,
        (Scope::Partner, None) => {
            let asset = q(req.query, "category_asset_cipher").unwrap_or_default();
            Some(*cfg.assets.get(asset).ok_or_else(|| {
                ApiFault::new(
                    StatusCode::BAD_REQUEST,
                    101000,
                    "Invalid category_asset_cipher or x-tts-access-token.",
                )
            })?)
        }
        (Scope::Shop, None) => {
            return Err(ApiFault::new(
                StatusCode::BAD_REQUEST,
                106013,
                "Missing identifier. The shop_cipher query parameter is required.",
            ));
        }
        (Scope::Shop, Some(c)) => Some(*cfg.ciphers.get(c).ok_or_else(|| {
            ApiFault::new(
                StatusCode::BAD_REQUEST,
                36009004,
                "Invalid shop_cipher. The shop_cipher does not belong to an authorized shop.",
            )
        })?),
    };
    Ok(Verified { shop })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_roundtrip_and_resist_forgery() {
        let m = TokenMint::new("s", 1);
        let t = m.mint(TokenKind::Access, 1000, 7);
        assert_eq!(m.check(&t, TokenKind::Access), Ok(1000));
        assert!(m.check(&t, TokenKind::Refresh).is_err());
        assert!(
            TokenMint::new("other", 1)
                .check(&t, TokenKind::Access)
                .is_err()
        );
        let forged = t.replace("TTP_", "TTP_x");
        assert!(m.check(&forged, TokenKind::Access).is_err());
    }

    #[test]
    fn bucket_limits_then_refills() {
        let l = RateLimits::new(5.0);
        for _ in 0..5 {
            assert!(l.take("a").is_ok());
        }
        let wait = l.take("a").unwrap_err();
        assert!(wait <= Duration::from_millis(200));
        assert!(l.take("b").is_ok(), "buckets are per endpoint");
    }

    #[test]
    fn faults_hit_their_share() {
        let f = FaultInjector::new(0.1, 3);
        let hits = (0..10_000).filter(|_| f.draw().is_some()).count();
        assert!((800..1200).contains(&hits), "{hits}");
        assert!(FaultInjector::new(0.0, 3).draw().is_none());
    }
}
