//! OAuth and the token store.
//!
//! - [`authorize_url`]: where a seller grants the app access (legacy consent URL form).
//! - [`exchange_code`] / [`refresh_grant`]: the token host calls (`/api/v2/token/get`,
//!   `/api/v2/token/refresh`); expiries in the answer are absolute unix seconds.
//! - [`TokenStore`]: one file per shop under `<data-dir>/secrets/tokens/` (mode 0600, dir
//!   0700), refreshed before expiry and on the expired-token error. Concurrent callers share
//!   one refresh. Tokens are [`Secret`]s: they never reach a log line or an error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;
use url::Url;

use super::client::{ApiClient, ApiRequest, Credential};
use super::error::{ApiError, Result};
use super::sealed::{self, SealKey};
use crate::secret::Secret;

/// What the token host returns.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenGrant {
    /// Access token.
    pub access_token: Secret,
    /// Absolute unix seconds.
    pub access_token_expire_in: i64,
    /// Refresh token.
    pub refresh_token: Secret,
    /// Absolute unix seconds.
    pub refresh_token_expire_in: i64,
    /// Seller's open id.
    #[serde(default)]
    pub open_id: String,
    /// Seller name.
    #[serde(default)]
    pub seller_name: String,
}

/// An authorized shop (from Get Authorized Shops).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShopInfo {
    /// Shop id.
    pub id: String,
    /// Shop name.
    pub name: String,
    /// Region code (time zone and currency come from it).
    pub region: String,
    /// `shop_cipher`.
    pub cipher: String,
    /// `LOCAL` or `CROSS_BORDER`.
    #[serde(default)]
    pub seller_type: String,
}

/// A shop's stored credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredToken {
    /// The shop.
    pub shop: ShopInfo,
    /// Access token.
    pub access_token: Secret,
    /// Absolute unix seconds.
    pub access_token_expire_in: i64,
    /// Refresh token.
    pub refresh_token: Secret,
    /// Absolute unix seconds.
    pub refresh_token_expire_in: i64,
    /// When the access token was obtained (unix seconds).
    pub obtained_at: i64,
    /// Seller's open id.
    pub open_id: String,
}

impl StoredToken {
    /// Refresh this long before expiry: 5 minutes, or a fifth of the lifetime if shorter.
    pub fn refresh_margin(&self) -> i64 {
        ((self.access_token_expire_in - self.obtained_at) / 5).clamp(0, 300)
    }
    /// Whether the access token should be refreshed at `now`.
    pub fn needs_refresh(&self, now: i64) -> bool {
        now >= self.access_token_expire_in - self.refresh_margin()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The consent URL a seller opens to authorize the app (legacy form with `app_key`).
pub fn authorize_url(auth_base: &Url, app_key: &str, state: &str) -> Url {
    let mut u = auth_base.clone();
    u.set_path("/oauth/authorize");
    u.query_pairs_mut()
        .clear()
        .append_pair("app_key", app_key)
        .append_pair("state", state);
    u
}

/// Exchanges an authorization code for tokens.
pub async fn exchange_code(client: &ApiClient, code: &str) -> Result<TokenGrant> {
    let req = ApiRequest::get("/api/v2/token/get")
        .auth_host()
        .query("app_secret", client.config().app_secret.expose())
        .query("auth_code", code)
        .query("grant_type", "authorized_code");
    grant_from(client.send(&req).await?.data, &req.path)
}

/// Gets a new access token with a refresh token.
pub async fn refresh_grant(client: &ApiClient, refresh_token: &Secret) -> Result<TokenGrant> {
    let req = ApiRequest::get("/api/v2/token/refresh")
        .auth_host()
        .query("app_secret", client.config().app_secret.expose())
        .query("refresh_token", refresh_token.expose())
        .query("grant_type", "refresh_token");
    grant_from(client.send(&req).await?.data, &req.path)
}

fn grant_from(data: Value, path: &str) -> Result<TokenGrant> {
    serde_json::from_value(data).map_err(|e| ApiError::Decode {
        ctx: super::error::RequestContext {
            path: path.into(),
            shop: None,
        },
        status: 200,
        detail: format!("token answer: {e}"),
    })
}

/// Lists the shops an access token may act for (`GET /authorization/202309/shops`).
pub async fn authorized_shops(client: &ApiClient, credential: Credential) -> Result<Vec<ShopInfo>> {
    let req = ApiRequest::get("/authorization/202309/shops").credential(credential);
    let resp = client.send(&req).await?;
    let shops = resp
        .data
        .get("shops")
        .cloned()
        .unwrap_or(Value::Array(vec![]));
    serde_json::from_value(shops).map_err(|e| ApiError::Decode {
        ctx: super::error::RequestContext {
            path: req.path.clone(),
            shop: None,
        },
        status: 200,
        detail: format!("shops: {e}"),
    })
}

/// Exchanges `code`, lists the shops the grant covers and stores a token per shop.
pub async fn exchange_and_store(client: &ApiClient, code: &str) -> Result<Vec<ShopInfo>> {
    let store = client
        .tokens()
        .ok_or_else(|| ApiError::TokenStore("no token store configured".into()))?
        .clone();
    let grant = exchange_code(client, code).await?;
    let shops = authorized_shops(client, Credential::Token(grant.access_token.clone())).await?;
    let obtained_at = now();
    for shop in &shops {
        store.save(StoredToken {
            shop: shop.clone(),
            access_token: grant.access_token.clone(),
            access_token_expire_in: grant.access_token_expire_in,
            refresh_token: grant.refresh_token.clone(),
            refresh_token_expire_in: grant.refresh_token_expire_in,
            obtained_at,
            open_id: grant.open_id.clone(),
        })?;
    }
    info!(shops = shops.len(), seller = %grant.seller_name, "authorized");
    Ok(shops)
}

/// Per-shop token files with an in-memory cache.
#[derive(Debug)]
pub struct TokenStore {
    dir: PathBuf,
    cache: Mutex<HashMap<String, StoredToken>>,
    refresh_lock: tokio::sync::Mutex<()>,
    /// Seals the files (see [`super::sealed`]).
    key: Mutex<SealKey>,
    /// The key came from `SHOPLAKE_TOKEN_KEY` (rotation is then the operator's).
    key_from_env: bool,
}

fn file_name(cipher: &str) -> String {
    let safe: String = cipher
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.json")
}

impl TokenStore {
    /// Opens (creating, mode 0700) the token directory and loads every stored token,
    /// opening sealed files with the key (or the previous key, after an interrupted
    /// rotation) and sealing any plaintext file left from before sealing.
    pub fn open(dir: impl AsRef<Path>) -> Result<TokenStore> {
        let dir = dir.as_ref().to_path_buf();
        let io = |what: &str, e: std::io::Error| {
            ApiError::TokenStore(format!("{what} {}: {e}", dir.display()))
        };
        std::fs::create_dir_all(&dir).map_err(|e| io("creating token dir", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io("securing token dir", e))?;
        }
        let key_file = sealed::key_path(&dir);
        let (key, key_from_env) =
            SealKey::load_or_create(&key_file).map_err(ApiError::TokenStore)?;
        let old_key = std::fs::read_to_string(key_file.with_extension("key.old"))
            .ok()
            .and_then(|t| SealKey::from_base64(&t, "token.key.old").ok());
        let mut cache = HashMap::new();
        let mut plaintext = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| io("reading token dir", e))? {
            let path = entry.map_err(|e| io("reading token dir", e))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes = std::fs::read(&path)
                .map_err(|e| ApiError::TokenStore(format!("reading {}: {e}", path.display())))?;
            let opened = match key.open(&bytes) {
                Err(e) => match old_key.as_ref().map(|k| k.open(&bytes)) {
                    Some(Ok(Some(p))) => Some(p),
                    _ => {
                        return Err(ApiError::TokenStore(format!(
                            "{} cannot be opened: {e}",
                            path.display()
                        )));
                    }
                },
                Ok(o) => o,
            };
            let was_plain = opened.is_none();
            let plain = opened.unwrap_or(bytes);
            let tok: StoredToken = serde_json::from_slice(&plain).map_err(|e| {
                ApiError::TokenStore(format!(
                    "{} is not a shoplake token file: {e}",
                    path.display()
                ))
            })?;
            if was_plain {
                plaintext.push(tok.clone());
            }
            cache.insert(tok.shop.cipher.clone(), tok);
        }
        let store = TokenStore {
            dir,
            cache: Mutex::new(cache),
            refresh_lock: tokio::sync::Mutex::new(()),
            key: Mutex::new(key),
            key_from_env,
        };
        for tok in plaintext {
            store.save(tok)?;
        }
        Ok(store)
    }

    /// Seals every token file under a new key and replaces the key file; the previous
    /// key stays in `token.key.old` until the next rotation, so an interrupted rotation
    /// still opens. With `SHOPLAKE_TOKEN_KEY` the key is the operator's: an error.
    pub fn rotate_key(&self) -> Result<usize> {
        if self.key_from_env {
            return Err(ApiError::TokenStore(format!(
                "the token key comes from {}: to rotate, re-seal with the old key set, then set the new one (or unset it to use secrets/token.key)",
                sealed::KEY_ENV
            )));
        }
        let key_file = sealed::key_path(&self.dir);
        let err = |what: &Path, e: std::io::Error| {
            ApiError::TokenStore(format!("rotating the token key ({}): {e}", what.display()))
        };
        let new = SealKey::generate();
        let tokens: Vec<StoredToken> = self.lock().values().cloned().collect();
        let mut staged = Vec::new();
        for tok in &tokens {
            let path = self.dir.join(file_name(&tok.shop.cipher));
            let rot = path.with_extension("json.rot");
            let text = serde_json::to_vec_pretty(tok).expect("token serializes");
            sealed::write_private(&rot, &new.seal(&text)).map_err(|e| err(&rot, e))?;
            staged.push((rot, path));
        }
        let old = key_file.with_extension("key.old");
        std::fs::rename(&key_file, &old).map_err(|e| err(&key_file, e))?;
        sealed::write_private(&key_file, new.to_base64().as_bytes())
            .map_err(|e| err(&key_file, e))?;
        for (rot, path) in &staged {
            std::fs::rename(rot, path).map_err(|e| err(path, e))?;
        }
        *self.key.lock().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(staged.len())
    }

    /// The directory tokens live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every shop with a stored token, sorted by cipher.
    pub fn shops(&self) -> Vec<ShopInfo> {
        let mut v: Vec<ShopInfo> = self.lock().values().map(|t| t.shop.clone()).collect();
        v.sort_by(|a, b| a.cipher.cmp(&b.cipher));
        v
    }

    /// A shop's stored token.
    pub fn get(&self, cipher: &str) -> Option<StoredToken> {
        self.lock().get(cipher).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredToken>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a shop's token (sealed, atomically, mode 0600) and caches it.
    pub fn save(&self, tok: StoredToken) -> Result<()> {
        let path = self.dir.join(file_name(&tok.shop.cipher));
        let text = serde_json::to_vec_pretty(&tok).expect("token serializes");
        let bytes = self
            .key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seal(&text);
        sealed::write_private(&path, &bytes)
            .map_err(|e| ApiError::TokenStore(format!("writing {}: {e}", path.display())))?;
        self.lock().insert(tok.shop.cipher.clone(), tok);
        Ok(())
    }

    /// A valid access token for `cipher`, refreshed first when close to expiry.
    pub async fn access_token(&self, client: &ApiClient, cipher: &str) -> Result<Secret> {
        let tok = self.get(cipher).ok_or_else(|| {
            ApiError::TokenStore(format!(
                "no token for shop {cipher}: run `shoplake auth exchange --code <code>` first"
            ))
        })?;
        if tok.needs_refresh(now()) {
            return self.refresh(client, cipher, Some(&tok.access_token)).await;
        }
        Ok(tok.access_token)
    }

    /// Refreshes `cipher`'s access token unless someone else already replaced `stale`.
    /// Every shop sharing the same grant (refresh token) gets the new access token.
    pub async fn refresh(
        &self,
        client: &ApiClient,
        cipher: &str,
        stale: Option<&Secret>,
    ) -> Result<Secret> {
        let _guard = self.refresh_lock.lock().await;
        let tok = self
            .get(cipher)
            .ok_or_else(|| ApiError::TokenStore(format!("no token for shop {cipher}")))?;
        let already = stale.is_some_and(|s| *s != tok.access_token) && !tok.needs_refresh(now());
        if already {
            return Ok(tok.access_token);
        }
        if tok.refresh_token_expire_in <= now() {
            return Err(ApiError::TokenStore(format!(
                "refresh token for shop {cipher} expired: the seller must authorize again (`shoplake auth url`)"
            )));
        }
        // Boxed: the refresh goes through the same request path that called us.
        let grant = Box::pin(refresh_grant(client, &tok.refresh_token)).await?;
        let obtained_at = now();
        let siblings: Vec<StoredToken> = self
            .lock()
            .values()
            .filter(|t| t.refresh_token == tok.refresh_token)
            .cloned()
            .collect();
        for mut t in siblings {
            t.access_token = grant.access_token.clone();
            t.access_token_expire_in = grant.access_token_expire_in;
            t.refresh_token = grant.refresh_token.clone();
            t.refresh_token_expire_in = grant.refresh_token_expire_in;
            t.obtained_at = obtained_at;
            self.save(t)?;
        }
        info!(shop = %cipher, expires_at = grant.access_token_expire_in, "access token refreshed");
        Ok(grant.access_token)
    }

    /// Refreshes every stored grant now (`shoplake auth refresh`).
    pub async fn refresh_all(&self, client: &ApiClient) -> Result<usize> {
        let mut done: Vec<Secret> = Vec::new();
        for shop in self.shops() {
            let Some(tok) = self.get(&shop.cipher) else {
                continue;
            };
            if done.contains(&tok.refresh_token) {
                continue;
            }
            done.push(tok.refresh_token.clone());
            self.refresh(client, &shop.cipher, None).await?;
        }
        Ok(done.len())
    }
}
