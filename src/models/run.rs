//! Building models into Delta tables and running their data tests.

use std::time::Instant;

use arrow::array::{Array, Int64Array};
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use tracing::{info, instrument};

use super::dag::{DataTest, Model, sql_error};
use super::{ModelError, Result};
use crate::warehouse::Lake;

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

/// Builds `models` in the given (topological) order; each replaces its Delta table in
/// one commit, so readers see the old or the new table, never a half-built one.
#[instrument(skip_all, fields(models = models.len()))]
pub async fn build(
    lake: &Lake,
    ctx: &SessionContext,
    models: &[&Model],
) -> Result<Vec<BuildReport>> {
    let mut out = Vec::new();
    for m in models {
        let start = Instant::now();
        let df = plan(ctx, m).await?;
        let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(|e| ModelError::Run {
            model: m.qualified(),
            message: format!("{} ({})", e, m.file()),
        })?;
        let w = lake
            .replace(&m.schema, &m.name, schema, batches, &m.config.partition_by)
            .await?;
        let millis = start.elapsed().as_millis();
        info!(model = %m.qualified(), rows = w.rows, ms = millis as u64, "model built");
        out.push(BuildReport {
            model: m.qualified(),
            rows: w.rows,
            version: w.version,
            millis,
        });
    }
    Ok(out)
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

/// Runs every data test of `models`.
pub async fn test(ctx: &SessionContext, models: &[&Model]) -> Vec<TestResult> {
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
            out.push(match res {
                Ok(failures) => TestResult {
                    model: m.qualified(),
                    test: t.to_string(),
                    failures,
                    error: None,
                },
                Err(e) => TestResult {
                    model: m.qualified(),
                    test: t.to_string(),
                    failures: 0,
                    error: Some(format!("{e} ({})", m.file())),
                },
            });
        }
    }
    out
}
