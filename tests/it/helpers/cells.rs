//! Query results as text cells, parsed into typed keys and values, and the sandbox's truth
//! (JSON) parsed the same way: the shape of most truth checks (query → rows → map →
//! compare with the truth's map).
//!
//! A cell type says how a value parses: integers and floats as numbers, `i128` as money in
//! millionths ([`micros`]), `NaiveDate` as `YYYY-MM-DD`, `String` as the text itself ("" for
//! NULL). A row type is one cell type or a tuple of them, read from consecutive columns.

use std::collections::BTreeMap;

use arrow::array::{Array, RecordBatch};
use chrono::NaiveDate;
use serde_json::Value;
use shoplake::app::App;

/// Rows of a query, every value as text ("" for NULL); a failing query names itself.
pub async fn text_rows(app: &App, sql: &str) -> Vec<Vec<String>> {
    batches_text(&super::query_ok(app, sql).await)
}

/// Rows of `batches`, every value as text ("" for NULL).
pub fn batches_text(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        let cols: Vec<_> = b
            .columns()
            .iter()
            .map(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                cols.iter()
                    .map(|c| {
                        let a = arrow::array::cast::as_string_array(c);
                        if a.is_null(r) {
                            String::new()
                        } else {
                            a.value(r).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

/// A decimal string in millionths ("12.5" → 12_500_000), for exact money comparisons.
pub fn micros(s: &str) -> i128 {
    let s = s.trim();
    let neg = s.starts_with('-');
    let (int, frac) = s
        .trim_start_matches('-')
        .split_once('.')
        .unwrap_or((s.trim_start_matches('-'), ""));
    let frac = format!("{:0<6}", &frac[..frac.len().min(6)]);
    let v = int.parse::<i128>().unwrap() * 1_000_000 + frac.parse::<i128>().unwrap();
    if neg { -v } else { v }
}

/// A `YYYY-MM-DD` date.
pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Whether two floats agree to a millionth (relative, or absolute below 1).
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

/// A value read from a query's text cell or from a JSON value of the truth.
pub trait FromCell: Sized {
    fn cell(s: &str) -> Self;
    fn json(v: &Value) -> Self;
}

/// One or more cells read from consecutive columns (or named JSON fields).
pub trait FromRow: Sized {
    /// How many columns it reads.
    const WIDTH: usize;
    fn row(cells: &[String]) -> Self;
    fn json(v: &Value, fields: &[&str]) -> Self;
}

fn parsed_cell<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} is not a {}: {e}", std::any::type_name::<T>()))
}

/// Numbers: a cell parses, a JSON value must be one (in range).
macro_rules! number_cells {
    ($($t:ty => |$v:ident| $json:expr),+ $(,)?) => {$(
        impl FromCell for $t {
            fn cell(s: &str) -> Self {
                parsed_cell(s)
            }
            fn json($v: &Value) -> Self {
                $json
            }
        }
    )+};
}
number_cells!(
    u64 => |v| v.as_u64().unwrap_or_else(|| panic!("not a count: {v}")),
    i64 => |v| v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}")),
    u32 => |v| u32::try_from(<u64 as FromCell>::json(v)).unwrap_or_else(|_| panic!("too big: {v}")),
    usize => |v| usize::try_from(<u64 as FromCell>::json(v)).unwrap_or_else(|_| panic!("too big: {v}")),
    f64 => |v| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
);

/// Money: a decimal in millionths.
impl FromCell for i128 {
    fn cell(s: &str) -> Self {
        micros(s)
    }
    fn json(v: &Value) -> Self {
        micros(
            v.as_str()
                .unwrap_or_else(|| panic!("not a decimal string: {v}")),
        )
    }
}

impl FromCell for String {
    fn cell(s: &str) -> Self {
        s.to_string()
    }
    fn json(v: &Value) -> Self {
        v.as_str()
            .unwrap_or_else(|| panic!("not a string: {v}"))
            .to_string()
    }
}

impl FromCell for NaiveDate {
    fn cell(s: &str) -> Self {
        date(s)
    }
    fn json(v: &Value) -> Self {
        date(v.as_str().unwrap_or_else(|| panic!("not a date: {v}")))
    }
}

macro_rules! single_row {
    ($($t:ty),+) => {$(
        impl FromRow for $t {
            const WIDTH: usize = 1;
            fn row(cells: &[String]) -> Self {
                <$t as FromCell>::cell(&cells[0])
            }
            fn json(v: &Value, fields: &[&str]) -> Self {
                <$t as FromCell>::json(&v[fields[0]])
            }
        }
    )+};
}
single_row!(u64, u32, usize, i64, f64, i128, String, NaiveDate);

macro_rules! tuple_row {
    ($n:expr; $($t:ident $i:tt),+) => {
        impl<$($t: FromCell),+> FromRow for ($($t,)+) {
            const WIDTH: usize = $n;
            fn row(cells: &[String]) -> Self {
                ($($t::cell(&cells[$i]),)+)
            }
            fn json(v: &Value, fields: &[&str]) -> Self {
                ($(<$t as FromCell>::json(&v[fields[$i]]),)+)
            }
        }
    };
}
tuple_row!(1; A 0);
tuple_row!(2; A 0, B 1);
tuple_row!(3; A 0, B 1, C 2);
tuple_row!(4; A 0, B 1, C 2, D 3);
tuple_row!(5; A 0, B 1, C 2, D 3, E 4);
tuple_row!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_row!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_row!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_row!(9; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);

/// Every row of `sql`, parsed as `T` (a cell type or a tuple of them).
pub async fn parsed<T: FromRow>(app: &App, sql: &str) -> Vec<T> {
    text_rows(app, sql)
        .await
        .iter()
        .map(|r| T::row(r))
        .collect()
}

/// The first row of `sql` (a sum, a count), parsed as `T`.
pub async fn one<T: FromRow>(app: &App, sql: &str) -> T {
    T::row(&text_rows(app, sql).await[0])
}

/// The rows of `sql` as a map: the first `K::WIDTH` columns the key, the next the value.
pub async fn keyed<K: FromRow + Ord, V: FromRow>(app: &App, sql: &str) -> BTreeMap<K, V> {
    text_rows(app, sql)
        .await
        .iter()
        .map(|r| (K::row(&r[..K::WIDTH]), V::row(&r[K::WIDTH..])))
        .collect()
}

/// The objects of a truth list as a map: `key` → the `fields`, parsed like cells.
pub fn json_keyed<K: FromCell + Ord, V: FromRow>(
    list: &Value,
    key: &str,
    fields: &[&str],
) -> BTreeMap<K, V> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|o| (K::json(&o[key]), V::json(o, fields)))
        .collect()
}

/// Asserts that the first row of `sql`, parsed as `T`, is `want`.
pub async fn assert_one<T: FromRow + PartialEq + std::fmt::Debug>(
    app: &App,
    sql: &str,
    want: T,
    what: &str,
) {
    let got: T = one(app, sql).await;
    assert_eq!(got, want, "{what}\n{sql}");
}

/// Asserts that the rows of `sql`, keyed as in [`keyed`], are `want`.
pub async fn assert_keyed<K, V>(app: &App, sql: &str, want: &BTreeMap<K, V>, what: &str)
where
    K: FromRow + Ord + std::fmt::Debug,
    V: FromRow + PartialEq + std::fmt::Debug,
{
    let got: BTreeMap<K, V> = keyed(app, sql).await;
    assert_eq!(&got, want, "{what}\n{sql}");
}
