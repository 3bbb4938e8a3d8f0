//! The Excel writer: typed cells, streamed to disk.
//!
//! Every sheet is a constant-memory worksheet (rows go to a temporary file as they are
//! written; memory holds one row per sheet), so a large export costs disk, not RAM. Cells
//! keep their types: dates are dates (`yyyy-mm-dd`), timestamps UTC date-times, integers
//! and floats numbers, booleans booleans, ids and other text strings (an id never becomes
//! a number that Excel rounds). A DECIMAL in a row that has a `currency` column is money:
//! a number in that currency's format (`[$IDR] #,##0.00`), so one column can hold several
//! currencies, each labelled; decimals named like a ratio (`rate`, `share`, `pct`,
//! `ratio`, `percent`) and decimals without a currency are plain numbers. With
//! `sheet_per_shop`, rows go to one sheet per `shop_id`; a sheet that reaches Excel's
//! 1,048,576 rows continues on the next (`name (2)`), header repeated.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use rust_xlsxwriter::{Format, Workbook, Worksheet};

use super::{Result, Sink};

/// Rows per sheet, the header included (Excel's limit).
pub const MAX_ROWS: u32 = 1_048_576;
/// Days from Excel's epoch (1899-12-30) to 1970-01-01.
const EXCEL_UNIX_DAYS: f64 = 25_569.0;

struct Sheet {
    ws: Worksheet,
    next_row: u32,
}

/// One workbook being written.
pub struct XlsxSink {
    path: PathBuf,
    workbook: Workbook,
    schema: SchemaRef,
    title: String,
    shop_col: Option<usize>,
    currency_col: Option<usize>,
    /// Sheets in the order they were opened, with their names.
    sheets: Vec<(String, Sheet)>,
    /// Sheet key (shop id or title) → (index of its current sheet, parts so far).
    current: HashMap<String, (usize, u32)>,
    header: Format,
    date: Format,
    datetime: Format,
    money: HashMap<(String, u32), Format>,
    plain: HashMap<u32, Format>,
}

/// A column cast to the few types cells are written from.
enum Col {
    Str(StringArray),
    Int(Int64Array),
    Float(Float64Array),
    Decimal {
        a: Decimal128Array,
        scale: i8,
        money: bool,
    },
    Date(Date32Array),
    Time(TimestampMicrosecondArray),
    Bool(BooleanArray),
    Other(ArrayRef),
}

fn stringy(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// A decimal named as a ratio (a word of its name is rate, share, pct, ratio or percent).
fn ratio_like(name: &str) -> bool {
    name.to_ascii_lowercase()
        .split('_')
        .any(|w| ["rate", "share", "pct", "ratio", "percent"].contains(&w))
}

impl XlsxSink {
    /// A workbook at `path`; `title` names the sheet when rows are not split per shop.
    pub fn new(path: &Path, title: &str, schema: SchemaRef, per_shop: bool) -> Result<Self> {
        let shop_col = if per_shop {
            schema.index_of("shop_id").ok()
        } else {
            None
        };
        let currency_col = schema
            .index_of("currency")
            .ok()
            .filter(|i| stringy(schema.field(*i).data_type()));
        Ok(XlsxSink {
            path: path.to_path_buf(),
            workbook: Workbook::new(),
            currency_col,
            shop_col,
            schema,
            title: title.to_string(),
            sheets: Vec::new(),
            current: HashMap::new(),
            header: Format::new().set_bold(),
            date: Format::new().set_num_format("yyyy-mm-dd"),
            datetime: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            money: HashMap::new(),
            plain: HashMap::new(),
        })
    }

    /// The sheet row `key` goes to, opening (or continuing) one as needed.
    fn sheet_for(&mut self, key: &str) -> Result<usize> {
        if let Some(&(i, part)) = self.current.get(key) {
            if self.sheets[i].1.next_row < MAX_ROWS {
                return Ok(i);
            }
            return self.open(key, part + 1);
        }
        self.open(key, 1)
    }

    fn open(&mut self, key: &str, part: u32) -> Result<usize> {
        let mut ws = self.workbook.new_worksheet_with_constant_memory()?;
        let base: String = key
            .chars()
            .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
            .collect();
        let name = if part == 1 {
            base.chars().take(31).collect()
        } else {
            let suffix = format!(" ({part})");
            let keep = 31 - suffix.chars().count();
            format!("{}{suffix}", base.chars().take(keep).collect::<String>())
        };
        ws.set_name(&name)?;
        for (c, f) in self.schema.fields().iter().enumerate() {
            let c = c as u16;
            ws.write_string_with_format(0, c, f.name(), &self.header)?;
            let width = match f.data_type() {
                DataType::Timestamp(..) => 20.0,
                DataType::Date32 | DataType::Date64 => 12.0,
                _ => (f.name().len() as f64 + 2.0).clamp(10.0, 40.0),
            };
            ws.set_column_width(c, width)?;
        }
        ws.set_freeze_panes(1, 0)?;
        self.sheets.push((name, Sheet { ws, next_row: 1 }));
        let i = self.sheets.len() - 1;
        self.current.insert(key.to_string(), (i, part));
        Ok(i)
    }

    fn money_format(&mut self, currency: &str, digits: u32) -> &Format {
        self.money
            .entry((currency.to_string(), digits))
            .or_insert_with(|| {
                let code: String = currency
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect();
                Format::new().set_num_format(format!("[${code}] {}", number_pattern(digits)))
            })
    }

    fn plain_format(&mut self, digits: u32) -> &Format {
        self.plain
            .entry(digits)
            .or_insert_with(|| Format::new().set_num_format(number_pattern(digits)))
    }
}

fn number_pattern(digits: u32) -> String {
    if digits == 0 {
        "#,##0".into()
    } else {
        format!("#,##0.{}", "0".repeat(digits as usize))
    }
}

fn columns(batch: &RecordBatch) -> Result<Vec<Col>> {
    use arrow::compute::cast;
    let mut out = Vec::with_capacity(batch.num_columns());
    for (a, f) in batch.columns().iter().zip(batch.schema().fields()) {
        let t = a.data_type();
        out.push(match t {
            t if stringy(t) || matches!(t, DataType::Dictionary(..)) => {
                Col::Str(cast(a, &DataType::Utf8)?.as_string::<i32>().clone())
            }
            t if t.is_integer() => Col::Int(
                cast(a, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            ),
            t if t.is_floating() => Col::Float(
                cast(a, &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone(),
            ),
            DataType::Decimal32(_, s)
            | DataType::Decimal64(_, s)
            | DataType::Decimal128(_, s)
            | DataType::Decimal256(_, s) => {
                let s = *s;
                let d = cast(a, &DataType::Decimal128(38, s))?;
                Col::Decimal {
                    a: d.as_primitive::<arrow::datatypes::Decimal128Type>().clone(),
                    scale: s,
                    money: !ratio_like(f.name()),
                }
            }
            DataType::Date32 | DataType::Date64 => {
                Col::Date(cast(a, &DataType::Date32)?.as_primitive().clone())
            }
            DataType::Timestamp(..) => Col::Time(
                cast(a, &DataType::Timestamp(TimeUnit::Microsecond, None))?
                    .as_primitive()
                    .clone(),
            ),
            DataType::Boolean => Col::Bool(a.as_boolean().clone()),
            _ => Col::Other(a.clone()),
        });
    }
    Ok(out)
}

impl Sink for XlsxSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let cols = columns(batch)?;
        let shop = match self.shop_col {
            Some(i) => Some(arrow::compute::cast(batch.column(i), &DataType::Utf8)?),
            None => None,
        };
        let currency = match self.currency_col {
            Some(i) => Some(arrow::compute::cast(batch.column(i), &DataType::Utf8)?),
            None => None,
        };
        let opts = FormatOptions::default();
        let others: Vec<Option<ArrayFormatter>> = cols
            .iter()
            .map(|c| match c {
                Col::Other(a) => ArrayFormatter::try_new(a.as_ref(), &opts).ok(),
                _ => None,
            })
            .collect();
        for r in 0..batch.num_rows() {
            let key = match &shop {
                Some(s) => {
                    let s = s.as_string::<i32>();
                    if s.is_null(r) {
                        "(no shop)".to_string()
                    } else {
                        s.value(r).to_string()
                    }
                }
                None => self.title.clone(),
            };
            let cur = currency
                .as_ref()
                .map(|c| c.as_string::<i32>())
                .filter(|c| !c.is_null(r))
                .map(|c| c.value(r).to_string());
            let i = self.sheet_for(&key)?;
            let row = self.sheets[i].1.next_row;
            for (c, col) in cols.iter().enumerate() {
                let cn = c as u16;
                // Formats are looked up before the sheet is borrowed.
                let fmt = match col {
                    Col::Decimal { scale, money, a } if !a.is_null(r) => {
                        let digits = (*scale).clamp(0, 2) as u32;
                        match (&cur, money) {
                            (Some(code), true) => Some(self.money_format(code, digits).clone()),
                            _ => Some(self.plain_format(digits).clone()),
                        }
                    }
                    _ => None,
                };
                let ws = &mut self.sheets[i].1.ws;
                match col {
                    Col::Str(a) if !a.is_null(r) => {
                        ws.write_string(row, cn, a.value(r))?;
                    }
                    Col::Int(a) if !a.is_null(r) => {
                        ws.write_number(row, cn, a.value(r) as f64)?;
                    }
                    Col::Float(a) if !a.is_null(r) => {
                        ws.write_number(row, cn, a.value(r))?;
                    }
                    Col::Decimal { a, scale, .. } if !a.is_null(r) => {
                        let v = a.value(r) as f64 / 10f64.powi(i32::from(*scale));
                        ws.write_number_with_format(row, cn, v, fmt.as_ref().expect("set above"))?;
                    }
                    Col::Date(a) if !a.is_null(r) => {
                        let serial = f64::from(a.value(r)) + EXCEL_UNIX_DAYS;
                        ws.write_number_with_format(row, cn, serial, &self.date)?;
                    }
                    Col::Time(a) if !a.is_null(r) => {
                        let serial = a.value(r) as f64 / 86_400_000_000.0 + EXCEL_UNIX_DAYS;
                        ws.write_number_with_format(row, cn, serial, &self.datetime)?;
                    }
                    Col::Bool(a) if !a.is_null(r) => {
                        ws.write_boolean(row, cn, a.value(r))?;
                    }
                    Col::Other(a) if !a.is_null(r) => {
                        if let Some(f) = &others[c] {
                            ws.write_string(row, cn, f.value(r).to_string())?;
                        }
                    }
                    _ => {} // null: an empty cell
                }
            }
            self.sheets[i].1.next_row = row + 1;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<String>> {
        if self.sheets.is_empty() {
            let title = self.title.clone();
            self.sheet_for(&title)?;
        }
        let mut names = Vec::new();
        for (name, sheet) in std::mem::take(&mut self.sheets) {
            names.push(name);
            self.workbook.push_worksheet(sheet.ws);
        }
        self.workbook.save(&self.path)?;
        Ok(names)
    }
}
