//! Wiring: config + data dir → client, lake, extractor, model project, server. The CLI and
//! `jobs/` are the only callers; stages never reach into each other.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use chrono::{NaiveDate, Utc};
use datafusion::prelude::SessionContext;
use indicatif::{ProgressBar, ProgressStyle};

use crate::api::auth::TokenStore;
use crate::api::{ApiClient, ClientConfig};
use crate::config::{Config, ConfigError};
use crate::models::{self, BuildOptions, BuildReport, DagNode, Project, TestResult};
use crate::pipeline::extract::{Progress, RunSummary, Sequence};
use crate::pipeline::state::{StateStore, key};
use crate::pipeline::{Extractor, PipelineError, Pipelines, Shop, Start, schema};
use crate::serve::RunningFlight;
use crate::warehouse::{Lake, catalog};

/// Errors a command can end with; each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// API / token store.
    #[error(transparent)]
    Api(#[from] crate::api::ApiError),
    /// Extraction.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// Lake.
    #[error(transparent)]
    Warehouse(#[from] crate::warehouse::WarehouseError),
    /// Models.
    #[error(transparent)]
    Model(#[from] models::ModelError),
    /// A query.
    #[error("query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// Anything else, with context.
    #[error("{0}")]
    Other(String),
}

/// Result with [`AppError`].
pub type Result<T> = std::result::Result<T, AppError>;

/// One row of `shoplake status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusRow {
    /// Shop id.
    pub shop: String,
    /// Shop name.
    pub shop_name: String,
    /// Stream.
    pub stream: String,
    /// Committed cursor (RFC 3339), from the Delta table.
    pub cursor: Option<String>,
    /// Last run (RFC 3339).
    pub last_run: Option<String>,
    /// `ok` / `failed` / `never`.
    pub status: String,
    /// Rows in the stream's raw table for this shop.
    pub rows: u64,
    /// Last error.
    pub last_error: Option<String>,
    /// Windows landed beyond a gap: `cursor..landed` is not contiguous, and the next run
    /// starts at the cursor to fill it (RFC 3339 of the furthest landed end).
    pub gap_until: Option<String>,
}

/// The application: config, data dir, project files and lake.
pub struct App {
    /// Loaded config.
    pub config: Config,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Project directory (pipelines/, schemas/, sql/).
    pub project: PathBuf,
    /// The lake.
    pub lake: Lake,
    client_override: Option<ClientConfig>,
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

/// Parses a `YYYY-MM-DD` (UTC midnight) or RFC 3339 time into unix seconds.
pub fn parse_time(s: &str) -> Result<i64> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp());
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp())
        .map_err(|_| AppError::Other(format!("`{s}` is not a date (YYYY-MM-DD) or RFC 3339 time")))
}

impl App {
    /// Builds the app from config and the data directory.
    pub fn new(config: Config, data_dir: &Path) -> Result<App> {
        let project = config.project_dir()?;
        let uri = config.lake_uri(data_dir);
        let lake = Lake::with_storage(&uri, config.storage_options(&uri)?)?;
        Ok(App {
            config,
            data_dir: data_dir.to_path_buf(),
            project,
            lake,
            client_override: None,
        })
    }

    /// Uses `cc` instead of `[api]` (the demo's in-process sandbox).
    pub fn with_client_config(mut self, cc: ClientConfig) -> App {
        self.client_override = Some(cc);
        self
    }

    /// The token store.
    pub fn token_store(&self) -> Result<TokenStore> {
        Ok(TokenStore::open(
            self.data_dir.join("secrets").join("tokens"),
        )?)
    }

    /// The API client's configuration (`[api]`, or the demo's sandbox).
    pub fn client_config(&self) -> Result<ClientConfig> {
        Ok(match &self.client_override {
            Some(c) => c.clone(),
            None => self.config.client_config()?,
        })
    }

    /// An API client with the token store.
    pub fn client(&self) -> Result<ApiClient> {
        Ok(ApiClient::new(
            self.client_config()?,
            Some(Arc::new(self.token_store()?)),
        )?)
    }

    /// `sql/seeds`.
    pub fn seeds_dir(&self) -> PathBuf {
        self.project.join("sql").join("seeds")
    }

    /// Loads pipelines and schemas.
    pub fn pipelines(
        &self,
    ) -> Result<(
        Pipelines,
        std::collections::BTreeMap<String, schema::TableSchema>,
    )> {
        let p = Pipelines::load(&self.project.join("pipelines"))?;
        let s = schema::load_dir(&self.project.join("schemas"))?;
        Ok((p, s))
    }

    /// The extractor.
    pub fn extractor(&self) -> Result<Extractor> {
        self.extractor_with(self.client()?)
    }

    /// The extractor over `client` (a worker's, with the shared rate limit).
    pub fn extractor_with(&self, client: ApiClient) -> Result<Extractor> {
        let (p, s) = self.pipelines()?;
        let state = Arc::new(StateStore::open(&self.data_dir.join("state"))?);
        // Zones of every authorized shop with a known region: filling rows after a schema
        // change converts local dates of any shop.
        let zones = self
            .token_store()?
            .shops()
            .iter()
            .filter_map(|s| Shop::from_info(s).ok().map(|s| (s.id, s.tz)))
            .collect();
        Ok(
            Extractor::new(client, self.lake.clone(), Arc::new(p), s, state)?
                .with_options(self.config.extract_options()?)
                .with_zones(zones),
        )
    }

    /// Authorized shops, filtered by `[api] shops` and `--shop` (id, cipher or name).
    pub fn shops(&self, filter: Option<&str>) -> Result<Vec<Shop>> {
        let store = self.token_store()?;
        let all = store.shops();
        if all.is_empty() {
            return Err(AppError::Other(
                "no authorized shops: run `shoplake auth exchange --code <code>` first (the sandbox's code is SANDBOX_AUTH_CODE)".into(),
            ));
        }
        let cfg = &self.config.api.shops;
        let picked: Vec<Shop> = all
            .iter()
            .filter(|s| cfg.is_empty() || cfg.contains(&s.cipher) || cfg.contains(&s.id))
            .filter(|s| filter.is_none_or(|f| s.id == f || s.cipher == f || s.name == f))
            .map(Shop::from_info)
            .collect::<std::result::Result<_, _>>()?;
        if picked.is_empty() {
            return Err(PipelineError::UnknownShop {
                name: filter.unwrap_or("(api.shops)").to_string(),
                known: all
                    .iter()
                    .map(|s| format!("{} ({})", s.name, s.id))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into());
        }
        Ok(picked)
    }

    fn progress(total: u64, what: &str) -> ProgressBar {
        if !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} windows, {elapsed} elapsed, ETA {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        pb.set_message(what.to_string());
        pb
    }

    async fn run(&self, ex: &Extractor, seqs: Vec<Sequence<'_>>, what: &str) -> Result<RunSummary> {
        let total: usize = seqs.iter().map(|s| s.windows.len()).sum();
        let pb = Self::progress(total as u64, what);
        let concurrency = seqs.len().clamp(1, 4);
        let on = |p: Progress<'_>| match p {
            Progress::Landed(r) => {
                pb.inc(1);
                pb.set_message(format!("{what}: {} {}", r.shop, r.stream));
            }
            Progress::Split => pb.inc_length(1),
            Progress::Skipped => pb.inc(1),
        };
        let sum = ex.run_sequences(seqs, concurrency, &on).await;
        pb.finish_and_clear();
        Ok(sum)
    }

    /// One sequence per selected shop × stream: the planner's windows from `start` to `to`.
    async fn sequences<'a>(
        &self,
        ex: &'a Extractor,
        shop: Option<&str>,
        pipeline: Option<&str>,
        start: Start,
        to: i64,
    ) -> Result<Vec<Sequence<'a>>> {
        let shops = self.shops(shop)?;
        let streams = ex.pipelines().select(pipeline)?;
        let mut seqs = Vec::new();
        for s in &shops {
            for st in &streams {
                let plan = ex.plan(&s.id, st, start, to).await?;
                seqs.push(Sequence {
                    shop: s.clone(),
                    stream: st,
                    windows: plan.windows,
                    origin: plan.origin,
                    lease_lost: Vec::new(),
                });
            }
        }
        Ok(seqs)
    }

    /// `shoplake backfill`: every window of `[from, to)` for the selected shops and
    /// streams. Re-running lands identical tables.
    pub async fn backfill(
        &self,
        from: i64,
        to: i64,
        shop: Option<&str>,
        pipeline: Option<&str>,
    ) -> Result<RunSummary> {
        if from >= to {
            return Err(PipelineError::Invalid(format!(
                "--from ({}) must be before --to ({})",
                rfc3339(from),
                rfc3339(to)
            ))
            .into());
        }
        let ex = self.extractor()?;
        let seqs = self
            .sequences(&ex, shop, pipeline, Start::Range(from), to)
            .await?;
        self.run(&ex, seqs, "backfill").await
    }

    /// `shoplake extract`: from each stream's committed cursor up to `until`.
    pub async fn extract(
        &self,
        until: i64,
        shop: Option<&str>,
        pipeline: Option<&str>,
    ) -> Result<RunSummary> {
        let ex = self.extractor()?;
        let start = Start::Cursor {
            cursor: None,
            initial: None,
        };
        let seqs = self.sequences(&ex, shop, pipeline, start, until).await?;
        self.run(&ex, seqs, "extract").await
    }

    /// `shoplake status`.
    pub async fn status(&self) -> Result<Vec<StatusRow>> {
        let ex = self.extractor()?;
        let runs = ex.state().all();
        let shops = self.token_store()?.shops();
        let ctx = self.session().await?;
        let mut out = Vec::new();
        for s in &shops {
            for st in ex.pipelines().streams.iter().filter(|s| s.enabled) {
                let cursor = ex.cursor(&s.id, st).await?;
                let gap_until = ex.landed_beyond_gap(&s.id, st).await?;
                let rows = if self.lake.open("raw", &st.tables[0]).await?.is_some() {
                    let sql = format!(
                        "select count(*) from raw.{} where _shop_id = '{}'",
                        st.tables[0],
                        s.id.replace('\'', "''")
                    );
                    count(&ctx, &sql).await?
                } else {
                    0
                };
                // Detail streams run inside their parent's windows.
                let r = runs.get(&key(&s.id, st.parent().unwrap_or(&st.name)));
                out.push(StatusRow {
                    shop: s.id.clone(),
                    shop_name: s.name.clone(),
                    stream: st.name.clone(),
                    cursor: cursor.map(rfc3339),
                    last_run: r.map(|r| rfc3339(r.last_run_at)),
                    status: r.map_or("never".into(), |r| r.status.clone()),
                    rows,
                    last_error: r.and_then(|r| r.last_error.clone()),
                    gap_until: gap_until.map(rfc3339),
                });
            }
        }
        Ok(out)
    }

    /// A DataFusion session over the lake (+ seeds).
    pub async fn session(&self) -> Result<SessionContext> {
        catalog::session(&self.lake, Some(&self.seeds_dir()))
            .await
            .map_err(AppError::Query)
    }

    /// The SQL model project.
    pub async fn project(&self, ctx: &SessionContext) -> Result<Project> {
        Ok(Project::load(&self.project.join("sql"), ctx)?)
    }

    /// `shoplake build`: loads every model (a model that does not parse fails before
    /// anything is written), then builds the selected ones in dependency order, independent
    /// ones in parallel; a model that fails to plan or run leaves its table as it was and
    /// skips the models downstream of it.
    pub async fn build(
        &self,
        select: Option<&str>,
        opts: &BuildOptions,
    ) -> Result<Vec<BuildReport>> {
        let ctx = self.session().await?;
        let project = self.project(&ctx).await?;
        let selected = project.select(select)?;
        Ok(models::build(&self.lake, &ctx, &selected, opts).await?)
    }

    /// Build settings from the config (`[project]`).
    pub fn build_options(&self) -> Result<BuildOptions> {
        Ok(self.config.build_options()?)
    }

    /// `shoplake maintain`: compacts, checkpoints and vacuums `tables` (every table of the
    /// lake when empty; `schema.table` names), one after another.
    pub async fn maintain(
        &self,
        tables: &[String],
        opts: &crate::warehouse::maintain::MaintainOptions,
    ) -> Result<Vec<crate::warehouse::maintain::MaintainReport>> {
        use crate::warehouse::{Layer, TableRef};
        let mut refs = Vec::new();
        if tables.is_empty() {
            for layer in Layer::ALL {
                for name in self.lake.list_tables(layer.as_str()).await? {
                    refs.push(TableRef::new(layer, name));
                }
            }
        } else {
            for t in tables {
                let (schema, name) = t.split_once('.').unwrap_or(("raw", t.as_str()));
                let layer = Layer::parse(schema).ok_or_else(|| {
                    AppError::Other(format!(
                        "--table {t}: the schema must be raw, staging or marts"
                    ))
                })?;
                refs.push(TableRef::new(layer, name));
            }
        }
        let mut out = Vec::new();
        for t in &refs {
            match self.lake.maintain(t, opts).await? {
                Some(r) => {
                    tracing::info!(table = %t, files_before = r.before.files, files_after = r.after.files, vacuumed = r.vacuumed, "table maintained");
                    out.push(r);
                }
                None if !tables.is_empty() => {
                    return Err(AppError::Other(format!(
                        "--table {t}: no such table in the lake"
                    )));
                }
                None => {}
            }
        }
        Ok(out)
    }

    /// `shoplake docs`: the Markdown catalog of every raw table and model.
    pub async fn docs(&self) -> Result<String> {
        let ctx = self.session().await?;
        let project = self.project(&ctx).await?;
        let (pipelines, schemas) = self.pipelines()?;
        let raw: Vec<models::docs::RawTable> = schemas
            .iter()
            .map(|(name, s)| models::docs::RawTable {
                name: name.clone(),
                doc: s.doc.clone(),
                key: s.merge_keys(),
                streams: pipelines
                    .streams
                    .iter()
                    .filter(|st| st.tables.iter().any(|t| t == name))
                    .map(|st| {
                        format!(
                            "`{}` ({} pipeline, {}): `{} {}` — {}",
                            st.name,
                            st.category,
                            st.kind.name(),
                            st.method,
                            st.path,
                            st.doc
                        )
                    })
                    .collect(),
                columns: s
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), c.doc.clone()))
                    .collect(),
            })
            .collect();
        Ok(models::docs::catalog(&ctx, &project, &raw).await)
    }

    /// `shoplake build --dry-run`: the DAG of the selected models, each planned against the
    /// lake where its inputs exist; nothing is written.
    pub async fn dry_run(&self, select: Option<&str>) -> Result<Vec<DagNode>> {
        let ctx = self.session().await?;
        let project = self.project(&ctx).await?;
        let selected = project.select(select)?;
        Ok(models::dry_run(&ctx, &project, &selected).await)
    }

    /// `shoplake test`: the selected models' data tests and the custom SQL tests
    /// (`sql/tests/`) reading them (all of them without a selection).
    pub async fn test(&self, select: Option<&str>) -> Result<Vec<TestResult>> {
        let ctx = self.session().await?;
        let project = self.project(&ctx).await?;
        let selected = project.select(select)?;
        let names: std::collections::HashSet<String> =
            selected.iter().map(|m| m.qualified()).collect();
        let sql_tests: Vec<_> = project
            .tests
            .iter()
            .filter(|t| select.is_none() || t.refs.iter().any(|r| names.contains(r)))
            .collect();
        Ok(models::test(&ctx, &selected, &sql_tests).await)
    }

    /// `shoplake query`: runs read-only SQL.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let ctx = self.session().await?;
        let df = ctx
            .sql_with_options(sql, models::run::read_only())
            .await
            .map_err(AppError::Query)?;
        df.collect().await.map_err(AppError::Query)
    }

    /// `shoplake serve`: Flight SQL on `addr`.
    pub async fn serve(&self, addr: &str) -> Result<RunningFlight> {
        let opts = self.config.serve_options(&self.data_dir)?;
        crate::serve::spawn(&self.lake, Some(&self.seeds_dir()), addr, opts)
            .await
            .map_err(|e| AppError::Other(format!("flight sql on {addr}: {e}")))
    }
}

async fn count(ctx: &SessionContext, sql: &str) -> Result<u64> {
    let b = ctx
        .sql(sql)
        .await
        .map_err(AppError::Query)?
        .collect()
        .await
        .map_err(AppError::Query)?;
    Ok(b.first()
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0) as u64)
}
