//! Raw table schemas (`schemas/<table>.toml`): one file per raw table, a doc line per
//! column, the JSON path each column is read from, and how the table is keyed and
//! partitioned. Every table also gets the system columns `_shop_id`, `_month` (partition),
//! `_extracted_at`, `_source_request_id` and `_extra` (unknown fields as JSON).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

use super::{PipelineError, Result};

/// Decimal precision and scale of every money column.
pub const MONEY_PRECISION: u8 = 38;
/// Scale of money columns (6 digits covers every currency the API uses).
pub const MONEY_SCALE: i8 = 6;

/// Column type in a schema file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// UTF-8 string (ids are always strings: TikTok ids exceed 2^53).
    String,
    /// 64-bit integer.
    Int,
    /// Boolean.
    Bool,
    /// Money or any decimal string: `Decimal128(38, 6)`, never a float.
    Decimal,
    /// Unix seconds → `Timestamp(µs, UTC)`.
    Timestamp,
    /// Unix milliseconds → `Timestamp(µs, UTC)`.
    TimestampMs,
    /// Unix seconds → the shop-local date (`Date32`), using the shop's time zone.
    LocalDate,
    /// Unix seconds → shop-local wall-clock time (`Timestamp(µs)` without zone).
    LocalTimestamp,
    /// Any JSON value kept as its JSON text (arrays, nested objects).
    Json,
}

impl ColumnType {
    /// The Arrow type this column lands as.
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::String | ColumnType::Json => DataType::Utf8,
            ColumnType::Int => DataType::Int64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Decimal => DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE),
            ColumnType::Timestamp | ColumnType::TimestampMs => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            ColumnType::LocalDate => DataType::Date32,
            ColumnType::LocalTimestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }
}

/// One column of a raw table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Column name in the table.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Dotted JSON path in the record (default: the column name).
    #[serde(default)]
    pub path: Option<String>,
    /// Read from the parent record instead of the nested item (child tables only).
    #[serde(default)]
    pub from_parent: bool,
    /// A record without a usable value fails its page.
    #[serde(default = "yes")]
    pub nullable: bool,
    /// What the column means.
    pub doc: String,
}

fn yes() -> bool {
    true
}

impl ColumnSpec {
    /// The JSON path the value is read from.
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or(&self.name)
    }
}

/// A raw table: `schemas/<name>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSchema {
    /// Table name (`raw.<name>`); defaults to the file stem.
    #[serde(default)]
    pub name: String,
    /// What one row is.
    pub doc: String,
    /// Key columns (with `_shop_id`) that identify a row; later versions replace it.
    pub primary_key: Vec<String>,
    /// Column whose larger value wins when a key lands twice (e.g. `update_time`).
    #[serde(default)]
    pub version_column: Option<String>,
    /// Unix-seconds column (a declared column's path) whose shop-local month is the
    /// `_month` partition. Must never change for a key (e.g. `create_time`). Snapshot
    /// tables, whose records have no time, use `_extracted_at`: the month of the
    /// snapshot (a snapshot replaces the shop's rows, so a new month moves them whole).
    pub partition_time: String,
    /// For child tables: dotted path of the array inside the parent record.
    #[serde(default)]
    pub nested: Option<String>,
    /// Record paths dropped on purpose (buyer PII): neither landed nor kept in `_extra`.
    #[serde(default)]
    pub drop: Vec<String>,
    /// Land only the declared columns; `_extra` stays empty (for detail tables whose
    /// other fields another raw table already holds).
    #[serde(default)]
    pub keep_only: bool,
    /// Columns.
    pub columns: Vec<ColumnSpec>,
}

/// The system columns, named once in the warehouse (`_extracted_at` is also the
/// `partition_time` of snapshot tables).
pub use crate::warehouse::columns::{EXTRACTED_AT, PARTITION_COLUMNS, SYSTEM_COLUMNS};

impl TableSchema {
    /// Parses one schema file.
    pub fn from_toml(name: &str, text: &str, file: &Path) -> Result<TableSchema> {
        let mut t: TableSchema = toml::from_str(text).map_err(|e| PipelineError::Spec {
            file: file.display().to_string(),
            message: e.to_string(),
        })?;
        if t.name.is_empty() {
            t.name = name.to_string();
        }
        t.validate(file)?;
        Ok(t)
    }

    fn validate(&self, file: &Path) -> Result<()> {
        let err = |message: String| PipelineError::Spec {
            file: file.display().to_string(),
            message,
        };
        let mut seen = std::collections::HashSet::new();
        for c in &self.columns {
            if c.name.starts_with('_') {
                return Err(err(format!(
                    "column `{}`: names starting with `_` are reserved for system columns",
                    c.name
                )));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(err(format!("column `{}` is declared twice", c.name)));
            }
            if c.from_parent && self.nested.is_none() {
                return Err(err(format!(
                    "column `{}`: from_parent needs `nested` (a child table)",
                    c.name
                )));
            }
        }
        for k in self.primary_key.iter().chain(self.version_column.iter()) {
            if !seen.contains(k.as_str()) {
                return Err(err(format!(
                    "key column `{k}` is not a declared column (primary_key / version_column)"
                )));
            }
        }
        if self.partition_time != EXTRACTED_AT
            && !self
                .columns
                .iter()
                .any(|c| c.name == self.partition_time || c.path() == self.partition_time)
        {
            return Err(err(format!(
                "partition_time `{}` must name a declared column",
                self.partition_time
            )));
        }
        Ok(())
    }

    /// Arrow schema: declared columns, then system columns.
    pub fn arrow_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| {
                let mut md = std::collections::HashMap::new();
                md.insert("comment".to_string(), c.doc.clone());
                Field::new(&c.name, c.ty.arrow(), c.nullable).with_metadata(md)
            })
            .collect();
        fields.extend(crate::warehouse::columns::system_fields());
        Arc::new(Schema::new(fields))
    }

    /// For a child table: the key columns read from the parent record (the parent's id);
    /// empty for other tables.
    pub fn parent_keys(&self) -> Vec<String> {
        if self.nested.is_none() {
            return Vec::new();
        }
        self.primary_key
            .iter()
            .filter(|k| self.columns.iter().any(|c| &c.name == *k && c.from_parent))
            .cloned()
            .collect()
    }

    /// Merge key columns: `_shop_id`, `_month` (so merges prune partitions) and the key.
    pub fn merge_keys(&self) -> Vec<String> {
        PARTITION_COLUMNS
            .iter()
            .map(|s| s.to_string())
            .chain(self.primary_key.iter().cloned())
            .collect()
    }
}

/// Every schema in a directory, by table name.
pub fn load_dir(dir: &Path) -> Result<BTreeMap<String, TableSchema>> {
    let mut out = BTreeMap::new();
    let paths = super::toml_files(dir, "schemas")?;
    for p in paths {
        let stem = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&p).map_err(|e| PipelineError::Spec {
            file: p.display().to_string(),
            message: e.to_string(),
        })?;
        let t = TableSchema::from_toml(&stem, &text, &p)?;
        out.insert(t.name.clone(), t);
    }
    Ok(out)
}
