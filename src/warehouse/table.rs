//! Tables of the lake and the one write API, in the builder style of delta-rs:
//!
//! ```ignore
//! lake.table(TableRef::raw("orders"))
//!     .upsert(batch)
//!     .keys(&keys)
//!     .version_column("update_time")
//!     .cursor(window_move)
//!     .await?;
//! ```

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::prelude::Expr;

use super::Result;
use super::delta::{CursorMove, Lake, ReplaceSpec, UpsertSpec, WriteMetrics};

/// The layers of the lake, each a schema of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// Landed API data (`raw.<table>`).
    Raw,
    /// Staging models.
    Staging,
    /// Marts.
    Marts,
}

impl Layer {
    /// Every layer, in lineage order.
    pub const ALL: [Layer; 3] = [Layer::Raw, Layer::Staging, Layer::Marts];

    /// The schema name.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Raw => "raw",
            Layer::Staging => "staging",
            Layer::Marts => "marts",
        }
    }

    /// The layer a schema name stands for.
    pub fn parse(schema: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.as_str() == schema)
    }
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A table of the lake: `<layer>.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableRef {
    /// Its layer (schema).
    pub schema: Layer,
    /// Its name.
    pub name: String,
}

impl TableRef {
    /// A table of `schema`.
    pub fn new(schema: Layer, name: impl Into<String>) -> TableRef {
        TableRef {
            schema,
            name: name.into(),
        }
    }

    /// A raw table.
    pub fn raw(name: impl Into<String>) -> TableRef {
        TableRef::new(Layer::Raw, name)
    }
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// One table of a lake, to write or read.
#[derive(Debug, Clone)]
pub struct Table<'a> {
    lake: &'a Lake,
    table: TableRef,
}

impl Lake {
    /// `table` of this lake.
    pub fn table(&self, table: TableRef) -> Table<'_> {
        Table { lake: self, table }
    }
}

impl<'a> Table<'a> {
    /// Which table.
    pub fn table_ref(&self) -> &TableRef {
        &self.table
    }

    /// Merges `batch` into the table (created on first write): see [`UpsertBuilder`].
    pub fn upsert(self, batch: RecordBatch) -> UpsertBuilder<'a> {
        UpsertBuilder {
            table: self,
            batch,
            spec: UpsertSpec::default(),
            cursor: None,
        }
    }

    /// Replaces the table's rows with `batches` (of `schema`) in one commit: see
    /// [`ReplaceBuilder`].
    pub fn replace(self, schema: SchemaRef, batches: Vec<RecordBatch>) -> ReplaceBuilder<'a> {
        ReplaceBuilder {
            table: self,
            schema,
            batches,
            partition_by: &[],
            replace_where: None,
            txns: &[],
        }
    }

    /// Fails as a snapshot upsert of `batch` for `shop` would when it deletes more than
    /// `max_share` of the shop's rows; writes nothing.
    pub async fn check_snapshot(
        &self,
        batch: &RecordBatch,
        keys: &[String],
        shop: &str,
        max_share: f64,
    ) -> Result<()> {
        let t = &self.table;
        self.lake
            .check_snapshot(t.schema.as_str(), &t.name, batch, keys, shop, max_share)
            .await
    }
}

/// An upsert: a Delta MERGE by key (and version, or fetch time), another writer's commit
/// in between planned again, the `txn` (a plain version or a window's cursor move) in the
/// same commit. Awaiting it runs it.
pub struct UpsertBuilder<'a> {
    table: Table<'a>,
    batch: RecordBatch,
    spec: UpsertSpec<'a>,
    cursor: Option<CursorMove<'a>>,
}

impl<'a> UpsertBuilder<'a> {
    /// Every option at once.
    pub fn options(mut self, spec: UpsertSpec<'a>) -> Self {
        self.spec = spec;
        self
    }

    /// Key columns, including the partition columns.
    pub fn keys(mut self, keys: &'a [String]) -> Self {
        self.spec.keys = keys;
        self
    }

    /// The larger value of this column wins.
    pub fn version_column(mut self, column: &'a str) -> Self {
        self.spec.version_column = Some(column);
        self
    }

    /// Partition columns.
    pub fn partition_by(mut self, columns: &'a [&'a str]) -> Self {
        self.spec.partition_by = columns;
        self
    }

    /// Snapshot mode for one shop ([`UpsertSpec::snapshot_of`]).
    pub fn snapshot_of(mut self, shop: &'a str) -> Self {
        self.spec.snapshot_of = Some(shop);
        self
    }

    /// Commits `txn` `app` at `version` with the data.
    pub fn txn(mut self, app: &'a str, version: i64) -> Self {
        self.cursor = Some(CursorMove {
            app,
            from: i64::MIN,
            to: version,
            origin: None,
        });
        self
    }

    /// Moves a window's cursor with the data ([`CursorMove`]).
    pub fn cursor(mut self, cursor: CursorMove<'a>) -> Self {
        self.cursor = Some(cursor);
        self
    }
}

impl<'a> IntoFuture for UpsertBuilder<'a> {
    type Output = Result<WriteMetrics>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let t = &self.table.table;
            let (schema, name) = (t.schema.as_str(), t.name.as_str());
            let lake = self.table.lake;
            lake.check_conditional_writes().await?;
            Lake::retry_conflicts(schema, name, || {
                lake.upsert_once(schema, name, self.batch.clone(), &self.spec, self.cursor)
            })
            .await
        })
    }
}

/// A replace: the whole table, or only the rows a predicate matches (every new row must
/// match it), with `txn`s in the same commit. Awaiting it runs it.
pub struct ReplaceBuilder<'a> {
    table: Table<'a>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    partition_by: &'a [String],
    replace_where: Option<Expr>,
    txns: &'a [(String, i64)],
}

impl<'a> ReplaceBuilder<'a> {
    /// Partition columns (a full replace may change them).
    pub fn partition_by(mut self, columns: &'a [String]) -> Self {
        self.partition_by = columns;
        self
    }

    /// Replaces only the rows matching `predicate`.
    pub fn replace_where(mut self, predicate: Expr) -> Self {
        self.replace_where = Some(predicate);
        self
    }

    /// `txn`s (app id, version) committed with the data.
    pub fn txns(mut self, txns: &'a [(String, i64)]) -> Self {
        self.txns = txns;
        self
    }
}

impl<'a> IntoFuture for ReplaceBuilder<'a> {
    type Output = Result<WriteMetrics>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let t = &self.table.table;
            let spec = ReplaceSpec {
                partition_by: self.partition_by,
                replace_where: self.replace_where,
                txns: self.txns,
            };
            self.table.lake.check_conditional_writes().await?;
            self.table
                .lake
                .replace(t.schema.as_str(), &t.name, self.schema, self.batches, &spec)
                .await
        })
    }
}
