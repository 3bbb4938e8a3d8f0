//! The lake's storage as one object store: listing schemas' tables and a table's files
//! goes through it, whatever the backend (local disk today; the same calls serve object
//! stores).

use std::sync::Arc;

use deltalake::logstore::object_store::path::Path as StorePath;
use deltalake::logstore::object_store::{self, ObjectStore};
use futures::StreamExt;

use super::{Lake, Result, WarehouseError};

/// Tables listed at once when checking for a Delta log.
const LIST_CONCURRENCY: usize = 16;

impl Lake {
    /// The object store at the lake's root, and the root's path inside it.
    pub fn store(&self) -> Result<(Arc<dyn ObjectStore>, StorePath)> {
        let (store, root) =
            object_store::parse_url_opts(self.root(), std::iter::empty::<(String, String)>())
                .map_err(|e| WarehouseError::Uri {
                    uri: self.root().to_string(),
                    message: e.to_string(),
                })?;
        Ok((Arc::from(store), root))
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
        let checked: Vec<(String, bool)> = futures::stream::iter(names)
            .map(|name| {
                let store = store.clone();
                let log = prefix.clone().join(name.as_str()).join("_delta_log");
                async move {
                    let has_log = store
                        .list_with_delimiter(Some(&log))
                        .await
                        .is_ok_and(|l| !l.objects.is_empty());
                    (name, has_log)
                }
            })
            .buffer_unordered(LIST_CONCURRENCY)
            .collect()
            .await;
        let mut out: Vec<String> = checked
            .into_iter()
            .filter_map(|(name, has_log)| has_log.then_some(name))
            .collect();
        out.sort();
        Ok(out)
    }
}
