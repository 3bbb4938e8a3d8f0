//! Table maintenance (`shoplake maintain`): compact small files per partition, write a
//! checkpoint, vacuum files no version within the retention needs — each a Delta commit
//! that a concurrent writer's commit sends back to be planned again, never lost.

use std::time::Duration;

use deltalake::DeltaTable;
use deltalake::operations::vacuum::VacuumMode;
use futures::StreamExt;

use super::{Lake, Result, TableRef, WarehouseError};

/// The shortest retention `maintain` accepts: files a reader or an incremental build
/// may still open. A query plans on the latest version and runs for at most
/// `serve.query_timeout`; incremental builds time-travel to the versions their last build
/// read (a build older than the retention falls back to a full rebuild). An hour covers
/// every reader by far; the default (7 days) keeps a week of time travel for restores.
pub const MIN_RETENTION: Duration = Duration::from_secs(3600);

/// What `maintain` does to each table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintainOptions {
    /// Files no longer in any version younger than this are deleted.
    pub retention: Duration,
    /// Report what would change; write nothing.
    pub dry_run: bool,
    /// The time vacuum counts the retention back from (ms since the epoch); `None`: now.
    /// Replaying a maintenance as of a later day (tests, or a backlog) needs no waiting.
    pub as_of_ms: Option<i64>,
}

impl Default for MaintainOptions {
    fn default() -> Self {
        MaintainOptions {
            retention: Duration::from_secs(7 * 86_400),
            dry_run: false,
            as_of_ms: None,
        }
    }
}

/// Vacuum's clock when maintenance runs as of another time.
#[derive(Debug)]
struct AsOf(i64);

impl deltalake::operations::vacuum::Clock for AsOf {
    fn current_timestamp_millis(&self) -> i64 {
        self.0
    }
}

/// A table's files: those of its current version, and all the storage holds (files
/// earlier versions replaced stay until vacuum deletes them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FileStats {
    /// Data files of the current version.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
    /// Partitions holding more than one file (what compaction would merge).
    pub fragmented_partitions: usize,
    /// Data files in storage (current and replaced).
    pub stored_files: usize,
    /// Their total size.
    pub stored_bytes: u64,
}

/// What `maintain` did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MaintainReport {
    /// `schema.table`.
    pub table: String,
    /// Before.
    pub before: FileStats,
    /// After (equal to `before` on a dry run).
    pub after: FileStats,
    /// Files compaction replaced, and the files it wrote.
    pub compacted: (u64, u64),
    /// Whether a checkpoint was written.
    pub checkpoint: bool,
    /// Files vacuum deleted (or would delete, on a dry run).
    pub vacuumed: usize,
    /// Table version after maintenance.
    pub version: i64,
}

/// The data files of `t`'s current version, and every data file stored under `table`.
async fn file_stats(lake: &Lake, table: &TableRef, t: &DeltaTable) -> Result<FileStats> {
    let mut stats = active_files(t)
        .map_err(|e| WarehouseError::delta(table.schema.as_str(), &table.name, e))?;
    let (store, root) = lake.store()?;
    let prefix = root.join(table.schema.as_str()).join(table.name.as_str());
    let mut listing = store.list(Some(&prefix));
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(|e| WarehouseError::Storage(format!("listing {table}: {e}")))?;
        if meta.location.as_ref().ends_with(".parquet")
            && !meta.location.as_ref().contains("/_delta_log/")
        {
            stats.stored_files += 1;
            stats.stored_bytes += meta.size;
        }
    }
    Ok(stats)
}

/// The data files of `t`'s current version.
fn active_files(t: &DeltaTable) -> std::result::Result<FileStats, deltalake::DeltaTableError> {
    let snapshot = t.snapshot()?;
    let mut per_partition: std::collections::HashMap<String, usize> = Default::default();
    let mut stats = FileStats::default();
    for f in snapshot.log_data().iter() {
        stats.files += 1;
        stats.bytes += f.size().max(0) as u64;
        let path = f.path();
        let partition = path.rsplit_once('/').map_or("", |(dir, _)| dir).to_string();
        *per_partition.entry(partition).or_default() += 1;
    }
    stats.fragmented_partitions = per_partition.values().filter(|n| **n > 1).count();
    Ok(stats)
}

impl Lake {
    /// Compacts, checkpoints and vacuums `table` (`None` when it does not exist).
    pub async fn maintain(
        &self,
        table: &TableRef,
        opts: &MaintainOptions,
    ) -> Result<Option<MaintainReport>> {
        if opts.retention < MIN_RETENTION {
            return Err(WarehouseError::Maintain(format!(
                "retention {:?} is shorter than {:?}: running readers and incremental builds may still need those files",
                opts.retention, MIN_RETENTION
            )));
        }
        if !opts.dry_run {
            self.check_conditional_writes().await?;
        }
        let (schema, name) = (table.schema.as_str(), table.name.as_str());
        let err = |e| WarehouseError::delta(schema, name, e);
        let Some(t) = self.open(schema, name).await? else {
            return Ok(None);
        };
        let before = file_stats(self, table, &t).await?;
        let mut report = MaintainReport {
            table: table.to_string(),
            before,
            after: before,
            version: t.version().map_or(0, |v| v as i64),
            ..Default::default()
        };
        let mut t = t;
        if !opts.dry_run {
            // Compaction rewrites files without changing rows; a writer committing
            // meanwhile conflicts and the compaction is planned again on its version.
            let (done, metrics) = Lake::retry_conflicts(schema, name, || async {
                let t = self
                    .open(schema, name)
                    .await?
                    .ok_or_else(|| WarehouseError::Maintain(format!("{table} disappeared")))?;
                t.optimize().await.map_err(err)
            })
            .await?;
            report.compacted = (metrics.num_files_removed, metrics.num_files_added);
            deltalake::protocol::checkpoints::create_checkpoint(&done, None)
                .await
                .map_err(err)?;
            report.checkpoint = true;
            t = done;
        }
        let retention = chrono::Duration::from_std(opts.retention)
            .map_err(|e| WarehouseError::Maintain(format!("retention: {e}")))?;
        let mut vacuum = t
            .vacuum()
            .with_retention_period(retention)
            .with_enforce_retention_duration(false)
            .with_mode(VacuumMode::Lite)
            .with_dry_run(opts.dry_run);
        if let Some(ms) = opts.as_of_ms {
            vacuum = vacuum.with_clock(std::sync::Arc::new(AsOf(ms)));
        }
        let (t, vacuum) = vacuum.await.map_err(err)?;
        report.vacuumed = vacuum.files_deleted.len();
        if !opts.dry_run {
            report.after = file_stats(self, table, &t).await?;
            report.version = t.version().map_or(0, |v| v as i64);
        }
        Ok(Some(report))
    }
}
