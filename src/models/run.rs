//! Building models into Delta tables and running their data tests.

use std::collections::HashSet;
use std::time::Instant;

use arrow::array::{Array, Int64Array};
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use tracing::{info, instrument};

use super::dag::{DataTest, Materialized, Model, Project, SqlTest, sql_error};
use super::{ModelError, Result, incremental};
use crate::warehouse::Lake;

/// How a model was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildKind {
    /// The whole table was rebuilt (a `table` model, or an incremental model's first
    /// build, edit or `--full-refresh`).
    Full,
    /// Only the changed windows were rebuilt.
    Incremental,
    /// An incremental model whose inputs had no new rows: nothing written.
    UpToDate,
}

impl std::fmt::Display for BuildKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BuildKind::Full => "full",
            BuildKind::Incremental => "incremental",
            BuildKind::UpToDate => "up to date",
        })
    }
}

/// What a model build did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// `schema.name`.
    pub model: String,
    /// Rows written.
    pub rows: usize,
    /// Delta version after the write.
    pub version: i64,
    /// Wall time.
    pub millis: u128,
    /// Full, incremental or up to date.
    pub kind: BuildKind,
    /// Windows rebuilt (incremental builds).
    pub windows: usize,
    /// When the build started and ended (which models ran at the same time).
    pub span: (std::time::SystemTime, std::time::SystemTime),
}

/// Build settings.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Rebuild incremental models in full (after editing a seed, or to check them).
    pub full_refresh: bool,
    /// Models built at once (independent models only).
    pub threads: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            full_refresh: false,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// Read-only SQL: models may not run DDL, DML or `SET`.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Plans a model (no execution): checks that its SQL is valid against the lake.
pub async fn plan(ctx: &SessionContext, m: &Model) -> Result<datafusion::prelude::DataFrame> {
    ctx.sql_with_options(&m.sql, read_only())
        .await
        .map_err(|e| sql_error(&m.file(), &m.sql, e.to_string()))
}

/// Builds `models` (topologically sorted): a model starts once the selected models it
/// reads are built, up to `threads` at once. Each lands in one Delta commit, so readers see
/// the old or the new table, never a half-built one. A failed model skips the models
/// downstream of it; the others still build, then the error lists both.
#[instrument(skip_all, fields(models = models.len()))]
pub async fn build(
    lake: &Lake,
    ctx: &SessionContext,
    models: &[&Model],
    opts: &BuildOptions,
) -> Result<Vec<BuildReport>> {
    let selected: HashSet<String> = models.iter().map(|m| m.qualified()).collect();
    let mut waiting: Vec<&Model> = models.to_vec();
    let mut done: HashSet<String> = HashSet::new();
    let mut blocked: HashSet<String> = HashSet::new();
    let mut failed: Vec<String> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut running = tokio::task::JoinSet::new();
    loop {
        // Skip what a failure blocks; start what is ready.
        let mut i = 0;
        while i < waiting.len() {
            let m = waiting[i];
            let deps: Vec<&String> = m.refs.iter().filter(|r| selected.contains(*r)).collect();
            if deps.iter().any(|d| blocked.contains(*d)) {
                blocked.insert(m.qualified());
                skipped.push(m.qualified());
                waiting.remove(i);
            } else if running.len() < opts.threads.max(1) && deps.iter().all(|d| done.contains(*d))
            {
                let (lake, ctx, m, opts) = (lake.clone(), ctx.clone(), (*m).clone(), opts.clone());
                running.spawn(async move {
                    let r = build_one(&lake, &ctx, &m, &opts).await;
                    (m.qualified(), r)
                });
                waiting.remove(i);
            } else {
                i += 1;
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (name, r) = joined.map_err(|e| ModelError::Run {
            model: "build".into(),
            message: e.to_string(),
        })?;
        match r {
            Ok(report) => {
                done.insert(name);
                out.push(report);
            }
            Err(e) => {
                tracing::error!(model = %name, error = %e, "model failed");
                blocked.insert(name);
                failed.push(e.to_string());
            }
        }
    }
    if failed.is_empty() {
        return Ok(out);
    }
    let mut message = failed.join("; ");
    if !skipped.is_empty() {
        message.push_str(&format!("; skipped downstream: {}", skipped.join(", ")));
    }
    if !out.is_empty() {
        message.push_str(&format!("; built: {}", out.len()));
    }
    Err(
        if failed.len() == 1 && skipped.is_empty() && out.is_empty() {
            ModelError::Run {
                model: models[0].qualified(),
                message,
            }
        } else {
            ModelError::Failed {
                failed: failed.len(),
                message,
            }
        },
    )
}

/// Builds one model (full or incremental).
async fn build_one(
    lake: &Lake,
    ctx: &SessionContext,
    m: &Model,
    opts: &BuildOptions,
) -> Result<BuildReport> {
    let start = Instant::now();
    let started = std::time::SystemTime::now();
    let run_err = |e: &dyn std::fmt::Display| ModelError::Run {
        model: m.qualified(),
        message: format!("{e} ({})", m.file()),
    };
    // Build state: the version of every input this build reads, read before the model
    // plans (a commit landing meanwhile is compared again next time).
    let mut state: Vec<(String, i64)> = Vec::new();
    let mut incremental_of = None;
    if m.config.materialized == Materialized::Incremental {
        let inputs = incremental::tracked_inputs(ctx, m).await?;
        let reads = incremental::input_versions(lake, &inputs).await?;
        state = reads
            .iter()
            .map(|(input, v)| (incremental::input_app(m, input), *v))
            .collect();
        if !opts.full_refresh
            && let Some(w) = incremental::changed_windows(lake, m, &reads).await?
        {
            incremental_of = Some((w, inputs));
        }
    }
    let mut df = plan(ctx, m).await?;
    // An incremental build: the windows whose inputs changed, every input scan
    // restricted to them, and only they replaced.
    let mut predicate = None;
    let (kind, windows) = match incremental_of {
        Some((windows, _)) if windows.is_empty() => {
            info!(model = %m.qualified(), "model up to date");
            return Ok(BuildReport {
                model: m.qualified(),
                rows: 0,
                version: -1,
                millis: start.elapsed().as_millis(),
                kind: BuildKind::UpToDate,
                windows: 0,
                span: (started, std::time::SystemTime::now()),
            });
        }
        Some((windows, inputs)) => {
            let p = incremental::predicate(&m.config.incremental_by, &windows)
                .map_err(|e| run_err(&e))?;
            let plan = incremental::restrict(df.into_unoptimized_plan(), &inputs, &p)
                .map_err(|e| run_err(&e))?;
            df = datafusion::prelude::DataFrame::new(ctx.state(), plan);
            predicate = Some(p);
            (BuildKind::Incremental, windows.len())
        }
        None => (BuildKind::Full, 0),
    };
    let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(|e| run_err(&e))?;
    let mut write = lake
        .table(m.table_ref())
        .replace(schema, batches)
        .partition_by(&m.config.partition_by)
        .txns(&state);
    if let Some(p) = predicate {
        write = write.replace_where(p);
    }
    let w = write.await?;
    let millis = start.elapsed().as_millis();
    info!(model = %m.qualified(), ?kind, windows, rows = w.rows, ms = millis as u64, "model built");
    Ok(BuildReport {
        model: m.qualified(),
        rows: w.rows,
        version: w.version,
        millis,
        kind,
        windows,
        span: (started, std::time::SystemTime::now()),
    })
}

/// One line of `shoplake build --dry-run`.
#[derive(Debug, Clone)]
pub struct DagNode {
    /// `schema.name`.
    pub model: String,
    /// Layer: every input is built in an earlier layer (models of one layer can build at once).
    pub layer: usize,
    /// Materialization (and window for incremental models).
    pub materialized: String,
    /// Tables read.
    pub inputs: Vec<String>,
    /// Planned against the lake: output columns; or why not.
    pub planned: std::result::Result<usize, String>,
}

/// The DAG of `models` without building: layers, inputs, and a plan of each model whose
/// inputs exist (a model over a not-yet-built model is checked for syntax only).
pub async fn dry_run(ctx: &SessionContext, project: &Project, models: &[&Model]) -> Vec<DagNode> {
    let layers = project.layer_of();
    let mut out = Vec::new();
    for m in models {
        let mut missing = Vec::new();
        for r in &m.refs {
            if ctx.table_provider(r.as_str()).await.is_err() {
                missing.push(r.clone());
            }
        }
        let planned = if missing.is_empty() {
            plan(ctx, m)
                .await
                .map(|df| df.schema().fields().len())
                .map_err(|e| e.to_string())
        } else {
            Err(format!("not planned: {} not built yet", missing.join(", ")))
        };
        let materialized = match m.config.materialized {
            Materialized::Incremental => {
                format!("incremental by {}", m.config.incremental_by.join(", "))
            }
            other => other.to_string(),
        };
        out.push(DagNode {
            model: m.qualified(),
            layer: layers.get(&m.qualified()).copied().unwrap_or(0),
            materialized,
            inputs: m.refs.iter().cloned().collect(),
            planned,
        });
    }
    out.sort_by(|a, b| (a.layer, &a.model).cmp(&(b.layer, &b.model)));
    out
}

/// One data test's outcome.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// `schema.name`.
    pub model: String,
    /// The test as written.
    pub test: String,
    /// Rows violating it.
    pub failures: u64,
    /// The test could not run.
    pub error: Option<String>,
}

impl TestResult {
    /// Passed.
    pub fn passed(&self) -> bool {
        self.failures == 0 && self.error.is_none()
    }
}

fn quote(c: &str) -> String {
    let c = c.trim();
    if c.starts_with('"') {
        c.to_string()
    } else {
        format!("\"{c}\"")
    }
}

/// The SQL counting rows that violate `t` on `table`.
pub fn test_sql(table: &str, t: &DataTest) -> String {
    match t {
        DataTest::NotNull(c) => format!("select count(*) from {table} where {} is null", quote(c)),
        DataTest::Unique(cols) => {
            let cs = cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
            format!(
                "select count(*) from (select {cs} from {table} group by {cs} having count(*) > 1) d"
            )
        }
        DataTest::AcceptedValues(c, vals) => {
            let list = vals
                .iter()
                .map(|v| format!("'{}'", v.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "select count(*) from {table} where {c} is not null and {c} not in ({list})",
                c = quote(c)
            )
        }
        DataTest::Relationships(c, other, oc) => format!(
            "select count(*) from {table} t left join {other} o on t.{c} = o.{oc} where t.{c} is not null and o.{oc} is null",
            c = quote(c),
            oc = quote(oc)
        ),
        DataTest::Expression(e) => format!("select count(*) from {table} where not ({e})"),
    }
}

/// Runs every data test of `models`, then the custom SQL tests that read one of them.
pub async fn test(
    ctx: &SessionContext,
    models: &[&Model],
    sql_tests: &[&SqlTest],
) -> Vec<TestResult> {
    let mut out = Vec::new();
    for m in models {
        for t in &m.config.tests {
            let sql = test_sql(&m.qualified(), t);
            let res = async {
                let df = ctx.sql_with_options(&sql, read_only()).await?;
                let batches = df.collect().await?;
                let n = batches
                    .first()
                    .and_then(|b| b.column(0).as_any().downcast_ref::<Int64Array>().cloned())
                    .filter(|a| !a.is_empty())
                    .map(|a| a.value(0))
                    .unwrap_or(0);
                Ok::<_, datafusion::error::DataFusionError>(n as u64)
            }
            .await;
            out.push(TestResult {
                model: m.qualified(),
                test: t.to_string(),
                failures: *res.as_ref().unwrap_or(&0),
                error: res.err().map(|e| format!("{e} ({})", m.file())),
            });
        }
    }
    for t in sql_tests {
        let file = t.path.display().to_string();
        let res = match ctx.sql_with_options(&t.sql, read_only()).await {
            Ok(df) => df.count().await.map_err(|e| format!("{e} ({file})")),
            Err(e) => Err(sql_error(&file, &t.sql, e.to_string()).to_string()),
        };
        out.push(TestResult {
            model: format!("tests.{}", t.name),
            test: if t.doc.is_empty() {
                file.clone()
            } else {
                t.doc.clone()
            },
            failures: *res.as_ref().unwrap_or(&0) as u64,
            error: res.err(),
        });
    }
    out
}
