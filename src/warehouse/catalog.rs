//! The lake as a DataFusion catalog: `shoplake.raw.*`, `shoplake.staging.*`,
//! `shoplake.marts.*`, each table opened at its latest Delta version every time a query
//! plans (so a new build is visible without restarting a server), plus `shoplake.seeds.*`
//! (CSV files under `sql/seeds/`).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, TableProvider};
use datafusion::catalog::{MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::prelude::{CsvReadOptions, SessionConfig, SessionContext};

use super::{Lake, SCHEMAS};

/// The catalog name clients see.
pub const CATALOG: &str = "shoplake";

/// One lake schema whose tables are listed and opened on demand.
#[derive(Debug)]
pub struct LakeSchema {
    lake: Lake,
    schema: String,
}

impl LakeSchema {
    /// `schema` of `lake`.
    pub fn new(lake: Lake, schema: &str) -> LakeSchema {
        LakeSchema {
            lake,
            schema: schema.to_string(),
        }
    }
}

#[async_trait]
impl SchemaProvider for LakeSchema {
    fn table_names(&self) -> Vec<String> {
        let Some(dir) = self.lake.local_dir() else {
            return Vec::new();
        };
        let mut out: Vec<String> = std::fs::read_dir(dir.join(&self.schema))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("_delta_log").is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        out.sort();
        out
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let t = self
            .lake
            .open(&self.schema, name)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        match t {
            None => Ok(None),
            Some(t) => {
                let p = t
                    .table_provider()
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                Ok(Some(p))
            }
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        match self.lake.local_dir() {
            Some(dir) => dir
                .join(&self.schema)
                .join(name)
                .join("_delta_log")
                .is_dir(),
            None => false,
        }
    }
}

/// A session with the lake registered as catalog `shoplake` (default schema `marts`)
/// and the seeds in `seeds_dir` as `shoplake.seeds.<file stem>`.
pub async fn session(lake: &Lake, seeds_dir: Option<&Path>) -> DfResult<SessionContext> {
    // Plain Utf8 rather than Utf8View: older Arrow clients (Grafana's Go arrow v12, the
    // JDBC driver) do not know the view types.
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG, "marts")
        .with_information_schema(true)
        .with_create_default_catalog_and_schema(false)
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
        .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false);
    let ctx = SessionContext::new_with_config(config);
    let catalog = Arc::new(MemoryCatalogProvider::new());
    for s in SCHEMAS {
        catalog.register_schema(s, Arc::new(LakeSchema::new(lake.clone(), s)))?;
    }
    let seeds = Arc::new(MemorySchemaProvider::new());
    catalog.register_schema("seeds", seeds)?;
    ctx.register_catalog(CATALOG, catalog);
    if let Some(dir) = seeds_dir {
        register_seeds(&ctx, dir).await?;
    }
    Ok(ctx)
}

/// Registers every `*.csv` under `dir` as `shoplake.seeds.<stem>` (all columns text).
pub async fn register_seeds(ctx: &SessionContext, dir: &Path) -> DfResult<()> {
    // No seeds directory: no seeds.
    let Ok(paths) = crate::files::with_extension(dir, "csv") else {
        return Ok(());
    };
    for p in paths {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let header = std::fs::read_to_string(&p)
            .map_err(|e| DataFusionError::Execution(format!("seed {}: {e}", p.display())))?;
        let cols = header.lines().next().unwrap_or_default();
        let schema = arrow::datatypes::Schema::new(
            cols.split(',')
                .map(|c| {
                    arrow::datatypes::Field::new(c.trim(), arrow::datatypes::DataType::Utf8, true)
                })
                .collect::<Vec<_>>(),
        );
        let opts = CsvReadOptions::new().has_header(true).schema(&schema);
        let df = ctx.read_csv(p.to_string_lossy().as_ref(), opts).await?;
        let batches = df.collect().await?;
        let mem = datafusion::datasource::MemTable::try_new(Arc::new(schema), vec![batches])?;
        ctx.register_table(format!("{CATALOG}.seeds.{stem}"), Arc::new(mem))?;
    }
    Ok(())
}
