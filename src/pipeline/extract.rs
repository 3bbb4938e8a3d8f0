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

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use tracing::{debug, info, instrument, warn};

use super::convert::{RowContext, StreamConverter};
use super::schema::{PARTITION_COLUMNS, TableSchema};
use super::spec::{
    DetailSpec, Pagination, ParamsIn, Pipelines, Scope, StreamKind, StreamSpec, WindowFormat,
};
use super::state::StateStore;
use super::{PipelineError, Result};
use crate::api::auth::ShopInfo;
use crate::api::client::Credential;
use crate::api::paginate::{self, PageSpec, PageStyle};
use crate::api::{ApiClient, ApiError, ApiRequest};
use crate::warehouse::delta::CursorMove;
use crate::warehouse::{Lake, UpsertSpec};

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

/// The (start, end) params of each call a window makes: one call for the whole window, or
/// one per `window.per_call` (reports answer one aggregate per call, so a daily report is
/// one call per day; every call of a window still lands in one commit). Local-date windows
/// step through whole shop-local days; a window shorter than one makes no call.
fn call_ranges(
    w: Option<&crate::pipeline::spec::WindowSpec>,
    window: Window,
    tz: chrono_tz::Tz,
) -> Vec<(Value, Value)> {
    let Some(w) = w else {
        return vec![(Value::Null, Value::Null)];
    };
    let step = w.per_call.map(|d| d.as_secs() as i64);
    match w.format {
        WindowFormat::Unix => {
            let parts = match step {
                Some(step) => windows(window.from, window.to, step),
                None => vec![window],
            };
            parts
                .into_iter()
                .map(|p| {
                    let end = if w.end_inclusive { p.to - 1 } else { p.to };
                    (p.from.into(), end.into())
                })
                .collect()
        }
        WindowFormat::LocalDate => {
            let day = |t: i64| {
                use chrono::TimeZone;
                tz.timestamp_opt(t, 0)
                    .single()
                    .map(|d| d.date_naive())
                    .unwrap_or_default()
            };
            let (s, e) = (day(window.from), day(window.to));
            let days = step.map_or(i64::MAX, |st| (st / 86_400).max(1));
            let mut out = Vec::new();
            let mut d = s;
            while d < e {
                let next = (d + chrono::Duration::days(days.min((e - d).num_days()))).min(e);
                out.push((d.to_string().into(), next.to_string().into()));
                d = next;
            }
            out
        }
    }
}

/// A detail stream's next call group: the stream, its ids, the window params it sends.
type PendingDetail<'s> = (&'s StreamSpec, Vec<DetailId>, Vec<(String, String)>);

/// A parent record's id for a detail call, with the parent fields the detail stream
/// `carry`s into its records (sorted and deduplicated by id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct DetailId {
    id: String,
    carried: Vec<(String, String)>,
}

impl DetailId {
    /// The id (and carried fields) `detail` takes from parent record `v`.
    fn of(v: &Value, detail: &DetailSpec) -> Option<DetailId> {
        let id = record_id(v, &detail.id_field)?;
        let carried = detail
            .carry
            .iter()
            .filter_map(|(from, to)| Some((to.clone(), v.get(from).map(Value::to_string)?)))
            .collect();
        Some(DetailId { id, carried })
    }

    /// `template` with `{id}` and each `{carried field}` replaced by its value: a path
    /// such as `/campaigns/{campaign_id}/products/{id}/performance`.
    fn fill(&self, template: &str) -> String {
        let mut out = template.replace("{id}", &self.id);
        for (k, json) in &self.carried {
            let v = match serde_json::from_str::<Value>(json) {
                Ok(Value::String(s)) => s,
                _ => json.clone(),
            };
            out = out.replace(&format!("{{{k}}}"), &v);
        }
        out
    }

    /// Writes the carried fields into `records` (fields the API sends win).
    fn stamp(&self, records: &mut [Value]) {
        for r in records {
            if let Some(o) = r.as_object_mut() {
                for (k, json) in &self.carried {
                    let v = serde_json::from_str(json).unwrap_or(Value::Null);
                    o.entry(k.clone()).or_insert(v);
                }
            }
        }
    }
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

struct Fetched {
    tables: BTreeMap<String, arrow::array::RecordBatch>,
    pages: u32,
}

fn record_id(v: &Value, field: &str) -> Option<String> {
    match v.get(field)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The stream's fixed JSON body fields (`body = { … }` in its pipeline file).
fn fixed_body(stream: &StreamSpec) -> serde_json::Map<String, Value> {
    stream
        .body
        .iter()
        .map(|(k, v)| (k.clone(), toml_to_json(v)))
        .collect()
}

fn toml_to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
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
            .txn_version("raw", &stream.tables[0], &app_id(&stream.name, shop_id))
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
                &stream.tables[0],
                &crate::warehouse::delta::landed_app(&app),
            )
            .await?;
        let cursor = self.cursor(shop_id, stream).await?;
        Ok(landed.filter(|l| cursor.is_none_or(|c| *l > c)))
    }

    fn converter(&self, stream: &StreamSpec) -> StreamConverter {
        let main = self.schemas[&stream.tables[0]].clone();
        let children = stream.tables[1..]
            .iter()
            .map(|t| self.schemas[t].clone())
            .collect();
        StreamConverter::new(main, children)
    }

    fn base_request(
        &self,
        stream: &StreamSpec,
        shop: &Shop,
        body: serde_json::Map<String, Value>,
    ) -> ApiRequest {
        let mut req = if stream.method == "POST" {
            ApiRequest::post(&stream.path, &Value::Object(body))
        } else {
            ApiRequest::get(&stream.path)
        };
        for (k, v) in &stream.query {
            req = req.query(k, v);
        }
        req = match stream.scope {
            Scope::Shop => req.shop(&shop.cipher),
            Scope::Seller => req.credential(Credential::Seller(shop.cipher.clone())),
            Scope::Partner => {
                // Resolved before the window's first call (`partner_asset`); an empty
                // cipher is refused by the API with its own error.
                let asset = self
                    .assets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&shop.id)
                    .cloned()
                    .unwrap_or_default();
                req.credential(Credential::Partner {
                    shop: shop.cipher.clone(),
                    asset,
                })
            }
        };
        req.family(stream.family.clone().unwrap_or_else(|| stream.path.clone()))
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

    async fn run_window_inner(
        &self,
        shop: &Shop,
        stream: &StreamSpec,
        window: Window,
        run: WindowRun<'_>,
    ) -> Result<WindowReport> {
        let origin = run.origin;
        if stream.kind == StreamKind::Detail {
            return Err(PipelineError::Invalid(format!(
                "stream `{}` is a detail stream; it runs with its parent",
                stream.name
            )));
        }
        if self.pipelines.streams.iter().any(|s| {
            s.scope == Scope::Partner
                && self
                    .pipelines
                    .root_of(s)
                    .is_some_and(|r| r.name == stream.name)
        }) {
            self.partner_asset(shop).await?;
        }
        // A snapshot lists everything the shop has now (no window filter) and replaces
        // the shop's rows with it; `window.to` is the snapshot's version.
        let snapshot_of = (stream.kind == StreamKind::Snapshot).then_some(shop);
        let ctx = RowContext {
            shop_id: shop.id.clone(),
            tz: shop.tz,
            extracted_at_us: Utc::now().timestamp_micros(),
        };
        let mut conv = self.converter(stream);
        let detail_streams: Vec<&StreamSpec> = self.pipelines.children(&stream.name).collect();
        let id_specs: Vec<&DetailSpec> = detail_streams
            .iter()
            .filter_map(|d| d.detail.as_ref())
            .collect();
        // Ids for each detail stream, with the call (index into `calls`) that listed them.
        let mut ids: Vec<Vec<(usize, DetailId)>> = vec![Vec::new(); detail_streams.len()];

        // 1-2: list pages → batches, one call (or paged walk) per range in `calls`.
        let body = fixed_body(stream);
        let w = stream.window.as_ref();
        let calls = call_ranges(w, window, ctx.tz);
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut pages = 0u32;
        // Per call: the window params as query text, for detail streams asking the same days.
        let mut call_params: Vec<Vec<(String, String)>> = Vec::new();
        for (call, (start, end)) in calls.iter().enumerate() {
            let mut body = body.clone();
            let mut req_query = Vec::new();
            let mut stamp = serde_json::Map::new();
            let mut params = Vec::new();
            if let Some(w) = w {
                if w.stamp {
                    stamp.insert(w.start_param.clone(), start.clone());
                    stamp.insert(w.end_param.clone(), end.clone());
                }
                params.push((w.start_param.clone(), text(start)));
                params.push((w.end_param.clone(), text(end)));
                match w.params_in {
                    ParamsIn::Body => {
                        body.insert(w.start_param.clone(), start.clone());
                        body.insert(w.end_param.clone(), end.clone());
                    }
                    ParamsIn::Query => req_query.extend(params.iter().cloned()),
                }
            }
            call_params.push(params);
            let mut req = self.base_request(stream, shop, body);
            for (k, v) in req_query {
                req = req.query(k, v);
            }
            let mut on_records = |records: &[Value], page: u32, request_id: &str| -> Result<()> {
                let stamped: Vec<Value>;
                let records = if stamp.is_empty() {
                    records
                } else {
                    stamped = records
                        .iter()
                        .map(|r| {
                            let mut r = r.clone();
                            if let Some(o) = r.as_object_mut() {
                                o.extend(stamp.clone());
                            }
                            r
                        })
                        .collect();
                    &stamped
                };
                conv.push_page(records, &ctx, request_id)
                    .map_err(|source| PipelineError::Convert {
                        page,
                        request_id: request_id.to_string(),
                        source,
                    })?;
                for (i, spec) in id_specs.iter().enumerate() {
                    ids[i].extend(
                        records
                            .iter()
                            .filter_map(|r| DetailId::of(r, spec))
                            .map(|id| (call, id)),
                    );
                }
                Ok(())
            };
            match stream.pagination {
                Pagination::None => {
                    let resp = self.client.send(&req).await?;
                    let records =
                        records_of(resp.data, &stream.records, &stream.path, &resp.request_id)?;
                    on_records(&records, pages, &resp.request_id)?;
                    pages += 1;
                }
                _ => {
                    // A walk the list shifted under (`ApiError::Shifted`) goes on from the
                    // last record's sort value when the list is sorted ascending by its
                    // window field: records at that value are read twice (idempotent),
                    // none is skipped. Otherwise the window is read again whole.
                    let seek = seek_field(stream);
                    // A record that moves inside the window (the index catching up with
                    // an update) leaves the total as it was but still shifts the
                    // offsets: a walk of such a list also counts the distinct keys it
                    // read, and one that read fewer than the total fails as shifted.
                    let key_paths = if seek.is_some() {
                        key_paths(&self.schemas[&stream.tables[0]])
                    } else {
                        Vec::new()
                    };
                    let mut req = req;
                    let mut restarts = 0u32;
                    let mut from: Option<Value> = None;
                    loop {
                        let spec = page_spec(stream, req.clone());
                        let mut s = std::pin::pin!(paginate::pages(self.client.clone(), spec));
                        let mut last: Option<Value> = None;
                        let mut keys: std::collections::HashSet<String> = Default::default();
                        let mut total: Option<u64> = None;
                        let walked: Result<()> = async {
                            while let Some(page) = s.try_next().await? {
                                if !key_paths.is_empty() {
                                    total = page.total.or(total);
                                    keys.extend(
                                        page.records.iter().map(|r| record_key(r, &key_paths)),
                                    );
                                }
                                if let (0, 0, Some(total), Some(max)) = (
                                    restarts,
                                    page.index,
                                    page.total,
                                    w.and_then(|w| w.max_records),
                                ) {
                                    // Split windows longer than one second; a single busier second lands whole.
                                    if total > max && window.to - window.from > 1 {
                                        return Err(PipelineError::WindowTooLarge { total, max });
                                    }
                                }
                                self.check_stop()?;
                                on_records(&page.records, page.index, &page.request_id)?;
                                pages += 1;
                                if let Some((field, _)) = seek {
                                    if let Some(v) = page.records.last().and_then(|r| r.get(field))
                                    {
                                        last = Some(v.clone());
                                    }
                                }
                            }
                            Ok(())
                        }
                        .await;
                        if walked.is_ok() && total.is_some_and(|t| (keys.len() as u64) < t) {
                            // Offsets shifted under the walk: the window is read again
                            // whole by `run_window`, as for a total that changed.
                            return Err(PipelineError::Api(ApiError::Shifted {
                                ctx: crate::api::error::RequestContext {
                                    path: stream.path.clone(),
                                    shop: Some(shop.id.clone()),
                                },
                                first: total.unwrap_or_default(),
                                now: keys.len() as u64,
                                page: pages,
                            }));
                        }
                        match (walked, seek, last) {
                            // Goes on only when it moved: a page of records all at the
                            // value it started from would restart in place.
                            (
                                Err(PipelineError::Api(e @ ApiError::Shifted { .. })),
                                Some((_, start)),
                                Some(v),
                            ) if restarts < SEEK_RESTARTS && from.as_ref() != Some(&v) => {
                                from = Some(v.clone());
                                debug!(error = %e, from = %v, "list shifted; walking on from the last record");
                                let params_in = match w.map(|w| w.params_in) {
                                    Some(ParamsIn::Body) => paginate::ParamsIn::Body,
                                    _ => paginate::ParamsIn::Query,
                                };
                                paginate::set_param(&mut req, params_in, start, v)?;
                                restarts += 1;
                            }
                            (r, _, _) => break r?,
                        }
                    }
                }
            }
        }
        let mut fetched = Fetched {
            tables: conv.finish(),
            pages,
        };
        debug!(pages, calls = calls.len(), "list pages fetched");

        // 3: detail streams for the ids seen, then their own detail streams for the ids
        // those calls returned (a delivery option's shipping providers), breadth first. A
        // detail stream that asks for its parent's window gets the ids of each call with
        // that call's dates; the others get all ids once.
        let mut detail_batches: BTreeMap<(String, String), Vec<arrow::array::RecordBatch>> =
            BTreeMap::new();
        let mut detail_order: Vec<&StreamSpec> = Vec::new();
        let mut pending: std::collections::VecDeque<PendingDetail> =
            std::collections::VecDeque::new();
        for (d, listed) in detail_streams.iter().copied().zip(ids) {
            if d.detail.as_ref().is_some_and(|x| x.window) {
                let mut by_call: BTreeMap<usize, Vec<DetailId>> = BTreeMap::new();
                for (call, id) in listed {
                    by_call.entry(call).or_default().push(id);
                }
                for (call, ids) in by_call {
                    pending.push_back((d, ids, call_params[call].clone()));
                }
            } else {
                let all = listed.into_iter().map(|(_, id)| id).collect();
                pending.push_back((d, all, Vec::new()));
            }
        }
        while let Some((d, mut ids, params)) = pending.pop_front() {
            // One call per id and carried values: a creator promoting two products of a
            // campaign is asked about each.
            ids.sort();
            ids.dedup();
            self.check_stop()?;
            let (f, deeper) = self.fetch_details(shop, d, &ids, &ctx, &params).await?;
            fetched.pages += f.pages;
            if !detail_order.iter().any(|x| x.name == d.name) {
                detail_order.push(d);
            }
            for (t, b) in f.tables {
                detail_batches
                    .entry((d.name.clone(), t))
                    .or_default()
                    .push(b);
            }
            pending.extend(deeper.into_iter().map(|(k, ids)| (k, ids, params.clone())));
        }

        // Past this point the window commits whole even when a shutdown is asked for.
        self.check_stop()?;
        if run
            .lease_lost
            .iter()
            .any(|l| l.load(std::sync::atomic::Ordering::SeqCst))
        {
            return Err(PipelineError::LeaseLost);
        }
        // 4: commit children first, the stream's own table (with its cursor) last.
        let mut report = WindowReport {
            shop: shop.id.clone(),
            stream: stream.name.clone(),
            window: window.to_string(),
            rows: BTreeMap::new(),
            changed: 0,
            pages: fetched.pages,
            cursor: None,
        };
        // Commit order: detail tables, child tables, then the stream's own table, whose
        // txn is the cursor: a crash in between re-runs the window over idempotent merges.
        let main = stream.tables[0].clone();
        let mut tables = fetched.tables;
        let main_batch = tables
            .remove(&main)
            .expect("converter yields the main table");
        let own = app_id(&stream.name, &shop.id);
        let mut commits = Vec::new();
        for d in detail_order {
            let app = app_id(&d.name, &shop.id);
            let mine: Vec<(String, Vec<arrow::array::RecordBatch>)> = detail_batches
                .iter()
                .filter(|((stream, _), _)| stream == &d.name)
                .map(|((_, t), b)| (t.clone(), b.clone()))
                .collect();
            for (t, batches) in mine {
                let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches)
                    .map_err(|e| PipelineError::Invalid(format!("{}: {e}", d.name)))?;
                commits.push((t, batch, app.clone()));
            }
        }
        commits.extend(tables.into_iter().map(|(t, b)| (t, b, own.clone())));
        commits.push((main, main_batch, own));
        // A snapshot covers everything, so it always continues its cursor (a version);
        // a window does when it starts at or before the cursor (or the plan's origin).
        let from = if snapshot_of.is_some() {
            i64::MIN
        } else {
            window.from
        };
        let main_table = stream.tables[0].clone();
        // An incomplete snapshot answer is judged on every table it writes — the stream's
        // own first — before any of them deletes a row; the commits then skip the check.
        if let Some(shop) = snapshot_of {
            let share = stream.max_delete.unwrap_or(self.opts.max_snapshot_delete);
            let main_first = commits
                .iter()
                .filter(|(t, _, _)| *t == main_table)
                .chain(commits.iter().filter(|(t, _, _)| *t != main_table));
            for (t, b, _) in main_first {
                let keys = self.schemas[t].merge_keys();
                let spec = UpsertSpec {
                    keys: &keys,
                    snapshot_of: Some(shop.id.as_str()),
                    max_delete_share: Some(share),
                    ..Default::default()
                };
                self.lake.check_snapshot("raw", t, b, &spec).await?;
            }
        }
        for (t, b, app) in commits {
            // A lease lost while earlier tables committed stops the rest.
            if run
                .lease_lost
                .iter()
                .any(|l| l.load(std::sync::atomic::Ordering::SeqCst))
            {
                return Err(PipelineError::LeaseLost);
            }
            let mv = CursorMove {
                app: &app,
                from,
                to: window.to,
                origin,
            };
            let n = self.commit(&t, b, mv, snapshot_of, &ctx).await?;
            report.changed += n.inserted as u64 + n.updated as u64;
            // The stream's cursor is the main table's (child tables keep their own).
            if t == main_table {
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

    async fn commit(
        &self,
        table: &str,
        batch: arrow::array::RecordBatch,
        cursor: CursorMove<'_>,
        snapshot_of: Option<&Shop>,
        ctx: &RowContext,
    ) -> Result<crate::warehouse::WriteMetrics> {
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
            .upsert_window("raw", table, batch, &spec, cursor)
            .await?;
        // Rows landed under an earlier schema: fill columns added since from `_extra`
        // (asked once per table per process, and again after a commit added columns).
        if m.evolved || m.stale_schema {
            let mut zones = self.zones.clone();
            zones.insert(ctx.shop_id.clone(), ctx.tz);
            super::upgrade::fill_from_extra(&self.lake, schema, &zones).await?;
        } else if check {
            self.confirmed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(table.to_string());
        }
        Ok(m)
    }

    /// The `category_asset_cipher` Affiliate Partner calls for `shop` send: the seller's
    /// category asset for the shop's market (looked up once per shop).
    async fn partner_asset(&self, shop: &Shop) -> Result<String> {
        if let Some(a) = self
            .assets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&shop.id)
        {
            return Ok(a.clone());
        }
        let req = ApiRequest::get(CATEGORY_ASSETS)
            .credential(Credential::Seller(shop.cipher.clone()))
            .family(CATEGORY_ASSETS);
        let resp = self.client.send(&req).await?;
        let assets = records_of(
            resp.data,
            "category_assets",
            CATEGORY_ASSETS,
            &resp.request_id,
        )?;
        let asset = assets
            .iter()
            .find(|a| a.get("target_market").and_then(Value::as_str) == Some(shop.region.as_str()))
            .and_then(|a| record_id(a, "cipher"))
            .ok_or_else(|| {
                PipelineError::Invalid(format!(
                    "shop {} ({}): the seller has no category asset for market {} ({} assets from {CATEGORY_ASSETS}); Affiliate Partner streams need the partner's authorization for it",
                    shop.id,
                    shop.name,
                    shop.region,
                    assets.len()
                ))
            })?;
        self.assets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(shop.id.clone(), asset.clone());
        Ok(asset)
    }

    async fn fetch_details<'s>(
        &'s self,
        shop: &Shop,
        d: &'s StreamSpec,
        ids: &[DetailId],
        ctx: &RowContext,
        window: &[(String, String)],
    ) -> Result<(Fetched, Vec<(&'s StreamSpec, Vec<DetailId>)>)> {
        let detail = d
            .detail
            .as_ref()
            .expect("validated: detail streams have [detail]");
        // Detail streams of this detail stream, and the ids its records give them.
        let mut deeper: Vec<(&StreamSpec, Vec<DetailId>)> = self
            .pipelines
            .children(&d.name)
            .map(|k| (k, Vec::new()))
            .collect();
        let mut collect = |records: &[Value]| {
            for (k, ids) in &mut deeper {
                if let Some(spec) = k.detail.as_ref() {
                    ids.extend(records.iter().filter_map(|r| DetailId::of(r, spec)));
                }
            }
        };
        let with_window = |mut r: ApiRequest| {
            if detail.window {
                for (k, v) in window {
                    r = r.query(k.clone(), v.clone());
                }
            }
            r
        };
        let requests: Vec<ApiRequest> = match &detail.ids_param {
            Some(param) => ids
                .chunks(detail.batch.max(1))
                .map(|chunk| {
                    let chunk: Vec<&str> = chunk.iter().map(|x| x.id.as_str()).collect();
                    if detail.ids_in == ParamsIn::Body {
                        let mut body = fixed_body(d);
                        body.insert(param.clone(), Value::from(chunk));
                        with_window(self.base_request(d, shop, body))
                    } else {
                        with_window(self.base_request(d, shop, Default::default()))
                            .query(param, chunk.join(","))
                    }
                })
                .collect(),
            None => ids
                .iter()
                .map(|id| {
                    let mut spec = d.clone();
                    spec.path = id.fill(&d.path);
                    for v in spec.query.values_mut() {
                        *v = id.fill(v);
                    }
                    let family = d.family.clone().unwrap_or_else(|| d.path.clone());
                    with_window(self.base_request(&spec, shop, fixed_body(d))).family(family)
                })
                .collect(),
        };
        // Paged per-id calls (the transactions of a statement): each id's pages through the
        // one paginator, ids one after another.
        if d.pagination != Pagination::None && detail.ids_param.is_none() {
            let mut conv = self.converter(d);
            let mut pages = 0u32;
            for (req, id) in requests.into_iter().zip(ids) {
                let mut s = std::pin::pin!(paginate::pages(self.client.clone(), page_spec(d, req)));
                while let Some(mut page) = s.try_next().await? {
                    self.check_stop()?;
                    if let Some(field) = detail.id_as.as_deref() {
                        inject_id(&mut page.records, field, &id.id);
                    }
                    id.stamp(&mut page.records);
                    if detail.window {
                        for (k, v) in window {
                            inject_id(&mut page.records, k, v);
                        }
                    }
                    collect(&page.records);
                    conv.push_page(&page.records, ctx, &page.request_id)
                        .map_err(|source| PipelineError::Convert {
                            page: pages,
                            request_id: page.request_id.clone(),
                            source,
                        })?;
                    pages += 1;
                }
            }
            let fetched = Fetched {
                tables: conv.finish(),
                pages,
            };
            return Ok((fetched, deeper));
        }
        let pages = requests.len() as u32;
        let client = &self.client;
        let mut responses = futures::stream::iter(requests)
            .map(|r| async move { client.send(&r).await })
            .buffered(4);
        let mut conv = self.converter(d);
        let mut page = 0u32;
        // Per-id calls (a path id, or one id per call in a query param) answer in request
        // order: response `page` belongs to `ids[page]`.
        let per_id = detail.ids_param.is_none() || detail.batch <= 1;
        let inject = detail.id_as.as_deref().filter(|_| per_id);
        while let Some(resp) = responses.next().await {
            self.check_stop()?;
            let resp = resp?;
            let mut records = records_of(resp.data, &d.records, &d.path, &resp.request_id)?;
            if let (Some(field), Some(id)) = (inject, ids.get(page as usize)) {
                inject_id(&mut records, field, &id.id);
            }
            if per_id {
                if let Some(id) = ids.get(page as usize) {
                    id.stamp(&mut records);
                }
            } else if let Some(field) = detail.id_as.as_deref().filter(|_| !detail.carry.is_empty())
            {
                // Batched calls: each record names its parent under `id_as`.
                for r in &mut records {
                    let parent = record_id(r, field)
                        .and_then(|k| ids.binary_search_by(|x| x.id.as_str().cmp(&k)).ok());
                    if let Some(i) = parent {
                        ids[i].stamp(std::slice::from_mut(r));
                    }
                }
            }
            if detail.window {
                for (k, v) in window {
                    inject_id(&mut records, k, v);
                }
            }
            collect(&records);
            conv.push_page(&records, ctx, &resp.request_id)
                .map_err(|source| PipelineError::Convert {
                    page,
                    request_id: resp.request_id.clone(),
                    source,
                })?;
            page += 1;
        }
        let fetched = Fetched {
            tables: conv.finish(),
            pages,
        };
        Ok((fetched, deeper))
    }
}

/// Totals of a multi-window run.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Windows landed.
    pub windows: usize,
    /// Rows fetched and merged (all tables).
    pub rows: u64,
    /// Rows inserted or replaced by a newer version.
    pub changed: u64,
    /// Pages fetched.
    pub pages: u64,
    /// Failed shop × stream sequences (each stopped at its failed window).
    pub errors: Vec<String>,
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
    ) -> (Vec<WindowReport>, Option<String>) {
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
                    return (done, Some(e.to_string()));
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
        let results: Vec<(Vec<WindowReport>, Option<String>)> = futures::stream::iter(runs)
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

/// Where a seller's category assets are listed (Affiliate Partner calls need one).
const CATEGORY_ASSETS: &str = "/authorization/202405/category_assets";

/// Puts the parent id a detail call was made for into each record (as `field`), unless the
/// API already sends it.
fn inject_id(records: &mut [Value], field: &str, id: &str) {
    for r in records {
        if let Some(o) = r.as_object_mut() {
            o.entry(field.to_string())
                .or_insert_with(|| Value::String(id.to_string()));
        }
    }
}

/// How `stream` pages, for the one paginator.
/// Where the primary key of `schema`'s records is (JSON paths).
fn key_paths(schema: &TableSchema) -> Vec<&str> {
    schema
        .primary_key
        .iter()
        .filter_map(|k| schema.columns.iter().find(|c| &c.name == k))
        .map(|c| c.path())
        .collect()
}

/// The identity of `record`: the values at `paths`, joined.
fn record_key(record: &Value, paths: &[&str]) -> String {
    paths
        .iter()
        .map(|p| {
            p.split('.')
                .try_fold(record, |v, k| v.get(k))
                .map_or_else(String::new, |v| v.to_string())
        })
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// The record field a shifted walk of `stream` can go on from, and the window parameter
/// that takes it: the list is sorted ascending (`sort_order = "ASC"`) by `sort_field`, and
/// the window's start parameter is `<sort_field>_ge`.
fn seek_field(stream: &StreamSpec) -> Option<(&str, &str)> {
    let w = stream.window.as_ref()?;
    let field = stream.query.get("sort_field")?;
    (stream.query.get("sort_order").map(String::as_str) == Some("ASC")
        && w.start_param == format!("{field}_ge"))
    .then_some((field.as_str(), w.start_param.as_str()))
}

fn page_spec(stream: &StreamSpec, request: ApiRequest) -> PageSpec {
    PageSpec {
        request,
        style: if stream.pagination == Pagination::PageToken {
            PageStyle::Token
        } else {
            PageStyle::Number
        },
        page_size: stream.page_size,
        params_in: match stream.page_params_in {
            ParamsIn::Query => paginate::ParamsIn::Query,
            ParamsIn::Body => paginate::ParamsIn::Body,
        },
        records: stream.records.clone(),
    }
}

/// The records at `path` under `data`. A missing field is an error, as in the paginator:
/// an answer without its list is not an answer of "none" (a snapshot would otherwise
/// delete every row of the shop). `null` reads as no records, like the paginator.
fn records_of(mut data: Value, path: &str, request: &str, request_id: &str) -> Result<Vec<Value>> {
    let mut cur = &mut data;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        match cur.get_mut(part) {
            Some(v) => cur = v,
            None => {
                return Err(PipelineError::Api(crate::api::ApiError::Decode {
                    ctx: crate::api::error::RequestContext {
                        path: request.to_string(),
                        shop: None,
                    },
                    status: 200,
                    detail: format!(
                        "data.{path} is missing (request {request_id}); the answer is incomplete, nothing of the window is written"
                    ),
                }));
            }
        }
    }
    Ok(match cur.take() {
        Value::Array(v) => v,
        Value::Null => Vec::new(),
        other => vec![other],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
