//! Step 4 of a window: commit its tables — detail tables, child tables, then the stream's
//! own table, whose `txn` is the cursor — so a crash in between re-runs the window over
//! idempotent merges.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use tracing::info;

use super::detail::Details;
use super::{Extractor, Shop, Window, WindowReport, WindowRun, app_id};
use crate::pipeline::convert::RowContext;
use crate::pipeline::schema::PARTITION_COLUMNS;
use crate::pipeline::spec::{StreamKind, StreamSpec};
use crate::pipeline::{PipelineError, Result};
use crate::warehouse::delta::CursorMove;
use crate::warehouse::{TableRef, UpsertSpec, WriteMetrics};

/// One table's commit: table, batch, the `txn` app id it carries.
type Commit = (String, RecordBatch, String);

/// A window's fetched data, ready to commit.
pub(super) struct Landing<'s> {
    /// The stream's own tables (its table and child tables).
    pub tables: BTreeMap<String, RecordBatch>,
    /// Its detail streams' tables.
    pub details: Details<'s>,
    /// Pages fetched (list and details).
    pub pages: u32,
}

impl WindowRun<'_> {
    /// Fails when a lease of the job running the window was lost: it stops before (the
    /// next) commit.
    pub(super) fn check_lease(&self) -> Result<()> {
        if self
            .lease_lost
            .iter()
            .any(|l| l.load(std::sync::atomic::Ordering::SeqCst))
        {
            return Err(PipelineError::LeaseLost);
        }
        Ok(())
    }
}

impl Extractor {
    /// Commits a window's tables in order and reports what landed.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn commit_window(
        &self,
        shop: &Shop,
        stream: &StreamSpec,
        window: Window,
        run: WindowRun<'_>,
        landing: Landing<'_>,
        ctx: &RowContext,
    ) -> Result<WindowReport> {
        let mut report = WindowReport {
            shop: shop.id.clone(),
            stream: stream.name.clone(),
            window: window.to_string(),
            rows: BTreeMap::new(),
            changed: 0,
            pages: landing.pages,
            cursor: None,
        };
        let commits = commit_order(stream, shop, landing)?;
        // A snapshot lists everything the shop has now (no window filter) and replaces the
        // shop's rows with it; `window.to` is the snapshot's version. It covers everything,
        // so it always continues its cursor; a window does when it starts at or before the
        // cursor (or the plan's origin).
        let snapshot_of = stream.is_snapshot().then_some(shop);
        let from = if stream.is_snapshot() {
            i64::MIN
        } else {
            window.from
        };
        if let StreamKind::Snapshot { max_delete } = stream.kind {
            let share = max_delete.unwrap_or(self.opts.max_snapshot_delete);
            self.check_snapshot(stream, shop, &commits, share).await?;
        }
        for (t, b, app) in commits {
            // A lease lost while earlier tables committed stops the rest.
            run.check_lease()?;
            let mv = CursorMove {
                app: &app,
                from,
                to: window.to,
                origin: run.origin,
            };
            let n = self.commit(&t, b, mv, snapshot_of, ctx).await?;
            report.changed += n.inserted as u64 + n.updated as u64;
            // The stream's cursor is the main table's (child tables keep their own).
            if t == stream.main_table() {
                report.cursor = n.cursor;
            }
            report.rows.insert(t, n.rows);
        }
        info!(
            rows = report.total_rows(),
            changed = report.changed,
            pages = report.pages,
            "window landed"
        );
        Ok(report)
    }

    /// An incomplete snapshot answer is judged on every table it writes — the stream's own
    /// first — before any of them deletes a row; the commits then skip the check.
    async fn check_snapshot(
        &self,
        stream: &StreamSpec,
        shop: &Shop,
        commits: &[Commit],
        share: f64,
    ) -> Result<()> {
        let main = stream.main_table();
        let main_first = commits
            .iter()
            .filter(|(t, _, _)| t == main)
            .chain(commits.iter().filter(|(t, _, _)| t != main));
        for (t, b, _) in main_first {
            let keys = self.schemas[t].merge_keys();
            self.lake
                .table(TableRef::raw(t))
                .check_snapshot(b, &keys, &shop.id, share)
                .await?;
        }
        Ok(())
    }

    /// One table's merge (serialized per table in this process), and the schema upgrade
    /// of earlier rows when the merge added columns.
    async fn commit(
        &self,
        table: &str,
        batch: RecordBatch,
        cursor: CursorMove<'_>,
        snapshot_of: Option<&Shop>,
        ctx: &RowContext,
    ) -> Result<WriteMetrics> {
        let schema = &self.schemas[table];
        let _guard = self.commit_locks[table].lock().await;
        let keys = schema.merge_keys();
        let parents = schema.parent_keys();
        let check = !self
            .confirmed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(table);
        let spec = UpsertSpec {
            keys: &keys,
            parent_keys: &parents,
            schema_version: self.versions.get(table).map(String::as_str),
            check_schema_version: check,
            version_column: schema.version_column.as_deref(),
            partition_by: &PARTITION_COLUMNS,
            snapshot_of: snapshot_of.map(|s| s.id.as_str()),
            fetched_at_us: Some(ctx.extracted_at_us),
            // Checked for every table of the window before the first commit.
            max_delete_share: None,
        };
        let m = self
            .lake
            .table(TableRef::raw(table))
            .upsert(batch)
            .options(spec)
            .cursor(cursor)
            .await?;
        // Rows landed under an earlier schema: fill columns added since from `_extra`
        // (asked once per table per process, and again after a commit added columns).
        if m.evolved || m.stale_schema {
            let mut zones = self.zones.clone();
            zones.insert(ctx.shop_id.clone(), ctx.tz);
            crate::pipeline::upgrade::fill_from_extra(&self.lake, schema, &zones).await?;
        } else if check {
            self.confirmed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(table.to_string());
        }
        Ok(m)
    }
}

/// The commits of a window in order: detail tables, child tables, then the stream's own
/// table.
fn commit_order(stream: &StreamSpec, shop: &Shop, landing: Landing<'_>) -> Result<Vec<Commit>> {
    let main = stream.main_table().to_string();
    let mut tables = landing.tables;
    let main_batch = tables.remove(&main).ok_or_else(|| {
        PipelineError::Invalid(format!(
            "stream `{}`: the window converted no batch for its table `{main}`",
            stream.name
        ))
    })?;
    let own = app_id(&stream.name, &shop.id);
    let mut commits = Vec::new();
    let details = landing.details;
    for d in details.order {
        let app = app_id(&d.name, &shop.id);
        for ((_, t), batches) in details.batches.iter().filter(|((s, _), _)| s == &d.name) {
            let batch = arrow::compute::concat_batches(&batches[0].schema(), batches)
                .map_err(|e| PipelineError::Invalid(format!("{}: {e}", d.name)))?;
            commits.push((t.clone(), batch, app.clone()));
        }
    }
    commits.extend(tables.into_iter().map(|(t, b)| (t, b, own.clone())));
    commits.push((main, main_batch, own));
    Ok(commits)
}
