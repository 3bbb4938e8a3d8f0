//! The one request path for every endpoint: common params, signing, the access token
//! header, envelope decoding into typed errors, retries with jittered backoff honouring
//! Retry-After, token refresh on expiry, and the client-side rate limiter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use tracing::{debug, warn};
use url::Url;

use super::auth::TokenStore;
use super::error::{ApiError, RequestContext, Result};
use super::rate_limit::{RateLimiter, SharedLimiter};
use super::retry::RetryPolicy;
use super::sign;
use crate::secret::Secret;

/// Everything the client needs; built from `[api]` in `shoplake.toml` (see `config`).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// API host, e.g. `https://open-api.tiktokglobalshop.com` or the sandbox.
    pub base_url: Url,
    /// Token host, e.g. `https://auth.tiktok-shops.com` or the sandbox.
    pub auth_base_url: Url,
    /// App key.
    pub app_key: String,
    /// App secret (signs every request; never logged).
    pub app_secret: Secret,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retry policy for 429/5xx/timeouts.
    pub retry: RetryPolicy,
    /// Requests per second per endpoint family (0 = unlimited).
    pub max_rps: f64,
}

impl ClientConfig {
    /// A config pointing both hosts at `base_url` (the sandbox serves both).
    pub fn for_base(base_url: &str, app_key: &str, app_secret: &str) -> Result<ClientConfig> {
        let url = Url::parse(base_url)
            .map_err(|e| ApiError::Config(format!("base_url {base_url:?}: {e}")))?;
        Ok(ClientConfig {
            auth_base_url: url.clone(),
            base_url: url,
            app_key: app_key.into(),
            app_secret: Secret::new(app_secret),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_rps: 40.0,
        })
    }
}

/// Which host a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// The Partner API host (signed calls).
    Api,
    /// The token host (`/api/v2/token/*`, unsigned, app_secret in the query).
    Auth,
}

/// How a request is authenticated.
#[derive(Debug, Clone)]
pub enum Credential {
    /// No access token (token host calls).
    None,
    /// Shop-scoped: sends `shop_cipher` and that shop's stored token.
    Shop(String),
    /// Seller-scoped (`/authorization/*`, `/seller/*`): that shop's token, no `shop_cipher`.
    Seller(String),
    /// Affiliate Partner calls: that shop's token and, instead of `shop_cipher`, the
    /// `category_asset_cipher` of one of the seller's category assets.
    Partner {
        /// The shop whose token is used.
        shop: String,
        /// `category_asset_cipher` sent with the call.
        asset: String,
    },
    /// An explicit access token (right after a code exchange).
    Token(Secret),
}

/// One API call, independent of host, signing and retries.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// HTTP method.
    pub method: Method,
    /// Concrete path, e.g. `/product/202309/products/123`.
    pub path: String,
    /// Rate-limit family; defaults to the path (use the template for `{id}` paths).
    pub family: String,
    /// Business query params (common params are added by the client).
    pub query: Vec<(String, String)>,
    /// JSON body bytes, sent and signed exactly as given.
    pub body: Option<Bytes>,
    /// Authentication.
    pub credential: Credential,
    /// Target host.
    pub host: Host,
}

impl ApiRequest {
    /// A request with `method` and `path`.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        let path = path.into();
        ApiRequest {
            method,
            family: path.clone(),
            path,
            query: Vec::new(),
            body: None,
            credential: Credential::None,
            host: Host::Api,
        }
    }
    /// A GET.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }
    /// A POST with a JSON body.
    pub fn post(path: impl Into<String>, body: &Value) -> Self {
        let mut r = Self::new(Method::POST, path);
        r.body = Some(Bytes::from(
            serde_json::to_vec(body).expect("json value serializes"),
        ));
        r
    }
    /// Adds a query param.
    pub fn query(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.query.push((k.into(), v.into()));
        self
    }
    /// Shop-scoped call for `cipher`.
    pub fn shop(mut self, cipher: impl Into<String>) -> Self {
        self.credential = Credential::Shop(cipher.into());
        self
    }
    /// Sets the credential.
    pub fn credential(mut self, c: Credential) -> Self {
        self.credential = c;
        self
    }
    /// Sets the rate-limit family.
    pub fn family(mut self, f: impl Into<String>) -> Self {
        self.family = f.into();
        self
    }
    /// Targets the token host.
    pub fn auth_host(mut self) -> Self {
        self.host = Host::Auth;
        self
    }
    fn ctx(&self) -> RequestContext {
        let shop = match &self.credential {
            Credential::Shop(s) | Credential::Seller(s) | Credential::Partner { shop: s, .. } => {
                Some(s.clone())
            }
            _ => None,
        };
        RequestContext {
            path: self.path.clone(),
            shop,
        }
    }
}

/// A successful (code 0) answer.
#[derive(Debug)]
pub struct ApiResponse {
    /// `request_id` from the envelope.
    pub request_id: String,
    /// `data` from the envelope (`null` when absent).
    pub data: Value,
}

#[derive(Deserialize)]
struct Envelope {
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    data: Value,
}

/// Counters of a client's traffic.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// HTTP requests sent (attempts, not calls).
    pub requests: AtomicU64,
    /// Attempts that were retries.
    pub retries: AtomicU64,
    /// Token refreshes triggered by an expired-token answer.
    pub refreshes: AtomicU64,
    /// Answers by outcome: ok, rate_limited (429), server_error (5xx), timeout/transport, other.
    pub answers: [AtomicU64; 5],
}

/// Labels of [`ClientStats::answers`], in order.
pub const ANSWER_KINDS: [&str; 5] = ["ok", "rate_limited", "server_error", "transport", "other"];

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    limiter: RateLimiter,
    shared: Option<Arc<dyn SharedLimiter>>,
    tokens: Option<Arc<TokenStore>>,
    stats: ClientStats,
}

/// The API client. Cheap to clone; clones share the rate limiter and token store.
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base_url", &self.inner.config.base_url.as_str())
            .finish()
    }
}

/// A transport error without the URL: the query may carry the app secret (token host).
fn transport(ctx: &RequestContext, e: reqwest::Error) -> ApiError {
    ApiError::Transport {
        ctx: ctx.clone(),
        timeout: e.is_timeout(),
        source: e.without_url(),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Index into [`ANSWER_KINDS`].
fn answer_kind(res: &Result<ApiResponse>) -> usize {
    match res {
        Ok(_) => 0,
        Err(ApiError::RateLimited { .. }) => 1,
        Err(ApiError::Transport { .. }) => 3,
        Err(e) if e.is_retryable() => 2,
        Err(_) => 4,
    }
}

impl ApiClient {
    /// A client; `tokens` is needed for shop- and seller-scoped calls.
    pub fn new(config: ClientConfig, tokens: Option<Arc<TokenStore>>) -> Result<ApiClient> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .pool_max_idle_per_host(32)
            .user_agent(concat!("shoplake/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Config(format!("http client: {e}")))?;
        let limiter = RateLimiter::new(config.max_rps, (config.max_rps / 4.0).max(1.0));
        Ok(ApiClient {
            inner: Arc::new(Inner {
                http,
                config,
                limiter,
                shared: None,
                tokens,
                stats: ClientStats::default(),
            }),
        })
    }

    /// The same client, also waiting on `shared` before every request (workers that share
    /// one API budget). Call before cloning: clones made earlier keep the old limiter.
    pub fn with_shared_limiter(self, shared: Arc<dyn SharedLimiter>) -> ApiClient {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(i) => i,
            Err(arc) => Inner {
                http: arc.http.clone(),
                config: arc.config.clone(),
                limiter: RateLimiter::new(arc.config.max_rps, (arc.config.max_rps / 4.0).max(1.0)),
                shared: None,
                tokens: arc.tokens.clone(),
                stats: ClientStats::default(),
            },
        };
        ApiClient {
            inner: Arc::new(Inner {
                shared: Some(shared),
                ..inner
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The token store, if any.
    pub fn tokens(&self) -> Option<&Arc<TokenStore>> {
        self.inner.tokens.as_ref()
    }

    /// Traffic counters.
    pub fn stats(&self) -> &ClientStats {
        &self.inner.stats
    }

    /// Time spent waiting on the client-side rate limiter.
    pub fn rate_limit_waited(&self) -> Duration {
        self.inner.limiter.waited()
    }

    async fn token_for(&self, c: &Credential) -> Result<Option<Secret>> {
        match c {
            Credential::None => Ok(None),
            Credential::Token(t) => Ok(Some(t.clone())),
            Credential::Shop(shop)
            | Credential::Seller(shop)
            | Credential::Partner { shop, .. } => {
                let store = self.inner.tokens.as_ref().ok_or_else(|| {
                    ApiError::TokenStore(format!("no token store configured for shop {shop}"))
                })?;
                Ok(Some(store.access_token(self, shop).await?))
            }
        }
    }

    /// Sends a request with retries, backoff, rate limiting and token refresh.
    pub async fn send(&self, req: &ApiRequest) -> Result<ApiResponse> {
        let policy = self.inner.config.retry;
        let mut attempt: u32 = 0;
        // Refresh once per token the API rejects (a token can be revoked again after a
        // refresh). The first refresh is free; later ones count as attempts, so a call
        // that keeps meeting rejected tokens still ends within `max_attempts`.
        let mut refreshed: Vec<Secret> = Vec::new();
        loop {
            attempt += 1;
            let token = self.token_for(&req.credential).await?;
            self.inner.limiter.acquire(&req.family).await;
            if let Some(shared) = &self.inner.shared {
                let wait = shared.reserve(&req.family).await;
                if !wait.is_zero() {
                    self.inner.limiter.add_waited(wait);
                    tokio::time::sleep(wait).await;
                }
            }
            let res = self.send_once(req, token.as_ref()).await;
            self.inner.stats.answers[answer_kind(&res)].fetch_add(1, Ordering::Relaxed);
            let err = match res {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            if err.is_token_expired()
                && (refreshed.is_empty() || attempt < policy.max_attempts)
                && let (
                    Credential::Shop(shop)
                    | Credential::Seller(shop)
                    | Credential::Partner { shop, .. },
                    Some(store),
                    Some(stale),
                ) = (&req.credential, &self.inner.tokens, token.as_ref())
                && !refreshed.contains(stale)
            {
                warn!(path = %req.path, shop = %shop, "access token expired; refreshing");
                self.inner.stats.refreshes.fetch_add(1, Ordering::Relaxed);
                store.refresh(self, shop, Some(stale)).await?;
                if refreshed.is_empty() {
                    attempt -= 1; // the first refresh is not a failed attempt
                }
                refreshed.push(stale.clone());
                continue;
            }
            if err.is_retryable() && attempt < policy.max_attempts {
                let delay = policy.delay(attempt - 1, err.retry_after());
                warn!(path = %req.path, attempt, delay_ms = delay.as_millis() as u64, error = %err, "retrying");
                self.inner.stats.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(delay).await;
                continue;
            }
            return Err(if attempt > 1 {
                ApiError::RetriesExhausted {
                    attempts: attempt,
                    last: Box::new(err),
                }
            } else {
                err
            });
        }
    }

    /// One attempt: fresh timestamp, fresh signature.
    async fn send_once(&self, req: &ApiRequest, token: Option<&Secret>) -> Result<ApiResponse> {
        let cfg = &self.inner.config;
        let ctx = req.ctx();
        let base = match req.host {
            Host::Api => &cfg.base_url,
            Host::Auth => &cfg.auth_base_url,
        };
        let mut url = base.clone();
        url.set_path(&format!(
            "{}{}",
            base.path().trim_end_matches('/'),
            req.path
        ));
        let mut query: Vec<(String, String)> = Vec::with_capacity(req.query.len() + 4);
        query.push(("app_key".into(), cfg.app_key.clone()));
        if req.host == Host::Api {
            query.push(("timestamp".into(), unix_now().to_string()));
            match &req.credential {
                Credential::Shop(shop) => query.push(("shop_cipher".into(), shop.clone())),
                Credential::Partner { asset, .. } => {
                    query.push(("category_asset_cipher".into(), asset.clone()))
                }
                _ => {}
            }
        }
        query.extend(req.query.iter().cloned());
        let body = req.body.clone().unwrap_or_default();
        if req.host == Host::Api {
            let pairs = query.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            let s = sign::sign(cfg.app_secret.expose(), url.path(), pairs, &body);
            query.push(("sign".into(), s));
        }
        {
            let mut qp = url.query_pairs_mut();
            for (k, v) in &query {
                qp.append_pair(k, v);
            }
        }
        let mut rb = self
            .inner
            .http
            .request(req.method.clone(), url)
            .header("content-type", "application/json");
        if let Some(t) = token {
            rb = rb.header("x-tts-access-token", t.expose());
        }
        if req.body.is_some() {
            rb = rb.body(body);
        }
        self.inner.stats.requests.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let resp = rb.send().await.map_err(|e| transport(&ctx, e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp.bytes().await.map_err(|e| transport(&ctx, e))?;
        debug!(path = %req.path, status, bytes = bytes.len(), ms = started.elapsed().as_millis() as u64, "api response");
        // Invalid UTF-8 inside the body is the upstream's, and permanent; an incomplete
        // sequence at the very end is a cut-off body, reported (and retried) as such below.
        if let Err(e) = std::str::from_utf8(&bytes)
            && e.error_len().is_some()
        {
            let at = e.valid_up_to();
            let (lo, hi) = (at.saturating_sub(40), (at + 40).min(bytes.len()));
            return Err(ApiError::InvalidUtf8 {
                ctx,
                status,
                offset: at,
                excerpt: String::from_utf8_lossy(&bytes[lo..hi]).into_owned(),
            });
        }
        let env: Envelope = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => {
                let excerpt: String =
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
                return Err(if status == 429 {
                    ApiError::RateLimited {
                        ctx,
                        code: 0,
                        retry_after,
                    }
                } else if status >= 500 {
                    ApiError::Server {
                        ctx,
                        status,
                        code: 0,
                        message: excerpt,
                    }
                } else {
                    ApiError::Decode {
                        ctx,
                        status,
                        detail: format!("not a TikTok envelope ({e}): {excerpt}"),
                    }
                });
            }
        };
        if env.code != 0 {
            return Err(ApiError::classify(
                ctx,
                status,
                env.code,
                env.message,
                retry_after,
            ));
        }
        Ok(ApiResponse {
            request_id: env.request_id,
            data: env.data,
        })
    }
}
