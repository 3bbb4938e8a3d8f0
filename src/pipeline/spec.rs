//! Pipeline files (`pipelines/<category>.toml`): the streams of one API category, as
//! data. A stream names its endpoint, pagination, records path, the raw tables it lands
//! and how it is windowed; adding an endpoint is a TOML block plus a schema file.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{PipelineError, Result};

/// How a stream is extracted, with what that kind needs: a window for an incremental
/// stream, a parent and a call shape for a detail stream. Checked at load, so nothing
/// downstream meets a stream without what its kind needs.
#[derive(Debug, Clone)]
pub enum StreamKind {
    /// Time-windowed list by a cursor field (update_time).
    Incremental {
        /// The window filter.
        window: WindowSpec,
    },
    /// Detail calls for the ids a parent stream landed in the same window.
    Detail {
        /// The stream whose records give the ids.
        parent: String,
        /// The call shape.
        detail: DetailSpec,
    },
    /// Everything the shop has now (warehouses, reasons, settings): listed whole on every
    /// run, replacing the shop's rows (rows gone from the API are deleted).
    Snapshot {
        /// The share (0–1) of a shop's rows one run may delete, overriding `[extract]
        /// max_snapshot_delete` — `1` for working lists whose members leave as they
        /// progress (packages that can be combined now, transactions not yet settled).
        max_delete: Option<f64>,
    },
}

impl StreamKind {
    /// The kind's name in pipeline files.
    pub fn name(&self) -> &'static str {
        match self {
            StreamKind::Incremental { .. } => "incremental",
            StreamKind::Detail { .. } => "detail",
            StreamKind::Snapshot { .. } => "snapshot",
        }
    }
}

/// The kind names of pipeline files (`kind = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindName {
    Incremental,
    Detail,
    Snapshot,
}

/// HTTP method of a stream's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Method {
    /// `GET`: params in the query.
    #[serde(rename = "GET")]
    Get,
    /// `POST`: a JSON body (searches).
    #[serde(rename = "POST")]
    Post,
}

impl Method {
    /// `GET` or `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Pagination style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pagination {
    /// `page_token` / `next_page_token`.
    PageToken,
    /// 1-based `page_number`.
    PageNumber,
    /// One call, no paging.
    None,
}

/// Whose identity a call carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The shop's token and its `shop_cipher` (most endpoints).
    #[default]
    Shop,
    /// The shop's token without `shop_cipher` (`/authorization/*`, `/seller/*`): the
    /// answer is about the seller account the shop belongs to.
    Seller,
    /// Affiliate Partner calls: the shop's token with the `category_asset_cipher` of the
    /// seller's category asset for the shop's market (from
    /// `/authorization/202405/category_assets`) instead of `shop_cipher`.
    Partner,
}

/// Where request params go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ParamsIn {
    /// Query string.
    #[default]
    Query,
    /// JSON body.
    Body,
}

/// The time window filter of an incremental stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Request field for the window start (inclusive), e.g. `update_time_ge`.
    pub start_param: String,
    /// Request field for the window end, e.g. `update_time_lt`.
    pub end_param: String,
    /// The end field is inclusive (`update_time_le`): shoplake sends end − 1.
    #[serde(default)]
    pub end_inclusive: bool,
    /// Where the window params go.
    #[serde(default)]
    pub params_in: ParamsIn,
    /// Window size for backfills (e.g. `30d`).
    #[serde(with = "crate::duration")]
    pub size: Duration,
    /// A window whose first page reports more records than this (`total_count`) is split
    /// in half before anything is fetched further, so memory per window stays bounded
    /// while quiet periods still land in few, large commits.
    #[serde(default)]
    pub max_records: Option<u64>,
    /// Records that keep changing after their cursor time passed (a statement's payout
    /// status, analytics revised for days): every incremental run starts this far before
    /// the committed cursor and merges the re-read rows over the stored ones.
    #[serde(default, deserialize_with = "crate::duration::option::deserialize")]
    pub lookback: Option<Duration>,
    /// How the window bounds are sent.
    #[serde(default)]
    pub format: WindowFormat,
    /// Copy the bounds sent into every record, under the param names: reports whose rows
    /// do not say which dates they cover (product performance over a date range).
    #[serde(default)]
    pub stamp: bool,
    /// A catalog (products): a backfill starts it at [`FULL_HISTORY_START`] whatever its
    /// `--from`, so entities not updated since long before still land (re-listing a
    /// catalog costs a few empty windows). Runs from a cursor are unaffected.
    #[serde(default)]
    pub full_history: bool,
    /// Ask for this much per call inside a window (`"1day"`): date-range reports answer one
    /// aggregate per call, so a daily report needs a call per day — but the window's calls
    /// still land in one commit, so a year is 13 commits, not 365.
    #[serde(default, deserialize_with = "crate::duration::option::deserialize")]
    pub per_call: Option<Duration>,
}

/// Where a `full_history` stream's backfill starts: 2016-01-01, before TikTok Shop.
pub const FULL_HISTORY_START: i64 = 1_451_606_400;

impl WindowSpec {
    /// The first window start of a backfill asked to start at `from`.
    pub fn backfill_start(&self, from: i64) -> i64 {
        if self.full_history {
            from.min(FULL_HISTORY_START)
        } else {
            from
        }
    }
}

/// How window bounds go on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WindowFormat {
    /// Unix seconds (order, product, finance searches).
    #[default]
    Unix,
    /// `YYYY-MM-DD` in the shop's time zone (analytics reports): the start is the local
    /// date the window starts in, the exclusive end the local date it ends in, so only
    /// whole local days are asked for and a day still in progress waits for the next run.
    LocalDate,
}

/// Detail calls: ids from the parent stream's records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailSpec {
    /// Field of the parent record holding the id.
    #[serde(default = "default_id_field")]
    pub id_field: String,
    /// Query param taking a comma-separated id list (batched calls); when absent, the
    /// path holds `{id}` and one call is made per id.
    #[serde(default)]
    pub ids_param: Option<String>,
    /// Where the batched ids go: the query (comma-joined, default) or the JSON body (an
    /// array, for POST searches such as inventory by `product_ids`).
    #[serde(default)]
    pub ids_in: ParamsIn,
    /// Ids per call when batched.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// For per-id calls whose records do not carry the parent's id (e.g. the delivery
    /// options of a warehouse): the field each record gets it under.
    #[serde(default)]
    pub id_as: Option<String>,
    /// Send the parent's window bounds (its param names and values, as the parent sent
    /// them) as query params of every call, and stamp them into records lacking them: a
    /// report per video over the days the video list was asked for.
    #[serde(default)]
    pub window: bool,
    /// Parent record fields copied into every record of the call (parent field → record
    /// field), for details whose records lack a stable time to partition on: an order's
    /// price detail carries the order's `create_time`. Batched calls need `id_as` (the
    /// record field naming its parent).
    #[serde(default)]
    pub carry: BTreeMap<String, String>,
}

fn default_id_field() -> String {
    "id".into()
}
fn default_batch() -> usize {
    50
}
fn default_page_size() -> u32 {
    100
}
fn yes() -> bool {
    true
}

/// One stream, validated: built from its pipeline-file entry at load.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// Stream name (unique across pipelines).
    pub name: String,
    /// What it extracts.
    pub doc: String,
    /// Incremental, snapshot or detail, with what the kind needs.
    pub kind: StreamKind,
    /// HTTP method.
    pub method: Method,
    /// Versioned path (`/order/202309/orders/search`; `{id}` for per-id detail).
    pub path: String,
    /// Pagination.
    pub pagination: Pagination,
    /// Page size.
    pub page_size: u32,
    /// Where page params go.
    pub page_params_in: ParamsIn,
    /// Dotted path of the records under `data` (empty: `data` is one record).
    pub records: String,
    /// Tables landed: the stream's own table first (never empty), then child tables
    /// (schemas with `nested`).
    pub tables: Vec<String>,
    /// Fixed query params.
    pub query: BTreeMap<String, String>,
    /// Fixed JSON body fields.
    pub body: BTreeMap<String, toml::Value>,
    /// Rate-limit family (defaults to the path).
    pub family: Option<String>,
    /// Shop-scoped (default), seller-scoped or partner calls.
    pub scope: Scope,
    /// Default schedule (e.g. `15m`), used by `shoplake run`.
    pub schedule: Option<String>,
    /// Extracted by default.
    pub enabled: bool,
    /// Category (the pipeline file's stem).
    pub category: String,
}

impl StreamSpec {
    /// The time window of an incremental stream.
    pub fn window(&self) -> Option<&WindowSpec> {
        match &self.kind {
            StreamKind::Incremental { window } => Some(window),
            _ => None,
        }
    }

    /// The parent of a detail stream.
    pub fn parent(&self) -> Option<&str> {
        match &self.kind {
            StreamKind::Detail { parent, .. } => Some(parent),
            _ => None,
        }
    }

    /// The call shape of a detail stream.
    pub fn detail(&self) -> Option<&DetailSpec> {
        match &self.kind {
            StreamKind::Detail { detail, .. } => Some(detail),
            _ => None,
        }
    }

    /// A detail stream (runs with its parent, never on its own).
    pub fn is_detail(&self) -> bool {
        matches!(self.kind, StreamKind::Detail { .. })
    }

    /// A snapshot stream (replaces the shop's rows).
    pub fn is_snapshot(&self) -> bool {
        matches!(self.kind, StreamKind::Snapshot { .. })
    }

    /// The stream's own table (the first of `tables`).
    pub fn main_table(&self) -> &str {
        &self.tables[0]
    }

    /// The rate-limit family of its calls.
    pub fn family(&self) -> &str {
        self.family.as_deref().unwrap_or(&self.path)
    }
}

/// One stream as written in a pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamEntry {
    name: String,
    doc: String,
    kind: KindName,
    method: Method,
    path: String,
    #[serde(default = "pagination_none")]
    pagination: Pagination,
    #[serde(default = "default_page_size")]
    page_size: u32,
    #[serde(default)]
    page_params_in: ParamsIn,
    records: String,
    tables: Vec<String>,
    #[serde(default)]
    query: BTreeMap<String, String>,
    #[serde(default)]
    body: BTreeMap<String, toml::Value>,
    #[serde(default)]
    window: Option<WindowSpec>,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    detail: Option<DetailSpec>,
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    scope: Scope,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    max_delete: Option<f64>,
}

impl StreamEntry {
    /// Checks what the kind needs and builds the stream; the error says what is wrong.
    fn validate(self, category: &str) -> std::result::Result<StreamSpec, String> {
        let name = &self.name;
        let kind = match (self.kind, self.window, self.parent, self.detail) {
            (KindName::Incremental, None, _, _) => {
                return Err(format!("stream `{name}`: incremental needs [window]"));
            }
            (KindName::Snapshot, Some(_), _, _) => {
                return Err(format!(
                    "stream `{name}`: a snapshot has no [window] (it lists everything each run)"
                ));
            }
            (KindName::Detail, _, None, _) | (KindName::Detail, _, _, None) => {
                return Err(format!(
                    "stream `{name}`: detail needs `parent` and [detail]"
                ));
            }
            (KindName::Detail, Some(_), _, _) => {
                return Err(format!(
                    "stream `{name}`: a detail stream has no [window] (it asks for the ids its parent listed)"
                ));
            }
            (KindName::Incremental | KindName::Snapshot, _, Some(_), _)
            | (KindName::Incremental | KindName::Snapshot, _, _, Some(_)) => {
                return Err(format!(
                    "stream `{name}`: `parent` and [detail] belong to detail streams"
                ));
            }
            (KindName::Incremental, Some(window), None, None) => StreamKind::Incremental { window },
            (KindName::Snapshot, None, None, None) => StreamKind::Snapshot {
                max_delete: self.max_delete,
            },
            (KindName::Detail, None, Some(parent), Some(detail)) => {
                StreamKind::Detail { parent, detail }
            }
        };
        if let Some(m) = self.max_delete {
            if !matches!(kind, StreamKind::Snapshot { .. }) {
                return Err(format!(
                    "stream `{name}`: max_delete applies to snapshots only (nothing else deletes)"
                ));
            }
            if !(0.0..=1.0).contains(&m) {
                return Err(format!(
                    "stream `{name}`: max_delete is a share between 0 and 1"
                ));
            }
        }
        if let StreamKind::Detail { detail: d, .. } = &kind
            && !d.carry.is_empty()
            && d.ids_param.is_some()
            && d.id_as.is_none()
        {
            return Err(format!(
                "stream `{name}`: `carry` on a batched detail needs `id_as` (the record field naming its parent)"
            ));
        }
        if self.tables.is_empty() {
            return Err(format!("stream `{name}`: `tables` is empty"));
        }
        Ok(StreamSpec {
            name: self.name,
            doc: self.doc,
            kind,
            method: self.method,
            path: self.path,
            pagination: self.pagination,
            page_size: self.page_size,
            page_params_in: self.page_params_in,
            records: self.records,
            tables: self.tables,
            query: self.query,
            body: self.body,
            family: self.family,
            scope: self.scope,
            schedule: self.schedule,
            enabled: self.enabled,
            category: category.to_string(),
        })
    }
}

/// How Affiliate Partner calls find the `category_asset_cipher` they send instead of a
/// shop cipher: one seller-scoped call per shop, whose records are matched on the shop's
/// market. Declared once, in the pipeline file of the partner streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetLookup {
    /// The endpoint listing the seller's assets (`/authorization/202405/category_assets`).
    pub path: String,
    /// Dotted path of the assets under `data`.
    pub records: String,
    /// The asset field holding a market, compared with the shop's region.
    pub market_field: String,
    /// The asset field holding the cipher to send.
    pub cipher_field: String,
}

fn pagination_none() -> Pagination {
    Pagination::None
}

/// A write endpoint listed in a pipeline file as not extracted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotExtracted {
    /// Path.
    pub path: String,
    /// Why.
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineFile {
    doc: String,
    #[serde(default)]
    partner_asset: Option<AssetLookup>,
    #[serde(default)]
    streams: Vec<StreamEntry>,
    #[serde(default)]
    not_extracted: Vec<NotExtracted>,
}

/// Every pipeline in a directory.
#[derive(Debug, Clone, Default)]
pub struct Pipelines {
    /// Streams in file order (parents before their detail streams).
    pub streams: Vec<StreamSpec>,
    /// Category docs by category.
    pub categories: BTreeMap<String, String>,
    /// Endpoints deliberately not extracted.
    pub not_extracted: Vec<NotExtracted>,
    /// How partner-scoped streams find their credential (required when any stream has
    /// `scope = "partner"`).
    pub partner_asset: Option<AssetLookup>,
}

impl Pipelines {
    /// Loads `dir/*.toml`; checks names, parents and window/detail config.
    pub fn load(dir: &Path) -> Result<Pipelines> {
        let mut out = Pipelines::default();
        let paths = super::toml_files(dir, "pipelines")?;
        for p in paths {
            let file = p.display().to_string();
            let err = |message: String| PipelineError::Spec {
                file: file.clone(),
                message,
            };
            let text = std::fs::read_to_string(&p).map_err(|e| err(e.to_string()))?;
            let f: PipelineFile = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
            let category = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            for entry in f.streams {
                let s = entry.validate(&category).map_err(&err)?;
                if out.streams.iter().any(|o: &StreamSpec| o.name == s.name) {
                    return Err(err(format!("stream `{}` is declared twice", s.name)));
                }
                out.streams.push(s);
            }
            if let Some(a) = f.partner_asset {
                if out.partner_asset.is_some() {
                    return Err(err(
                        "[partner_asset] is declared in two pipeline files".into()
                    ));
                }
                out.partner_asset = Some(a);
            }
            out.not_extracted.extend(f.not_extracted);
            out.categories.insert(category, f.doc);
        }
        if let Some(s) = out.streams.iter().find(|s| s.scope == Scope::Partner)
            && out.partner_asset.is_none()
        {
            return Err(PipelineError::Spec {
                file: format!("pipelines/{}.toml", s.category),
                message: format!(
                    "stream `{}` has scope = \"partner\" but no pipeline file declares [partner_asset] (how to find the category asset cipher)",
                    s.name
                ),
            });
        }
        // Parents may live in another pipeline file (fulfillment's details hang off
        // orders); order the streams so every parent comes before its details.
        let mut rest = std::mem::take(&mut out.streams);
        while !rest.is_empty() {
            let before = out.streams.len();
            let mut wait = Vec::new();
            for s in rest {
                let ready = s
                    .parent()
                    .is_none_or(|p| out.streams.iter().any(|o| o.name == p));
                if ready {
                    out.streams.push(s);
                } else {
                    wait.push(s);
                }
            }
            if out.streams.len() == before {
                let s = &wait[0];
                let parent = s.parent().unwrap_or_default();
                return Err(PipelineError::Spec {
                    file: format!("pipelines/{}.toml", s.category),
                    message: format!(
                        "stream `{}`: parent `{parent}` is not a stream of any pipeline file (or the parents form a cycle)",
                        s.name
                    ),
                });
            }
            rest = wait;
        }
        Ok(out)
    }

    /// A stream by name.
    pub fn get(&self, name: &str) -> Option<&StreamSpec> {
        self.streams.iter().find(|s| s.name == name)
    }

    /// Detail streams of `parent`.
    pub fn children<'a>(&'a self, parent: &'a str) -> impl Iterator<Item = &'a StreamSpec> + 'a {
        self.streams
            .iter()
            .filter(move |s| s.enabled && s.parent() == Some(parent))
    }

    /// The top-level stream a detail stream's calls hang off (itself for a top-level one).
    pub fn root_of<'a>(&'a self, s: &'a StreamSpec) -> Option<&'a StreamSpec> {
        let mut cur = s;
        for _ in 0..self.streams.len() {
            match cur.parent() {
                None => return Some(cur),
                Some(p) => cur = self.streams.iter().find(|x| x.name == p)?,
            }
        }
        None
    }

    /// Top-level streams selected by `--pipeline` (a category or a stream name).
    pub fn select(&self, pipeline: Option<&str>) -> Result<Vec<&StreamSpec>> {
        let top = self.streams.iter().filter(|s| s.enabled && !s.is_detail());
        let picked: Vec<_> = match pipeline {
            None => top.collect(),
            // A category or detail stream whose calls hang off another category's stream
            // (fulfillment's order split attributes off orders) selects that top-level
            // stream, which runs its details.
            Some(p) => top
                .filter(|s| {
                    s.category == p
                        || s.name == p
                        || self.streams.iter().any(|d| {
                            d.enabled
                                && (d.category == p || d.name == p)
                                && self.root_of(d).is_some_and(|r| r.name == s.name)
                        })
                })
                .collect(),
        };
        if picked.is_empty() {
            let known: Vec<_> = self
                .categories
                .keys()
                .cloned()
                .chain(self.streams.iter().map(|s| s.name.clone()))
                .collect();
            return Err(PipelineError::UnknownPipeline {
                name: pipeline.unwrap_or_default().to_string(),
                known: known.join(", "),
            });
        }
        Ok(picked)
    }
}
