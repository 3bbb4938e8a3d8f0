//! Incremental models: a build rebuilds only the windows whose input rows changed.
//!
//! An incremental model declares its key and its window:
//!
//! ```sql
//! -- materialized: incremental
//! -- unique_key: shop_id, order_date
//! -- incremental_by: shop_id, order_date
//! ```
//!
//! Every table it reads must be *tracked*: carry the window columns and `_extracted_at`
//! (for raw tables the fetch time; staging models carry the newest `_extracted_at` of the
//! rows each row was made from, so a product rename re-stamps its order lines). Seeds are
//! constants and exempt: editing one changes the model's lineage, so it is rebuilt in full.
//!
//! A build then:
//! 1. reads the model's build state from its own Delta table: a `txn` with app id
//!    `shoplake.model.<hash of the SQL, the upstream models' SQL and the seeds they read>`
//!    whose version is the *watermark*, the newest `_extracted_at` the inputs held when the
//!    model was last built. No state for this lineage (first build, an edited model or an
//!    edited upstream model or seed, `--full-refresh`): a full build;
//! 2. finds the changed windows: distinct window values of input rows stamped after the
//!    watermark minus the lookback (a fetch stamped before a build read its inputs but
//!    committed after is still seen next time);
//! 3. runs the model's plan with every input scan filtered to those windows (filters on
//!    partition and statistics columns prune files), and replaces exactly those windows
//!    (Delta replaceWhere) together with the new watermark in one commit.
//!
//! A window's rows must depend only on input rows of the same window, which is what
//! declaring `incremental_by` asserts; `tests/models.rs` checks that every incremental
//! model equals a full rebuild.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::logical_expr::{Filter, LogicalPlan};
use datafusion::prelude::{SessionContext, col, lit};
use datafusion::scalar::ScalarValue;

use super::dag::{Model, normalize};
use super::{ModelError, Result};
use crate::pipeline::schema::EXTRACTED_AT;

/// The `txn` app id holding a model's watermark; a new one whenever its SQL, the SQL of a
/// model upstream of it or a seed they read changes (see [`Model::lineage`]).
pub fn app_id(m: &Model) -> String {
    format!("shoplake.model.{}", m.lineage)
}

/// One window: values of the `incremental_by` columns, in order.
pub type Window = Vec<ScalarValue>;

fn run_err(m: &Model, e: impl std::fmt::Display) -> ModelError {
    ModelError::Run {
        model: m.qualified(),
        message: format!("{e} ({})", m.file()),
    }
}

/// The tables `m` reads that changes are tracked in (all but seeds); errors when one
/// lacks `_extracted_at` or a window column.
pub async fn tracked_inputs(ctx: &SessionContext, m: &Model) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for r in m.refs.iter().filter(|r| !r.starts_with("seeds.")) {
        let t = ctx.table(r.as_str()).await.map_err(|e| run_err(m, e))?;
        let schema = t.schema();
        let missing: Vec<&str> = std::iter::once(EXTRACTED_AT)
            .chain(m.config.incremental_by.iter().map(String::as_str))
            .filter(|c| schema.field_with_unqualified_name(c).is_err())
            .collect();
        if !missing.is_empty() {
            return Err(ModelError::Config {
                file: m.file(),
                message: format!(
                    "incremental model {} reads {r}, which has no column {}: its changes cannot be windowed; read it through a model that carries the window columns and {EXTRACTED_AT}, or build {} as a table",
                    m.qualified(),
                    missing.join(", "),
                    m.qualified()
                ),
            });
        }
        out.push(r.clone());
    }
    if out.is_empty() {
        return Err(ModelError::Config {
            file: m.file(),
            message: format!("incremental model {} reads no tracked table", m.qualified()),
        });
    }
    Ok(out)
}

/// The `_extracted_at` literal for `table`'s column type (µs, with its time zone).
async fn stamp(
    ctx: &SessionContext,
    table: &str,
    micros: i64,
) -> datafusion::error::Result<ScalarValue> {
    let t = ctx.table(table).await?;
    let f = t
        .schema()
        .field_with_unqualified_name(EXTRACTED_AT)?
        .clone();
    Ok(match f.data_type() {
        DataType::Timestamp(_, tz) => {
            ScalarValue::TimestampMicrosecond(Some(micros), tz.clone()).cast_to(f.data_type())?
        }
        other => ScalarValue::Int64(Some(micros)).cast_to(other)?,
    })
}

/// The newest `_extracted_at` over `inputs`, µs (`None` when all are empty).
pub async fn watermark(ctx: &SessionContext, m: &Model, inputs: &[String]) -> Result<Option<i64>> {
    let mut best: Option<i64> = None;
    for t in inputs {
        let sql = format!("select cast(max({EXTRACTED_AT}) as bigint) from {t}");
        let batches = ctx
            .sql(&sql)
            .await
            .map_err(|e| run_err(m, e))?
            .collect()
            .await
            .map_err(|e| run_err(m, e))?;
        for b in &batches {
            if b.num_rows() > 0 {
                if let ScalarValue::Int64(Some(v)) =
                    ScalarValue::try_from_array(b.column(0), 0).map_err(|e| run_err(m, e))?
                {
                    best = Some(best.map_or(v, |x| x.max(v)));
                }
            }
        }
    }
    Ok(best)
}

/// Distinct windows of input rows stamped after `since` (µs), sorted.
pub async fn changed_windows(
    ctx: &SessionContext,
    m: &Model,
    inputs: &[String],
    since: i64,
) -> Result<Vec<Window>> {
    let cols = &m.config.incremental_by;
    let mut set: HashSet<Window> = HashSet::new();
    for t in inputs {
        let since = stamp(ctx, t, since).await.map_err(|e| run_err(m, e))?;
        let batches = ctx
            .table(t.as_str())
            .await
            .and_then(|df| df.filter(col(EXTRACTED_AT).gt(lit(since))))
            .and_then(|df| df.select_columns(&cols.iter().map(String::as_str).collect::<Vec<_>>()))
            .and_then(|df| df.distinct())
            .map_err(|e| run_err(m, e))?
            .collect()
            .await
            .map_err(|e| run_err(m, e))?;
        for b in &batches {
            for row in 0..b.num_rows() {
                let w = (0..cols.len())
                    .map(|c| ScalarValue::try_from_array(b.column(c), row))
                    .collect::<std::result::Result<Window, _>>()
                    .map_err(|e| run_err(m, e))?;
                set.insert(w.into_iter().map(plain).collect());
            }
        }
    }
    let mut out: Vec<Window> = set.into_iter().collect();
    out.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Ok(out)
}

/// One string type for every string window value (view, large and dictionary strings
/// compare equal as windows).
fn plain(v: ScalarValue) -> ScalarValue {
    match v {
        ScalarValue::Utf8View(s) | ScalarValue::LargeUtf8(s) => ScalarValue::Utf8(s),
        ScalarValue::Dictionary(_, inner) => plain(*inner),
        other => other,
    }
}

/// A SQL literal for a window value.
fn literal(v: &ScalarValue) -> std::result::Result<String, String> {
    if v.is_null() {
        return Err("NULL".into());
    }
    Ok(match v {
        ScalarValue::Utf8(Some(s)) => format!("'{}'", s.replace('\'', "''")),
        ScalarValue::Date32(Some(_)) => format!("DATE '{v}'"),
        ScalarValue::Boolean(Some(b)) => b.to_string(),
        ScalarValue::Int8(_)
        | ScalarValue::Int16(_)
        | ScalarValue::Int32(_)
        | ScalarValue::Int64(_)
        | ScalarValue::UInt8(_)
        | ScalarValue::UInt16(_)
        | ScalarValue::UInt32(_)
        | ScalarValue::UInt64(_) => v.to_string(),
        other => {
            return Err(format!(
                "window values of type {} are not supported (use strings, dates, integers or booleans)",
                other.data_type()
            ));
        }
    })
}

fn quote(c: &str) -> String {
    format!("\"{}\"", c.replace('"', "\"\""))
}

/// The SQL predicate matching exactly `windows` over `cols`: windows sharing all but the
/// last column become one `IN` list, e.g.
/// `("shop_id" = 'a' AND "order_date" IN (DATE '2026-01-01', …)) OR (…)`.
pub fn predicate_sql(cols: &[String], windows: &[Window]) -> std::result::Result<String, String> {
    let (last, prefix) = cols.split_last().ok_or("no window columns")?;
    let mut groups: BTreeMap<Vec<String>, (Vec<String>, bool)> = BTreeMap::new();
    for w in windows {
        let mut key = Vec::with_capacity(prefix.len());
        for (c, v) in prefix.iter().zip(w) {
            key.push(match literal(v) {
                Ok(l) => format!("{} = {l}", quote(c)),
                Err(e) if e == "NULL" => format!("{} IS NULL", quote(c)),
                Err(e) => return Err(format!("{c}: {e}")),
            });
        }
        let entry = groups.entry(key).or_default();
        match literal(&w[prefix.len()]) {
            Ok(l) => entry.0.push(l),
            Err(e) if e == "NULL" => entry.1 = true,
            Err(e) => return Err(format!("{last}: {e}")),
        }
    }
    let parts: Vec<String> = groups
        .into_iter()
        .map(|(mut key, (values, null))| {
            let mut lastp = Vec::new();
            if !values.is_empty() {
                lastp.push(format!("{} IN ({})", quote(last), values.join(", ")));
            }
            if null {
                lastp.push(format!("{} IS NULL", quote(last)));
            }
            key.push(if lastp.len() == 1 {
                lastp.remove(0)
            } else {
                format!("({})", lastp.join(" OR "))
            });
            format!("({})", key.join(" AND "))
        })
        .collect();
    Ok(parts.join(" OR "))
}

/// `plan` with every scan of a table in `tables` filtered by `predicate` (SQL over the
/// window columns), subqueries included.
pub fn restrict(
    ctx: &SessionContext,
    plan: LogicalPlan,
    tables: &[String],
    predicate: &str,
) -> datafusion::error::Result<LogicalPlan> {
    let state = ctx.state();
    Ok(plan
        .transform_up_with_subqueries(|node| {
            let LogicalPlan::TableScan(scan) = &node else {
                return Ok(Transformed::no(node));
            };
            if !normalize(&scan.table_name).is_some_and(|n| tables.contains(&n)) {
                return Ok(Transformed::no(node));
            }
            let expr = state.create_logical_expr(predicate, scan.projected_schema.as_ref())?;
            let filtered = LogicalPlan::Filter(Filter::try_new(expr, Arc::new(node))?);
            Ok(Transformed::yes(filtered))
        })?
        .data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicate_groups_windows_by_prefix() {
        let s = |v: &str| ScalarValue::Utf8(Some(v.into()));
        let d = |n: i32| ScalarValue::Date32(Some(n));
        let cols = vec!["shop_id".to_string(), "order_date".to_string()];
        let w = vec![
            vec![s("a"), d(0)],
            vec![s("a"), d(1)],
            vec![s("b'x"), d(2)],
            vec![s("b'x"), ScalarValue::Date32(None)],
        ];
        assert_eq!(
            predicate_sql(&cols, &w).unwrap(),
            "(\"shop_id\" = 'a' AND \"order_date\" IN (DATE '1970-01-01', DATE '1970-01-02')) OR (\"shop_id\" = 'b''x' AND (\"order_date\" IN (DATE '1970-01-03') OR \"order_date\" IS NULL))"
        );
        let bad = predicate_sql(
            &cols[..1].to_vec(),
            &[vec![ScalarValue::Float64(Some(1.0))]],
        )
        .unwrap_err();
        assert!(bad.contains("shop_id") && bad.contains("Float64"), "{bad}");
    }
}
