//! TikTok Shipping against the sandbox: after a backfill, raw.packages has one row per
//! order the truth says was packed, per shop; each package is the one its order's line
//! items name, with the same carrier, tracking number and status, created when the
//! order was marked ready to ship; marts.fulfillment_sla counts the truth's packages.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_match_the_orders_that_ship_them() {
    let dir = tempfile::tempdir().unwrap();
    let (app, sb) = demo(dir.path(), 2_000, 11).await;
    let truth = truth(&sb).await;
    sb.stop().await;

    let got = key_counts(
        &app.query("select _shop_id, count(*) from raw.packages group by _shop_id")
            .await
            .unwrap(),
    );
    let want = truth_per_shop(&truth, "packages");
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
    let n = scalar_i64(&mismatches);
    assert_eq!(n, 0, "packages agree with their orders' line items");

    let mart = app
        .query(
            "select shop_id, cast(sum(packages) as bigint) from marts.fulfillment_sla group by shop_id",
        )
        .await
        .unwrap();
    let got_mart = key_counts(&mart);
    assert_eq!(
        got_mart, want,
        "marts.fulfillment_sla packages per shop vs the truth"
    );
}
