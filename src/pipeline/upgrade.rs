//! A lake written by one release, upgraded by the next: when `schemas/<table>.toml` gains a
//! column for a field the API had been sending, rows landed before kept that field in
//! `_extra`. The next commit adds the column (the merge evolves the Delta schema); this
//! module then fills the column of those earlier rows from their `_extra` — converted by
//! the same [`TableBuilder`] as a fresh page, so types, time zones and decimals agree —
//! and takes the field out of `_extra`.
//!
//! Every table carries the version of the declared schema its rows follow as a table
//! property ([`crate::warehouse::delta::SCHEMA_VERSION_KEY`], set when the table is
//! created). A commit that finds another version reports it
//! ([`crate::warehouse::WriteMetrics::stale_schema`]); the fill then runs over every
//! shop's rows and sets the property, so it costs nothing until the schema changes and
//! runs again after a crash in between (it only fills nulls).

use crate::warehouse::columns::{EXTRA, SHOP_ID};
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use chrono_tz::Tz;
use datafusion::prelude::{col, lit};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::Result;
use super::convert::{RowContext, TableBuilder};
use super::schema::{EXTRACTED_AT, TableSchema};
use crate::warehouse::Lake;

/// A stable version for the declared columns (name, type, path), as hex.
pub fn schema_version(schema: &TableSchema) -> String {
    let mut h = Sha256::new();
    for c in &schema.columns {
        h.update(c.name.as_bytes());
        h.update([0]);
        h.update(format!("{:?}", c.ty).as_bytes());
        h.update([0]);
        h.update(c.path().as_bytes());
        h.update([1]);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fills the columns `schema` declares, for every row of `raw.<table>` whose shop has a
/// time zone in `zones`, from their `_extra`; then records the schema version. Rows of a
/// shop without a zone keep their fields in `_extra` (nothing is lost). Returns the rows
/// filled.
pub async fn fill_from_extra(
    lake: &Lake,
    schema: &Arc<TableSchema>,
    zones: &HashMap<String, Tz>,
) -> Result<usize> {
    let table = schema.name.as_str();
    let stored = lake.columns("raw", table).await?;
    // Not before every declared column is in the table: the next commit carrying rows
    // adds them (a quiet window does not), and the fill runs then.
    if stored.is_empty() || schema.columns.iter().any(|c| !stored.contains(&c.name)) {
        return Ok(0);
    }
    let keys = schema.merge_keys();
    // Every declared column the table has, except keys; `_extra` without the fields now read.
    let fill: Vec<String> = schema
        .columns
        .iter()
        .map(|c| c.name.clone())
        .filter(|c| stored.contains(c) && !keys.contains(c))
        .collect();
    let (mut n, mut unreadable) = (0, 0);
    for (shop, tz) in zones {
        let ctx = RowContext {
            shop_id: shop.clone(),
            tz: *tz,
            extracted_at_us: 0,
        };
        let (batch, failed) = fill_batch(lake, schema, &ctx).await?;
        unreadable += failed;
        n += lake
            .patch("raw", table, batch, &keys, &fill, &[EXTRA.to_string()])
            .await?;
    }
    // Rows of shops without a known zone (no longer authorized, an unknown region) keep
    // their fields in `_extra`; the table stays marked stale so a later run fills them.
    let shops: Vec<datafusion::prelude::Expr> = zones.keys().map(|s| lit(s.as_str())).collect();
    let uncovered: usize = lake
        .scan(
            "raw",
            table,
            col(EXTRA)
                .is_not_null()
                .and(col(SHOP_ID).in_list(shops, true)),
        )
        .await?
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    if uncovered == 0 && unreadable == 0 {
        lake.set_schema_version("raw", table, &schema_version(schema))
            .await?;
    } else {
        tracing::warn!(
            table,
            uncovered,
            unreadable,
            "rows left with their fields in _extra (shop without a known time zone, or a value the column cannot read); the fill runs again next time"
        );
    }
    if n > 0 {
        tracing::info!(
            table,
            rows = n,
            "columns added to the schema filled from _extra"
        );
    }
    Ok(n)
}

/// The patch rows of one shop: its rows whose `_extra` holds a field a column reads now.
async fn fill_batch(
    lake: &Lake,
    schema: &Arc<TableSchema>,
    ctx: &RowContext,
) -> Result<(RecordBatch, usize)> {
    let table = schema.name.as_str();
    let rows = lake
        .scan(
            "raw",
            table,
            col(SHOP_ID)
                .eq(lit(ctx.shop_id.as_str()))
                .and(col(EXTRA).is_not_null()),
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
    let mut failed = 0;
    for b in &rows {
        // Read back as whatever string type the reader chose (Utf8View by default).
        let Some(extra) = b.column_by_name(EXTRA) else {
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
            } else {
                failed += 1;
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
            original.column_by_name(EXTRA).map(utf8),
            filled.column_by_name(EXTRA).map(utf8),
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
    let batch = match patches.first() {
        Some(first) => arrow::compute::concat_batches(&first.schema(), &patches)
            .map_err(|e| super::PipelineError::Invalid(format!("raw.{table}: {e}")))?,
        None => RecordBatch::new_empty(Arc::new(arrow::datatypes::Schema::empty())),
    };
    Ok((batch, failed))
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
            keys.contains(f.name()) || (f.name().starts_with('_') && f.name() != EXTRA);
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
