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

/// How often a long-lived session lists a schema's tables again. Listing is for
/// introspection (`information_schema`, GetTables); a query naming a table opens it
/// directly, so a table built a moment ago is queryable at once.
const RELIST_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// One lake schema: its tables listed through the lake's object store (at creation and
/// every [`RELIST_EVERY`] while the schema is in use) and opened on demand at their
/// latest version.
#[derive(Debug)]
pub struct LakeSchema {
    lake: Lake,
    schema: String,
    names: Arc<std::sync::RwLock<Vec<String>>>,
}

impl LakeSchema {
    /// `schema` of `lake`, its tables listed now.
    pub async fn load(lake: Lake, schema: &str) -> DfResult<LakeSchema> {
        let names = lake
            .list_tables(schema)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let out = LakeSchema {
            lake,
            schema: schema.to_string(),
            names: Arc::new(std::sync::RwLock::new(names)),
        };
        out.keep_listing();
        Ok(out)
    }

    /// Lists the tables again every [`RELIST_EVERY`] until the schema is dropped.
    fn keep_listing(&self) {
        let (lake, schema) = (self.lake.clone(), self.schema.clone());
        let names = Arc::downgrade(&self.names);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RELIST_EVERY).await;
                let Some(names) = names.upgrade() else {
                    return;
                };
                match lake.list_tables(&schema).await {
                    Ok(now) => *names.write().unwrap_or_else(|e| e.into_inner()) = now,
                    Err(e) => {
                        tracing::warn!(schema, error = %e, "listing the lake's tables failed")
                    }
                }
            }
        });
    }

    fn remember(&self, name: &str) {
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        if let Err(i) = names.binary_search_by(|n| n.as_str().cmp(name)) {
            names.insert(i, name.to_string());
        }
    }
}

#[async_trait]
impl SchemaProvider for LakeSchema {
    fn table_names(&self) -> Vec<String> {
        self.names.read().unwrap_or_else(|e| e.into_inner()).clone()
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
                self.remember(name);
                let p = t
                    .table_provider()
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                Ok(Some(p))
            }
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|n| n == name)
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
        catalog.register_schema(s, Arc::new(LakeSchema::load(lake.clone(), s).await?))?;
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
