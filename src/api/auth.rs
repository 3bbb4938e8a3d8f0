//! OAuth and the token store.
//!
//! - [`authorize_url`]: where a seller grants the app access (legacy consent URL form).
//! - [`exchange_code`] / [`refresh_grant`]: the token host calls (`/api/v2/token/get`,
//!   `/api/v2/token/refresh`); expiries in the answer are absolute unix seconds.
//! - [`TokenStore`]: one file per shop under `<data-dir>/secrets/tokens/` (mode 0600, dir
//!   0700), refreshed before expiry and on the expired-token error. Concurrent callers share
//!   one refresh. Tokens are [`Secret`]s: they never reach a log line or an error.
//!
//! Several processes may share a data dir (a worker, a manual `extract`, `auth refresh`).
//! A refresh can rotate the refresh token, so refreshing from a cached copy would use a
//! token another process already replaced. Refreshes (and key rotation, and storing a new
//! grant) therefore hold an exclusive `flock` on `secrets/tokens.lock` and re-read the
//! token files first: a token another process refreshed meanwhile is taken as it is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{debug, info};
use url::Url;

use super::client::{ApiClient, ApiRequest, Credential};
use super::error::{ApiError, Result};
use super::sealed::{self, SealKey};
use crate::files::FileLock;
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
    // Not amid another process's refresh of the same files.
    let _lock = store.lock_dir().await?;
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
    /// The files as this process last read or wrote them; re-read before a refresh.
    cache: Mutex<HashMap<String, StoredToken>>,
    /// One refresh at a time in this process (the directory lock is across processes).
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

/// A token file's bytes, opened with the first of `keys` that opens them (or taken as
/// they are when they are not sealed). Returns the token and whether the file was
/// plaintext; the error names the file and the first key's complaint.
fn parse_token(
    path: &Path,
    bytes: &[u8],
    keys: &[&SealKey],
) -> std::result::Result<(StoredToken, bool), String> {
    let mut first_err = None;
    let mut opened = None;
    for key in keys {
        match key.open(bytes) {
            Ok(o) => {
                opened = Some(o);
                break;
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let Some(opened) = opened else {
        return Err(format!(
            "{} cannot be opened: {}",
            path.display(),
            first_err.unwrap_or_default()
        ));
    };
    let was_plain = opened.is_none();
    let plain = opened.unwrap_or_else(|| bytes.to_vec());
    let tok = serde_json::from_slice(&plain)
        .map_err(|e| format!("{} is not a shoplake token file: {e}", path.display()))?;
    Ok((tok, was_plain))
}

/// The token files (`*.json`) of `dir`.
fn token_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |e: std::io::Error| {
        ApiError::TokenStore(format!("reading token dir {}: {e}", dir.display()))
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("json") {
            files.push(path);
        }
    }
    Ok(files)
}

/// The previous sealing key (`token.key.old`), if a rotation left one.
fn previous_key(key_file: &Path) -> Option<SealKey> {
    std::fs::read_to_string(key_file.with_extension("key.old"))
        .ok()
        .and_then(|t| SealKey::from_base64(&t, "token.key.old").ok())
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
        let old_key = previous_key(&key_file);
        let keys: Vec<&SealKey> = std::iter::once(&key).chain(old_key.as_ref()).collect();
        let mut cache = HashMap::new();
        let mut plaintext = Vec::new();
        for path in token_files(&dir)? {
            let bytes = std::fs::read(&path)
                .map_err(|e| ApiError::TokenStore(format!("reading {}: {e}", path.display())))?;
            let (tok, was_plain) =
                parse_token(&path, &bytes, &keys).map_err(ApiError::TokenStore)?;
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
    ///
    /// Holds the directory lock (waiting for a refresh in another process to finish) and
    /// re-seals the tokens as the files hold them then, not as this process cached them.
    pub fn rotate_key(&self) -> Result<usize> {
        if self.key_from_env {
            return Err(ApiError::TokenStore(format!(
                "the token key comes from {}: to rotate, re-seal with the old key set, then set the new one (or unset it to use secrets/token.key)",
                sealed::KEY_ENV
            )));
        }
        let _lock = FileLock::acquire(&self.lock_path(), true).map_err(|e| self.lock_error(e))?;
        self.reload()?;
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

    /// `tokens.lock` beside the token directory (like the key file): `flock`ed by whoever
    /// refreshes, stores a grant or re-seals, in any process.
    fn lock_path(&self) -> PathBuf {
        self.dir.with_extension("lock")
    }

    fn lock_error(&self, e: impl std::fmt::Display) -> ApiError {
        ApiError::TokenStore(format!("locking {}: {e}", self.lock_path().display()))
    }

    /// Takes the directory lock. The wait (another process may be mid-refresh, waiting on
    /// the token host) happens on a blocking thread, not on the runtime's.
    async fn lock_dir(&self) -> Result<FileLock> {
        let path = self.lock_path();
        tokio::task::spawn_blocking(move || FileLock::acquire(&path, true))
            .await
            .map_err(|e| self.lock_error(e))?
            .map_err(|e| self.lock_error(e))
    }

    /// Re-reads every token file into the cache, so a refresh starts from what other
    /// processes stored. Call with the directory lock held. When the store's key does not
    /// open a file, another process rotated it: the key file's key is taken (and the
    /// previous key tried, for files an interrupted rotation left behind).
    fn reload(&self) -> Result<()> {
        let mut keys = vec![self.key.lock().unwrap_or_else(|e| e.into_inner()).clone()];
        let mut rotated = false;
        let mut tokens = Vec::new();
        for path in token_files(&self.dir)? {
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(ApiError::TokenStore(format!(
                        "reading {}: {e}",
                        path.display()
                    )));
                }
            };
            let parsed = parse_token(&path, &bytes, &keys.iter().collect::<Vec<_>>());
            let tok = match parsed {
                Ok((tok, _)) => tok,
                Err(e) if rotated || self.key_from_env => return Err(ApiError::TokenStore(e)),
                Err(e) => {
                    let key_file = sealed::key_path(&self.dir);
                    let fresh = std::fs::read_to_string(&key_file)
                        .ok()
                        .and_then(|t| SealKey::from_base64(&t, "token.key").ok())
                        .ok_or_else(|| ApiError::TokenStore(e.clone()))?;
                    keys.insert(0, fresh);
                    keys.extend(previous_key(&key_file));
                    rotated = true;
                    debug!("token key rotated by another process; taking the new key");
                    parse_token(&path, &bytes, &keys.iter().collect::<Vec<_>>())
                        .map_err(|_| ApiError::TokenStore(e))?
                        .0
                }
            };
            tokens.push(tok);
        }
        if rotated {
            *self.key.lock().unwrap_or_else(|e| e.into_inner()) = keys.swap_remove(0);
        }
        let mut cache = self.lock();
        for tok in tokens {
            cache.insert(tok.shop.cipher.clone(), tok);
        }
        Ok(())
    }

    /// Writes a shop's token (sealed, atomically, mode 0600) and caches it. Does not take
    /// the directory lock: [`TokenStore::refresh`] and [`exchange_and_store`] hold it
    /// around their saves.
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

    /// Refreshes `cipher`'s access token unless someone else (a task of this process or
    /// another process) already replaced `stale`. Every shop sharing the same grant
    /// (refresh token) gets the new access token.
    ///
    /// One refresh at a time per store, and across processes under the directory lock,
    /// held until the new tokens are stored; the stored token is re-read first, so the
    /// refresh uses the current refresh token even if another process rotated it.
    pub async fn refresh(
        &self,
        client: &ApiClient,
        cipher: &str,
        stale: Option<&Secret>,
    ) -> Result<Secret> {
        let _guard = self.refresh_lock.lock().await;
        let _lock = self.lock_dir().await?;
        self.reload()?;
        let tok = self
            .get(cipher)
            .ok_or_else(|| ApiError::TokenStore(format!("no token for shop {cipher}")))?;
        let already = stale.is_some_and(|s| *s != tok.access_token) && !tok.needs_refresh(now());
        if already {
            debug!(shop = %cipher, "access token already refreshed elsewhere; using it");
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

    /// Refreshes every stored grant now (`shoplake auth refresh`); returns how many.
    pub async fn refresh_all(&self, client: &ApiClient) -> Result<usize> {
        let mut done: Vec<Secret> = Vec::new();
        let mut grants = 0;
        for shop in self.shops() {
            let Some(tok) = self.get(&shop.cipher) else {
                continue;
            };
            if done.contains(&tok.refresh_token) {
                continue;
            }
            done.push(tok.refresh_token.clone());
            self.refresh(client, &shop.cipher, None).await?;
            grants += 1;
            // The grant's other shops now hold its new refresh token, should it rotate.
            if let Some(t) = self.get(&shop.cipher) {
                done.push(t.refresh_token);
            }
        }
        Ok(grants)
    }
}
