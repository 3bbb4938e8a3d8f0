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
//! Every table it reads must be *tracked*: carry the window columns (seeds are constants
//! and exempt: editing one changes the model's lineage, so it is rebuilt in full).
//!
//! A build then:
//! 1. reads the model's build state from its own Delta table: `txn`s under the app id
//!    `shoplake.model.<hash of the SQL, the upstream models' SQL and the seeds they read>`,
//!    one per input, whose version is the Delta version of that input the last build
//!    read. No state for this lineage (first build, an edited model or an edited upstream
//!    model or seed, `--full-refresh`, state written by an older release) or an input
//!    version no longer readable (its log cleaned up): a full build;
//! 2. finds the changed windows by Delta versions: the distinct windows of rows that
//!    differ between the input as the last build read it and the input now (rows added,
//!    changed or deleted; time travel on both sides). Nothing depends on when a row was
//!    fetched, so a window whose fetch started hours before a build and committed after
//!    it is still seen: the version it committed in is newer than the one recorded;
//! 3. runs the model's plan with every input scan filtered to those windows (filters on
//!    partition and statistics columns prune files), and replaces exactly those windows
//!    (Delta replaceWhere) together with the new input versions in one commit.
//!
//! Input versions are read before the model plans, so a commit landing while it builds
//! is compared again next time (at worst a window is rebuilt twice, never skipped).
//!
//! A window's rows must depend only on input rows of the same window, which is what
//! declaring `incremental_by` asserts; `tests/models.rs` checks that every incremental
//! model equals a full rebuild.

use std::collections::{BTreeMap, HashSet};

use datafusion::common::Column;
use datafusion::common::tree_node::Transformed;
use datafusion::logical_expr::utils::{conjunction, disjunction};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{Expr, SessionContext, lit};
use datafusion::scalar::ScalarValue;

use super::dag::{Model, normalize};
use super::{ModelError, Result};
use crate::warehouse::Lake;

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
/// lacks a window column.
pub async fn tracked_inputs(ctx: &SessionContext, m: &Model) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for r in m.refs.iter().filter(|r| !r.starts_with("seeds.")) {
        let t = ctx.table(r.as_str()).await.map_err(|e| run_err(m, e))?;
        let schema = t.schema();
        let missing: Vec<&str> = m
            .config
            .incremental_by
            .iter()
            .map(String::as_str)
            .filter(|c| schema.field_with_unqualified_name(c).is_err())
            .collect();
        if !missing.is_empty() {
            return Err(ModelError::Config {
                file: m.file(),
                message: format!(
                    "incremental model {} reads {r}, which has no column {}: its changes cannot be windowed; read it through a model that carries the window columns, or build {} as a table",
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

/// The `txn` app id holding the version of `input` the last build of `m` read.
pub fn input_app(m: &Model, input: &str) -> String {
    format!("{}/in/{input}", app_id(m))
}

/// The current Delta version of each input (`schema.table`), read before the model plans.
pub async fn input_versions(lake: &Lake, inputs: &[String]) -> Result<Vec<(String, i64)>> {
    let mut out = Vec::with_capacity(inputs.len());
    for input in inputs {
        let (schema, table) = split(input);
        let v = lake.version(schema, table).await?.unwrap_or(-1);
        out.push((input.clone(), v));
    }
    Ok(out)
}

fn split(input: &str) -> (&str, &str) {
    input.split_once('.').unwrap_or(("raw", input))
}

/// Windows whose input rows differ between the versions the last build of `m` read and
/// `reads` (the versions now). `None`: some earlier version is unknown or unreadable, or
/// the two versions cannot be compared (a changed column type): build in full.
pub async fn changed_windows(
    lake: &Lake,
    m: &Model,
    reads: &[(String, i64)],
) -> Result<Option<Vec<Window>>> {
    let cols = &m.config.incremental_by;
    let mut set: HashSet<Window> = HashSet::new();
    for (input, now) in reads {
        let Some(old) = lake
            .txn_version(&m.schema, &m.name, &input_app(m, input))
            .await?
        else {
            return Ok(None);
        };
        if old == *now {
            continue;
        }
        let (schema, table) = split(input);
        let (Some(before), Some(after)) = (
            lake.open_version(schema, table, old).await?,
            lake.open_version(schema, table, *now).await?,
        ) else {
            tracing::info!(model = %m.qualified(), input = %input, old, now, "input version no longer readable: full build");
            return Ok(None);
        };
        match diff_windows(before, after, cols).await {
            Ok(batches) => windows_of(&batches, cols.len(), &mut set).map_err(|e| run_err(m, e))?,
            Err(e) => {
                tracing::info!(model = %m.qualified(), input = %input, error = %e, "input versions not comparable: full build");
                return Ok(None);
            }
        }
    }
    let mut out: Vec<Window> = set.into_iter().collect();
    out.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Ok(Some(out))
}

/// The distinct `cols` of rows in one version and not the other (both directions).
async fn diff_windows(
    before: deltalake::DeltaTable,
    after: deltalake::DeltaTable,
    cols: &[String],
) -> datafusion::error::Result<Vec<arrow::array::RecordBatch>> {
    use datafusion::error::DataFusionError::External;
    let ctx = SessionContext::new();
    let before = before
        .table_provider()
        .await
        .map_err(|e| External(Box::new(e)))?;
    let after = after
        .table_provider()
        .await
        .map_err(|e| External(Box::new(e)))?;
    let before = ctx.read_table(before)?;
    let after = ctx.read_table(after)?;
    let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
    after
        .clone()
        .except_distinct(before.clone())?
        .union(before.except_distinct(after)?)?
        .select_columns(&cols)?
        .distinct()?
        .collect()
        .await
}

/// Adds the windows (first `n` columns of each row) of `batches` to `set`.
fn windows_of(
    batches: &[arrow::array::RecordBatch],
    n: usize,
    set: &mut HashSet<Window>,
) -> datafusion::error::Result<()> {
    for b in batches {
        for row in 0..b.num_rows() {
            let w = (0..n)
                .map(|c| ScalarValue::try_from_array(b.column(c), row))
                .collect::<datafusion::error::Result<Window>>()?;
            set.insert(w.into_iter().map(plain).collect());
        }
    }
    Ok(())
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

/// A window value as a literal: strings, dates, integers and booleans (`None`: NULL).
fn literal(v: &ScalarValue) -> std::result::Result<Option<Expr>, String> {
    if v.is_null() {
        return Ok(None);
    }
    match v {
        ScalarValue::Utf8(_)
        | ScalarValue::Date32(_)
        | ScalarValue::Boolean(_)
        | ScalarValue::Int8(_)
        | ScalarValue::Int16(_)
        | ScalarValue::Int32(_)
        | ScalarValue::Int64(_)
        | ScalarValue::UInt8(_)
        | ScalarValue::UInt16(_)
        | ScalarValue::UInt32(_)
        | ScalarValue::UInt64(_) => Ok(Some(lit(v.clone()))),
        other => Err(format!(
            "window values of type {} are not supported (use strings, dates, integers or booleans)",
            other.data_type()
        )),
    }
}

/// `c = v`, or `c IS NULL` for a null window value.
fn equals(c: &str, v: &ScalarValue) -> std::result::Result<Expr, String> {
    let column = Expr::Column(Column::new_unqualified(c));
    Ok(match literal(v).map_err(|e| format!("{c}: {e}"))? {
        Some(l) => column.eq(l),
        None => column.is_null(),
    })
}

/// The predicate matching exactly `windows` over `cols`, as a DataFusion expression:
/// windows sharing all but the last column become one `IN` list, e.g.
/// `(shop_id = 'a' AND order_date IN (DATE '2026-01-01', …)) OR (…)`.
pub fn predicate(cols: &[String], windows: &[Window]) -> std::result::Result<Expr, String> {
    let (last, prefix) = cols.split_last().ok_or("no window columns")?;
    // Windows by their prefix values (as text, for grouping): the prefix's equalities and
    // the last column's values (and whether one is null).
    let mut groups: BTreeMap<Vec<String>, (Vec<Expr>, Vec<Expr>, bool)> = BTreeMap::new();
    for w in windows {
        let key: Vec<String> = w[..prefix.len()].iter().map(|v| format!("{v:?}")).collect();
        let entry = groups
            .entry(key)
            .or_insert_with(|| (Vec::new(), Vec::new(), false));
        if entry.0.is_empty() {
            for (c, v) in prefix.iter().zip(w) {
                entry.0.push(equals(c, v)?);
            }
        }
        match literal(&w[prefix.len()]).map_err(|e| format!("{last}: {e}"))? {
            Some(l) => entry.1.push(l),
            None => entry.2 = true,
        }
    }
    let last_col = || Expr::Column(Column::new_unqualified(last));
    let parts = groups.into_values().map(|(mut key, values, null)| {
        let in_list = (!values.is_empty()).then(|| last_col().in_list(values, false));
        let is_null = null.then(|| last_col().is_null());
        key.extend(disjunction(in_list.into_iter().chain(is_null)));
        conjunction(key).unwrap_or(lit(true))
    });
    Ok(disjunction(parts).unwrap_or(lit(false)))
}

/// `plan` with every scan of a table in `tables` filtered by `predicate` (over the
/// window columns), subqueries included.
pub fn restrict(
    plan: LogicalPlan,
    tables: &[String],
    predicate: &Expr,
) -> datafusion::error::Result<LogicalPlan> {
    Ok(plan
        .transform_up_with_subqueries(|node| {
            let LogicalPlan::TableScan(scan) = &node else {
                return Ok(Transformed::no(node));
            };
            if !normalize(&scan.table_name).is_some_and(|n| tables.contains(&n)) {
                return Ok(Transformed::no(node));
            }
            let filtered = LogicalPlanBuilder::from(node)
                .filter(predicate.clone())?
                .build()?;
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
        let shop = || Expr::Column(Column::new_unqualified("shop_id"));
        let day = || Expr::Column(Column::new_unqualified("order_date"));
        let expected = shop()
            .eq(lit(s("a")))
            .and(day().in_list(vec![lit(d(0)), lit(d(1))], false))
            .or(shop()
                .eq(lit(s("b'x")))
                .and(day().in_list(vec![lit(d(2))], false).or(day().is_null())));
        assert_eq!(predicate(&cols, &w).unwrap(), expected);
        let bad = predicate(&cols[..1], &[vec![ScalarValue::Float64(Some(1.0))]]).unwrap_err();
        assert!(bad.contains("shop_id") && bad.contains("Float64"), "{bad}");
    }
}
