//! The one extract loop. A window of a stream for a shop:
//! 1. walks every page of the list endpoint with the window's filter (the one paginator);
//! 2. converts records into the stream's tables (nested arrays → child tables);
//! 3. calls the detail streams for the ids it saw;
//! 4. commits child tables, then the stream's own table with the cursor (window end) in
//!    the same Delta commit.
//!
//! Nothing is committed until every page of the window converted, so a bad page fails the
//! window, the cursor stays and the next run resumes there. Windows of different shops
//! fetch concurrently; commits to one table are serialized per process.

mod commit;
mod detail;
mod list;
mod request;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::StreamExt;
use tracing::{debug, instrument, warn};

use super::convert::RowContext;
use super::schema::TableSchema;
use super::spec::{Pipelines, Scope, StreamSpec};
use super::state::StateStore;
use super::{PipelineError, Result};
use crate::api::auth::ShopInfo;
use crate::api::{ApiClient, ApiError};
use crate::warehouse::Lake;

/// A shop to extract.
#[derive(Debug, Clone)]
pub struct Shop {
    /// Shop id (`_shop_id`).
    pub id: String,
    /// `shop_cipher` sent with every request.
    pub cipher: String,
    /// Name.
    pub name: String,
    /// Region code.
    pub region: String,
    /// Time zone for shop-local dates.
    pub tz: Tz,
}

impl Shop {
    /// From an authorized shop; the time zone comes from the region table. A region the
    /// table does not know is an error, not UTC: shop-local dates and every row's `_month`
    /// partition would be computed in the wrong zone, and move when the region is added.
    pub fn from_info(info: &ShopInfo) -> Result<Shop> {
        let r =
            crate::region::region(&info.region).ok_or_else(|| PipelineError::UnknownRegion {
                shop: format!("{} ({})", info.name, info.id),
                region: info.region.clone(),
            })?;
        Ok(Shop {
            id: info.id.clone(),
            cipher: info.cipher.clone(),
            name: info.name.clone(),
            region: info.region.clone(),
            tz: r.tz,
        })
    }
}

/// A half-open time window `[from, to)` in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start, inclusive.
    pub from: i64,
    /// End, exclusive.
    pub to: i64,
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = |s: i64| {
            DateTime::<Utc>::from_timestamp(s, 0)
                .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|| s.to_string())
        };
        write!(f, "{}..{}", t(self.from), t(self.to))
    }
}

/// Splits `[from, to)` into windows of `size` seconds.
pub fn windows(from: i64, to: i64, size: i64) -> Vec<Window> {
    let size = size.max(1);
    let mut out = Vec::new();
    let mut s = from;
    while s < to {
        let e = (s + size).min(to);
        out.push(Window { from: s, to: e });
        s = e;
    }
    out
}

/// What one window landed.
#[derive(Debug, Clone, Default)]
pub struct WindowReport {
    /// Shop id.
    pub shop: String,
    /// Stream.
    pub stream: String,
    /// Window.
    pub window: String,
    /// Rows per table (input rows after dedup).
    pub rows: BTreeMap<String, usize>,
    /// Rows inserted or replaced by a newer version (0 when a rerun changed nothing).
    pub changed: u64,
    /// Pages fetched (list and detail calls).
    pub pages: u32,
    /// The stream's cursor after this window, when the window moved it (past windows
    /// landed beyond a gap, too, once this one filled it).
    pub cursor: Option<i64>,
}

impl WindowReport {
    /// Rows over all tables.
    pub fn total_rows(&self) -> u64 {
        self.rows.values().map(|&n| n as u64).sum()
    }
}

/// How one window of a sequence runs: its plan's origin and the job's lease flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowRun<'a> {
    /// Where a cursor may begin when none is stored.
    pub origin: Option<i64>,
    /// Raised when a lease of the job running the window is lost.
    pub lease_lost: &'a [Arc<std::sync::atomic::AtomicBool>],
}

/// How many times a window is read when its list keeps changing mid-walk
/// ([`ApiError::Shifted`]).
const WINDOW_REREADS: u32 = 4;

/// How many times one walk goes on from its last record after the list shifted.
const SEEK_RESTARTS: u32 = 1000;

/// Delta `txn` app id holding a stream's cursor for a shop.
pub fn app_id(stream: &str, shop_id: &str) -> String {
    format!("shoplake/{stream}/{shop_id}")
}

/// The rules every plan and commit of an [`Extractor`] follows (`[extract]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExtractOptions {
    /// Settle margin and default lookback.
    pub planner: super::Planner,
    /// A snapshot deleting more than this share of a shop's rows fails instead.
    pub max_snapshot_delete: f64,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            planner: super::Planner::default(),
            max_snapshot_delete: 0.5,
        }
    }
}

/// Runs windows of streams for shops and lands them.
pub struct Extractor {
    client: ApiClient,
    lake: Lake,
    pipelines: Arc<Pipelines>,
    schemas: BTreeMap<String, Arc<TableSchema>>,
    state: Arc<StateStore>,
    /// One lock per table: commits to a table are serialized in this process (no
    /// self-inflicted Delta conflicts); different tables commit in parallel.
    commit_locks: BTreeMap<String, tokio::sync::Mutex<()>>,
    /// Set to `true` on shutdown: a window still fetching is abandoned (nothing written);
    /// one already committing finishes.
    stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// `category_asset_cipher` per shop id for Affiliate Partner calls, looked up once.
    assets: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Planner and snapshot guard.
    opts: ExtractOptions,
    /// Declared schema version per table (see [`super::upgrade`]).
    versions: BTreeMap<String, String>,
    /// Time zone of every authorized shop, for filling rows of any shop after a schema
    /// change.
    zones: std::collections::HashMap<String, Tz>,
    /// Tables whose rows are known to follow the declared schema in this process.
    confirmed: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Extractor {
    /// Checks that every stream's tables have schemas.
    pub fn new(
        client: ApiClient,
        lake: Lake,
        pipelines: Arc<Pipelines>,
        schemas: BTreeMap<String, TableSchema>,
        state: Arc<StateStore>,
    ) -> Result<Extractor> {
        for s in &pipelines.streams {
            for (i, t) in s.tables.iter().enumerate() {
                let Some(schema) = schemas.get(t) else {
                    return Err(PipelineError::Spec {
                        file: format!("pipelines/{}.toml", s.category),
                        message: format!(
                            "stream `{}`: no schema for table `{t}` (add schemas/{t}.toml)",
                            s.name
                        ),
                    });
                };
                if (i > 0) != schema.nested.is_some() {
                    return Err(PipelineError::Spec {
                        file: format!("schemas/{t}.toml"),
                        message: format!(
                            "table `{t}` of stream `{}`: child tables (after the first) need `nested`, the first must not have it",
                            s.name
                        ),
                    });
                }
            }
        }
        let versions = schemas
            .iter()
            .map(|(k, v)| (k.clone(), super::upgrade::schema_version(v)))
            .collect();
        Ok(Extractor {
            client,
            lake,
            pipelines,
            commit_locks: schemas
                .keys()
                .map(|k| (k.clone(), tokio::sync::Mutex::new(())))
                .collect(),
            schemas: schemas.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
            state,
            stop: None,
            assets: Default::default(),
            opts: ExtractOptions::default(),
            versions,
            zones: Default::default(),
            confirmed: Default::default(),
        })
    }

    /// Shop time zones (authorized shops) used when filling columns after a schema change.
    pub fn with_zones(mut self, zones: std::collections::HashMap<String, Tz>) -> Extractor {
        self.zones = zones;
        self
    }

    /// Plans and commits with `opts` (`[extract]`).
    pub fn with_options(mut self, opts: ExtractOptions) -> Extractor {
        self.opts = opts;
        self
    }

    /// The one window planner, with this extractor's settle margin and lookback.
    pub fn planner(&self) -> &super::Planner {
        &self.opts.planner
    }

    /// The windows of `stream` for `shop` from `start` to `to` (see [`super::plan`]);
    /// `Start::Cursor` with no cursor given reads the committed one.
    pub async fn plan(
        &self,
        shop_id: &str,
        stream: &StreamSpec,
        start: super::Start,
        to: i64,
    ) -> Result<super::Plan> {
        let start = match start {
            super::Start::Cursor {
                cursor: None,
                initial,
            } => super::Start::Cursor {
                cursor: self.cursor(shop_id, stream).await?,
                initial,
            },
            other => other,
        };
        self.opts
            .planner
            .plan(stream, start, to, Utc::now().timestamp())
            .map_err(|e| match e {
                PipelineError::Invalid(m) => PipelineError::Invalid(format!("shop {shop_id}: {m}")),
                other => other,
            })
    }

    /// Abandons windows that are still fetching once `stop` turns `true`.
    pub fn with_stop(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Extractor {
        self.stop = Some(stop);
        self
    }

    fn check_stop(&self) -> Result<()> {
        match &self.stop {
            Some(s) if *s.borrow() => Err(PipelineError::Cancelled),
            _ => Ok(()),
        }
    }

    /// The pipelines.
    pub fn pipelines(&self) -> &Pipelines {
        &self.pipelines
    }

    /// The lake.
    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// Run state.
    pub fn state(&self) -> &StateStore {
        &self.state
    }

    /// API client (for stats).
    pub fn client(&self) -> &ApiClient {
        &self.client
    }

    /// A schema by table name.
    pub fn schema(&self, table: &str) -> Option<&Arc<TableSchema>> {
        self.schemas.get(table)
    }

    /// The committed cursor of `stream` for `shop`: the end of the contiguous landed
    /// prefix (windows landed beyond a gap do not move it).
    pub async fn cursor(&self, shop_id: &str, stream: &StreamSpec) -> Result<Option<i64>> {
        Ok(self
            .lake
            .txn_version("raw", stream.main_table(), &app_id(&stream.name, shop_id))
            .await?)
    }

    /// The end of the latest window landed beyond a gap, when one is: the cursor stays at
    /// the gap and `status` shows it until the gap's window lands.
    pub async fn landed_beyond_gap(
        &self,
        shop_id: &str,
        stream: &StreamSpec,
    ) -> Result<Option<i64>> {
        let app = app_id(&stream.name, shop_id);
        let landed = self
            .lake
            .txn_version(
                "raw",
                stream.main_table(),
                &crate::warehouse::delta::landed_app(&app),
            )
            .await?;
        let cursor = self.cursor(shop_id, stream).await?;
        Ok(landed.filter(|l| cursor.is_none_or(|c| *l > c)))
    }

    /// Runs one window of a top-level stream and its detail streams, records the outcome
    /// in run state, and returns what landed.
    #[instrument(skip_all, fields(shop = %shop.id, stream = %stream.name, window = %window))]
    pub async fn run_window(
        &self,
        shop: &Shop,
        stream: &StreamSpec,
        window: Window,
        run: WindowRun<'_>,
    ) -> Result<WindowReport> {
        // A list that changed while it was read is read again from its first page
        // (nothing was written yet); a list that keeps changing fails the window.
        let mut res = self.run_window_inner(shop, stream, window, run).await;
        for attempt in 1..WINDOW_REREADS {
            match &res {
                Err(PipelineError::Api(e @ ApiError::Shifted { .. })) => {
                    warn!(error = %e, attempt, "list changed during the walk; reading the window again");
                    res = self.run_window_inner(shop, stream, window, run).await;
                }
                _ => break,
            }
        }
        if let Err(
            e @ (PipelineError::WindowTooLarge { .. }
            | PipelineError::Cancelled
            | PipelineError::LeaseLost),
        ) = res
        {
            // Not a failure: the caller splits the window, or runs it again after a
            // restart; nothing was written.
            return Err(e);
        }
        let outcome = match &res {
            Ok(r) => Ok(r.total_rows()),
            Err(e) => Err(e.to_string()),
        };
        self.state
            .record(&shop.id, &stream.name, &window.to_string(), outcome)?;
        res.map_err(|e| PipelineError::Window {
            shop: shop.id.clone(),
            stream: stream.name.clone(),
            window: window.to_string(),
            source: Box::new(e),
        })
    }

    /// One read of a window: list, details, commit (see the module doc).
    async fn run_window_inner(
        &self,
        shop: &Shop,
        stream: &StreamSpec,
        window: Window,
        run: WindowRun<'_>,
    ) -> Result<WindowReport> {
        if stream.is_detail() {
            return Err(PipelineError::Invalid(format!(
                "stream `{}` is a detail stream; it runs with its parent",
                stream.name
            )));
        }
        if self.needs_partner_asset(stream) {
            self.partner_asset(shop).await?;
        }
        let ctx = RowContext {
            shop_id: shop.id.clone(),
            tz: shop.tz,
            extracted_at_us: Utc::now().timestamp_micros(),
        };
        let listed = self.fetch_list(shop, stream, window, &ctx).await?;
        let details = self
            .fetch_detail_tree(shop, &ctx, listed.details, &listed.call_params)
            .await?;
        // Past this point the window commits whole even when a shutdown is asked for.
        self.check_stop()?;
        run.check_lease()?;
        let landing = commit::Landing {
            tables: listed.tables,
            pages: listed.pages + details.pages,
            details,
        };
        self.commit_window(shop, stream, window, run, landing, &ctx)
            .await
    }

    /// Whether `stream` or one of its detail streams makes partner-scoped calls.
    fn needs_partner_asset(&self, stream: &StreamSpec) -> bool {
        self.pipelines.streams.iter().any(|s| {
            s.scope == Scope::Partner
                && self
                    .pipelines
                    .root_of(s)
                    .is_some_and(|r| r.name == stream.name)
        })
    }
}

/// Totals of a multi-window run.
#[derive(Debug, Default)]
pub struct RunSummary {
    /// Windows landed.
    pub windows: usize,
    /// Rows fetched and merged (all tables).
    pub rows: u64,
    /// Rows inserted or replaced by a newer version.
    pub changed: u64,
    /// Pages fetched.
    pub pages: u64,
    /// Failed shop × stream sequences (each stopped at its failed window), each a
    /// [`PipelineError::Window`] naming shop, stream and window around its cause.
    pub errors: Vec<PipelineError>,
}

/// What [`Extractor::run_sequences`] reports as it goes (progress bars, logs).
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A window landed.
    Landed(&'a WindowReport),
    /// A window was split in two (one more window to go).
    Split,
    /// A planned window had landed already (beyond a gap this run filled): not fetched.
    Skipped,
}

/// One shop × stream and its windows, run in order.
pub struct Sequence<'a> {
    /// Shop.
    pub shop: Shop,
    /// Stream.
    pub stream: &'a StreamSpec,
    /// Windows, oldest first.
    pub windows: Vec<Window>,
    /// Where a cursor may begin when none is stored (the plan's origin).
    pub origin: Option<i64>,
    /// Flags a job's leases raise when lost: a window stops before its commit.
    pub lease_lost: Vec<Arc<std::sync::atomic::AtomicBool>>,
}

impl Extractor {
    /// One sequence's windows in order, splitting windows that are too large; stops at
    /// the first failed window.
    async fn run_sequence(
        &self,
        seq: Sequence<'_>,
        on_progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> (Vec<WindowReport>, Option<PipelineError>) {
        let mut done = Vec::new();
        let mut todo: std::collections::VecDeque<Window> = seq.windows.into();
        while let Some(w) = todo.pop_front() {
            let run = WindowRun {
                origin: seq.origin,
                lease_lost: &seq.lease_lost,
            };
            match self.run_window(&seq.shop, seq.stream, w, run).await {
                Ok(r) => {
                    on_progress(Progress::Landed(&r));
                    // Filling a gap moved the cursor over windows landed beyond it: they
                    // are not fetched again.
                    if let Some(c) = r.cursor {
                        while todo.front().is_some_and(|n| n.to <= c && n.from >= w.to) {
                            todo.pop_front();
                            on_progress(Progress::Skipped);
                        }
                    }
                    done.push(r);
                }
                Err(PipelineError::WindowTooLarge { total, max }) => {
                    let mid = w.from + (w.to - w.from) / 2;
                    debug!(window = %w, total, max, "splitting window");
                    todo.push_front(Window {
                        from: mid,
                        to: w.to,
                    });
                    todo.push_front(Window {
                        from: w.from,
                        to: mid,
                    });
                    on_progress(Progress::Split);
                }
                Err(e) => {
                    tracing::error!(error = %e, "window failed; later windows of this shop and stream wait for the next run");
                    return (done, Some(e));
                }
            }
        }
        (done, None)
    }

    /// Runs sequences concurrently (up to `concurrency`), each one's windows in order; a
    /// failed window stops its sequence, so the cursor never skips past a gap.
    /// `on_progress` sees every landed and every split window.
    pub async fn run_sequences(
        &self,
        seqs: Vec<Sequence<'_>>,
        concurrency: usize,
        on_progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> RunSummary {
        // Futures made up front (not a closure inside the stream), so the whole run is a
        // `Send` future a job worker can hold.
        let runs: Vec<_> = seqs
            .into_iter()
            .map(|seq| self.run_sequence(seq, on_progress))
            .collect();
        let results: Vec<(Vec<WindowReport>, Option<PipelineError>)> = futures::stream::iter(runs)
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut sum = RunSummary::default();
        for (done, err) in results {
            sum.windows += done.len();
            sum.rows += done.iter().map(|r| r.total_rows()).sum::<u64>();
            sum.changed += done.iter().map(|r| r.changed).sum::<u64>();
            sum.pages += done.iter().map(|r| r.pages as u64).sum::<u64>();
            sum.errors.extend(err);
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::request::{call_ranges, records_of};
    use super::*;
    use crate::pipeline::spec::ParamsIn;

    #[test]
    fn windows_cover_the_range_without_gaps() {
        let w = windows(0, 100, 30);
        assert_eq!(
            w,
            vec![
                Window { from: 0, to: 30 },
                Window { from: 30, to: 60 },
                Window { from: 60, to: 90 },
                Window { from: 90, to: 100 }
            ]
        );
        assert!(windows(5, 5, 10).is_empty());
    }

    #[test]
    fn per_call_ranges_step_through_local_days() {
        use crate::pipeline::spec::{WindowFormat, WindowSpec};
        let spec = |per_call: Option<u64>| WindowSpec {
            start_param: "start_date_ge".into(),
            end_param: "end_date_lt".into(),
            end_inclusive: false,
            params_in: ParamsIn::Query,
            size: std::time::Duration::from_secs(30 * 86_400),
            max_records: None,
            lookback: None,
            format: WindowFormat::LocalDate,
            stamp: true,
            full_history: false,
            per_call: per_call.map(std::time::Duration::from_secs),
        };
        let tz: chrono_tz::Tz = "Europe/London".parse().unwrap();
        // 2026-10-20 00:00 to 2026-10-28 00:00 London: the clocks go back on the 25th.
        let w = Window {
            from: 1_792_450_800,
            to: 1_793_145_600,
        };
        let days = call_ranges(Some(&spec(Some(86_400))), w, tz);
        let starts: Vec<String> = days
            .iter()
            .map(|(s, _)| s.as_str().unwrap().to_string())
            .collect();
        assert_eq!(starts.len(), 8, "{starts:?}");
        assert_eq!(starts[0], "2026-10-20");
        assert_eq!(starts[7], "2026-10-27");
        assert!(
            days.windows(2).all(|p| p[0].1 == p[1].0),
            "contiguous: {days:?}"
        );
        // Without per_call: one call for the window; a window inside one day: no call.
        assert_eq!(call_ranges(Some(&spec(None)), w, tz).len(), 1);
        let short = Window {
            from: w.from,
            to: w.from + 3_600,
        };
        assert!(call_ranges(Some(&spec(Some(86_400))), short, tz).is_empty());
    }

    #[test]
    fn records_of_handles_arrays_objects_and_missing() {
        let d = serde_json::json!({"orders": [{"id": "1"}, {"id": "2"}]});
        assert_eq!(records_of(d, "orders", "/p", "r").unwrap().len(), 2);
        let d = serde_json::json!({"id": "1", "title": "x"});
        assert_eq!(records_of(d, "", "/p", "r").unwrap().len(), 1);
        let d = serde_json::json!({"orders": []});
        assert!(records_of(d, "orders", "/p", "r").unwrap().is_empty());
        // `{"code":0,"data":{}}` is not "no orders".
        let e = records_of(serde_json::json!({}), "orders", "/p", "r").unwrap_err();
        assert!(e.to_string().contains("data.orders is missing"), "{e}");
    }
}
