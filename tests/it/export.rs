//! `shoplake export`: each format, read back by a real reader (arrow's CSV, JSON and
//! Parquet readers; openpyxl for xlsx), equals the query it exports, filters included;
//! xlsx cells are typed (dates as dates, money as numbers in the row's currency format, ids
//! as text) and split per shop when asked; bad input fails with a clear message and leaves
//! no file; through `shoplake serve` the server's roles decide.

use std::collections::BTreeMap;
use std::path::Path;

use crate::helpers::*;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use serde_json::Value;
use shoplake::app::App;
use shoplake::config::Config;

/// The rows of `batches` as text, sorted (export order is the scan's, not a promise).
fn sorted_text(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = batches_text(batches);
    out.sort();
    out
}

fn read_csv(path: &Path, schema: SchemaRef) -> Vec<RecordBatch> {
    let f = std::fs::File::open(path).unwrap();
    arrow::csv::ReaderBuilder::new(schema)
        .with_header(true)
        .build(f)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn read_ndjson(text: &str, schema: SchemaRef) -> Vec<RecordBatch> {
    arrow::json::ReaderBuilder::new(schema)
        .build(std::io::Cursor::new(text.as_bytes().to_vec()))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let f = std::fs::File::open(path).unwrap();
    datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A cell as openpyxl reads it: kind (string, number, datetime, bool, empty), value, number format.
type Cell = (String, Value, String);

/// Every sheet of an xlsx as openpyxl reads it: sheet → rows → cells.
fn read_xlsx(path: &Path) -> BTreeMap<String, Vec<Vec<Cell>>> {
    let py = python_venv(&["openpyxl==3.1.5"]);
    let script = r#"
import datetime, json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
out = {}
for ws in wb.worksheets:
    rows = []
    for row in ws.iter_rows():
        cells = []
        for c in row:
            v = c.value
            if isinstance(v, datetime.datetime): kind, v = "datetime", v.isoformat(sep=" ")
            elif isinstance(v, datetime.date): kind, v = "date", v.isoformat()
            elif isinstance(v, bool): kind = "bool"
            elif isinstance(v, (int, float)): kind = "number"
            elif v is None: kind = "empty"
            else: kind = "string"
            cells.append([kind, v, c.number_format])
        rows.append(cells)
    out[ws.title] = rows
print(json.dumps(out))
"#;
    let o = std::process::Command::new(&py)
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .expect("run python");
    assert!(
        o.status.success(),
        "openpyxl: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: BTreeMap<String, Vec<Vec<Value>>> = serde_json::from_slice(&o.stdout).unwrap();
    v.into_iter()
        .map(|(k, rows)| {
            let rows = rows
                .into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|c| {
                            (
                                c[0].as_str().unwrap().to_string(),
                                c[1].clone(),
                                c[2].as_str().unwrap().to_string(),
                            )
                        })
                        .collect()
                })
                .collect();
            (k, rows)
        })
        .collect()
}

fn export_ok(dir: &Path, args: &[&str]) -> String {
    let o = shoplake_in(dir, &[&["export"], args].concat())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "export {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn export_err(dir: &Path, args: &[&str]) -> String {
    let o = shoplake_in(dir, &[&["export"], args].concat())
        .output()
        .unwrap();
    assert!(!o.status.success(), "export {args:?} should fail");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One demo warehouse for both halves (it is the slow part).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_read_back_equal_typed_and_the_servers_role_decides() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    demo_warehouse(dir).await;
    std::fs::write(dir.join("shoplake.toml"), "").unwrap();
    every_format_reads_back_equal_to_its_query_and_xlsx_cells_are_typed(dir).await;
    through_a_server_the_role_decides_what_exports(dir).await;
}

async fn every_format_reads_back_equal_to_its_query_and_xlsx_cells_are_typed(dir: &Path) {
    let app = App::new(Config::default(), dir).unwrap();
    // One shop and the middle of its days: the filters must cut on both sides.
    let span = query_ok(
        &app,
        "select shop_id, cast(min(order_date) as varchar), cast(max(order_date) as varchar), count(*) from marts.gmv_daily group by 1 order by 1 limit 1",
    )
    .await;
    let t = sorted_text(&span);
    let (shop, first, last) = (t[0][0].clone(), t[0][1].clone(), t[0][2].clone());
    let from = (chrono::NaiveDate::parse_from_str(&first, "%Y-%m-%d").unwrap()
        + chrono::Duration::days(3))
    .to_string();
    let to = (chrono::NaiveDate::parse_from_str(&last, "%Y-%m-%d").unwrap()
        - chrono::Duration::days(3))
    .to_string();
    let want_sql = format!(
        "select * from marts.gmv_daily where shop_id = '{shop}' and order_date between date '{from}' and date '{to}'"
    );
    let want = query_ok(&app, &want_sql).await;
    let schema = want[0].schema();
    let want_rows = sorted_text(&want);
    assert!(
        want_rows.len() >= 5,
        "the range keeps several days: {}",
        want_rows.len()
    );
    let filters = [
        "--shop",
        shop.as_str(),
        "--from",
        from.as_str(),
        "--to",
        to.as_str(),
    ];

    // CSV, to a file and to standard output.
    let csv = dir.join("gmv.csv");
    export_ok(
        dir,
        &[
            &[
                "gmv_daily",
                "--format",
                "csv",
                "--out",
                csv.to_str().unwrap(),
            ],
            &filters[..],
        ]
        .concat(),
    );
    assert_eq!(
        sorted_text(&read_csv(&csv, schema.clone())),
        want_rows,
        "csv"
    );
    let stdout = export_ok(
        dir,
        &[&["marts.gmv_daily", "--format", "csv"], &filters[..]].concat(),
    );
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap().lines().count(),
        stdout.lines().count(),
        "csv on stdout has the file's lines"
    );

    // JSON lines and a JSON array.
    let nd = export_ok(
        dir,
        &[&["gmv_daily", "--format", "ndjson"], &filters[..]].concat(),
    );
    assert_eq!(
        sorted_text(&read_ndjson(&nd, schema.clone())),
        want_rows,
        "ndjson"
    );
    let arr = export_ok(
        dir,
        &[&["gmv_daily", "--format", "json"], &filters[..]].concat(),
    );
    // The array holds the same objects as the lines (compared as parsed JSON: a number
    // reprinted through f64 could differ in its last digit, so not through arrow again).
    let arr: Vec<Value> = serde_json::from_str(&arr).expect("a JSON array");
    let mut arr: Vec<String> = arr.iter().map(Value::to_string).collect();
    let mut lines: Vec<String> = nd
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap().to_string())
        .collect();
    arr.sort();
    lines.sort();
    assert_eq!(arr, lines, "json array = ndjson lines");

    // Parquet keeps the Arrow types.
    let pq = dir.join("gmv.parquet");
    export_ok(
        dir,
        &[
            &[
                "gmv_daily",
                "--format",
                "parquet",
                "--out",
                pq.to_str().unwrap(),
            ],
            &filters[..],
        ]
        .concat(),
    );
    let back = read_parquet(&pq);
    assert_eq!(back[0].schema().fields().len(), schema.fields().len());
    for (a, b) in back[0].schema().fields().iter().zip(schema.fields()) {
        assert_eq!(a.data_type(), b.data_type(), "parquet type of {}", b.name());
    }
    assert_eq!(sorted_text(&back), want_rows, "parquet");

    // A SELECT works as a target too, filtered the same way.
    let sel = export_ok(
        dir,
        &[
            &[
                "select shop_id, order_date, orders from marts.gmv_daily",
                "--format",
                "csv",
            ],
            &filters[..],
        ]
        .concat(),
    );
    assert_eq!(
        sel.lines().count(),
        want_rows.len() + 1,
        "a SELECT, filtered"
    );

    // xlsx: typed cells, one sheet per shop.
    let xlsx = dir.join("gmv.xlsx");
    export_ok(
        dir,
        &[
            "gmv_daily",
            "--format",
            "xlsx",
            "--sheet-per-shop",
            "--out",
            xlsx.to_str().unwrap(),
        ],
    );
    let book = read_xlsx(&xlsx);
    let per_shop = sorted_text(
        &query_ok(
            &app,
            "select shop_id, count(*), min(currency) from marts.gmv_daily group by 1",
        )
        .await,
    );
    assert_eq!(
        book.keys().cloned().collect::<Vec<_>>(),
        per_shop.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        "one sheet per shop, named by its id"
    );
    let all = query_ok(&app, "select * from marts.gmv_daily").await;
    let all_schema = all[0].schema();
    let mut want_cells: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in sorted_text(&all) {
        want_cells.insert((r[0].clone(), r[1].clone()), r);
    }
    let col = |name: &str| all_schema.index_of(name).unwrap();
    for shop_row in &per_shop {
        let (shop, n, currency) = (
            &shop_row[0],
            shop_row[1].parse::<usize>().unwrap(),
            &shop_row[2],
        );
        let sheet = &book[shop];
        assert_eq!(sheet.len(), n + 1, "{shop}: header and every row");
        let header: Vec<&str> = sheet[0].iter().map(|c| c.1.as_str().unwrap()).collect();
        let names: Vec<&str> = all_schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(header, names, "{shop}: header");
        for row in &sheet[1..] {
            let (kind, v, _) = &row[col("shop_id")];
            assert_eq!(
                (kind.as_str(), v.as_str()),
                ("string", Some(shop.as_str())),
                "ids are text"
            );
            let (kind, date, fmt) = &row[col("order_date")];
            assert_eq!(
                (kind.as_str(), fmt.as_str()),
                ("datetime", "yyyy-mm-dd"),
                "dates are dates"
            );
            let date = &date.as_str().unwrap()[..10];
            let want = &want_cells[&(shop.clone(), date.to_string())];
            let (kind, gmv, fmt) = &row[col("net_gmv")];
            assert_eq!(kind, "number", "money is a number");
            assert!(
                fmt.contains(&format!("[${currency}]")),
                "money in {currency}: {fmt}"
            );
            let exact: f64 = want[col("net_gmv")].parse().unwrap();
            let got = gmv.as_f64().unwrap();
            assert!(
                (got - exact).abs() <= exact.abs() * 1e-12 + 1e-9,
                "{shop} {date}: {got} vs {exact}"
            );
            let (kind, orders, _) = &row[col("orders")];
            assert_eq!(kind, "number");
            assert_eq!(
                orders.as_f64().unwrap().to_string(),
                want[col("orders")],
                "{shop} {date} orders"
            );
            assert_eq!(row[col("currency")].1.as_str(), Some(currency.as_str()));
        }
    }
    // The currencies differ between the demo's shops, and so do the sheets' formats.
    let currencies: std::collections::BTreeSet<_> = per_shop.iter().map(|r| r[2].clone()).collect();
    assert_eq!(
        currencies.len(),
        per_shop.len(),
        "the demo's shops sell in different currencies"
    );

    // Bad input: a clear message, and no file (not even a partial one).
    let e = export_err(dir, &["gmv_daly", "--format", "csv"]);
    assert!(
        e.contains("unknown model `gmv_daly`") && e.contains("did you mean marts.gmv_daily"),
        "{e}"
    );
    let bad = dir.join("bad.xlsx");
    let e = export_err(
        dir,
        &[
            "gmv_daily",
            "--format",
            "xlsx",
            "--from",
            &to,
            "--to",
            &from,
            "--out",
            bad.to_str().unwrap(),
        ],
    );
    assert!(
        e.contains(&format!("--from {to} is after --to {from}")),
        "{e}"
    );
    let e = export_err(
        dir,
        &["gmv_daily", "--format", "csv", "--from", "yesterday"],
    );
    assert!(e.contains("--from `yesterday` is not a date"), "{e}");
    let e = export_err(dir, &["gmv_daily", "--format", "xlsx"]);
    assert!(e.contains("--out FILE is needed"), "{e}");
    let e = export_err(
        dir,
        &[
            "select shop_id, count(*) as n from marts.gmv_daily group by 1",
            "--format",
            "csv",
            "--from",
            &from,
        ],
    );
    assert!(e.contains("need a DATE column"), "{e}");
    let e = export_err(
        dir,
        &[
            "select * from marts.gmv_daily where nope > 1",
            "--format",
            "parquet",
            "--out",
            bad.to_str().unwrap(),
        ],
    );
    assert!(e.contains("nope"), "the query's own error: {e}");
    for f in ["bad.xlsx", "bad.xlsx.partial"] {
        assert!(!dir.join(f).exists(), "{f} left behind");
    }
}

async fn through_a_server_the_role_decides_what_exports(dir: &Path) {
    let server = serve_with(dir, |c| {
        c.serve.users = vec![user("ana", "analyst", "ana-pw")];
    })
    .await;
    let url = format!("http://{}", server.addr);
    let app = App::new(Config::default(), dir).unwrap();
    let want = sorted_text(&query_ok(&app, "select * from marts.gmv_daily").await);

    let run = |args: &[&str]| {
        shoplake_in(dir, &[&["export"], args].concat())
            .env("SHOPLAKE_PASSWORD", "ana-pw")
            .output()
            .unwrap()
    };
    let out = dir.join("remote.parquet");
    let o = run(&[
        "gmv_daily",
        "--format",
        "parquet",
        "--out",
        out.to_str().unwrap(),
        "--server",
        &url,
        "--user",
        "ana",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        sorted_text(&read_parquet(&out)),
        want,
        "the analyst exports a mart"
    );

    // raw is not the analyst's: hidden from name lookup, refused as SQL.
    for (target, refusal) in [
        ("raw.orders", "unknown model `raw.orders`"),
        ("select * from raw.orders", "may not read raw.orders"),
    ] {
        let o = run(&[target, "--format", "csv", "--server", &url, "--user", "ana"]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && e.contains(refusal), "{target}: {e}");
    }
    // A wrong password is the server's refusal too.
    let o = shoplake_in(
        dir,
        &[
            "export",
            "gmv_daily",
            "--format",
            "csv",
            "--server",
            &url,
            "--user",
            "ana",
        ],
    )
    .env("SHOPLAKE_PASSWORD", "wrong")
    .output()
    .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("wrong user name or password"),
        "{e}"
    );
    server.stop().await;
}
