//! TikTok Shipping against the sandbox: after a backfill, raw.packages has one row per
//! order the truth says was packed, per shop; each package is the one its order's line
//! items name, with the same carrier, tracking number and status, created when the
//! order was marked ready to ship; marts.fulfillment_sla counts the truth's packages.

mod helpers;

use arrow::array::{Array, Int64Array, StringArray};
use helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_match_the_orders_that_ship_them() {
    let dir = tempfile::tempdir().unwrap();
    let spec = shoplake::demo::DemoSpec {
        shops: 2,
        orders: 2_000,
        days: 30,
        seed: 11,
    };
    let (app, sb, _) = shoplake::demo::run(shoplake::config::Config::default(), dir.path(), &spec)
        .await
        .unwrap();
    let truth = truth(&sb).await;
    sb.stop().await;

    let batches = app
        .query("select _shop_id, count(*) from raw.packages group by _shop_id order by 1")
        .await
        .unwrap();
    let mut got = std::collections::BTreeMap::new();
    for b in &batches {
        let k = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let k = k.as_any().downcast_ref::<StringArray>().unwrap();
        let v = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        for i in 0..b.num_rows() {
            got.insert(k.value(i).to_string(), v.value(i));
        }
    }
    let want: std::collections::BTreeMap<String, i64> = truth["shops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["shop_id"].as_str().unwrap().to_string(),
                s["packages"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(want.values().all(|n| *n > 0), "{want:?}");
    assert_eq!(got, want, "packages per shop");

    let mismatches = app
        .query(
            "select count(*) from raw.packages p \
             left join (select distinct order_id, _shop_id, package_id, package_status, \
                               shipping_provider_id, tracking_number, rts_time \
                        from raw.order_line_items) l \
               on l.order_id = p.order_id and l._shop_id = p._shop_id \
             where l.order_id is null or l.package_id <> p.id \
                or l.package_status <> p.package_status \
                or l.shipping_provider_id <> p.shipping_provider_id \
                or (l.tracking_number is distinct from p.tracking_number) \
                or l.rts_time <> p.create_time",
        )
        .await
        .unwrap();
    let n = mismatches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, 0, "packages agree with their orders' line items");

    let mart = app
        .query(
            "select shop_id, cast(sum(packages) as bigint) from marts.fulfillment_sla group by shop_id",
        )
        .await
        .unwrap();
    let mut got_mart = std::collections::BTreeMap::new();
    for b in &mart {
        let k = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let k = k.as_any().downcast_ref::<StringArray>().unwrap();
        let v = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        for i in 0..b.num_rows() {
            got_mart.insert(k.value(i).to_string(), v.value(i));
        }
    }
    assert_eq!(
        got_mart, want,
        "marts.fulfillment_sla packages per shop vs the truth"
    );
}
