//! `shoplake.toml` + `SHOPLAKE_<SECTION>__<KEY>` environment overrides, validated once.
//! Every error names the key (file or env var) and shows an example of a good value.
//! All keys are optional: the defaults talk to the embedded sandbox.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::api::ClientConfig;
use crate::api::retry::RetryPolicy;
use crate::sandbox::{DEFAULT_APP_KEY, DEFAULT_APP_SECRET};
use crate::secret::Secret;

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("config {key}: {message}")]
pub struct ConfigError {
    /// `api.base_url`, or the env var / file that was wrong.
    pub key: String,
    /// What is wrong and an example of a good value.
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[api]`: where and how to call the TikTok Shop API.
    pub api: ApiSection,
    /// `[warehouse]`: where the Delta lake lives.
    pub warehouse: WarehouseSection,
    /// `[serve]`: the Flight SQL endpoint.
    pub serve: ServeSection,
    /// `[project]`: where pipelines/, schemas/ and sql/ are.
    pub project: ProjectSection,
}

/// `[warehouse]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarehouseSection {
    /// Lake root: a directory (default `<data-dir>/lake`) or a `file://` URI.
    pub uri: Option<String>,
}

/// `[serve]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeSection {
    /// Flight SQL listen address.
    pub flight_addr: String,
    /// User name for basic auth; no auth when unset (bind to loopback then).
    pub username: Option<String>,
    /// Password (prefer `SHOPLAKE_SERVE__PASSWORD`).
    pub password: Option<Secret>,
}

impl Default for ServeSection {
    fn default() -> Self {
        ServeSection {
            flight_addr: "127.0.0.1:50051".into(),
            username: None,
            password: None,
        }
    }
}

/// `[project]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectSection {
    /// Directory holding pipelines/, schemas/ and sql/ (default: the current directory
    /// when it has pipelines/, else the directory shoplake was built from).
    pub dir: Option<PathBuf>,
}

impl Config {
    /// The project directory (pipelines/, schemas/, sql/).
    pub fn project_dir(&self) -> Result<PathBuf, ConfigError> {
        let dir = match &self.project.dir {
            Some(d) => d.clone(),
            None if Path::new("pipelines").is_dir() => PathBuf::from("."),
            None => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        };
        if !dir.join("pipelines").is_dir() {
            return Err(err(
                "project.dir",
                format!(
                    "{} has no pipelines/ directory; point it at a shoplake checkout, e.g. dir = \"/opt/shoplake\"",
                    dir.display()
                ),
            ));
        }
        Ok(dir)
    }

    /// The lake URI: `[warehouse] uri` or `<data_dir>/lake`.
    pub fn lake_uri(&self, data_dir: &Path) -> String {
        self.warehouse
            .uri
            .clone()
            .unwrap_or_else(|| data_dir.join("lake").display().to_string())
    }

    /// Flight SQL basic auth from `[serve]`; both or neither of user and password.
    pub fn serve_auth(&self) -> Result<Option<(String, Secret)>, ConfigError> {
        match (&self.serve.username, &self.serve.password) {
            (None, None) => Ok(None),
            (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => {
                Ok(Some((u.clone(), p.clone())))
            }
            (Some(_), _) => Err(err(
                "serve.password",
                "serve.username is set but the password is missing: set SHOPLAKE_SERVE__PASSWORD",
            )),
            (None, Some(_)) => Err(err(
                "serve.username",
                "a password is set but no user name, e.g. username = \"analyst\"",
            )),
        }
    }
}

/// `[api]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// API host. Default: the local sandbox `http://127.0.0.1:8090`; the real API is
    /// `https://open-api.tiktokglobalshop.com`.
    pub base_url: String,
    /// Token host. Default: same as `base_url` for the sandbox; the real one is
    /// `https://auth.tiktok-shops.com`.
    pub auth_base_url: Option<String>,
    /// App key from Partner Center (default: the sandbox's).
    pub app_key: String,
    /// App secret. Prefer `SHOPLAKE_API__APP_SECRET` or `app_secret_file`.
    pub app_secret: Option<Secret>,
    /// File holding the app secret (first line).
    pub app_secret_file: Option<PathBuf>,
    /// Shop ciphers to extract (default: every authorized shop).
    pub shops: Vec<String>,
    /// Requests per second per endpoint family, client side (default 40; the API allows ~50).
    #[serde(deserialize_with = "de::f64_or_str")]
    pub max_rps: f64,
    /// Per-request timeout, e.g. `"30s"`.
    pub timeout: String,
    /// Attempts per request, the first included.
    #[serde(deserialize_with = "de::u32_or_str")]
    pub max_attempts: u32,
    /// First backoff, e.g. `"500ms"`.
    pub backoff_base: String,
    /// Longest backoff, e.g. `"60s"`.
    pub backoff_max: String,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            base_url: "http://127.0.0.1:8090".into(),
            auth_base_url: None,
            app_key: DEFAULT_APP_KEY.into(),
            app_secret: None,
            app_secret_file: None,
            shops: Vec::new(),
            max_rps: 40.0,
            timeout: "30s".into(),
            max_attempts: 8,
            backoff_base: "500ms".into(),
            backoff_max: "60s".into(),
        }
    }
}

mod de {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        // Integers first: an untagged f64 would also accept `2`.
        I(i64),
        F(f64),
        S(String),
    }

    pub fn f64_or_str<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Num::deserialize(d)? {
            Num::F(f) => Ok(f),
            Num::I(i) => Ok(i as f64),
            Num::S(s) => s
                .trim()
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("expected a number, got {s:?}"))),
        }
    }

    pub fn u32_or_str<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        match Num::deserialize(d)? {
            Num::I(i) if i >= 0 => u32::try_from(i).map_err(serde::de::Error::custom),
            Num::S(s) => s.trim().parse().map_err(|_| {
                serde::de::Error::custom(format!("expected a whole number, got {s:?}"))
            }),
            _ => Err(serde::de::Error::custom("expected a whole number")),
        }
    }
}

fn is_loopback(u: &Url) -> bool {
    matches!(
        u.host_str(),
        Some("127.0.0.1" | "localhost" | "::1" | "[::1]")
    )
}

fn duration(key: &str, v: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(v).map_err(|e| {
        err(
            key,
            format!("{v:?} is not a duration ({e}); e.g. \"30s\" or \"500ms\""),
        )
    })
}

impl Config {
    /// Loads `file` (if given, or `./shoplake.toml` if present) and applies env overrides.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// Like [`Config::load`] with an explicit environment (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let default_path = Path::new("shoplake.toml");
        let path = match file {
            Some(p) => Some(p.to_path_buf()),
            None if default_path.exists() => Some(default_path.to_path_buf()),
            None => None,
        };
        let mut table = match &path {
            Some(p) => {
                let key = p.display().to_string();
                let text = std::fs::read_to_string(p)
                    .map_err(|e| err(&key, format!("cannot read: {e}")))?;
                text.parse::<toml::Table>()
                    .map_err(|e| err(&key, format!("not valid TOML: {e}")))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("SHOPLAKE_") else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                continue;
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(t) = entry else {
                return Err(err(
                    &name,
                    format!("[{section}] is not a table in the config file"),
                ));
            };
            let v = if key == "shops" {
                toml::Value::Array(
                    value
                        .split(',')
                        .map(|s| toml::Value::String(s.trim().to_string()))
                        .collect(),
                )
            } else {
                toml::Value::String(value)
            };
            t.insert(key, v);
        }
        let source = path
            .as_ref()
            .map_or("shoplake.toml/env".to_string(), |p| p.display().to_string());
        Config::deserialize(table).map_err(|e| err(&source, e.to_string()))
    }

    /// Validates `[api]` into the client's configuration.
    pub fn client_config(&self) -> Result<ClientConfig, ConfigError> {
        let a = &self.api;
        let base_url = Url::parse(&a.base_url).map_err(|e| {
            err(
                "api.base_url",
                format!(
                    "{:?} is not a URL ({e}); e.g. \"https://open-api.tiktokglobalshop.com\"",
                    a.base_url
                ),
            )
        })?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.host_str().is_none() {
            return Err(err(
                "api.base_url",
                "must include http(s) scheme and host, e.g. \"https://open-api.tiktokglobalshop.com\"",
            ));
        }
        let auth_base_url = match &a.auth_base_url {
            Some(u) => Url::parse(u).map_err(|e| {
                err(
                    "api.auth_base_url",
                    format!("{u:?} is not a URL ({e}); e.g. \"https://auth.tiktok-shops.com\""),
                )
            })?,
            None if is_loopback(&base_url) => base_url.clone(),
            None => {
                return Err(err(
                    "api.auth_base_url",
                    "required for a non-sandbox base_url, e.g. \"https://auth.tiktok-shops.com\"",
                ));
            }
        };
        let app_secret = match (&a.app_secret, &a.app_secret_file) {
            (Some(s), _) if !s.is_empty() => s.clone(),
            (_, Some(f)) => {
                let text = std::fs::read_to_string(f).map_err(|e| {
                    err(
                        "api.app_secret_file",
                        format!("cannot read {}: {e}", f.display()),
                    )
                })?;
                Secret::new(text.lines().next().unwrap_or("").trim())
            }
            _ if is_loopback(&base_url) => Secret::new(DEFAULT_APP_SECRET),
            _ => {
                return Err(err(
                    "api.app_secret",
                    "required for a non-sandbox base_url: set SHOPLAKE_API__APP_SECRET or api.app_secret_file",
                ));
            }
        };
        if !(a.max_rps >= 0.0 && a.max_rps.is_finite()) {
            return Err(err(
                "api.max_rps",
                format!("{} must be a number ≥ 0, e.g. 40", a.max_rps),
            ));
        }
        if a.max_attempts == 0 {
            return Err(err("api.max_attempts", "must be at least 1, e.g. 8"));
        }
        if a.app_key.is_empty() {
            return Err(err("api.app_key", "must not be empty"));
        }
        Ok(ClientConfig {
            base_url,
            auth_base_url,
            app_key: a.app_key.clone(),
            app_secret,
            timeout: duration("api.timeout", &a.timeout)?,
            retry: RetryPolicy {
                max_attempts: a.max_attempts,
                base: duration("api.backoff_base", &a.backoff_base)?,
                max: duration("api.backoff_max", &a.backoff_max)?,
            },
            max_rps: a.max_rps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("shoplake.toml");
        std::fs::write(&p, toml).unwrap();
        Config::load_with_env(
            Some(&p),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_talk_to_the_sandbox() {
        let c = load("", &[]).unwrap().client_config().unwrap();
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:8090/");
        assert_eq!(c.app_secret.expose(), DEFAULT_APP_SECRET);
    }

    #[test]
    fn env_overrides_and_errors_name_the_key() {
        let c = load(
            "[api]\nmax_rps = 10\n",
            &[
                ("SHOPLAKE_API__MAX_RPS", "25"),
                ("SHOPLAKE_API__APP_SECRET", "123"),
            ],
        )
        .unwrap()
        .client_config()
        .unwrap();
        assert_eq!(c.max_rps, 25.0);
        assert_eq!(c.app_secret.expose(), "123");

        let e = load("[api]\nbase_url = \"nope\"\n", &[])
            .unwrap()
            .client_config()
            .unwrap_err();
        assert_eq!(e.key, "api.base_url");
        let e = load("[api]\ntimeout = \"soon\"\n", &[])
            .unwrap()
            .client_config()
            .unwrap_err();
        assert_eq!(e.key, "api.timeout");
        let e = load("[api]\nbase_url = \"https://open-api.tiktokglobalshop.com\"\nauth_base_url = \"https://auth.tiktok-shops.com\"\n", &[])
            .unwrap()
            .client_config()
            .unwrap_err();
        assert_eq!(e.key, "api.app_secret");
        let e = load("[api]\nbase_urll = \"x\"\n", &[]).unwrap_err();
        assert!(e.message.contains("base_urll"), "{e}");
        let c = load("[api]\nmax_attempts = 2\nmax_rps = 2.5\n", &[])
            .unwrap()
            .client_config()
            .unwrap();
        assert_eq!((c.retry.max_attempts, c.max_rps), (2, 2.5));
        let e = load("[api]\nmax_rps = \"fast\"\n", &[]).unwrap_err();
        assert!(e.message.contains("fast"), "{e}");
    }
}
