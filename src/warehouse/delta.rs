//! The one Delta writer: every raw table and every model lands through [`Lake`].
//!
//! - [`Lake::upsert`]: dedups the batch by key (latest version wins), then MERGEs it into
//!   the table on `_shop_id`, `_month` (so only touched partitions are read) and the
//!   primary key; a row is replaced only by a strictly newer version, so re-running a
//!   window leaves the table unchanged. The stream's cursor rides in the same commit as a
//!   Delta `txn` action (app id per shop and stream, version = window end), so data and
//!   cursor are committed atomically or not at all.
//! - [`Lake::replace`]: overwrites a model's table, or the windows an incremental build
//!   rebuilt, in one commit (with the model's build state as a `txn`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use datafusion::prelude::SessionContext;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::protocol::DeltaOperation;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use url::Url;

use super::{Result, WarehouseError};

/// Where the lake lives: a local directory or an object-store URI.
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteMetrics {
    /// Rows in the input after dedup.
    pub rows: usize,
    /// Rows inserted.
    pub inserted: usize,
    /// Rows updated (replaced by a newer version), or deleted by a snapshot.
    pub updated: usize,
    /// Table version after the commit.
    pub version: i64,
}

/// How [`Lake::upsert`] identifies and orders rows.
#[derive(Debug, Clone)]
pub struct UpsertSpec<'a> {
    /// Key columns, including the partition columns.
    pub keys: &'a [String],
    /// Larger value wins; without it the incoming row always wins.
    pub version_column: Option<&'a str>,
    /// Partition columns.
    pub partition_by: &'a [&'a str],
    /// Snapshot mode: the batch is everything `shop_id` has now. Rows of that shop the
    /// batch lacks are deleted, rows are rewritten only when a value differs, and other
    /// shops are untouched. `None`: incremental (nothing is deleted).
    pub snapshot_of: Option<&'a str>,
}

/// Columns that differ between two fetches of the same record without the record
/// changing; a snapshot does not rewrite a row for them.
const FETCH_COLUMNS: [&str; 2] = ["_extracted_at", "_source_request_id"];

impl Lake {
    /// A lake at `uri` (`./dir`, `/abs/dir`, `file:///…`).
    pub fn new(uri: &str) -> Result<Lake> {
        let root = if uri.contains("://") {
            Url::parse(uri).map_err(|e| WarehouseError::Uri {
                uri: uri.to_string(),
                message: e.to_string(),
            })?
        } else {
            std::fs::create_dir_all(uri).map_err(|e| WarehouseError::Uri {
                uri: uri.to_string(),
                message: e.to_string(),
            })?;
            let abs = std::fs::canonicalize(uri).map_err(|e| WarehouseError::Uri {
                uri: uri.to_string(),
                message: e.to_string(),
            })?;
            Url::from_directory_path(&abs).map_err(|_| WarehouseError::Uri {
                uri: uri.to_string(),
                message: "not an absolute path".into(),
            })?
        };
        let mut root = root;
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        Ok(Lake { root })
    }

    /// The lake's root URI.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// URI of `schema.table`.
    pub fn table_url(&self, schema: &str, table: &str) -> Url {
        self.root
            .join(&format!("{schema}/{table}/"))
            .expect("schema and table names are URL-safe")
    }

    /// Local directory of the lake, when it is on disk.
    pub fn local_dir(&self) -> Option<std::path::PathBuf> {
        self.root.to_file_path().ok()
    }

    /// Opens a table; `None` when it has not been created yet.
    pub async fn open(&self, schema: &str, table: &str) -> Result<Option<DeltaTable>> {
        let url = self.table_url(schema, table);
        if let Some(p) = url.to_file_path().ok() {
            if !p.join("_delta_log").exists() {
                return Ok(None);
            }
        }
        match deltalake::open_table(url).await {
            Ok(t) => Ok(Some(t)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(WarehouseError::delta(schema, table, e)),
        }
    }

    /// A handle for writing `schema.table`, creating its directory on local disk.
    async fn new_table(&self, schema: &str, table: &str) -> Result<DeltaTable> {
        let url = self.table_url(schema, table);
        if let Ok(p) = url.to_file_path() {
            std::fs::create_dir_all(&p).map_err(|e| WarehouseError::Uri {
                uri: url.to_string(),
                message: e.to_string(),
            })?;
        }
        DeltaTable::try_from_url(url)
            .await
            .map_err(|e| WarehouseError::delta(schema, table, e))
    }

    /// The cursor stored with the data: the table's `txn` version for `app_id`.
    pub async fn txn_version(
        &self,
        schema: &str,
        table: &str,
        app_id: &str,
    ) -> Result<Option<i64>> {
        match self.open(schema, table).await? {
            Some(t) => txn_of(&t, app_id)
                .await
                .map_err(|e| WarehouseError::delta(schema, table, e)),
            None => Ok(None),
        }
    }

    /// Upserts `batch` into `schema.table` (created on first write), committing `txn`
    /// (app id, version) in the same commit. Another writer's commit in between (a second
    /// worker process, a model build) is a conflict, not a failure: the merge is planned
    /// again on the new version, up to [`COMMIT_ATTEMPTS`] times with jittered backoff.
    pub async fn upsert(
        &self,
        schema: &str,
        table: &str,
        batch: RecordBatch,
        spec: &UpsertSpec<'_>,
        txn: Option<(&str, i64)>,
    ) -> Result<WriteMetrics> {
        let mut attempt = 1;
        loop {
            match self
                .upsert_once(schema, table, batch.clone(), spec, txn)
                .await
            {
                Err(WarehouseError::Delta { source, .. })
                    if is_conflict(&source) && attempt < COMMIT_ATTEMPTS =>
                {
                    let ms = rand::random_range(10..=50u64) << attempt.min(6);
                    tracing::debug!(schema, table, attempt, error = %source, "commit conflict; merging again");
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn upsert_once(
        &self,
        schema: &str,
        table: &str,
        batch: RecordBatch,
        spec: &UpsertSpec<'_>,
        txn: Option<(&str, i64)>,
    ) -> Result<WriteMetrics> {
        let err = |e: DeltaTableError| WarehouseError::delta(schema, table, e);
        let batch = dedup(&batch, spec.keys, spec.version_column)
            .map_err(|e| WarehouseError::Arrow(e.to_string()))?;
        let rows = batch.num_rows();
        let existing = self.open(schema, table).await?;
        let mut props = CommitProperties::default();
        // The cursor, when this commit moves it forward (never backwards when an older
        // window is re-run).
        let mut advance: Option<Transaction> = None;
        if let Some((app, version)) = txn {
            let stored = match &existing {
                Some(t) => txn_of(t, app).await.map_err(err)?.unwrap_or(i64::MIN),
                None => i64::MIN,
            };
            let t = Transaction::new(app, version.max(stored));
            if version > stored {
                advance = Some(t.clone());
            }
            props = props.with_application_transaction(t);
        }
        let Some(target) = existing else {
            let t = self.new_table(schema, table).await?;
            let t = t
                .write(vec![batch])
                .with_save_mode(SaveMode::Append)
                .with_partition_columns(spec.partition_by.iter().map(|s| s.to_string()))
                .with_table_name(table)
                .with_commit_properties(props)
                .await
                .map_err(err)?;
            return Ok(WriteMetrics {
                rows,
                inserted: rows,
                updated: 0,
                version: t.version().map_or(0, |v| v as i64),
            });
        };
        if rows == 0 && spec.snapshot_of.is_none() {
            // Nothing to merge (a quiet window): only the cursor moves.
            let version = match advance {
                Some(t) => self.commit_txn_only(schema, table, &target, t).await?,
                None => target.version().map_or(0, |v| v as i64),
            };
            return Ok(WriteMetrics {
                rows,
                inserted: 0,
                updated: 0,
                version,
            });
        }
        let before = target.version();
        let ctx = SessionContext::new();
        let source = ctx
            .read_batch(batch.clone())
            .map_err(|e| WarehouseError::Arrow(e.to_string()))?;
        let on = spec
            .keys
            .iter()
            .map(|k| format!("target.\"{k}\" = source.\"{k}\""))
            .collect::<Vec<_>>()
            .join(" AND ");
        let columns: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let newer = match spec.version_column {
            Some(v) => format!("source.\"{v}\" > target.\"{v}\""),
            // Without a version column (snapshots, statements whose status changes in
            // place) a row replaces the stored one only when some value changed, so a
            // re-read of unchanged data writes nothing.
            None => columns
                .iter()
                .filter(|c| !FETCH_COLUMNS.contains(&c.as_str()))
                .map(|c| format!("(source.\"{c}\" IS DISTINCT FROM target.\"{c}\")"))
                .collect::<Vec<_>>()
                .join(" OR "),
        };
        let mut merge = target
            .merge(source, on)
            .with_source_alias("source")
            .with_target_alias("target")
            .with_commit_properties(props);
        if let Some(shop) = spec.snapshot_of {
            let shop = shop.replace('\'', "''");
            merge = merge
                .when_not_matched_by_source_delete(|d| {
                    d.predicate(format!("target.\"_shop_id\" = '{shop}'"))
                })
                .map_err(err)?;
        }
        let (t, m) = merge
            .when_matched_update(|mut u| {
                u = u.predicate(newer.as_str());
                for c in &columns {
                    u = u.update(format!("\"{c}\""), format!("source.\"{c}\""));
                }
                u
            })
            .map_err(err)?
            .when_not_matched_insert(|mut i| {
                for c in &columns {
                    i = i.set(format!("\"{c}\""), format!("source.\"{c}\""));
                }
                i
            })
            .map_err(err)?
            .await
            .map_err(err)?;
        // A merge that changed no row writes no commit, and so no cursor: move it alone.
        let version = match advance {
            Some(txn) if t.version() == before => {
                self.commit_txn_only(schema, table, &t, txn).await?
            }
            _ => t.version().map_or(0, |v| v as i64),
        };
        Ok(WriteMetrics {
            rows,
            inserted: m.num_target_rows_inserted,
            updated: m.num_target_rows_updated + m.num_target_rows_deleted,
            version,
        })
    }

    /// A commit holding only a `txn` action: the cursor moves, no data changes.
    async fn commit_txn_only(
        &self,
        schema: &str,
        table: &str,
        t: &DeltaTable,
        txn: Transaction,
    ) -> Result<i64> {
        let err = |e: DeltaTableError| WarehouseError::delta(schema, table, e);
        let snapshot = t.snapshot().map_err(err)?;
        let done =
            CommitBuilder::from(CommitProperties::default().with_application_transaction(txn))
                .build(
                    Some(snapshot),
                    t.log_store(),
                    DeltaOperation::Write {
                        mode: SaveMode::Append,
                        partition_by: None,
                        predicate: None,
                    },
                )
                .await
                .map_err(err)?;
        Ok(done.version() as i64)
    }

    /// Replaces `schema.table` with `batches` in one commit (created on first write).
    /// With `replace_where`, only the rows matching that SQL predicate are replaced (every
    /// new row must match it); the rest of the table stays. `txn` (app id, version) rides
    /// in the same commit: a model's build state moves with its data or not at all.
    pub async fn replace(
        &self,
        schema: &str,
        table: &str,
        arrow_schema: SchemaRef,
        batches: Vec<RecordBatch>,
        spec: &ReplaceSpec<'_>,
    ) -> Result<WriteMetrics> {
        let err = |e: DeltaTableError| WarehouseError::delta(schema, table, e);
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        let t = self.new_table(schema, table).await?;
        let batches = if batches.is_empty() {
            vec![RecordBatch::new_empty(arrow_schema)]
        } else {
            batches
        };
        let mut props = CommitProperties::default();
        if let Some((app, version)) = spec.txn {
            props = props.with_application_transaction(Transaction::new(app, version));
        }
        let mut write = t
            .write(batches)
            .with_save_mode(SaveMode::Overwrite)
            .with_partition_columns(spec.partition_by.iter().cloned())
            .with_table_name(table)
            .with_commit_properties(props);
        write = match spec.replace_where {
            Some(p) => write.with_replace_where(p.to_string()),
            None => write.with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite),
        };
        let t = write.await.map_err(err)?;
        Ok(WriteMetrics {
            rows,
            inserted: rows,
            updated: 0,
            version: t.version().map_or(0, |v| v as i64),
        })
    }
}

/// How [`Lake::replace`] writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplaceSpec<'a> {
    /// Partition columns (a full replace may change them).
    pub partition_by: &'a [String],
    /// Replace only rows matching this SQL predicate; `None`: the whole table.
    pub replace_where: Option<&'a str>,
    /// `txn` (app id, version) committed with the data.
    pub txn: Option<(&'a str, i64)>,
}

/// Commit attempts of one upsert before a conflict is an error.
pub const COMMIT_ATTEMPTS: u32 = 10;

/// Another writer committed first (the table was created, or a version taken, or the
/// conflict checker found overlapping files): worth planning again on the new version.
fn is_conflict(e: &DeltaTableError) -> bool {
    use deltalake::kernel::transaction::TransactionError;
    match e {
        DeltaTableError::VersionAlreadyExists(_) => true,
        DeltaTableError::Transaction { source } => matches!(
            source,
            TransactionError::CommitConflict(_)
                | TransactionError::MaxCommitAttempts(_)
                | TransactionError::VersionAlreadyExists(_)
        ),
        _ => false,
    }
}

/// The `txn` version for `app_id` in the table's current snapshot.
async fn txn_of(t: &DeltaTable, app_id: &str) -> std::result::Result<Option<i64>, DeltaTableError> {
    t.snapshot()?
        .transaction_version(t.log_store().as_ref(), app_id)
        .await
}

/// Keeps one row per key: the one with the largest version (the last one on ties).
pub fn dedup(
    batch: &RecordBatch,
    keys: &[String],
    version: Option<&str>,
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    if batch.num_rows() < 2 {
        return Ok(batch.clone());
    }
    let cols: Vec<Arc<dyn Array>> = keys
        .iter()
        .map(|k| {
            batch.column_by_name(k).cloned().ok_or_else(|| {
                arrow::error::ArrowError::SchemaError(format!("key column `{k}` is missing"))
            })
        })
        .collect::<std::result::Result<_, _>>()?;
    let conv = RowConverter::new(
        cols.iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect(),
    )?;
    let rows = conv.convert_columns(&cols)?;
    let ver = match version {
        Some(v) => {
            let c = batch.column_by_name(v).cloned().ok_or_else(|| {
                arrow::error::ArrowError::SchemaError(format!("version column `{v}` is missing"))
            })?;
            let vc = RowConverter::new(vec![SortField::new(c.data_type().clone())])?;
            Some(vc.convert_columns(&[c])?)
        }
        None => None,
    };
    let mut best: HashMap<arrow::row::Row<'_>, usize> = HashMap::with_capacity(rows.num_rows());
    for i in 0..rows.num_rows() {
        match best.get_mut(&rows.row(i)) {
            None => {
                best.insert(rows.row(i), i);
            }
            Some(j) => {
                let newer = match &ver {
                    Some(v) => v.row(i) >= v.row(*j),
                    None => true,
                };
                if newer {
                    *j = i;
                }
            }
        }
    }
    if best.len() == batch.num_rows() {
        return Ok(batch.clone());
    }
    let mut idx: Vec<u32> = best.into_values().map(|i| i as u32).collect();
    idx.sort_unstable();
    take_record_batch(batch, &UInt32Array::from(idx))
}
