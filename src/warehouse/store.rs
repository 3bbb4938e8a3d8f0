//! The lake's storage as one object store, whatever the backend: a local directory,
//! `s3://`, `gs://` or `az://`/`abfss://`. Listing schemas' tables, a table's files and
//! every Delta read and commit go through it.
//!
//! Delta on object storage needs commits that cannot overwrite each other. Every backend
//! here has an atomic put-if-absent: S3 (`If-None-Match: *`, on AWS since 2024 and on
//! MinIO, R2 and moto), GCS (`ifGenerationMatch=0`), Azure (`If-None-Match: *`) and the
//! local file system (a hard link). deltalake's default log store writes each commit
//! `_delta_log/<version>.json` with that put, so of two writers racing for one version
//! exactly one wins and the other re-plans on the new version (the retry in
//! [`super::Lake::retry_conflicts`]). No locking provider (DynamoDB) is needed, so the
//! stores are built from object_store's own clients and registered with deltalake here
//! instead of through deltalake's `s3` feature, which compiles the AWS SDK for that lock.
//! A store without conditional writes is refused rather than risked: the S3 option
//! `conditional_put = "disabled"` is an error.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex, Once};

use deltalake::logstore::object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use deltalake::logstore::object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use deltalake::logstore::object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use deltalake::logstore::object_store::path::Path as StorePath;
use deltalake::logstore::object_store::{self, ObjectStore, ObjectStoreExt, ObjectStoreScheme};
use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore,
    logstore_factories, object_store_factories,
};
use deltalake::{DeltaResult, DeltaTableError};
use futures::StreamExt;
use url::Url;

use super::{Lake, Result, WarehouseError};

/// Tables listed at once when checking for a Delta log.
const LIST_CONCURRENCY: usize = 16;

/// URI schemes of the object stores (besides `file://` and plain paths).
const CLOUD_SCHEMES: [&str; 8] = ["s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss"];

/// `[warehouse.storage]`: options of the lake's object store, named as object_store names
/// them (`endpoint`, `region`, `allow_http`, `virtual_hosted_style_request`,
/// `access_key_id`, `secret_access_key`, `google_service_account`, `account_name`, …).
/// Anything unset comes from the standard environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
/// `Debug` shows credential values as `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageOptions(BTreeMap<String, String>);

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown = if is_credential(k) { "***" } else { v.as_str() };
                (k, shown)
            }))
            .finish()
    }
}

/// Option names whose values are credentials (never printed).
fn is_credential(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "key", "token", "password", "sas", "credential"]
        .iter()
        .any(|s| k.contains(s))
        && !k.ends_with("key_id")
        && k != "access_key_id"
}

impl StorageOptions {
    /// Options for a lake at `uri`, each key checked against the store the URI names; the
    /// error is `(key, message)`. Credential values are remembered for redaction.
    pub fn parse(
        uri: &str,
        options: BTreeMap<String, String>,
    ) -> std::result::Result<StorageOptions, (String, String)> {
        let scheme = uri
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_else(|| "file".into());
        for (key, value) in &options {
            if is_credential(key) {
                crate::secret::Secret::new(value.clone());
            }
            let known = match scheme.as_str() {
                "s3" | "s3a" => AmazonS3ConfigKey::from_str(key).map(|_| ()),
                "gs" => GoogleConfigKey::from_str(key).map(|_| ()),
                "az" | "adl" | "azure" | "abfs" | "abfss" => {
                    AzureConfigKey::from_str(key).map(|_| ())
                }
                _ => {
                    return Err((
                        key.clone(),
                        format!(
                            "a `{scheme}` lake takes no storage options (they are for s3://, gs:// and az:// lakes)"
                        ),
                    ));
                }
            };
            if known.is_err() {
                return Err((
                    key.clone(),
                    format!(
                        "not an option of the `{scheme}` store; e.g. endpoint, region, allow_http, virtual_hosted_style_request (see object_store's config keys)"
                    ),
                ));
            }
            if matches!(scheme.as_str(), "s3" | "s3a")
                && matches!(
                    AmazonS3ConfigKey::from_str(key),
                    Ok(AmazonS3ConfigKey::ConditionalPut)
                )
                && value.trim() != "etag"
            {
                return Err((
                    key.clone(),
                    "Delta commits on S3 need conditional writes (If-None-Match); only \"etag\" is accepted".into(),
                ));
            }
        }
        Ok(StorageOptions(options))
    }

    /// The options as deltalake takes them.
    pub(super) fn to_map(&self) -> HashMap<String, String> {
        self.0.clone().into_iter().collect()
    }
}

/// Object-store clients made so far, by bucket and options: every table opened, every
/// listing and every query share one HTTP client (its connection pool and TLS roots) per
/// bucket instead of making one per call.
static CLIENTS: LazyLock<Mutex<HashMap<String, ObjectStoreRef>>> = LazyLock::new(Default::default);

/// The object store at the root of `url` (bucket or file system) and the path of `url`
/// inside it: `options` over the standard environment.
fn build(
    url: &Url,
    options: &HashMap<String, String>,
) -> object_store::Result<(ObjectStoreRef, StorePath)> {
    let (scheme, path) = ObjectStoreScheme::parse(url)?;
    if matches!(scheme, ObjectStoreScheme::Local | ObjectStoreScheme::Memory) {
        let (store, path) = object_store::parse_url_opts(url, options)?;
        return Ok((Arc::from(store), path));
    }
    let mut sorted: Vec<_> = options.iter().collect();
    sorted.sort();
    let key = format!("{}://{}{sorted:?}", url.scheme(), url.authority());
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(store) = clients.get(&key) {
        return Ok((store.clone(), path));
    }
    let store: ObjectStoreRef = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let b = configured(
                AmazonS3Builder::from_env().with_url(url.as_str()),
                options,
                |b, k: AmazonS3ConfigKey, v| b.with_config(k, v),
            );
            // `AWS_CONDITIONAL_PUT=disabled` from the environment: refused like the option.
            if b.get_config_value(&AmazonS3ConfigKey::ConditionalPut)
                .is_some_and(|v| v.trim() != "etag")
            {
                return Err(object_store::Error::Generic {
                    store: "S3",
                    source: "Delta commits on S3 need conditional writes (If-None-Match); AWS_CONDITIONAL_PUT must be unset or \"etag\"".into(),
                });
            }
            Arc::new(b.build()?)
        }
        ObjectStoreScheme::GoogleCloudStorage => Arc::new(
            configured(
                GoogleCloudStorageBuilder::from_env().with_url(url.as_str()),
                options,
                |b, k: GoogleConfigKey, v| b.with_config(k, v),
            )
            .build()?,
        ),
        ObjectStoreScheme::MicrosoftAzure => Arc::new(
            configured(
                MicrosoftAzureBuilder::from_env().with_url(url.as_str()),
                options,
                |b, k: AzureConfigKey, v| b.with_config(k, v),
            )
            .build()?,
        ),
        _ => {
            let (store, path) = object_store::parse_url_opts(url, options)?;
            return Ok((Arc::from(store), path));
        }
    };
    clients.insert(key, store.clone());
    Ok((store, path))
}

/// `builder` with every option that is one of its store's keys (`K`) set on it; the keys
/// were checked by [`StorageOptions::parse`].
fn configured<B, K: FromStr>(
    builder: B,
    options: &HashMap<String, String>,
    set: impl Fn(B, K, &String) -> B,
) -> B {
    options
        .iter()
        .fold(builder, |b, (k, v)| match K::from_str(k) {
            Ok(key) => set(b, key, v),
            Err(_) => b,
        })
}

/// deltalake's hook for [`build`].
struct CloudStores;

impl ObjectStoreFactory for CloudStores {
    fn parse_url_opts(
        &self,
        url: &Url,
        config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, StorePath)> {
        build(url, &config.raw).map_err(DeltaTableError::from)
    }
}

/// Commits through deltalake's default log store: put-if-absent per version.
struct ConditionalCommits;

impl LogStoreFactory for ConditionalCommits {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// Registers the object stores with deltalake (once per process).
pub(super) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let (stores, logs) = (object_store_factories(), logstore_factories());
        for scheme in CLOUD_SCHEMES {
            let url = Url::parse(&format!("{scheme}://")).expect("a scheme is a URL");
            stores.insert(url.clone(), Arc::new(CloudStores));
            logs.insert(url, Arc::new(ConditionalCommits));
        }
    });
}

/// Lake roots whose store was seen refusing a second create-only put (this process).
static VERIFIED: LazyLock<Mutex<std::collections::HashSet<String>>> =
    LazyLock::new(Default::default);

impl Lake {
    /// Before the first write to an object store: checks that it refuses a second
    /// create-only put of one key, the property every Delta commit relies on (a store that
    /// ignored `If-None-Match` would let two writers overwrite each other's commit, silently).
    /// Three requests on a probe key under `_shoplake/`, once per process and lake; local
    /// disk is not probed (its create-only put is a hard link).
    pub(super) async fn check_conditional_writes(&self) -> Result<()> {
        use object_store::{PutMode, PutOptions, PutPayload};
        let root = self.root().to_string();
        if self.root().scheme() == "file"
            || VERIFIED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&root)
        {
            return Ok(());
        }
        let (store, prefix) = self.store()?;
        let probe = prefix.join("_shoplake").join(format!(
            "conditional-write-probe-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let create = || PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let refused = |why: String| {
            WarehouseError::Storage(format!(
                "{root}: the store does not refuse a second create-only put ({why}); Delta commits need conditional writes (S3 If-None-Match), or two writers overwrite each other's commits: use a store that has them (AWS S3, MinIO, R2, GCS, Azure)"
            ))
        };
        store
            .put_opts(&probe, PutPayload::from_static(b"1"), create())
            .await
            .map_err(|e| refused(format!("first put: {e}")))?;
        let second = store
            .put_opts(&probe, PutPayload::from_static(b"2"), create())
            .await;
        let _ = store.delete(&probe).await;
        match second {
            Err(object_store::Error::AlreadyExists { .. }) => {
                VERIFIED
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(root);
                Ok(())
            }
            Ok(_) => Err(refused("the second put succeeded".into())),
            Err(e) => Err(refused(format!("second put: {e}"))),
        }
    }

    /// The object store at the lake's root, and the root's path inside it.
    pub fn store(&self) -> Result<(Arc<dyn ObjectStore>, StorePath)> {
        build(self.root(), &self.storage_options().to_map()).map_err(|e| WarehouseError::Uri {
            uri: self.root().to_string(),
            message: e.to_string(),
        })
    }

    /// Whether `schema.table` has a Delta log: the first entry of a listing of its
    /// `_delta_log/` (one request on an object store, one directory read on disk; a long
    /// log is not listed whole).
    pub async fn has_table(&self, schema: &str, table: &str) -> Result<bool> {
        let (store, root) = self.store()?;
        let log = root.join(schema).join(table).join("_delta_log");
        match store.list(Some(&log)).next().await {
            None | Some(Err(object_store::Error::NotFound { .. })) => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(WarehouseError::Storage(format!(
                "listing {}: {e}",
                self.table_url(schema, table)
            ))),
        }
    }

    /// The tables of `schema`: its folders that hold a Delta log, sorted. A schema not
    /// written yet has none.
    pub async fn list_tables(&self, schema: &str) -> Result<Vec<String>> {
        let (store, root) = self.store()?;
        let prefix = root.join(schema);
        let listing = match store.list_with_delimiter(Some(&prefix)).await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => {
                return Err(WarehouseError::Storage(format!(
                    "listing {}: {e}",
                    self.root()
                        .join(schema)
                        .map_or_else(|_| schema.to_string(), |u| u.to_string())
                )));
            }
        };
        let names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        let checked: Vec<(String, Result<bool>)> = futures::stream::iter(names)
            .map(|name| async move {
                let has_log = self.has_table(schema, &name).await;
                (name, has_log)
            })
            .buffer_unordered(LIST_CONCURRENCY)
            .collect()
            .await;
        let mut out = Vec::new();
        for (name, has_log) in checked {
            if has_log? {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_are_checked_against_the_store_the_uri_names() {
        let ok = StorageOptions::parse(
            "s3://bucket/lake",
            opts(&[
                ("endpoint", "http://127.0.0.1:9000"),
                ("allow_http", "true"),
                ("region", "us-east-1"),
            ]),
        );
        assert!(ok.is_ok(), "{ok:?}");
        let (key, msg) = StorageOptions::parse("s3://b/l", opts(&[("endpiont", "x")])).unwrap_err();
        assert_eq!(key, "endpiont");
        assert!(msg.contains("not an option of the `s3` store"), "{msg}");
        let (key, _) = StorageOptions::parse("./lake", opts(&[("region", "x")])).unwrap_err();
        assert_eq!(key, "region");
        let (key, msg) =
            StorageOptions::parse("s3://b/l", opts(&[("conditional_put", "disabled")]))
                .unwrap_err();
        assert_eq!(key, "conditional_put");
        assert!(msg.contains("conditional writes"), "{msg}");
        assert!(
            StorageOptions::parse("gs://b/l", opts(&[("google_service_account", "/k.json")]))
                .is_ok()
        );
        assert!(StorageOptions::parse("az://c/l", opts(&[("account_name", "acct")])).is_ok());
    }

    #[test]
    fn credentials_never_print() {
        let o = StorageOptions::parse(
            "s3://b/l",
            opts(&[
                ("access_key_id", "AKIAEXAMPLE"),
                ("secret_access_key", "wJalrXUtnFEMI-very-secret"),
                ("endpoint", "http://127.0.0.1:9000"),
            ]),
        )
        .unwrap();
        let shown = format!("{o:?}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(
            shown.contains("AKIAEXAMPLE") && shown.contains("127.0.0.1:9000"),
            "{shown}"
        );
        assert_eq!(
            crate::secret::redact("key wJalrXUtnFEMI-very-secret"),
            "key [redacted]"
        );
    }
}
