//! A lake written by one release, upgraded by the next: when `schemas/<table>.toml` gains a
//! column for a field the API had been sending, rows landed before kept that field in
//! `_extra`. The next commit adds the column (the merge evolves the Delta schema); this
//! module then fills the column of those earlier rows from their `_extra` — converted by
//! the same [`TableBuilder`] as a fresh page, so types, time zones and decimals agree —
//! and takes the field out of `_extra`, once per table, shop and schema version.
//!
//! The schema version is a hash of the declared columns, kept as a Delta `txn` on the table
//! ([`marker_app`]), so the check costs one lookup per commit and the fill runs once per
//! shop after each schema change, in one commit with its marker (a crash re-runs it; it
//! only fills nulls).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::prelude::{col, lit};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::Result;
use super::convert::{RowContext, TableBuilder};
use super::schema::{EXTRACTED_AT, TableSchema};
use crate::warehouse::Lake;

/// The `txn` app id holding the schema version `table`'s rows of `shop` were filled for.
pub fn marker_app(table: &str, shop: &str) -> String {
    format!("shoplake/schema/{table}/{shop}")
}

/// A stable version number for the declared columns (name, type, path).
pub fn schema_version(schema: &TableSchema) -> i64 {
    let mut h = Sha256::new();
    for c in &schema.columns {
        h.update(c.name.as_bytes());
        h.update([0]);
        h.update(format!("{:?}", c.ty).as_bytes());
        h.update([0]);
        h.update(c.path().as_bytes());
        h.update([1]);
    }
    let d = h.finalize();
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes")) & i64::MAX
}

/// Fills the columns `schema` declares, for the rows of `ctx.shop_id` in `raw.<table>`,
/// from their `_extra`, unless this schema version was filled already. Returns the rows
/// filled.
pub async fn fill_from_extra(
    lake: &Lake,
    schema: &Arc<TableSchema>,
    ctx: &RowContext,
) -> Result<usize> {
    let table = schema.name.as_str();
    let app = marker_app(table, &ctx.shop_id);
    let version = schema_version(schema);
    if lake.txn_version("raw", table, &app).await? == Some(version) {
        return Ok(0);
    }
    let stored = lake.columns("raw", table).await?;
    // Not before every declared column is in the table: the next commit carrying rows
    // adds them (a quiet window does not), and the fill runs then.
    if stored.is_empty() || schema.columns.iter().any(|c| !stored.contains(&c.name)) {
        return Ok(0);
    }
    let rows = lake
        .scan(
            "raw",
            table,
            col("_shop_id")
                .eq(lit(ctx.shop_id.as_str()))
                .and(col("_extra").is_not_null()),
        )
        .await?;
    // The records as `_extra` holds them, through the current schema with every column
    // optional (a field that was never sent stays null).
    let mut relaxed = (**schema).clone();
    for c in &mut relaxed.columns {
        c.nullable = true;
    }
    relaxed.partition_time = EXTRACTED_AT.to_string();
    relaxed.keep_only = false;
    let mut builder = TableBuilder::new(Arc::new(relaxed), &[]);
    let mut patches = Vec::new();
    for b in &rows {
        // Read back as whatever string type the reader chose (Utf8View by default).
        let Some(extra) = b.column_by_name("_extra") else {
            continue;
        };
        let extra = arrow::compute::cast(extra, &arrow::datatypes::DataType::Utf8)
            .map_err(|e| super::PipelineError::Invalid(format!("raw.{table}: {e}")))?;
        let extra = arrow::array::cast::as_string_array(&extra).clone();
        let mut keep = Vec::new();
        for i in 0..b.num_rows() {
            let Some(text) = extra.is_valid(i).then(|| extra.value(i)) else {
                continue;
            };
            let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            let record = unflatten(&fields);
            if builder.push(&record, None, ctx, "").is_ok() {
                keep.push(i as u32);
            }
        }
        if keep.is_empty() {
            continue;
        }
        let filled = builder.finish();
        let original = arrow::compute::take_record_batch(b, &arrow::array::UInt32Array::from(keep))
            .map_err(|e| super::PipelineError::Invalid(format!("raw.{table}: {e}")))?;
        // Only rows whose `_extra` held a field a column reads now.
        let utf8 = |c: &ArrayRef| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8);
        let (before, after) = (
            original.column_by_name("_extra").map(utf8),
            filled.column_by_name("_extra").map(utf8),
        );
        let changed = match (before, after) {
            (Some(Ok(b)), Some(Ok(a))) => arrow::compute::kernels::cmp::distinct(&b, &a)
                .map_err(|e| super::PipelineError::Invalid(format!("raw.{table}: {e}")))?,
            _ => continue,
        };
        let p = patch_batch(&original, &filled, schema)?;
        let p = arrow::compute::filter_record_batch(&p, &changed)
            .map_err(|e| super::PipelineError::Invalid(format!("raw.{table}: {e}")))?;
        if p.num_rows() > 0 {
            patches.push(p);
        }
    }
    let keys = schema.merge_keys();
    // Every declared column the table has, except keys; `_extra` without the fields now read.
    let fill: Vec<String> = schema
        .columns
        .iter()
        .map(|c| c.name.clone())
        .filter(|c| stored.contains(c) && !keys.contains(c))
        .collect();
    let batch = match patches.first() {
        Some(first) => arrow::compute::concat_batches(&first.schema(), &patches)
            .map_err(|e| super::PipelineError::Invalid(format!("raw.{table}: {e}")))?,
        None => RecordBatch::new_empty(Arc::new(arrow::datatypes::Schema::empty())),
    };
    let n = lake
        .patch(
            "raw",
            table,
            batch,
            &keys,
            &fill,
            &["_extra".to_string()],
            (&app, version),
        )
        .await?;
    if n > 0 {
        tracing::info!(table, shop = %ctx.shop_id, rows = n, "columns added to the schema filled from _extra");
    }
    Ok(n)
}

/// The patch rows: keys and system columns from the stored rows, declared columns and the
/// remaining `_extra` from the re-read.
fn patch_batch(
    original: &RecordBatch,
    filled: &RecordBatch,
    schema: &TableSchema,
) -> Result<RecordBatch> {
    let keys = schema.merge_keys();
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for f in filled.schema().fields() {
        let from_original =
            keys.contains(f.name()) || (f.name().starts_with('_') && f.name() != "_extra");
        let c = if from_original {
            original.column_by_name(f.name()).cloned()
        } else {
            filled.column_by_name(f.name()).cloned()
        };
        let Some(c) = c else { continue };
        // The stored rows come back in the reader's types (string views): the table's.
        let c = arrow::compute::cast(&c, f.data_type())
            .map_err(|e| super::PipelineError::Invalid(format!("raw.{}: {e}", schema.name)))?;
        // Keys come from the stored rows, whatever the re-read said about them.
        fields.push(arrow::datatypes::Field::new(
            f.name(),
            c.data_type().clone(),
            true,
        ));
        cols.push(c);
    }
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), cols)
        .map_err(|e| super::PipelineError::Invalid(format!("raw.{}: {e}", schema.name)))
}

/// `{"a.b": 1, "c": 2}` → `{"a": {"b": 1}, "c": 2}`: `_extra` keys are dotted paths of
/// fields inside objects the schema reads in part.
fn unflatten(fields: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (k, v) in fields {
        let parts: Vec<&str> = k.split('.').collect();
        insert_at(&mut out, &parts, v.clone());
    }
    Value::Object(out)
}

/// Sets `path` in `obj` to `v`, making objects on the way (a non-object in the way: skipped).
fn insert_at(obj: &mut Map<String, Value>, path: &[&str], v: Value) {
    match path {
        [] => {}
        [last] => {
            obj.insert(last.to_string(), v);
        }
        [first, rest @ ..] => {
            let e = obj
                .entry(first.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = e {
                insert_at(m, rest, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_extra_keys_nest_again() {
        let m: Map<String, Value> =
            serde_json::from_str(r#"{"a.b": 1, "a.c": {"d": 2}, "e": [3]}"#).unwrap();
        assert_eq!(
            unflatten(&m),
            serde_json::json!({"a": {"b": 1, "c": {"d": 2}}, "e": [3]})
        );
    }
}
