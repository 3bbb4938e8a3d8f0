//! Records (JSON values from API pages) → typed Arrow batches, one per raw table.
//!
//! The one converter every stream uses: a table's schema says where each column's value
//! lives; nested arrays (line items, SKUs) become child-table rows carrying their parent's
//! key. Fields no column reads are kept in `_extra` as JSON, and each unknown field is
//! reported once per table and process. A required value that is missing or unusable fails the
//! page with the field name.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde_json::{Map, Value};

use super::schema::{ColumnSpec, ColumnType, MONEY_PRECISION, MONEY_SCALE, TableSchema};

/// Unknown fields already reported by this process, per table: a drifted field shows up in
/// every page of every window and shop, and one warning says it.
static REPORTED: std::sync::Mutex<Option<HashSet<(String, String)>>> = std::sync::Mutex::new(None);

fn first_sighting(table: &str, field: &str) -> bool {
    let mut seen = REPORTED.lock().unwrap_or_else(|e| e.into_inner());
    seen.get_or_insert_with(HashSet::new)
        .insert((table.to_string(), field.to_string()))
}

/// Why a record could not be converted (the page fails; the cursor stays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError {
    /// Table being built.
    pub table: String,
    /// Column.
    pub column: String,
    /// What was wrong.
    pub message: String,
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "table {} column {}: {}",
            self.table, self.column, self.message
        )
    }
}

/// Who the rows belong to and when they were fetched.
#[derive(Debug, Clone)]
pub struct RowContext {
    /// Shop id (`_shop_id`).
    pub shop_id: String,
    /// Shop time zone for local dates.
    pub tz: Tz,
    /// Fetch time, µs since epoch (`_extracted_at`).
    pub extracted_at_us: i64,
}

/// Which fields of a record the columns read: a path tree.
#[derive(Debug, Default)]
struct Consumed {
    whole: bool,
    children: HashMap<String, Consumed>,
}

impl Consumed {
    fn add(&mut self, path: &str) {
        let mut cur = self;
        for part in path.split('.') {
            cur = cur.children.entry(part.to_string()).or_default();
        }
        cur.whole = true;
    }

    /// Collects fields not covered into `out` under dotted names.
    fn unknown(&self, obj: &Map<String, Value>, prefix: &str, out: &mut Map<String, Value>) {
        for (k, v) in obj {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match self.children.get(k) {
                Some(c) if c.whole => {}
                Some(c) => match v {
                    Value::Object(inner) => c.unknown(inner, &name, out),
                    other => {
                        out.insert(name, other.clone());
                    }
                },
                None => {
                    out.insert(name, v.clone());
                }
            }
        }
    }
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.') {
        cur = match cur {
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            other => other.get(part)?,
        };
    }
    Some(cur)
}

/// Parses a decimal string exactly into an integer at [`MONEY_SCALE`].
pub fn parse_decimal(s: &str) -> Result<i128, String> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(format!("`{s}` is not a decimal"));
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not a decimal"));
    }
    let scale = MONEY_SCALE as usize;
    let frac_trim = frac.trim_end_matches('0');
    if frac_trim.len() > scale {
        return Err(format!("`{s}` has more than {scale} decimal places"));
    }
    if int.len() + scale > MONEY_PRECISION as usize {
        return Err(format!("`{s}` is too large"));
    }
    let mut v: i128 = 0;
    for b in int.bytes() {
        v = v * 10 + (b - b'0') as i128;
    }
    for i in 0..scale {
        let d = frac_trim
            .as_bytes()
            .get(i)
            .map_or(0, |b| (b - b'0') as i128);
        v = v * 10 + d;
    }
    Ok(if neg { -v } else { v })
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

enum Builder {
    Str(StringBuilder),
    Int(Int64Builder),
    Bool(BooleanBuilder),
    Dec(Decimal128Builder),
    Ts(TimestampMicrosecondBuilder),
    Date(Date32Builder),
}

fn epoch_days(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - 719_163
}

fn month_of(tz: Tz, secs: i64) -> String {
    match DateTime::from_timestamp(secs, 0) {
        Some(t) => {
            let l = tz.from_utc_datetime(&t.naive_utc());
            format!("{:04}-{:02}", l.year(), l.month())
        }
        None => "unknown".to_string(),
    }
}

/// One column's value of a record, validated, before it is appended.
enum Cell {
    Null,
    S(String),
    I(i64),
    B(bool),
    D(i128),
}

/// Unix seconds of local midnight of `day` in `tz` (1am UTC of `day` when midnight does
/// not exist there).
fn local_midnight(tz: Tz, day: NaiveDate) -> i64 {
    tz.from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest()
        .map_or(
            day.and_hms_opt(1, 0, 0).expect("1am").and_utc().timestamp(),
            |t| t.timestamp(),
        )
}

/// Appends `cell` to the builder of a column of type `ty`; shop-local values in `tz`.
fn append(b: &mut Builder, cell: Cell, ty: ColumnType, tz: Tz) {
    match (b, cell) {
        (Builder::Str(b), Cell::S(s)) => b.append_value(s),
        (Builder::Str(b), _) => b.append_null(),
        (Builder::Int(b), Cell::I(i)) => b.append_value(i),
        (Builder::Int(b), _) => b.append_null(),
        (Builder::Bool(b), Cell::B(v)) => b.append_value(v),
        (Builder::Bool(b), _) => b.append_null(),
        (Builder::Dec(b), Cell::D(v)) => b.append_value(v),
        (Builder::Dec(b), _) => b.append_null(),
        (Builder::Ts(b), Cell::I(s)) => {
            if ty == ColumnType::LocalTimestamp {
                let local = DateTime::from_timestamp(s, 0)
                    .map(|t| tz.from_utc_datetime(&t.naive_utc()).naive_local());
                match local {
                    Some(l) => b.append_value(l.and_utc().timestamp_micros()),
                    None => b.append_null(),
                }
            } else {
                b.append_value(s.saturating_mul(1_000_000))
            }
        }
        (Builder::Ts(b), _) => b.append_null(),
        (Builder::Date(b), Cell::I(s)) => match DateTime::from_timestamp(s, 0) {
            Some(t) => b.append_value(epoch_days(
                tz.from_utc_datetime(&t.naive_utc()).date_naive(),
            )),
            None => b.append_null(),
        },
        (Builder::Date(b), _) => b.append_null(),
    }
}

/// Builds one table's batch from records.
pub struct TableBuilder {
    schema: Arc<TableSchema>,
    consumed: Consumed,
    builders: Vec<Builder>,
    shop: StringBuilder,
    month: StringBuilder,
    extracted: TimestampMicrosecondBuilder,
    request: StringBuilder,
    extra: StringBuilder,
    rows: usize,
    warned: HashSet<String>,
}

impl TableBuilder {
    /// A builder for `schema`; `skip` are record paths consumed elsewhere (child arrays).
    pub fn new(schema: Arc<TableSchema>, skip: &[String]) -> TableBuilder {
        let mut consumed = Consumed::default();
        for c in schema.columns.iter().filter(|c| !c.from_parent) {
            consumed.add(c.path());
        }
        for s in skip.iter().chain(schema.drop.iter()) {
            consumed.add(s);
        }
        let builders = schema
            .columns
            .iter()
            .map(|c| match c.ty {
                ColumnType::String | ColumnType::Json => Builder::Str(StringBuilder::new()),
                ColumnType::Int => Builder::Int(Int64Builder::new()),
                ColumnType::Bool => Builder::Bool(BooleanBuilder::new()),
                ColumnType::Decimal => Builder::Dec(
                    Decimal128Builder::new()
                        .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
                        .expect("38, 6 is a valid decimal"),
                ),
                ColumnType::Timestamp | ColumnType::TimestampMs => {
                    Builder::Ts(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
                }
                ColumnType::LocalTimestamp => Builder::Ts(TimestampMicrosecondBuilder::new()),
                ColumnType::LocalDate => Builder::Date(Date32Builder::new()),
            })
            .collect();
        TableBuilder {
            schema,
            consumed,
            builders,
            shop: StringBuilder::new(),
            month: StringBuilder::new(),
            extracted: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            request: StringBuilder::new(),
            extra: StringBuilder::new(),
            rows: 0,
            warned: HashSet::new(),
        }
    }

    /// Rows so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    fn err(&self, c: &ColumnSpec, message: String) -> ConvertError {
        ConvertError {
            table: self.schema.name.clone(),
            column: c.name.clone(),
            message,
        }
    }

    /// Appends one record (`parent` for child tables). All-or-nothing per record.
    pub fn push(
        &mut self,
        record: &Value,
        parent: Option<&Value>,
        ctx: &RowContext,
        request_id: &str,
    ) -> Result<(), ConvertError> {
        // Validate and extract first so a bad record leaves no partial row.
        let (cells, part_secs) = self.cells(record, parent, ctx)?;
        for ((cell, b), c) in cells
            .into_iter()
            .zip(self.builders.iter_mut())
            .zip(self.schema.columns.iter())
        {
            append(b, cell, c.ty, ctx.tz);
        }
        self.shop.append_value(&ctx.shop_id);
        self.month.append_value(month_of(ctx.tz, part_secs));
        self.extracted.append_value(ctx.extracted_at_us);
        self.request.append_value(request_id);
        self.append_extra(record);
        self.rows += 1;
        Ok(())
    }

    /// The record's cells, one per column, and its partition time (unix seconds); an
    /// error for a value of the wrong type, a missing required one or no partition time.
    fn cells(
        &self,
        record: &Value,
        parent: Option<&Value>,
        ctx: &RowContext,
    ) -> Result<(Vec<Cell>, i64), ConvertError> {
        let mut cells = Vec::with_capacity(self.schema.columns.len());
        let mut part_secs = None;
        for c in &self.schema.columns {
            let src = if c.from_parent { parent } else { Some(record) };
            let v = match src.and_then(|s| lookup(s, c.path())) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() && c.ty != ColumnType::String => None,
                Some(v) => Some(v),
            };
            let cell = match v {
                None => Cell::Null,
                Some(v) => self.cell(c, v, ctx.tz)?,
            };
            if matches!(cell, Cell::Null) && !c.nullable {
                return Err(self.err(c, "required value is missing".into()));
            }
            if (c.name == self.schema.partition_time || c.path() == self.schema.partition_time)
                && let Cell::I(s) = cell
            {
                part_secs = Some(s);
            }
            cells.push(cell);
        }
        if self.schema.partition_time == super::schema::EXTRACTED_AT {
            part_secs = Some(ctx.extracted_at_us.div_euclid(1_000_000));
        }
        match part_secs {
            Some(s) => Ok((cells, s)),
            None => Err(ConvertError {
                table: self.schema.name.clone(),
                column: self.schema.partition_time.clone(),
                message: "partition time is missing".into(),
            }),
        }
    }

    /// The cell of column `c` for a present value `v`; local dates are in `tz`.
    fn cell(&self, c: &ColumnSpec, v: &Value, tz: Tz) -> Result<Cell, ConvertError> {
        Ok(match (v, c.ty) {
            (v, ColumnType::String) => match v {
                Value::String(s) => Cell::S(s.clone()),
                Value::Number(n) => Cell::S(n.to_string()),
                Value::Bool(b) => Cell::S(b.to_string()),
                other => Cell::S(other.to_string()),
            },
            (v, ColumnType::Json) => Cell::S(v.to_string()),
            (v, ColumnType::Int) => match as_i64(v) {
                Some(i) => Cell::I(i),
                None => return Err(self.err(c, format!("expected an integer, got {v}"))),
            },
            (v, ColumnType::Bool) => match v {
                Value::Bool(b) => Cell::B(*b),
                Value::String(s) if s == "true" || s == "false" => Cell::B(s == "true"),
                _ => return Err(self.err(c, format!("expected a boolean, got {v}"))),
            },
            (v, ColumnType::Decimal) => {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(self.err(c, format!("expected a decimal, got {v}"))),
                };
                Cell::D(parse_decimal(&text).map_err(|m| self.err(c, m))?)
            }
            // Analytics report dates: `YYYY-MM-DD`, already shop-local.
            (Value::String(d), ColumnType::LocalDate) if d.contains('-') => {
                match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                    Ok(day) => Cell::I(local_midnight(tz, day)),
                    Err(_) => {
                        return Err(self.err(c, format!("expected a date YYYY-MM-DD, got {d:?}")));
                    }
                }
            }
            (
                v,
                ColumnType::Timestamp
                | ColumnType::TimestampMs
                | ColumnType::LocalDate
                | ColumnType::LocalTimestamp,
            ) => match as_i64(v) {
                // The API sends 0 for "not set".
                Some(0) => Cell::Null,
                Some(i) => Cell::I(if c.ty == ColumnType::TimestampMs {
                    i / 1000
                } else {
                    i
                }),
                None => return Err(self.err(c, format!("expected unix seconds, got {v}"))),
            },
        })
    }

    /// `_extra`: the record's fields no column reads (null when none), each new one
    /// reported once.
    fn append_extra(&mut self, record: &Value) {
        let mut extra = Map::new();
        if let (Value::Object(obj), false) = (record, self.schema.keep_only) {
            self.consumed.unknown(obj, "", &mut extra);
        }
        if extra.is_empty() {
            self.extra.append_null();
            return;
        }
        for k in extra.keys() {
            if self.warned.insert(k.clone()) && first_sighting(&self.schema.name, k) {
                tracing::warn!(
                    table = %self.schema.name,
                    field = %k,
                    "unknown field kept in _extra"
                );
            }
        }
        self.extra.append_value(Value::Object(extra).to_string());
    }

    /// Finishes the batch (the builder can be reused).
    pub fn finish(&mut self) -> RecordBatch {
        let mut cols: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    Builder::Str(b) => Arc::new(b.finish()),
                    Builder::Int(b) => Arc::new(b.finish()),
                    Builder::Bool(b) => Arc::new(b.finish()),
                    Builder::Dec(b) => Arc::new(b.finish()),
                    Builder::Ts(b) => Arc::new(b.finish()),
                    Builder::Date(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        cols.push(Arc::new(self.shop.finish()));
        cols.push(Arc::new(self.month.finish()));
        cols.push(Arc::new(self.extracted.finish()));
        cols.push(Arc::new(self.request.finish()));
        cols.push(Arc::new(self.extra.finish()));
        self.rows = 0;
        RecordBatch::try_new(self.schema.arrow_schema(), cols).expect("builders follow the schema")
    }
}

/// Converts a stream's records into its tables: the main table plus child tables whose
/// rows are nested arrays of each record.
pub struct StreamConverter {
    main: TableBuilder,
    children: Vec<(String, TableBuilder)>,
}

impl StreamConverter {
    /// `main` is the stream's table; `children` are tables with `nested` set.
    pub fn new(main: Arc<TableSchema>, children: Vec<Arc<TableSchema>>) -> StreamConverter {
        let skip: Vec<String> = children.iter().filter_map(|c| c.nested.clone()).collect();
        StreamConverter {
            main: TableBuilder::new(main, &skip),
            children: children
                .into_iter()
                .map(|c| {
                    let nested = c.nested.clone().unwrap_or_default();
                    (nested, TableBuilder::new(c, &[]))
                })
                .collect(),
        }
    }

    /// Appends a page's records. On error nothing of the page should be kept: the caller
    /// discards the converter (the window fails).
    pub fn push_page(
        &mut self,
        records: &[Value],
        ctx: &RowContext,
        request_id: &str,
    ) -> Result<(), ConvertError> {
        for r in records {
            // A record that is not an object (seller permissions are a list of strings)
            // reads as `{"value": …}`.
            let wrapped;
            let r = if r.is_object() {
                r
            } else {
                wrapped = serde_json::json!({ "value": r });
                &wrapped
            };
            self.main.push(r, None, ctx, request_id)?;
            for (nested, b) in &mut self.children {
                if let Some(Value::Array(items)) = lookup(r, nested) {
                    for it in items {
                        b.push(it, Some(r), ctx, request_id)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Rows buffered in the main table.
    pub fn rows(&self) -> usize {
        self.main.rows()
    }

    /// Finished batches by table name (main first).
    pub fn finish(&mut self) -> BTreeMap<String, RecordBatch> {
        let mut out = BTreeMap::new();
        out.insert(self.main.schema.name.clone(), self.main.finish());
        for (_, b) in &mut self.children {
            out.insert(b.schema.name.clone(), b.finish());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("12.34"), Ok(12_340_000));
        assert_eq!(parse_decimal("-0.5"), Ok(-500_000));
        assert_eq!(parse_decimal("15000"), Ok(15_000_000_000));
        assert_eq!(parse_decimal("1.1234560"), Ok(1_123_456));
        assert!(parse_decimal("1.1234567").is_err());
        assert!(parse_decimal("abc").is_err());
        assert!(parse_decimal("").is_err());
        assert!(parse_decimal(".").is_err());
    }

    fn schema() -> Arc<TableSchema> {
        let text = r#"
doc = "t"
primary_key = ["id"]
partition_time = "create_time"
columns = [
  { name = "id", type = "string", nullable = false, doc = "id" },
  { name = "create_time", type = "timestamp", nullable = false, doc = "c" },
  { name = "create_date", type = "local_date", path = "create_time", doc = "d" },
  { name = "total", type = "decimal", path = "payment.total", doc = "t" },
]"#;
        Arc::new(TableSchema::from_toml("t", text, std::path::Path::new("t.toml")).unwrap())
    }

    #[test]
    fn unknown_fields_land_in_extra_and_required_fields_fail() {
        let ctx = RowContext {
            shop_id: "s1".into(),
            tz: chrono_tz::Asia::Jakarta,
            extracted_at_us: 0,
        };
        let mut b = TableBuilder::new(schema(), &[]);
        // 2026-10-31T20:00Z is Nov 1 03:00 in Jakarta.
        let rec = serde_json::json!({"id": 7, "create_time": 1793476800,
            "payment": {"total": "1.50", "fee": "0.1"}, "new": [1]});
        b.push(&rec, None, &ctx, "r").unwrap();
        let bad = serde_json::json!({"create_time": 1});
        let e = b.push(&bad, None, &ctx, "r").unwrap_err();
        assert_eq!(e.column, "id");
        let batch = b.finish();
        assert_eq!(batch.num_rows(), 1);
        let text = |name: &str| {
            let c = arrow::compute::cast(
                batch.column_by_name(name).unwrap(),
                &arrow::datatypes::DataType::Utf8,
            )
            .unwrap();
            c.as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap()
                .value(0)
                .to_string()
        };
        let extra = text("_extra");
        let extra: Value = serde_json::from_str(&extra).unwrap();
        assert_eq!(extra, serde_json::json!({"payment.fee": "0.1", "new": [1]}));
        assert_eq!(text("_month"), "2026-11");
        assert_eq!(text("create_date"), "2026-11-01");
    }
}
