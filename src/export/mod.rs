//! `shoplake export`: a model or a query to a file, streamed batch by batch.
//!
//! The rows come from a [`Source`] — the lake itself (a DataFusion session, as `shoplake
//! query`) or a `shoplake serve` over Flight SQL, where the server's users, roles and
//! limits apply — and go to one [`Sink`] per format: CSV, JSON (an array or one object per
//! line), Parquet, or an Excel workbook with typed cells ([`xlsx`]). Nothing is collected:
//! each batch is written as it arrives, into `FILE.partial`, renamed to `FILE` only when
//! the last row is written, so an export that fails never leaves a file that looks whole.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use chrono::NaiveDate;
use futures::StreamExt;

mod source;
pub mod xlsx;

pub use source::{Remote, Source};

/// What can go wrong, each with what the user asked for.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A name that is no table the source shows.
    #[error("unknown model `{name}`: no table of that name in {searched}{hint}")]
    UnknownModel {
        /// As given.
        name: String,
        /// Schemas looked in.
        searched: String,
        /// ", did you mean …?" or empty.
        hint: String,
    },
    /// `--from`/`--to` that do not parse or do not make a range.
    #[error("bad range: {0}")]
    BadRange(String),
    /// A filter the result has no column for.
    #[error("{0}")]
    NoColumn(String),
    /// Arguments that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// The query failed (planning or while streaming) on the lake.
    #[error("query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// The server refused or failed the query (its roles and limits decide).
    #[error("server: {0}")]
    Flight(#[from] arrow_flight::error::FlightError),
    /// Encoding rows.
    #[error("encoding rows: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Writing Parquet.
    #[error("writing parquet: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
    /// Writing the workbook.
    #[error("writing xlsx: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    /// The output file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Result with [`ExportError`].
pub type Result<T> = std::result::Result<T, ExportError>;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated, a header row; dates ISO 8601, money exact.
    Csv,
    /// One JSON array of objects; money as exact JSON numbers.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// Parquet with the query's Arrow types.
    Parquet,
    /// An Excel workbook: dates as dates, money as numbers in its currency's format.
    Xlsx,
}

impl Format {
    /// Binary formats need `--out`.
    pub fn binary(self) -> bool {
        matches!(self, Format::Parquet | Format::Xlsx)
    }
}

/// One export.
#[derive(Debug, Clone)]
pub struct Request {
    /// A model or table (`marts.gmv_daily`, `gmv_daily`) or a SELECT.
    pub target: String,
    /// Output format.
    pub format: Format,
    /// First shop-local date kept (inclusive).
    pub from: Option<String>,
    /// Last shop-local date kept (inclusive).
    pub to: Option<String>,
    /// The date column `from`/`to` filter (default: the result's first DATE column).
    pub date_column: Option<String>,
    /// Only these shops (`shop_id`).
    pub shops: Vec<String>,
    /// xlsx: one sheet per shop.
    pub sheet_per_shop: bool,
    /// The file; `None`: standard output (text formats only).
    pub out: Option<PathBuf>,
}

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// The statement that ran.
    pub sql: String,
    /// Rows written.
    pub rows: u64,
    /// Batches streamed.
    pub batches: u64,
    /// Bytes written (the file's size; 0 on standard output).
    pub bytes: u64,
    /// xlsx sheet names, in order.
    pub sheets: Vec<String>,
}

/// Schemas a bare model name is looked up in, in order.
pub const SEARCH: [&str; 4] = ["marts", "staging", "seeds", "raw"];

/// Runs `req` against `source`: resolves the target, adds the filters, streams every batch
/// into the format's writer.
pub async fn export(source: &mut Source, req: &Request) -> Result<Summary> {
    let (from, to) = range(req)?;
    if req.format.binary() && req.out.is_none() {
        return Err(ExportError::Usage(format!(
            "--out FILE is needed for {:?} (a binary format)",
            req.format
        )));
    }
    if req.sheet_per_shop && req.format != Format::Xlsx {
        return Err(ExportError::Usage(
            "--sheet-per-shop is for --format xlsx".into(),
        ));
    }
    let (base, title) = resolve(source, &req.target).await?;
    let schema = source
        .schema(&format!("select * from ({base}) as q limit 0"))
        .await?;
    let sql = filtered(&base, &schema, req, from, to)?;
    if req.sheet_per_shop && schema.index_of("shop_id").is_err() {
        return Err(ExportError::NoColumn(
            "--sheet-per-shop needs a shop_id column in the result".into(),
        ));
    }
    let mut stream = source.stream(&sql).await?;
    let tmp = req.out.as_ref().map(|p| partial(p));
    let result = async {
        let mut sink = open_sink(req, &title, stream.schema.clone(), tmp.as_deref())?;
        let (mut rows, mut batches) = (0u64, 0u64);
        while let Some(batch) = stream.batches.next().await {
            let batch = batch?;
            rows += batch.num_rows() as u64;
            batches += 1;
            sink.write(&batch)?;
        }
        let sheets = sink.finish()?;
        Ok::<_, ExportError>((rows, batches, sheets))
    }
    .await;
    let (rows, batches, sheets) = match result {
        Ok(r) => r,
        Err(e) => {
            if let Some(t) = &tmp {
                let _ = std::fs::remove_file(t);
            }
            return Err(e);
        }
    };
    let mut bytes = 0;
    if let (Some(tmp), Some(out)) = (&tmp, &req.out) {
        std::fs::rename(tmp, out).map_err(|source| ExportError::Io {
            path: out.clone(),
            source,
        })?;
        bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    }
    Ok(Summary {
        sql,
        rows,
        batches,
        bytes,
        sheets,
    })
}

fn partial(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// `--from`/`--to` as dates, checked.
fn range(req: &Request) -> Result<(Option<NaiveDate>, Option<NaiveDate>)> {
    let parse = |flag: &str, v: &Option<String>| -> Result<Option<NaiveDate>> {
        v.as_deref()
            .map(|s| {
                NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
                    ExportError::BadRange(format!(
                        "{flag} `{s}` is not a date (YYYY-MM-DD, the shop-local date)"
                    ))
                })
            })
            .transpose()
    };
    let (from, to) = (parse("--from", &req.from)?, parse("--to", &req.to)?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ExportError::BadRange(format!(
            "--from {f} is after --to {t} (both are inclusive)"
        )));
    }
    if req.date_column.is_some() && from.is_none() && to.is_none() {
        return Err(ExportError::Usage(
            "--date-column is for --from/--to".into(),
        ));
    }
    Ok((from, to))
}

/// The statement for `target` and a title for it (a sheet name): a qualified name as that
/// table, a bare name looked up in [`SEARCH`] order, anything else as SQL.
async fn resolve(source: &mut Source, target: &str) -> Result<(String, String)> {
    let t = target.trim().trim_end_matches(';').trim();
    let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let parts: Vec<&str> = t.split('.').collect();
    // Anything that is not `name` or `schema.name` is SQL, for the engine to judge (a
    // SELECT, a WITH, a statement after a comment; a write is refused as read-only).
    if parts.len() > 2 || !parts.iter().all(|p| ident(p)) {
        return Ok((t.to_string(), "export".into()));
    }
    let tables = source.tables().await?;
    let found = match parts.as_slice() {
        [schema, name] => tables
            .iter()
            .find(|(s, n)| s == schema && n == name)
            .cloned(),
        [name] => SEARCH.iter().find_map(|schema| {
            tables
                .iter()
                .find(|(s, n)| s == schema && n == name)
                .cloned()
        }),
        _ => None,
    };
    match found {
        Some((schema, name)) => Ok((format!("select * from {schema}.{name}"), name)),
        None => {
            let name = parts.last().copied().unwrap_or_default();
            let mut close: Vec<String> = tables
                .iter()
                .filter(|(_, n)| {
                    n.contains(name) || name.contains(n.as_str()) || edits(n, name) <= 2
                })
                .map(|(s, n)| format!("{s}.{n}"))
                .collect();
            close.sort();
            close.truncate(5);
            let searched = match parts.as_slice() {
                [schema, _] => schema.to_string(),
                _ => SEARCH.join(", "),
            };
            Err(ExportError::UnknownModel {
                name: t.into(),
                searched,
                hint: if close.is_empty() {
                    String::new()
                } else {
                    format!("; did you mean {}?", close.join(", "))
                },
            })
        }
    }
}

/// Levenshtein distance (names are short).
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `base` with the shop and date filters on the columns `schema` has.
fn filtered(
    base: &str,
    schema: &SchemaRef,
    req: &Request,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<String> {
    let mut conds = Vec::new();
    if !req.shops.is_empty() {
        if schema.index_of("shop_id").is_err() {
            return Err(ExportError::NoColumn(
                "--shop needs a shop_id column in the result".into(),
            ));
        }
        let ids: Vec<String> = req
            .shops
            .iter()
            .map(|s| format!("'{}'", s.replace('\'', "''")))
            .collect();
        conds.push(format!("q.shop_id in ({})", ids.join(", ")));
    }
    if from.is_some() || to.is_some() {
        let col = match &req.date_column {
            Some(c) => {
                let f = schema.field_with_name(c).map_err(|_| {
                    ExportError::NoColumn(format!("--date-column `{c}` is not a column of the result"))
                })?;
                if !matches!(f.data_type(), DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)) {
                    return Err(ExportError::NoColumn(format!(
                        "--date-column `{c}` is {}, not a date or timestamp",
                        f.data_type()
                    )));
                }
                f.clone()
            }
            None => schema
                .fields()
                .iter()
                .find(|f| matches!(f.data_type(), DataType::Date32 | DataType::Date64))
                .map(|f| f.as_ref().clone())
                .ok_or_else(|| {
                    ExportError::NoColumn(
                        "--from/--to need a DATE column and the result has none; name a timestamp with --date-column".into(),
                    )
                })?,
        };
        let name = format!("q.\"{}\"", col.name().replace('"', "\"\""));
        let is_ts = matches!(col.data_type(), DataType::Timestamp(..));
        if let Some(f) = from {
            conds.push(if is_ts {
                format!("{name} >= timestamp '{f} 00:00:00'")
            } else {
                format!("{name} >= date '{f}'")
            });
        }
        if let Some(t) = to {
            let next = t.succ_opt().unwrap_or(t);
            conds.push(if is_ts {
                format!("{name} < timestamp '{next} 00:00:00'")
            } else {
                format!("{name} <= date '{t}'")
            });
        }
    }
    Ok(if conds.is_empty() {
        base.to_string()
    } else {
        format!("select * from ({base}) as q where {}", conds.join(" and "))
    })
}

/// A format's writer.
pub trait Sink {
    /// Writes one batch.
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;
    /// Completes the file; returns sheet names (xlsx) or nothing.
    fn finish(self: Box<Self>) -> Result<Vec<String>>;
}

fn create(path: &Path) -> Result<BufWriter<File>> {
    File::create(path)
        .map(BufWriter::new)
        .map_err(|source| ExportError::Io {
            path: path.to_path_buf(),
            source,
        })
}

type Out = Box<dyn Write + Send>;

fn output(path: Option<&Path>) -> Result<Out> {
    Ok(match path {
        Some(p) => Box::new(create(p)?),
        None => Box::new(BufWriter::new(std::io::stdout())),
    })
}

fn open_sink(
    req: &Request,
    title: &str,
    schema: SchemaRef,
    path: Option<&Path>,
) -> Result<Box<dyn Sink>> {
    Ok(match req.format {
        Format::Csv => Box::new(Csv(Some(
            arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(output(path)?),
        ))),
        Format::Json => Box::new(Json(Some(arrow::json::ArrayWriter::new(output(path)?)))),
        Format::Ndjson => Box::new(Json(Some(arrow::json::LineDelimitedWriter::new(output(
            path,
        )?)))),
        Format::Parquet => {
            let path = path.expect("checked: binary formats have --out");
            // Row groups of 64Ki rows: the writer buffers one row group, so this bounds
            // its memory (the default, 1Mi rows, held a whole mid-size export); Snappy,
            // which every Parquet reader has.
            let props = datafusion::parquet::file::properties::WriterProperties::builder()
                .set_max_row_group_row_count(Some(64 * 1024))
                .set_compression(datafusion::parquet::basic::Compression::SNAPPY)
                .build();
            Box::new(Parquet(Some(
                datafusion::parquet::arrow::ArrowWriter::try_new(
                    create(path)?,
                    schema,
                    Some(props),
                )?,
            )))
        }
        Format::Xlsx => {
            let path = path.expect("checked: binary formats have --out");
            Box::new(xlsx::XlsxSink::new(
                path,
                title,
                schema,
                req.sheet_per_shop,
            )?)
        }
    })
}

struct Csv(Option<arrow::csv::Writer<Out>>);

impl Sink for Csv {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        Ok(self.0.as_mut().expect("open until finish").write(batch)?)
    }
    fn finish(mut self: Box<Self>) -> Result<Vec<String>> {
        let mut out = self.0.take().expect("open until finish").into_inner();
        out.flush().map_err(|e| ExportError::Arrow(e.into()))?;
        Ok(Vec::new())
    }
}

struct Json<F: arrow::json::writer::JsonFormat>(Option<arrow::json::Writer<Out, F>>);

impl<F: arrow::json::writer::JsonFormat> Sink for Json<F> {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        Ok(self.0.as_mut().expect("open until finish").write(batch)?)
    }
    fn finish(mut self: Box<Self>) -> Result<Vec<String>> {
        let mut w = self.0.take().expect("open until finish");
        w.finish()?;
        let mut out = w.into_inner();
        out.flush().map_err(|e| ExportError::Arrow(e.into()))?;
        Ok(Vec::new())
    }
}

struct Parquet(Option<datafusion::parquet::arrow::ArrowWriter<BufWriter<File>>>);

impl Sink for Parquet {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        Ok(self.0.as_mut().expect("open until finish").write(batch)?)
    }
    fn finish(mut self: Box<Self>) -> Result<Vec<String>> {
        self.0.take().expect("open until finish").close()?;
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn req() -> Request {
        Request {
            target: "gmv_daily".into(),
            format: Format::Csv,
            from: None,
            to: None,
            date_column: None,
            shops: vec![],
            sheet_per_shop: false,
            out: None,
        }
    }

    #[test]
    fn ranges_are_checked_and_named() {
        let mut r = req();
        r.from = Some("2026-11-31".into());
        let e = range(&r).unwrap_err().to_string();
        assert!(e.contains("--from `2026-11-31` is not a date"), "{e}");
        r.from = Some("2026-11-02".into());
        r.to = Some("2026-11-01".into());
        let e = range(&r).unwrap_err().to_string();
        assert!(
            e.contains("--from 2026-11-02 is after --to 2026-11-01"),
            "{e}"
        );
        r.to = Some("2026-11-02".into());
        assert!(range(&r).is_ok(), "one day is a range");
    }

    #[test]
    fn filters_use_the_first_date_column_inclusively() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("shop_id", DataType::Utf8, false),
            Field::new("order_date", DataType::Date32, false),
            Field::new(
                "created_at",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
        ]));
        let mut r = req();
        r.shops = vec!["1".into(), "o'brien".into()];
        let (f, t) = (
            NaiveDate::from_ymd_opt(2026, 10, 1),
            NaiveDate::from_ymd_opt(2026, 10, 31),
        );
        let sql = filtered("select * from marts.x", &schema, &r, f, t).unwrap();
        assert_eq!(
            sql,
            "select * from (select * from marts.x) as q where q.shop_id in ('1', 'o''brien') and q.\"order_date\" >= date '2026-10-01' and q.\"order_date\" <= date '2026-10-31'"
        );
        r.date_column = Some("created_at".into());
        let sql = filtered("select 1", &schema, &r, f, t).unwrap();
        assert!(sql.ends_with("q.\"created_at\" >= timestamp '2026-10-01 00:00:00' and q.\"created_at\" < timestamp '2026-11-01 00:00:00'"), "{sql}");
        let no_dates = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        r.date_column = None;
        r.shops.clear();
        let e = filtered("select 1", &no_dates, &r, f, t)
            .unwrap_err()
            .to_string();
        assert!(e.contains("need a DATE column"), "{e}");
    }

    #[test]
    fn close_names_are_suggested() {
        assert_eq!(edits("gmv_daly", "gmv_daily"), 1);
        assert_eq!(edits("", "abc"), 3);
    }
}
