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

    /// Checks a token: `Some(expires)` when it is authentic and of `kind`, `None` otherwise.
    pub fn check(&self, token: &str, kind: TokenKind) -> Option<i64> {
        use base64::Engine;
        let rest = token.strip_prefix("TTP_")?;
        let (payload, mac) = rest.split_once('.')?;
        let expected = self.mac(payload);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            mac.as_bytes(),
        )) {
            return None;
        }
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let mut parts = text.split(':');
        let k = parts.next()?;
        let want = if kind == TokenKind::Access { "a" } else { "r" };
        if k != want {
            return None;
        }
        parts.next()?.parse().ok()
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

/// An HTTP 401 fault.
fn unauthorized(code: i64, message: &'static str) -> ApiFault {
    ApiFault::new(StatusCode::UNAUTHORIZED, code, message)
}

/// 105002: the access token has expired (or was revoked).
pub(crate) fn expired_token() -> ApiFault {
    unauthorized(
        105002,
        "Expired credentials. The x-tts-access-token has expired.",
    )
}

/// Checks a request the way the real gateway does, in the same order.
pub fn verify(
    cfg: &GateConfig<'_>,
    req: &Incoming<'_>,
    scope: Scope,
    now: i64,
) -> Result<Verified, ApiFault> {
    check_app_key(cfg, req)?;
    check_timestamp(req, now)?;
    check_signature(cfg, req)?;
    check_access_token(cfg, req, now)?;
    let shop = resolve_shop(cfg, req, scope)?;
    Ok(Verified { shop })
}

/// The `app_key` query parameter must be the app's.
fn check_app_key(cfg: &GateConfig<'_>, req: &Incoming<'_>) -> Result<(), ApiFault> {
    match q(req.query, "app_key") {
        Some(k) if k == cfg.app_key => Ok(()),
        Some(_) => Err(unauthorized(
            36009004,
            "Invalid app_key. The app_key is not valid.",
        )),
        None => Err(unauthorized(
            36009004,
            "Missing app_key. The app_key query parameter is required.",
        )),
    }
}

/// The `timestamp` query parameter must be unix seconds within 5 minutes before `now`
/// and 30 seconds after it.
fn check_timestamp(req: &Incoming<'_>, now: i64) -> Result<(), ApiFault> {
    let ts = q(req.query, "timestamp").ok_or_else(|| {
        unauthorized(
            36009004,
            "Missing timestamp. The timestamp query parameter is required.",
        )
    })?;
    let ts: i64 = ts.parse().map_err(|_| {
        unauthorized(
            36009004,
            "Invalid timestamp. The timestamp must be unix seconds.",
        )
    })?;
    if ts < 0 || ts < now - 300 || ts > now + 30 {
        return Err(unauthorized(
            36009004,
            "Invalid timestamp. The timestamp has expired or is too far in the future (allowed: 5 minutes in the past, 30 seconds in the future).",
        ));
    }
    Ok(())
}

/// The `sign` query parameter must be present, the body of a supported content type,
/// and the signature made with the app secret.
fn check_signature(cfg: &GateConfig<'_>, req: &Incoming<'_>) -> Result<(), ApiFault> {
    let Some(given) = q(req.query, "sign") else {
        return Err(unauthorized(
            36009004,
            "Missing signature. The sign query parameter is required.",
        ));
    };
    check_content_type(req)?;
    let pairs = req.query.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    if !sign::verify(cfg.app_secret, req.path, pairs, req.body, given) {
        return Err(unauthorized(
            106001,
            "Invalid credentials. The sign query parameter is invalid.",
        ));
    }
    Ok(())
}

/// A non-empty body must be JSON or multipart.
fn check_content_type(req: &Incoming<'_>) -> Result<(), ApiFault> {
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
    Ok(())
}

/// The `x-tts-access-token` header must hold an authentic access token not expired at `now`.
fn check_access_token(cfg: &GateConfig<'_>, req: &Incoming<'_>, now: i64) -> Result<(), ApiFault> {
    let token = req
        .headers
        .get("x-tts-access-token")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            unauthorized(
                36009004,
                "Invalid access token header. The x-tts-access-token header is missing.",
            )
        })?;
    match cfg.mint.check(token, TokenKind::Access) {
        None => Err(unauthorized(
            36009004,
            "Invalid access token header. The x-tts-access-token is invalid.",
        )),
        Some(exp) if exp <= now => Err(expired_token()),
        Some(_) => Ok(()),
    }
}

/// The shop a request acts for, by `scope`: none (seller), the shop of its `shop_cipher`
/// (shop), or the first shop of its `category_asset_cipher`'s market (partner).
fn resolve_shop(
    cfg: &GateConfig<'_>,
    req: &Incoming<'_>,
    scope: Scope,
) -> Result<Option<usize>, ApiFault> {
    let cipher = q(req.query, "shop_cipher");
    match (scope, cipher) {
        (Scope::Seller | Scope::Partner, Some(_)) => Err(ApiFault::new(
            StatusCode::BAD_REQUEST,
            36009004,
            "Unexpected identifier. The shop_cipher query parameter is not required.",
        )),
        (Scope::Seller, None) => Ok(None),
        (Scope::Partner, None) => {
            let asset = q(req.query, "category_asset_cipher").unwrap_or_default();
            Ok(Some(*cfg.assets.get(asset).ok_or_else(|| {
                ApiFault::new(
                    StatusCode::BAD_REQUEST,
                    101000,
                    "Invalid category_asset_cipher or x-tts-access-token.",
                )
            })?))
        }
        (Scope::Shop, None) => Err(ApiFault::new(
            StatusCode::BAD_REQUEST,
            106013,
            "Missing identifier. The shop_cipher query parameter is required.",
        )),
        (Scope::Shop, Some(c)) => Ok(Some(*cfg.ciphers.get(c).ok_or_else(|| {
            ApiFault::new(
                StatusCode::BAD_REQUEST,
                36009004,
                "Invalid shop_cipher. The shop_cipher does not belong to an authorized shop.",
            )
        })?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_roundtrip_and_resist_forgery() {
        let m = TokenMint::new("s", 1);
        let t = m.mint(TokenKind::Access, 1000, 7);
        assert_eq!(m.check(&t, TokenKind::Access), Some(1000));
        assert!(m.check(&t, TokenKind::Refresh).is_none());
        assert!(
            TokenMint::new("other", 1)
                .check(&t, TokenKind::Access)
                .is_none()
        );
        let forged = t.replace("TTP_", "TTP_x");
        assert!(m.check(&forged, TokenKind::Access).is_none());
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
