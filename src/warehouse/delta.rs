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

use datafusion::common::Column;
use datafusion::logical_expr::utils::{conjunction, disjunction};
use datafusion::logical_expr::{Operator, binary_expr};
use datafusion::prelude::{Expr, coalesce, lit};
use datafusion::scalar::ScalarValue;

use super::columns::{EXTRACTED_AT, FETCH_COLUMNS, MONTH, SHOP_ID};
use super::store::StorageOptions;
use super::{Result, WarehouseError};

/// Where the lake lives: a local directory or an object-store URI, with the store's
/// options ([`StorageOptions`]).
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
    options: StorageOptions,
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
    /// The cursor after the commit, when it moved.
    pub cursor: Option<i64>,
    /// This commit added columns to the table (a column declared since its rows landed):
    /// the rows before it may carry the new fields in `_extra`.
    pub evolved: bool,
    /// The table recorded another declared schema version than `schema_version` (asked
    /// with `check_schema_version`): rows may predate columns declared since.
    pub stale_schema: bool,
}

/// How an upsert ([`super::table::UpsertBuilder`]) identifies and orders rows.
#[derive(Debug, Clone, Default)]
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
    /// When the batch was fetched (`_extracted_at`, µs). A stored row fetched later is
    /// never replaced by this batch (two overlapping runs: the older fetch committing last
    /// must not win), and a snapshot deletes only rows fetched before it.
    pub fetched_at_us: Option<i64>,
    /// A snapshot that would delete more than this share of the shop's stored rows fails
    /// with [`WarehouseError::SnapshotDeletes`] and writes nothing. `None`: no limit.
    pub max_delete_share: Option<f64>,
    /// For a child table (SKUs of a product, line items of an order): the key columns
    /// naming the parent. After the merge, a parent's stored children that its newer
    /// version no longer lists are deleted: the children of a parent are exactly those of
    /// its latest version.
    pub parent_keys: &'a [String],
    /// The version of the declared schema this batch follows: a table created by this
    /// write records it ([`Lake::schema_version`]).
    pub schema_version: Option<&'a str>,
    /// Compare `schema_version` with the one the table recorded
    /// ([`WriteMetrics::stale_schema`]); off once a writer knows the table is current.
    pub check_schema_version: bool,
}

/// File beside `_delta_log` naming the declared schema version every row of the table
/// follows (written at creation and after a fill; see `pipeline::upgrade`).
const SCHEMA_FILE: &str = "_shoplake_schema_version";

/// How a window's commit moves its stream's cursor (a Delta `txn` per app id).
///
/// The cursor is the end of the *contiguous* landed prefix. A window that starts at or
/// before the stored cursor (or, with none stored, at or before `origin`) extends it — and
/// then over every window already landed beyond it. A window starting past the cursor
/// (window 3 landing while window 2 is still failing) is recorded under its own app id
/// ([`pending_app`]) with the furthest such end under [`landed_app`], and the cursor
/// stays at the gap: scheduled runs start there and fill it first.
#[derive(Debug, Clone, Copy)]
pub struct CursorMove<'a> {
    /// The stream's cursor app id (`shoplake/<stream>/<shop>`).
    pub app: &'a str,
    /// Window start; `i64::MIN` for a snapshot (it covers everything).
    pub from: i64,
    /// Window end: the cursor when it moves.
    pub to: i64,
    /// Where a cursor may begin when none is stored; `None`: anywhere (a single run).
    pub origin: Option<i64>,
}

/// App id recording a window `[from, …)` landed beyond a gap (its version is the end).
pub fn pending_app(app: &str, from: i64) -> String {
    format!("{app}@{from}")
}

/// App id holding the furthest end landed beyond a gap.
pub fn landed_app(app: &str) -> String {
    format!("{app}/landed")
}

/// App id holding where the backfill of windows landed beyond a gap began, while no cursor
/// is stored.
pub fn origin_app(app: &str) -> String {
    format!("{app}/origin")
}

impl Lake {
    /// A lake at `uri` (`./dir`, `/abs/dir`, `file:///…`) with no storage options.
    pub fn new(uri: &str) -> Result<Lake> {
        Lake::with_storage(uri, StorageOptions::default())
    }

    /// A lake at `uri`: a directory, `file://`, `s3://bucket/prefix`, `gs://…`,
    /// `az://…`/`abfss://…`. A local directory is made by the first write.
    pub fn with_storage(uri: &str, options: StorageOptions) -> Result<Lake> {
        let bad = |message: String| WarehouseError::Uri {
            uri: uri.to_string(),
            message,
        };
        let mut root = if uri.contains("://") {
            Url::parse(uri).map_err(|e| bad(e.to_string()))?
        } else {
            let abs = std::path::absolute(uri).map_err(|e| bad(e.to_string()))?;
            Url::from_directory_path(&abs).map_err(|_| bad("not an absolute path".into()))?
        };
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        super::store::register();
        let lake = Lake { root, options };
        lake.store()?;
        Ok(lake)
    }

    /// The options of the lake's object store.
    pub fn storage_options(&self) -> &StorageOptions {
        &self.options
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
        if !self.has_table(schema, table).await? {
            return Ok(None);
        }
        let url = self.table_url(schema, table);
        match deltalake::open_table_with_storage_options(url, self.options.to_map()).await {
            Ok(t) => Ok(Some(t)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(WarehouseError::delta(schema, table, e)),
        }
    }

    /// `schema.table` as of `version` (time travel); `None` when the table does not exist
    /// or that version can no longer be read (its log was cleaned up).
    pub async fn open_version(
        &self,
        schema: &str,
        table: &str,
        version: i64,
    ) -> Result<Option<DeltaTable>> {
        if self.open(schema, table).await?.is_none() || version < 0 {
            return Ok(None);
        }
        let url = self.table_url(schema, table);
        let opened = deltalake::DeltaTableBuilder::from_url(url).map(|b| {
            b.with_storage_options(self.options.to_map())
                .with_version(version as u64)
        });
        let opened = match opened {
            Ok(b) => b.load().await,
            Err(e) => Err(e),
        };
        match opened {
            Ok(t) => Ok(Some(t)),
            Err(e) => {
                tracing::debug!(table = %format!("{schema}.{table}"), version, error = %e, "version not readable");
                Ok(None)
            }
        }
    }

    /// The current version of `schema.table`; `None` when it does not exist.
    pub async fn version(&self, schema: &str, table: &str) -> Result<Option<i64>> {
        Ok(self
            .open(schema, table)
            .await?
            .and_then(|t| t.version())
            .map(|v| v as i64))
    }

    /// A handle for writing `schema.table`. deltalake's own `ensure_table_uri` makes the
    /// directory of a table on local disk (its local store needs one); object stores have
    /// no directories to make.
    async fn new_table(&self, schema: &str, table: &str) -> Result<DeltaTable> {
        let url = self.table_url(schema, table);
        deltalake::ensure_table_uri(url.as_str())
            .map_err(|e| WarehouseError::delta(schema, table, e))?;
        DeltaTable::try_from_url_with_storage_options(url, self.options.to_map())
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

    /// Runs `write` (one commit attempt on `schema.table`) until it lands: another
    /// writer's commit in between (a second worker process, a model build) is a
    /// conflict, not a failure — the write is planned again on the new version, up to
    /// [`COMMIT_ATTEMPTS`] times with jittered backoff.
    pub(super) async fn retry_conflicts<T, F, Fut>(schema: &str, table: &str, write: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match write().await {
                Err(WarehouseError::Delta { source, .. })
                    if is_conflict(&source) && attempt < COMMIT_ATTEMPTS =>
                {
                    let ms = rand::random_range(10..=50u64) << attempt.min(6);
                    tracing::debug!(schema, table, attempt, error = %source, "commit conflict; writing again");
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One attempt of an upsert of `batch` into `schema.table` (created on first write),
    /// moving the cursor (or committing a plain `txn`) in the same commit. Called through
    /// [`super::table::UpsertBuilder`], which retries conflicts.
    pub(super) async fn upsert_once(
        &self,
        schema: &str,
        table: &str,
        batch: RecordBatch,
        spec: &UpsertSpec<'_>,
        txn: Option<CursorMove<'_>>,
    ) -> Result<WriteMetrics> {
        let err = |e: DeltaTableError| WarehouseError::delta(schema, table, e);
        let batch = dedup(&batch, spec.keys, spec.version_column)?;
        let rows = batch.num_rows();
        let existing = self.open(schema, table).await?;
        // The `txn` actions this commit writes, when it moves anything (a re-run of an
        // older window moves nothing), and the cursor it leaves.
        let (advance, cursor) = match txn {
            Some(mv) => cursor_txns(existing.as_ref(), &mv).await.map_err(err)?,
            None => (Vec::new(), None),
        };
        let metrics = WriteMetrics {
            rows,
            cursor,
            ..Default::default()
        };
        let Some(target) = existing else {
            let version = self.create(schema, table, batch, spec, advance).await?;
            return Ok(WriteMetrics {
                inserted: rows,
                version,
                ..metrics
            });
        };
        let stale_schema = match spec.schema_version {
            Some(v) if spec.check_schema_version => {
                read_schema_file(schema, table, &target).await?.as_deref() != Some(v)
            }
            _ => false,
        };
        if rows == 0 && spec.snapshot_of.is_none() {
            // Nothing to merge (a quiet window): only the cursor moves.
            let version = if advance.is_empty() {
                target.version().map_or(0, |v| v as i64)
            } else {
                self.commit_txn_only(schema, table, &target, advance)
                    .await?
            };
            return Ok(WriteMetrics {
                version,
                stale_schema,
                ..metrics
            });
        }
        if let (Some(shop), Some(max)) = (spec.snapshot_of, spec.max_delete_share) {
            check_snapshot_deletes(schema, table, &target, &batch, spec.keys, shop, max).await?;
        }
        let before = target.version();
        let props = CommitProperties::default().with_application_transactions(advance.clone());
        let (t, m, evolved) = merge(schema, table, target, &batch, spec, props).await?;
        // A merge that changed no row writes no commit, and so no cursor: move it alone.
        let mut version = if !advance.is_empty() && t.version() == before {
            self.commit_txn_only(schema, table, &t, advance).await?
        } else {
            t.version().map_or(0, |v| v as i64)
        };
        let mut pruned = 0;
        if !spec.parent_keys.is_empty() {
            let (n, v) = prune_children(schema, table, t, &batch, spec).await?;
            pruned = n;
            version = v.unwrap_or(version);
        }
        Ok(WriteMetrics {
            inserted: m.num_target_rows_inserted,
            updated: m.num_target_rows_updated + m.num_target_rows_deleted + pruned,
            version,
            evolved,
            stale_schema,
            ..metrics
        })
    }

    /// Creates `schema.table` with `batch` as its first commit; returns its version.
    async fn create(
        &self,
        schema: &str,
        table: &str,
        batch: RecordBatch,
        spec: &UpsertSpec<'_>,
        txns: Vec<Transaction>,
    ) -> Result<i64> {
        let t = self.new_table(schema, table).await?;
        // Another writer created the table since this one saw none: appending would
        // double its rows. Fail as a conflict, so the write is planned again as a merge.
        if let Some(v) = t.version() {
            return Err(WarehouseError::delta(
                schema,
                table,
                DeltaTableError::VersionAlreadyExists(v),
            ));
        }
        if let Some(v) = spec.schema_version {
            // Before the first commit: a crash in between leaves a version file beside
            // no table, which the next creation overwrites.
            self.write_schema_file(schema, table, &t, v).await?;
        }
        let t = t
            .write(vec![batch])
            .with_save_mode(SaveMode::Append)
            .with_partition_columns(spec.partition_by.iter().map(|s| s.to_string()))
            .with_table_name(table)
            .with_commit_properties(CommitProperties::default().with_application_transactions(txns))
            .await
            .map_err(|e| WarehouseError::delta(schema, table, e))?;
        Ok(t.version().map_or(0, |v| v as i64))
    }

    /// A commit holding only a `txn` action: the cursor moves, no data changes.
    async fn commit_txn_only(
        &self,
        schema: &str,
        table: &str,
        t: &DeltaTable,
        txns: Vec<Transaction>,
    ) -> Result<i64> {
        let err = |e: DeltaTableError| WarehouseError::delta(schema, table, e);
        let snapshot = t.snapshot().map_err(err)?;
        let done =
            CommitBuilder::from(CommitProperties::default().with_application_transactions(txns))
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

    /// Fails as a snapshot upsert of `batch` would when it deletes too much of a shop
    /// ([`UpsertSpec::max_delete_share`]); writes nothing. Lets a writer check the table
    /// that matters before committing others of the same answer.
    pub(super) async fn check_snapshot(
        &self,
        schema: &str,
        table: &str,
        batch: &RecordBatch,
        keys: &[String],
        shop: &str,
        max: f64,
    ) -> Result<()> {
        match self.open(schema, table).await? {
            Some(t) => check_snapshot_deletes(schema, table, &t, batch, keys, shop, max).await,
            None => Ok(()),
        }
    }

    /// The rows of `schema.table` matching `filter` (none when the table does not exist).
    pub async fn scan(
        &self,
        schema: &str,
        table: &str,
        filter: datafusion::prelude::Expr,
    ) -> Result<Vec<RecordBatch>> {
        let Some(t) = self.open(schema, table).await? else {
            return Ok(Vec::new());
        };
        let arrow = WarehouseError::DataFusion;
        let provider = t.table_provider().await.map_err(arrow)?;
        SessionContext::new()
            .read_table(provider)
            .map_err(arrow)?
            .filter(filter)
            .map_err(arrow)?
            .collect()
            .await
            .map_err(arrow)
    }

    /// Columns `schema.table` has now (empty when it does not exist).
    pub async fn columns(&self, schema: &str, table: &str) -> Result<Vec<String>> {
        Ok(match self.open(schema, table).await? {
            Some(t) => t
                .snapshot()
                .map_err(|e| WarehouseError::delta(schema, table, e))?
                .schema()
                .fields()
                .map(|f| f.name().to_string())
                .collect(),
            None => Vec::new(),
        })
    }

    /// Fills stored rows from `batch` (matched on `keys`): each of `fill` is set where the
    /// stored value is null, and each of `replace` (such as `_extra`) is replaced, in one
    /// commit. Rows of `batch` that match nothing are ignored.
    pub async fn patch(
        &self,
        schema: &str,
        table: &str,
        batch: RecordBatch,
        keys: &[String],
        fill: &[String],
        replace: &[String],
    ) -> Result<usize> {
        let err = |e: DeltaTableError| WarehouseError::delta(schema, table, e);
        self.check_conditional_writes().await?;
        let Some(target) = self.open(schema, table).await? else {
            return Ok(0);
        };
        if batch.num_rows() == 0 {
            return Ok(0);
        }
        let source = SessionContext::new().read_batch(batch)?;
        let (_, m) = target
            .merge(source, keys_match(keys)?)
            .with_source_alias("source")
            .with_target_alias("target")
            // Only rows unchanged since the scan: a newer write by another process wins.
            .when_matched_update(|mut u| {
                u = u.predicate(binary_expr(
                    target_col(EXTRACTED_AT),
                    Operator::IsNotDistinctFrom,
                    source_col(EXTRACTED_AT),
                ));
                for c in fill {
                    u = u.update(
                        Column::new_unqualified(c),
                        coalesce(vec![target_col(c), source_col(c)]),
                    );
                }
                for c in replace {
                    u = u.update(Column::new_unqualified(c), source_col(c));
                }
                u
            })
            .map_err(err)?
            .await
            .map_err(err)?;
        Ok(m.num_target_rows_updated)
    }

    /// Records that every row of `schema.table` follows declared schema `version`.
    pub async fn set_schema_version(&self, schema: &str, table: &str, version: &str) -> Result<()> {
        let Some(t) = self.open(schema, table).await? else {
            return Ok(());
        };
        self.write_schema_file(schema, table, &t, version).await
    }

    async fn write_schema_file(
        &self,
        schema: &str,
        table: &str,
        t: &DeltaTable,
        version: &str,
    ) -> Result<()> {
        use deltalake::logstore::object_store::ObjectStoreExt;
        t.object_store()
            .put(
                &deltalake::Path::from(SCHEMA_FILE),
                version.as_bytes().to_vec().into(),
            )
            .await
            .map_err(|e| WarehouseError::Storage(format!("{schema}.{table}/{SCHEMA_FILE}: {e}")))?;
        Ok(())
    }

    /// Replaces `schema.table` with `batches` in one commit (created on first write).
    /// With `replace_where`, only the rows matching that SQL predicate are replaced (every
    /// new row must match it); the rest of the table stays. `txn` (app id, version) rides
    /// in the same commit: a model's build state moves with its data or not at all.
    pub(super) async fn replace(
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
        let props = CommitProperties::default().with_application_transactions(
            spec.txns
                .iter()
                .map(|(app, version)| Transaction::new(app, *version))
                .collect(),
        );
        let mut write = t
            .write(batches)
            .with_save_mode(SaveMode::Overwrite)
            .with_partition_columns(spec.partition_by.iter().cloned())
            .with_table_name(table)
            .with_commit_properties(props);
        write = match &spec.replace_where {
            Some(p) => write.with_replace_where(p.clone()),
            None => write.with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite),
        };
        let t = write.await.map_err(err)?;
        Ok(WriteMetrics {
            rows,
            inserted: rows,
            updated: 0,
            version: t.version().map_or(0, |v| v as i64),
            cursor: None,
            evolved: false,
            stale_schema: false,
        })
    }
}

/// How a replace ([`super::table::ReplaceBuilder`]) writes.
#[derive(Debug, Clone, Default)]
pub struct ReplaceSpec<'a> {
    /// Partition columns (a full replace may change them).
    pub partition_by: &'a [String],
    /// Replace only rows matching this predicate; `None`: the whole table.
    pub replace_where: Option<Expr>,
    /// `txn`s (app id, version) committed with the data.
    pub txns: &'a [(String, i64)],
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

/// The `txn` actions a window's commit writes on `t`, and the cursor they leave when it
/// moves (see [`CursorMove`]). Every commit that moves anything also writes the
/// [`landed_app`] marker, so two writers of the same shop × stream (two workers, a
/// re-queued job) always conflict in Delta and the later one plans again on the new state.
async fn cursor_txns(
    t: Option<&DeltaTable>,
    mv: &CursorMove<'_>,
) -> std::result::Result<(Vec<Transaction>, Option<i64>), DeltaTableError> {
    // A table not created yet holds no txn.
    let txn = |app: String| async move {
        match t {
            Some(t) => txn_of(t, &app).await,
            None => Ok(None),
        }
    };
    let stored = txn(mv.app.to_string()).await?;
    let landed = txn(landed_app(mv.app)).await?;
    // With no cursor yet, windows landed beyond a gap record where their backfill began:
    // only a window starting there begins the cursor (not a scheduled run that starts
    // later and would hide the gap behind it).
    let recorded_origin = match (stored, landed) {
        (None, Some(_)) => txn(origin_app(mv.app)).await?,
        _ => None,
    };
    let continues = match stored {
        Some(c) => mv.from <= c,
        None => {
            mv.origin.is_none_or(|o| mv.from <= o) && recorded_origin.is_none_or(|o| mv.from <= o)
        }
    };
    let Some(mut c) = (if continues {
        Some(stored.map_or(mv.to, |s| s.max(mv.to)))
    } else {
        None
    }) else {
        let (mut txns, c) = cursor_txns_from(stored, landed, mv, None);
        if stored.is_none()
            && let Some(o) = mv.origin
            && recorded_origin.is_none_or(|r| o < r)
        {
            txns.push(Transaction::new(origin_app(mv.app), o));
        }
        return Ok((txns, c));
    };
    // Extend over windows that landed beyond the gap this window fills.
    if landed.is_some_and(|l| l > c) {
        while let Some(end) = txn(pending_app(mv.app, c)).await? {
            if end <= c {
                break;
            }
            c = end;
        }
    }
    Ok(cursor_txns_from(stored, landed, mv, Some(c)))
}

/// The `txn` actions for `mv` given the stored cursor, the landed marker and the cursor
/// the window leaves (`None`: it lands beyond a gap).
fn cursor_txns_from(
    stored: Option<i64>,
    landed: Option<i64>,
    mv: &CursorMove<'_>,
    cursor: Option<i64>,
) -> (Vec<Transaction>, Option<i64>) {
    let mut txns = Vec::new();
    let moved = match cursor {
        Some(c) if stored.is_none_or(|s| c > s) => {
            txns.push(Transaction::new(mv.app, c));
            Some(c)
        }
        // A re-run of a window behind the cursor moves nothing and writes no commit.
        Some(_) => return (txns, None),
        None => {
            txns.push(Transaction::new(pending_app(mv.app, mv.from), mv.to));
            None
        }
    };
    let mark = landed
        .unwrap_or(i64::MIN)
        .max(mv.to)
        .max(moved.unwrap_or(i64::MIN));
    txns.push(Transaction::new(landed_app(mv.app), mark));
    (txns, moved)
}

/// A column of the merge target (`target.<c>`).
fn target_col(c: &str) -> Expr {
    Expr::Column(Column::new(Some("target"), c))
}

/// A column of the merge source (`source.<c>`).
fn source_col(c: &str) -> Expr {
    Expr::Column(Column::new(Some("source"), c))
}

/// `target.k = source.k` for every key.
/// Fails on no keys: a merge on `TRUE` would match every stored row with every new one.
fn keys_match(keys: &[String]) -> Result<Expr> {
    conjunction(keys.iter().map(|k| target_col(k).eq(source_col(k))))
        .ok_or_else(|| WarehouseError::Invalid("a merge needs key columns; none were given".into()))
}

/// A fetch time literal (µs, UTC), typed as `_extracted_at` is.
fn fetch_time(us: i64) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(us),
        Some("UTC".into()),
    ))
}

/// When a matched stored row is replaced by the incoming one. With a version column: a
/// larger version. Without one (snapshots, statements whose status changes in place): only
/// when some value changed, so a re-read of unchanged data writes nothing — and never with
/// a fetch older than the stored row's: of two overlapping runs, the later fetch wins
/// whichever commits last.
fn newer(
    spec: &UpsertSpec<'_>,
    columns: &[String],
    stored: &std::collections::HashSet<String>,
) -> Expr {
    if let Some(v) = spec.version_column {
        return source_col(v).gt(target_col(v));
    }
    let changed = disjunction(
        columns
            .iter()
            .filter(|c| !FETCH_COLUMNS.contains(&c.as_str()))
            .map(|c| {
                if stored.contains(c) {
                    binary_expr(source_col(c), Operator::IsDistinctFrom, target_col(c))
                } else {
                    source_col(c).is_not_null()
                }
            }),
    )
    .unwrap_or(lit(false));
    if columns.iter().any(|c| c == EXTRACTED_AT) {
        changed.and(
            target_col(EXTRACTED_AT)
                .is_null()
                .or(source_col(EXTRACTED_AT).gt_eq(target_col(EXTRACTED_AT))),
        )
    } else {
        changed
    }
}

/// Rows of a snapshot's shop the snapshot lacks — only rows fetched before it: a newer
/// snapshot's rows stay.
fn snapshot_deletes(shop: &str, spec: &UpsertSpec<'_>, has_fetch_time: bool) -> Expr {
    let of_shop = target_col(SHOP_ID).eq(lit(shop));
    match spec.fetched_at_us {
        Some(us) if has_fetch_time => of_shop.and(
            target_col(EXTRACTED_AT)
                .is_null()
                .or(target_col(EXTRACTED_AT).lt_eq(fetch_time(us))),
        ),
        _ => of_shop,
    }
}

/// The MERGE of an upsert: matched rows replaced when [`newer`], new rows inserted, a
/// snapshot's missing rows deleted; columns the table lacks are added (schema evolution).
/// Returns the table, the merge metrics and whether it added columns.
async fn merge(
    schema: &str,
    table: &str,
    target: DeltaTable,
    batch: &RecordBatch,
    spec: &UpsertSpec<'_>,
    props: CommitProperties,
) -> Result<(DeltaTable, deltalake::operations::merge::MergeMetrics, bool)> {
    let err = |e: DeltaTableError| WarehouseError::delta(schema, table, e);
    // Columns the table has: a batch carrying more is a schema upgrade (a column added to
    // schemas/ since these rows landed), added by the merge.
    let stored: std::collections::HashSet<String> = target
        .snapshot()
        .map_err(err)?
        .schema()
        .fields()
        .map(|f| f.name().to_string())
        .collect();
    let source = SessionContext::new().read_batch(batch.clone())?;
    let columns: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let has_fetch_time = columns.iter().any(|c| c == EXTRACTED_AT);
    let newer = newer(spec, &columns, &stored);
    let evolves = columns.iter().any(|c| !stored.contains(c));
    let mut merge = target
        .merge(source, keys_match(spec.keys)?)
        .with_source_alias("source")
        .with_target_alias("target")
        .with_merge_schema(evolves)
        .with_commit_properties(props);
    if let Some(shop) = spec.snapshot_of {
        let delete = snapshot_deletes(shop, spec, has_fetch_time);
        merge = merge
            .when_not_matched_by_source_delete(|d| d.predicate(delete))
            .map_err(err)?;
    }
    let (t, m) = merge
        .when_matched_update(|mut u| {
            u = u.predicate(newer);
            for c in &columns {
                u = u.update(Column::new_unqualified(c), source_col(c));
            }
            u
        })
        .map_err(err)?
        .when_not_matched_insert(|mut i| {
            for c in &columns {
                i = i.set(Column::new_unqualified(c), source_col(c));
            }
            i
        })
        .map_err(err)?
        .await
        .map_err(err)?;
    Ok((t, m, evolves))
}

/// Deletes the children of `batch`'s parents that the parents' versions in `batch` no
/// longer list: stored rows of those parents whose key is not in `batch` and that are older
/// (by the version column, or by fetch time without one). A stale fetch (older parent
/// version than stored) deletes nothing. Its own commit, before the parent table's (which
/// carries the cursor): a crash in between re-runs the window. Returns rows deleted and
/// the table version when it committed.
async fn prune_children(
    schema: &str,
    table: &str,
    target: DeltaTable,
    batch: &RecordBatch,
    spec: &UpsertSpec<'_>,
) -> Result<(usize, Option<i64>)> {
    let err = |e: DeltaTableError| WarehouseError::delta(schema, table, e);
    let arrow = WarehouseError::DataFusion;
    if batch.num_rows() == 0 {
        return Ok((0, None));
    }
    let ctx = SessionContext::new();
    let stale = stale_children(&ctx, &target, batch, spec)
        .await
        .map_err(arrow)?;
    let n: usize = stale.iter().map(RecordBatch::num_rows).sum();
    if n == 0 {
        return Ok((0, None));
    }
    let source = ctx.read_batches(stale).map_err(arrow)?;
    let (t, m) = target
        .merge(source, keys_match(spec.keys)?)
        .with_source_alias("source")
        .with_target_alias("target")
        .when_matched_delete(|d| d)
        .map_err(err)?
        .await
        .map_err(err)?;
    Ok((m.num_target_rows_deleted, t.version().map(|v| v as i64)))
}

/// The keys of stored children of `batch`'s parents that those parents' versions in
/// `batch` no longer list (see [`prune_children`]).
async fn stale_children(
    ctx: &SessionContext,
    target: &DeltaTable,
    batch: &RecordBatch,
    spec: &UpsertSpec<'_>,
) -> datafusion::error::Result<Vec<RecordBatch>> {
    let provider = target
        .table_provider()
        .await
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    // Only the partitions the batch touches are read (as the merge itself does).
    let stored = ctx
        .read_table(provider)?
        .filter(touched_partitions(batch, spec.partition_by))?;
    ctx.register_table("t", stored.into_view())?;
    ctx.register_batch("b", batch.clone())?;
    ctx.sql(&stale_children_sql(spec)).await?.collect().await
}

/// `c IN (values of c in batch)` for every partition column `batch` carries as strings.
fn touched_partitions(batch: &RecordBatch, partition_by: &[&str]) -> Expr {
    let per_column = partition_by.iter().filter_map(|c| {
        let values = batch
            .column_by_name(c)?
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()?;
        let set: std::collections::BTreeSet<&str> = values.iter().flatten().collect();
        let list = set.into_iter().map(lit).collect();
        Some(Expr::Column(Column::new_unqualified(*c)).in_list(list, false))
    });
    conjunction(per_column).unwrap_or(lit(true))
}

/// The query over stored rows `t` (already limited to the touched partitions) and the
/// batch `b` that lists stale children's keys. Identifiers only: every value stays in the
/// tables.
fn stale_children_sql(spec: &UpsertSpec<'_>) -> String {
    let q = |c: &str| format!("\"{}\"", c.replace('"', "\"\""));
    let list = |prefix: &str, cols: &[String]| {
        cols.iter()
            .map(|c| format!("{prefix}{}", q(c)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // The parent of a row: its parent keys within its partition.
    let parent: Vec<String> = spec
        .partition_by
        .iter()
        .map(|c| c.to_string())
        .chain(spec.parent_keys.iter().cloned())
        .collect();
    let on = |a: &str, b: &str, cols: &[String]| {
        cols.iter()
            .map(|c| format!("{a}.{} = {b}.{}", q(c), q(c)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let (keys, group, s_group) = (
        list("t.", spec.keys),
        list("", &parent),
        list("s.", &parent),
    );
    match spec.version_column {
        // A parent's children are its rows of the newest version stored — which also
        // drops a child a stale fetch of an older version just put back.
        Some(v) => format!(
            "WITH p AS (SELECT DISTINCT {group} FROM b), \
             s AS (SELECT *, {v} AS v_ FROM t), \
             m AS (SELECT {s_group}, max(s.v_) AS mv FROM s JOIN p ON {sp} GROUP BY {s_group}) \
             SELECT {keys} FROM s AS t JOIN m ON {tm} WHERE t.v_ < m.mv",
            v = q(v),
            sp = on("s", "p", &parent),
            tm = on("t", "m", &parent),
        ),
        // Without a version (unchanged rows keep their fetch time): the rows of those
        // parents this batch lacks, fetched no later than it.
        None => format!(
            "WITH p AS (SELECT {group}, max({f}) AS v_ FROM b GROUP BY {group}) \
             SELECT {keys} FROM t JOIN p ON {tp} \
             WHERE t.{f} <= p.v_ AND NOT EXISTS (SELECT 1 FROM b WHERE {same_key})",
            f = q(FETCH_COLUMNS[0]),
            tp = on("t", "p", &parent),
            same_key = on("b", "t", spec.keys),
        ),
    }
}

/// Fails when a snapshot of `shop` would delete more than `max` of the shop's stored rows:
/// an API answer missing most of a list is far likelier than a seller deleting most of it
/// between two runs, and the rows would be gone from every mart.
async fn check_snapshot_deletes(
    schema: &str,
    table: &str,
    target: &DeltaTable,
    batch: &RecordBatch,
    keys: &[String],
    shop: &str,
    max: f64,
) -> Result<()> {
    use datafusion::common::JoinType;
    use datafusion::prelude::{col, lit};
    let arrow = WarehouseError::DataFusion;
    let ctx = SessionContext::new();
    let provider = target.table_provider().await.map_err(arrow)?;
    let stored = ctx
        .read_table(provider)
        .map_err(arrow)?
        .filter(col(SHOP_ID).eq(lit(shop)))
        .map_err(arrow)?
        .alias("t")
        .map_err(arrow)?;
    let of = stored.clone().count().await.map_err(arrow)?;
    if of == 0 {
        return Ok(());
    }
    // A row is deleted when its key is gone from the shop, not when it moves to another
    // `_month` (snapshot rows move whole to the month of each snapshot).
    let k: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .filter(|k| *k != MONTH)
        .collect();
    let incoming = ctx
        .read_batch(batch.clone())
        .map_err(arrow)?
        .select_columns(&k)
        .map_err(arrow)?
        .alias("s")
        .map_err(arrow)?;
    let deleting = stored
        .join(incoming, JoinType::LeftAnti, &k, &k, None)
        .map_err(arrow)?
        .count()
        .await
        .map_err(arrow)?;
    // One row replacing another (a shop's only warehouse renamed) is not a wipe.
    if deleting > 1 && deleting as f64 > max * of as f64 {
        return Err(WarehouseError::SnapshotDeletes {
            schema: schema.to_string(),
            table: table.to_string(),
            shop: shop.to_string(),
            deleting,
            of,
            max,
        });
    }
    Ok(())
}

/// The declared schema version `t` recorded, if any.
async fn read_schema_file(schema: &str, table: &str, t: &DeltaTable) -> Result<Option<String>> {
    use deltalake::logstore::object_store::ObjectStoreExt;
    let storage = |e: deltalake::ObjectStoreError| {
        WarehouseError::Storage(format!("{schema}.{table}/{SCHEMA_FILE}: {e}"))
    };
    match t
        .object_store()
        .get(&deltalake::Path::from(SCHEMA_FILE))
        .await
    {
        Ok(r) => {
            let b = r.bytes().await.map_err(storage)?;
            Ok(Some(String::from_utf8_lossy(&b).trim().to_string()))
        }
        Err(deltalake::ObjectStoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(storage(e)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_without_keys_is_refused() {
        assert!(matches!(keys_match(&[]), Err(WarehouseError::Invalid(_))));
        let on = keys_match(&["_shop_id".to_string(), "id".to_string()]).unwrap();
        assert_eq!(
            on,
            target_col("_shop_id")
                .eq(source_col("_shop_id"))
                .and(target_col("id").eq(source_col("id")))
        );
    }

    /// Two writers see no table and both create it: the second must not append its rows
    /// to the first one's version 0 (it would double them) but fail as a conflict, so
    /// [`Lake::retry_conflicts`] plans it again as a merge.
    #[tokio::test]
    async fn a_creation_losing_the_race_is_a_conflict_not_an_append() {
        use arrow::array::StringArray;
        use arrow::datatypes::{DataType, Field, Schema};
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap()).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("_shop_id", DataType::Utf8, false),
            Field::new("_month", DataType::Utf8, false),
            Field::new("id", DataType::Utf8, false),
        ]));
        let col = |v: &[&str]| Arc::new(StringArray::from(v.to_vec())) as arrow::array::ArrayRef;
        let batch = RecordBatch::try_new(
            schema,
            vec![
                col(&["s", "s"]),
                col(&["2026-11", "2026-11"]),
                col(&["1", "2"]),
            ],
        )
        .unwrap();
        let keys = [
            "_shop_id".to_string(),
            "_month".to_string(),
            "id".to_string(),
        ];
        let spec = UpsertSpec {
            keys: &keys,
            partition_by: &["_shop_id", "_month"],
            ..Default::default()
        };
        lake.create("raw", "t", batch.clone(), &spec, Vec::new())
            .await
            .unwrap();
        let files = |t: DeltaTable| t.get_file_uris().unwrap().count();
        let before = files(lake.open("raw", "t").await.unwrap().unwrap());
        let second = lake.create("raw", "t", batch, &spec, Vec::new()).await;
        assert!(
            matches!(&second, Err(WarehouseError::Delta { source, .. }) if is_conflict(source)),
            "{second:?}"
        );
        let t = lake.open("raw", "t").await.unwrap().unwrap();
        assert_eq!(t.version(), Some(0), "nothing committed after version 0");
        assert_eq!(files(t), before);
    }
}
