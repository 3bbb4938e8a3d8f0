//! Snapshot streams (`kind = "snapshot"`): everything a shop has now, listed whole on
//! every run. The writer replaces that shop's rows — a row gone from the API is deleted,
//! an unchanged row is not rewritten, other shops are untouched — and the Logistics
//! warehouses snapshot lands every shop's warehouses, including the one its orders name,
//! and the per-warehouse delivery options (a detail stream that stamps the warehouse id on
//! records that lack it).

use std::sync::Arc;

use crate::helpers::*;
use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use shoplake::warehouse::Lake;
use shoplake::warehouse::TableRef;
use shoplake::warehouse::delta::UpsertSpec;

pub fn batch(rows: &[(&str, &str, &str)], fetch: &str) -> RecordBatch {
    batch_in(rows, fetch, "2026-11")
}

/// [`batch`] in another `_month` partition.
pub fn batch_in(rows: &[(&str, &str, &str)], fetch: &str, month: &str) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("_shop_id", DataType::Utf8, false),
        Field::new("_month", DataType::Utf8, false),
        Field::new("_source_request_id", DataType::Utf8, true),
    ]));
    let col = |f: &dyn Fn(&(&str, &str, &str)) -> String| {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>())) as _
    };
    RecordBatch::try_new(
        schema,
        vec![
            col(&|r| r.1.to_string()),
            col(&|r| r.2.to_string()),
            col(&|r| r.0.to_string()),
            col(&|_| month.to_string()),
            col(&|_| fetch.to_string()),
        ],
    )
    .unwrap()
}

pub async fn rows(lake: &Lake) -> Vec<(String, String, String)> {
    let ctx = datafusion::prelude::SessionContext::new();
    let t = lake.open("raw", "things").await.unwrap().unwrap();
    ctx.register_table("t", t.table_provider().await.unwrap())
        .unwrap();
    let b = ctx
        .sql("select _shop_id, id, name from t order by 1, 2")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut out = Vec::new();
    for b in &b {
        let s = |i: usize| {
            arrow::compute::cast(b.column(i), &DataType::Utf8)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone()
        };
        let (a, c, d) = (s(0), s(1), s(2));
        for i in 0..b.num_rows() {
            out.push((a.value(i).into(), c.value(i).into(), d.value(i).into()));
        }
    }
    out
}

#[tokio::test]
async fn a_snapshot_replaces_one_shops_rows() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(&dir.path().display().to_string()).unwrap();
    let keys: Vec<String> = ["_shop_id", "_month", "id"].map(String::from).to_vec();
    let spec = |shop| UpsertSpec {
        keys: &keys,
        version_column: None,
        partition_by: &["_shop_id", "_month"],
        snapshot_of: Some(shop),
        ..Default::default()
    };
    let a1 = batch(
        &[("A", "1", "one"), ("A", "2", "two"), ("A", "3", "three")],
        "r1",
    );
    lake.table(TableRef::raw("things"))
        .upsert(a1)
        .options(spec("A"))
        .txn("s/A", 1)
        .await
        .unwrap();
    let b1 = batch(&[("B", "1", "uno")], "r2");
    lake.table(TableRef::raw("things"))
        .upsert(b1)
        .options(spec("B"))
        .txn("s/B", 1)
        .await
        .unwrap();

    // A again: 1 unchanged (new fetch ids only), 2 renamed, 3 gone, 4 new.
    let a2 = batch(
        &[("A", "1", "one"), ("A", "2", "TWO"), ("A", "4", "four")],
        "r3",
    );
    let m = lake
        .table(TableRef::raw("things"))
        .upsert(a2.clone())
        .options(spec("A"))
        .txn("s/A", 2)
        .await
        .unwrap();
    assert_eq!(
        (m.inserted, m.updated),
        (1, 2),
        "4 inserted; 2 rewritten, 3 deleted"
    );
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        rows(&lake).await,
        vec![
            s("A", "1", "one"),
            s("A", "2", "TWO"),
            s("A", "4", "four"),
            s("B", "1", "uno")
        ]
    );
    // The same snapshot again changes no row; only its version moves (a commit with the
    // `txn` action and no data), so the table says when it was last confirmed.
    let files = |lake: &Lake| {
        let dir = lake.local_dir().unwrap().join("raw").join("things");
        walk_parquet(&dir)
    };
    let before = files(&lake);
    let m = lake
        .table(TableRef::raw("things"))
        .upsert(a2)
        .options(spec("A"))
        .txn("s/A", 3)
        .await
        .unwrap();
    assert_eq!((m.inserted, m.updated), (0, 0));
    assert_eq!(
        lake.txn_version("raw", "things", "s/A").await.unwrap(),
        Some(3)
    );
    assert_eq!(files(&lake), before, "no data file written");
    assert_eq!(rows(&lake).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warehouses_snapshot_lands_every_shops_warehouses() {
    let dir = tempfile::tempdir().unwrap();
    let (app, sb) = demo(dir.path(), 1_000, 5).await;
    let n = |b: &[RecordBatch]| scalar_i64(b);
    let per_shop = app
        .query("select count(*) from (select _shop_id from raw.warehouses group by _shop_id having count(*) = 2)")
        .await
        .unwrap();
    assert_eq!(n(&per_shop), 2, "two warehouses per shop");
    let orphans = app
        .query(
            "select count(*) from raw.orders o left join raw.warehouses w \
             on w.id = o.warehouse_id and w._shop_id = o._shop_id where w.id is null",
        )
        .await
        .unwrap();
    assert_eq!(n(&orphans), 0, "every order's warehouse is in the snapshot");

    // The detail stream called each warehouse and stamped its id on the options.
    let options = app
        .query(
            "select count(*) from raw.delivery_options d join raw.warehouses w \
             on w.id = d.warehouse_id and w._shop_id = d._shop_id",
        )
        .await
        .unwrap();
    assert_eq!(n(&options), 8, "2 options × 2 warehouses × 2 shops");
    let prefixed = app
        .query("select count(*) from raw.delivery_options where starts_with(id, warehouse_id)")
        .await
        .unwrap();
    assert_eq!(
        n(&prefixed),
        8,
        "each option came from its own warehouse's call"
    );

    // A detail of a detail: each delivery option's carriers, stamped with the option; every
    // package ships with a carrier of its shop's standard option.
    let carriers = app
        .query(
            "select count(*) from raw.shipping_providers s join raw.delivery_options d \
             on d.id = s.delivery_option_id and d._shop_id = s._shop_id",
        )
        .await
        .unwrap();
    assert_eq!(
        n(&carriers),
        24,
        "(4 standard + 2 express) × 2 warehouses × 2 shops"
    );
    let unknown = app
        .query(
            "select count(*) from raw.packages p where not exists ( \
               select 1 from raw.shipping_providers s \
               where s.id = p.shipping_provider_id and s._shop_id = p._shop_id \
                 and s.name = p.shipping_provider_name)",
        )
        .await
        .unwrap();
    assert_eq!(
        n(&unknown),
        0,
        "every package's carrier is one the shop offers"
    );

    // A second run of the snapshot changes nothing.
    let now = shoplake_sandbox::DEFAULT_CLOCK;
    let again = backfill_ok(&app, now - 86_400, now, Some("logistics")).await;
    // Every snapshot stream of the category (warehouses, global warehouses, shipping
    // templates) once per shop; nothing changed.
    assert_eq!((again.windows, again.changed), (2 * 3, 0));
    sb.stop().await;
}

fn walk_parquet(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_parquet(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_snapshot_that_would_delete_most_of_a_shop_fails_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(&dir.path().display().to_string()).unwrap();
    let keys: Vec<String> = ["_shop_id", "_month", "id"].map(String::from).to_vec();
    let spec = |max| UpsertSpec {
        keys: &keys,
        partition_by: &["_shop_id", "_month"],
        snapshot_of: Some("A"),
        max_delete_share: Some(max),
        ..Default::default()
    };
    let four = batch(
        &[
            ("A", "1", "a"),
            ("A", "2", "b"),
            ("A", "3", "c"),
            ("A", "4", "d"),
        ],
        "r1",
    );
    lake.table(TableRef::raw("things"))
        .upsert(four)
        .options(spec(0.5))
        .txn("s/A", 1)
        .await
        .unwrap();
    // An answer listing one of four: 3 deletions of 4 rows is more than half.
    let one = batch(&[("A", "1", "a")], "r2");
    let e = lake
        .table(TableRef::raw("things"))
        .upsert(one.clone())
        .options(spec(0.5))
        .txn("s/A", 2)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("would delete 3 of its 4 rows") && e.contains("max_snapshot_delete"),
        "{e}"
    );
    assert_eq!(rows(&lake).await.len(), 4, "nothing was written");
    assert_eq!(
        lake.txn_version("raw", "things", "s/A").await.unwrap(),
        Some(1)
    );
    // Half is allowed at 0.5; anything at 1.
    let two = batch(&[("A", "1", "a"), ("A", "2", "b")], "r3");
    lake.table(TableRef::raw("things"))
        .upsert(two)
        .options(spec(0.5))
        .txn("s/A", 3)
        .await
        .unwrap();
    assert_eq!(rows(&lake).await.len(), 2);
    lake.table(TableRef::raw("things"))
        .upsert(one)
        .options(spec(1.0))
        .txn("s/A", 4)
        .await
        .unwrap();
    assert_eq!(rows(&lake).await.len(), 1);
    // A new month moves a snapshot's rows to the new partition: that deletes no key.
    let two = batch(&[("A", "1", "a"), ("A", "2", "b")], "r4");
    lake.table(TableRef::raw("things"))
        .upsert(two)
        .options(spec(1.0))
        .txn("s/A", 5)
        .await
        .unwrap();
    let moved = batch_in(&[("A", "1", "a"), ("A", "2", "b")], "r5", "2026-12");
    lake.table(TableRef::raw("things"))
        .upsert(moved)
        .options(spec(0.5))
        .txn("s/A", 6)
        .await
        .unwrap();
    assert_eq!(rows(&lake).await.len(), 2);
}
