//! `shoplake.toml` + `SHOPLAKE_<SECTION>__<KEY>` environment overrides, validated once.
//! Every error names the key (file or env var) and shows an example of a good value.
//! All keys are optional: the defaults talk to the embedded sandbox.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::api::ClientConfig;
use crate::api::retry::RetryPolicy;
use crate::secret::Secret;
use crate::serve::{Access, AuditLog, Credential, Limits, ServeOptions, TlsFiles, User};
use crate::warehouse::StorageOptions;
use shoplake_tiktok::{
    SANDBOX_APP_KEY as DEFAULT_APP_KEY, SANDBOX_APP_SECRET as DEFAULT_APP_SECRET,
};

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
    /// `[jobs]`: the queue, workers and schedules.
    pub jobs: JobsSection,
    /// `[extract]`: settle margin, lookback and the snapshot delete guard.
    pub extract: ExtractSection,
}

/// `[extract]`: the rules every window plan and every snapshot commit follows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtractSection {
    /// No window ends closer than this to now: search indexes lag their writes.
    #[serde(with = "crate::duration")]
    pub settle: Duration,
    /// How far before its cursor a run of a unix-time incremental stream re-reads, when
    /// the stream sets no `lookback` of its own.
    #[serde(with = "crate::duration")]
    pub lookback: Duration,
    /// A snapshot that would delete more than this share (0–1) of a shop's rows fails
    /// instead; `1` allows any deletion.
    pub max_snapshot_delete: String,
}

impl Default for ExtractSection {
    fn default() -> Self {
        ExtractSection {
            settle: Duration::from_secs(2 * 60),
            lookback: Duration::from_secs(15 * 60),
            max_snapshot_delete: "0.5".into(),
        }
    }
}

/// `[jobs]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsSection {
    /// `sqlite` (a file in `<data-dir>/state/`, one machine) or `postgres://…` (many
    /// workers on many machines share it).
    pub backend: String,
    /// Jobs one worker process runs at once.
    #[serde(deserialize_with = "de::u32_or_str")]
    pub concurrency: u32,
    /// Extract jobs running at once for one shop, over all workers.
    #[serde(deserialize_with = "de::u32_or_str")]
    pub per_shop: u32,
    /// Extract jobs running at once against one endpoint family, over all workers.
    #[serde(deserialize_with = "de::u32_or_str")]
    pub per_family: u32,
    /// Runs of a job before it is dead (shown by `shoplake status`, requeued by `shoplake retry`).
    #[serde(deserialize_with = "de::u32_or_str")]
    pub max_attempts: u32,
    /// First wait before a failed job runs again (doubles each time), e.g. `"5s"`.
    #[serde(with = "crate::duration")]
    pub retry_backoff: Duration,
    /// Worker heartbeat; a worker silent for two is dead and its jobs run elsewhere.
    #[serde(with = "crate::duration")]
    pub heartbeat: Duration,
    /// How far back a scheduled extract starts for a stream with no cursor yet.
    #[serde(with = "crate::duration")]
    pub initial_lookback: Duration,
    /// Schedule per stream, overriding the pipeline files: `orders = "5m"` or a cron
    /// expression in the shop's time zone, `analytics = "0 30 1 * * *"`.
    pub schedule: BTreeMap<String, String>,
    /// Address of `/metrics` and `/health` for `shoplake run | worker | scheduler`.
    pub http_addr: String,
    /// When table maintenance (`shoplake maintain`: compaction, checkpoints, vacuum) is
    /// queued: an interval (`"1d"`, aligned to UTC midnight) or a cron expression in UTC;
    /// `""` turns it off.
    pub maintain: String,
}

impl Default for JobsSection {
    fn default() -> Self {
        JobsSection {
            backend: "sqlite".into(),
            concurrency: 4,
            per_shop: 2,
            per_family: 4,
            max_attempts: 5,
            retry_backoff: Duration::from_secs(5),
            heartbeat: Duration::from_secs(30),
            initial_lookback: Duration::from_secs(30 * 86_400),
            schedule: BTreeMap::new(),
            http_addr: "127.0.0.1:8080".into(),
            maintain: "1d".into(),
        }
    }
}

/// `[jobs]`, validated.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Backend: `sqlite` or a `postgres://` URL.
    pub backend: String,
    /// Jobs per worker process.
    pub concurrency: usize,
    /// Jobs per shop, all workers.
    pub per_shop: u32,
    /// Jobs per endpoint family, all workers.
    pub per_family: u32,
    /// Runs before dead.
    pub max_attempts: u32,
    /// First retry wait.
    pub retry_backoff: Duration,
    /// Heartbeat.
    pub heartbeat: Duration,
    /// Start of a stream's first scheduled extract, back from now.
    pub initial_lookback: Duration,
    /// When table maintenance is queued (`None`: never).
    pub maintain: Option<crate::jobs::Schedule>,
    /// Schedule overrides per stream or category.
    pub schedule: BTreeMap<String, String>,
    /// `/metrics` address.
    pub http_addr: String,
}

/// `[warehouse]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarehouseSection {
    /// Lake root: a directory (default `<data-dir>/lake`), `file://…`, `s3://bucket/prefix`,
    /// `gs://bucket/prefix` or `az://container/prefix` (`abfss://…`).
    pub uri: Option<String>,
    /// `[warehouse.storage]`: the object store's options (`endpoint`, `region`,
    /// `allow_http`, `virtual_hosted_style_request`, credentials — prefer the standard
    /// `AWS_*`/`GOOGLE_*`/`AZURE_*` environment or `SHOPLAKE_WAREHOUSE__STORAGE__<KEY>`).
    pub storage: BTreeMap<String, toml::Value>,
}

/// `[serve]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeSection {
    /// Flight SQL listen address.
    pub flight_addr: String,
    /// Address of `shoplake serve`'s `/health` and `/metrics`; `""` turns them off.
    pub http_addr: String,
    /// Single-user shorthand: a user with every schema. No auth when no user is set
    /// (bind to loopback then).
    pub username: Option<String>,
    /// Password for `username` (prefer `SHOPLAKE_SERVE__PASSWORD`).
    pub password: Option<Secret>,
    /// Wall-time limit per query, e.g. `"60s"`.
    #[serde(with = "crate::duration")]
    pub query_timeout: Duration,
    /// Queries running at once; more are refused with "server busy".
    #[serde(deserialize_with = "de::u32_or_str")]
    pub max_concurrent_queries: u32,
    /// Memory one query may use for sorts, joins, aggregations, e.g. `"1GiB"`.
    pub query_memory: String,
    /// Memory all queries together may use, e.g. `"4GiB"`.
    pub server_memory: String,
    /// Audit log file (JSON lines); default `<data-dir>/state/audit.jsonl`.
    pub audit_log: Option<PathBuf>,
    /// TLS certificate chain (PEM); TLS is on when this and `tls_key` are set.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Role → schemas it may read. `analyst` (marts, seeds) and `engineer` (raw,
    /// staging, marts, seeds) exist unless redefined here.
    pub roles: BTreeMap<String, Vec<String>>,
    /// `[[serve.users]]`: name, role, and `password_hash` (argon2, from
    /// `shoplake hash-password`) or `password_env` (an env var holding the password).
    pub users: Vec<UserEntry>,
}

/// One `[[serve.users]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserEntry {
    /// Login name.
    pub name: String,
    /// Role (a key of `[serve.roles]` or a built-in role).
    pub role: String,
    /// Argon2 PHC string, e.g. `"$argon2id$v=19$m=19456,t=2,p=1$…"`.
    pub password_hash: Option<String>,
    /// Name of an environment variable holding the password.
    pub password_env: Option<String>,
}

impl Default for ServeSection {
    fn default() -> Self {
        ServeSection {
            flight_addr: "127.0.0.1:50051".into(),
            http_addr: "127.0.0.1:8081".into(),
            username: None,
            password: None,
            query_timeout: Duration::from_secs(60),
            max_concurrent_queries: 8,
            query_memory: "1GiB".into(),
            server_memory: "4GiB".into(),
            audit_log: None,
            tls_cert: None,
            tls_key: None,
            roles: BTreeMap::new(),
            users: Vec::new(),
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
    /// No longer used: incremental models find changed rows by Delta versions (see
    /// `models::incremental`). Accepted, with a warning, so older configs still load.
    pub incremental_lookback: Option<String>,
    /// Models built at once (default: the number of cores).
    pub threads: Option<usize>,
}

impl Config {
    /// Build settings from `[project]`.
    pub fn build_options(&self) -> Result<crate::models::BuildOptions, ConfigError> {
        let mut o = crate::models::BuildOptions::default();
        if self.project.incremental_lookback.is_some() {
            tracing::warn!(
                "project.incremental_lookback is no longer used: incremental models find changed rows by Delta versions; remove the key"
            );
        }
        if let Some(t) = self.project.threads {
            if t == 0 {
                return Err(ConfigError {
                    key: "project.threads".into(),
                    message: "must be at least 1".into(),
                });
            }
            o.threads = t;
        }
        Ok(o)
    }

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

    /// `[warehouse.storage]` checked against the store `uri` names (every key must be one
    /// of its options); values as strings.
    pub fn storage_options(&self, uri: &str) -> Result<StorageOptions, ConfigError> {
        let mut options = BTreeMap::new();
        for (key, value) in &self.warehouse.storage {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Boolean(_) | toml::Value::Integer(_) | toml::Value::Float(_) => {
                    value.to_string()
                }
                _ => {
                    return Err(err(
                        &format!("warehouse.storage.{key}"),
                        "must be a string, number or boolean, e.g. endpoint = \"http://127.0.0.1:9000\"",
                    ));
                }
            };
            options.insert(key.clone(), text);
        }
        StorageOptions::parse(uri, options)
            .map_err(|(key, message)| err(&format!("warehouse.storage.{key}"), message))
    }

    /// Validates `[serve]` into the server's options (users resolved, passwords from env
    /// read now, limits parsed); `data_dir` anchors the default audit log.
    pub fn serve_options(&self, data_dir: &Path) -> Result<ServeOptions, ConfigError> {
        self.serve_options_with_env(data_dir, |k| std::env::var(k).ok())
    }

    /// [`Config::serve_options`] with an explicit environment lookup (for tests).
    pub fn serve_options_with_env(
        &self,
        data_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServeOptions, ConfigError> {
        let s = &self.serve;
        let known: BTreeSet<String> = crate::serve::all_schemas().into_iter().collect();
        let roles = s.role_schemas(&known)?;
        let mut users: Vec<User> = s.shorthand_user(&known)?.into_iter().collect();
        for (i, u) in s.users.iter().enumerate() {
            let user = u.resolve(&format!("serve.users[{i}]"), &users, &roles, &env)?;
            users.push(user);
        }
        let limits = s.limits()?;
        let tls = s.tls()?;
        let audit_path = s
            .audit_log
            .clone()
            .unwrap_or_else(|| data_dir.join("state").join("audit.jsonl"));
        let audit = AuditLog::to_file(&audit_path).map_err(|e| {
            err(
                "serve.audit_log",
                format!("cannot open {}: {e}", audit_path.display()),
            )
        })?;
        Ok(ServeOptions {
            access: Access::new(users, known),
            limits,
            audit,
            tls,
        })
    }
}

impl ServeSection {
    /// Role → schemas: the built-in roles, then `[serve.roles]` (which may redefine them);
    /// `known` are the schemas that exist.
    fn role_schemas(
        &self,
        known: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, ConfigError> {
        let mut roles: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let set = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>();
        roles.insert("analyst".into(), set(&["marts", "seeds"]));
        roles.insert(
            "engineer".into(),
            set(&["raw", "staging", "marts", "seeds"]),
        );
        roles.insert("admin".into(), known.clone());
        for (name, schemas) in &self.roles {
            for sc in schemas {
                if !known.contains(sc) {
                    return Err(err(
                        &format!("serve.roles.{name}"),
                        format!(
                            "unknown schema {sc:?}; schemas are {}",
                            known.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
            roles.insert(name.clone(), schemas.iter().cloned().collect());
        }
        Ok(roles)
    }

    /// The `username` + `password` shorthand: a user with every schema, if set.
    fn shorthand_user(&self, known: &BTreeSet<String>) -> Result<Option<User>, ConfigError> {
        match (&self.username, &self.password) {
            (None, None) => Ok(None),
            (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Ok(Some(User {
                name: u.clone(),
                role: "admin".into(),
                schemas: known.clone(),
                credential: Credential::Plain(p.clone()),
            })),
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

    /// The query time, concurrency and memory limits, checked.
    fn limits(&self) -> Result<Limits, ConfigError> {
        let bytes = |k: &str, v: &str| {
            crate::serve::limits::parse_bytes(v).ok_or_else(|| {
                err(
                    k,
                    format!("{v:?} is not a size; e.g. \"512MiB\" or \"2GiB\""),
                )
            })
        };
        let limits = Limits {
            query_timeout: self.query_timeout,
            max_concurrent: match self.max_concurrent_queries {
                0 => {
                    return Err(err(
                        "serve.max_concurrent_queries",
                        "must be at least 1, e.g. 8",
                    ));
                }
                n => n as usize,
            },
            query_memory: bytes("serve.query_memory", &self.query_memory)?,
            server_memory: bytes("serve.server_memory", &self.server_memory)?,
        };
        if limits.query_memory > limits.server_memory {
            return Err(err(
                "serve.query_memory",
                format!(
                    "{} is more than serve.server_memory ({})",
                    self.query_memory, self.server_memory
                ),
            ));
        }
        Ok(limits)
    }

    /// The TLS files: both or neither, each a readable file.
    fn tls(&self) -> Result<Option<TlsFiles>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => {
                for (k, p) in [("serve.tls_cert", cert), ("serve.tls_key", key)] {
                    if !p.is_file() {
                        return Err(err(k, format!("{} is not a readable file", p.display())));
                    }
                }
                Ok(Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }))
            }
            (Some(_), None) => Err(err("serve.tls_key", "tls_cert is set but tls_key is not")),
            (None, Some(_)) => Err(err("serve.tls_cert", "tls_key is set but tls_cert is not")),
        }
    }
}

impl UserEntry {
    /// This entry as a user: `key` is `serve.users[i]`, `earlier` the users defined before
    /// it, `roles` role → schemas, `env` the environment its `password_env` is read from.
    fn resolve(
        &self,
        key: &str,
        earlier: &[User],
        roles: &BTreeMap<String, BTreeSet<String>>,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<User, ConfigError> {
        if self.name.is_empty() {
            return Err(err(&format!("{key}.name"), "missing, e.g. name = \"ana\""));
        }
        if earlier.iter().any(|x| x.name == self.name) {
            return Err(err(
                &format!("{key}.name"),
                format!("user {:?} is defined twice", self.name),
            ));
        }
        let schemas = roles.get(&self.role).cloned().ok_or_else(|| {
            err(
                &format!("{key}.role"),
                format!(
                    "unknown role {:?}; roles are {}",
                    self.role,
                    roles.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        let credential = self.credential(key, env)?;
        Ok(User {
            name: self.name.clone(),
            role: self.role.clone(),
            schemas,
            credential,
        })
    }

    /// `password_hash` (an argon2 hash) or the password in the `password_env` variable,
    /// read now; exactly one of them.
    fn credential(
        &self,
        key: &str,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Credential, ConfigError> {
        match (&self.password_hash, &self.password_env) {
            (Some(h), None) => {
                if !crate::serve::access::valid_hash(h) {
                    return Err(err(
                        &format!("{key}.password_hash"),
                        "not an argon2 hash; make one with `shoplake hash-password`",
                    ));
                }
                Ok(Credential::Argon2(h.clone()))
            }
            (None, Some(var)) => match env(var.as_str()) {
                Some(p) if !p.is_empty() => Ok(Credential::Plain(Secret::new(p))),
                _ => Err(err(
                    &format!("{key}.password_env"),
                    format!("environment variable {var} is not set"),
                )),
            },
            _ => Err(err(
                key,
                "set exactly one of password_hash (argon2, from `shoplake hash-password`) or password_env",
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
    #[serde(with = "crate::duration")]
    pub timeout: Duration,
    /// Attempts per request, the first included.
    #[serde(deserialize_with = "de::u32_or_str")]
    pub max_attempts: u32,
    /// First backoff, e.g. `"500ms"`.
    #[serde(with = "crate::duration")]
    pub backoff_base: Duration,
    /// Longest backoff, e.g. `"60s"`.
    #[serde(with = "crate::duration")]
    pub backoff_max: Duration,
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
            timeout: Duration::from_secs(30),
            max_attempts: 8,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
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

/// A value of the merged file + env table that does not fit its key (a bad duration, an
/// unknown key in a section) under the key toml names (`api.timeout`), as every
/// [`ConfigError`] is; under the file when it names none (an unknown section).
fn load_error(source: &str, e: &toml::de::Error) -> ConfigError {
    // Deserialized from a table, not text, so no span: toml's message ends "in `a.b`".
    let text = e.to_string();
    let key = text
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("in `"))
        .and_then(|l| l.strip_suffix('`'))
        .map(str::to_string);
    match key {
        Some(key) => err(&key, e.message()),
        None => err(source, text),
    }
}

fn is_loopback(u: &Url) -> bool {
    matches!(
        u.host_str(),
        Some("127.0.0.1" | "localhost" | "::1" | "[::1]")
    )
}

impl Config {
    /// Validates `[extract]`.
    pub fn extract_options(&self) -> Result<crate::pipeline::extract::ExtractOptions, ConfigError> {
        let e = &self.extract;
        let share: f64 = e.max_snapshot_delete.trim().parse().map_err(|_| {
            err(
                "extract.max_snapshot_delete",
                format!(
                    "{:?} is not a share between 0 and 1, e.g. \"0.5\"",
                    e.max_snapshot_delete
                ),
            )
        })?;
        if !(0.0..=1.0).contains(&share) {
            return Err(err(
                "extract.max_snapshot_delete",
                format!("{share} is not between 0 and 1, e.g. \"0.5\" (1 allows any deletion)"),
            ));
        }
        Ok(crate::pipeline::extract::ExtractOptions {
            planner: crate::pipeline::Planner {
                settle: e.settle.as_secs() as i64,
                lookback: e.lookback.as_secs() as i64,
            },
            max_snapshot_delete: share,
        })
    }

    /// Validates `[jobs]`.
    pub fn jobs_config(&self) -> Result<JobsConfig, ConfigError> {
        let j = &self.jobs;
        let b = j.backend.as_str();
        if !(b == "sqlite"
            || b.starts_with("sqlite:")
            || b.starts_with("postgres://")
            || b.starts_with("postgresql://"))
        {
            return Err(err(
                "jobs.backend",
                format!("{b:?} is neither \"sqlite\" nor a postgres://user@host/db URL"),
            ));
        }
        for (key, v) in [
            ("jobs.concurrency", j.concurrency),
            ("jobs.per_shop", j.per_shop),
            ("jobs.per_family", j.per_family),
            ("jobs.max_attempts", j.max_attempts),
        ] {
            if v == 0 {
                return Err(err(key, "must be at least 1"));
            }
        }
        Ok(JobsConfig {
            backend: j.backend.clone(),
            concurrency: j.concurrency as usize,
            per_shop: j.per_shop,
            per_family: j.per_family,
            max_attempts: j.max_attempts,
            retry_backoff: j.retry_backoff,
            heartbeat: j.heartbeat,
            initial_lookback: j.initial_lookback,
            schedule: j.schedule.clone(),
            http_addr: j.http_addr.clone(),
            maintain: match j.maintain.trim() {
                "" => None,
                s => Some(s.parse().map_err(|e: String| err("jobs.maintain", e))?),
            },
        })
    }

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
            // `SHOPLAKE_WAREHOUSE__STORAGE__ENDPOINT`: a key of a nested table.
            let (t, key) = match key.split_once("__") {
                Some((sub, leaf)) => {
                    let entry = t
                        .entry(sub.to_string())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    let toml::Value::Table(t) = entry else {
                        return Err(err(
                            &name,
                            format!("[{section}.{sub}] is not a table in the config file"),
                        ));
                    };
                    (t, leaf.to_string())
                }
                None => (t, key),
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
        Config::deserialize(table).map_err(|e| load_error(&source, &e))
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
            timeout: a.timeout,
            retry: RetryPolicy {
                max_attempts: a.max_attempts,
                base: a.backoff_base,
                max: a.backoff_max,
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
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.retry.base, Duration::from_millis(500));
    }

    #[test]
    fn durations_load_once() {
        let c = load(
            "[jobs]\ninitial_lookback = \"40days\"\n[extract]\nsettle = \"90s\"\n",
            &[("SHOPLAKE_SERVE__QUERY_TIMEOUT", "5s")],
        )
        .unwrap();
        assert_eq!(c.jobs.initial_lookback, Duration::from_secs(40 * 86_400));
        assert_eq!(c.jobs.heartbeat, Duration::from_secs(30));
        assert_eq!(c.serve.query_timeout, Duration::from_secs(5));
        let o = c.extract_options().unwrap();
        assert_eq!((o.planner.settle, o.planner.lookback), (90, 15 * 60));
    }

    #[test]
    fn storage_options_come_from_the_file_and_nested_env_keys() {
        let c = load(
            "[warehouse]\nuri = \"s3://bucket/lake\"\n[warehouse.storage]\nallow_http = true\nregion = \"eu-west-1\"\n",
            &[("SHOPLAKE_WAREHOUSE__STORAGE__ENDPOINT", "http://127.0.0.1:9000")],
        )
        .unwrap();
        let uri = c.lake_uri(Path::new("/data"));
        let o = format!("{:?}", c.storage_options(&uri).unwrap());
        assert!(
            o.contains("\"allow_http\": \"true\"")
                && o.contains("127.0.0.1:9000")
                && o.contains("eu-west-1"),
            "{o}"
        );
        let c = load(
            "[warehouse]\nuri = \"s3://bucket/lake\"\n[warehouse.storage]\nendpiont = \"http://x\"\n",
            &[],
        )
        .unwrap();
        let e = c.storage_options("s3://bucket/lake").unwrap_err();
        assert_eq!(e.key, "warehouse.storage.endpiont");
        // A local lake takes none.
        let c = load("[warehouse.storage]\nregion = \"x\"\n", &[]).unwrap();
        let e = c
            .storage_options(&c.lake_uri(Path::new("/data")))
            .unwrap_err();
        assert_eq!(e.key, "warehouse.storage.region");
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
        // Durations are parsed at load: a bad one fails there, under its key.
        let e = load("[api]\ntimeout = \"soon\"\n", &[]).unwrap_err();
        assert_eq!(e.key, "api.timeout");
        assert!(e.message.starts_with("\"soon\" is not a duration ("), "{e}");
        let e = load("", &[("SHOPLAKE_JOBS__HEARTBEAT", "often")]).unwrap_err();
        assert_eq!(e.key, "jobs.heartbeat");
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
