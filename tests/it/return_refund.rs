//! Return & Refund against the sandbox: after a backfill, raw.cancellations has one row
//! per cancelled order of the sandbox's ground truth, per shop; every cancellation points
//! at a cancelled order in raw.orders, and its refund matches that order (items in full
//! when it was paid, nothing when it was not). raw.returns / raw.return_line_items match
//! the truth's counts; every return is on a delivered order and every returned unit is a
//! line item of that order, refunded at its sale price; marts.returns_refunds adds up to
//! the truth's returned units; each return's records (its status history) end at its
//! current status.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellations_and_returns_match_the_orders() {
    let dir = tempfile::tempdir().unwrap();
    let (app, sb) = demo(dir.path(), 2_000, 7).await;
    let truth = truth(&sb).await;
    sb.stop().await;

    let got = key_counts(
        &app.query("select _shop_id, count(*) from raw.cancellations group by _shop_id")
            .await
            .unwrap(),
    );
    let want = truth_per_shop(&truth, "status_counts.CANCELLED");
    assert!(
        want.values().all(|n| *n > 0),
        "the seed has cancellations: {want:?}"
    );
    assert_eq!(
        got, want,
        "cancellations per shop vs cancelled orders in the truth"
    );

    let orphans = app
        .query(
            "select count(*) from raw.cancellations c \
             left join raw.orders o on o.id = c.order_id and o._shop_id = c._shop_id \
             where o.id is null or o.status <> 'CANCELLED' or o.cancel_time <> c.create_time",
        )
        .await
        .unwrap();
    let n = scalar_i64(&orphans);
    assert_eq!(
        n, 0,
        "every cancellation is a cancelled order, at its cancel time"
    );

    let wrong_refunds = app
        .query(
            "select count(*) from raw.cancellations c join raw.orders o \
               on o.id = c.order_id and o._shop_id = c._shop_id \
             where c.currency <> o.currency \
                or (o.paid_time is not null and c.refund_subtotal <> o.sub_total) \
                or (o.paid_time is null and c.refund_total <> 0)",
        )
        .await
        .unwrap();
    let n = scalar_i64(&wrong_refunds);
    assert_eq!(n, 0, "refunds follow the orders");
    let paid_refunds = app
        .query("select count(*) from raw.cancellations where refund_total > 0")
        .await
        .unwrap();
    let n = scalar_i64(&paid_refunds);
    assert!(n > 0, "some cancelled orders were paid and refunded");

    // Returns.
    let per_shop = |field: &str| truth_per_shop(&truth, field);
    let want = per_shop("returns");
    assert!(
        want.values().all(|n| *n > 0),
        "the seed has returns: {want:?}"
    );
    let got = key_counts(
        &app.query("select _shop_id, count(*) from raw.returns group by _shop_id")
            .await
            .unwrap(),
    );
    assert_eq!(got, want, "returns per shop");
    let got = key_counts(
        &app.query("select _shop_id, count(*) from raw.return_line_items group by _shop_id")
            .await
            .unwrap(),
    );
    assert_eq!(
        got,
        per_shop("return_line_items"),
        "returned units per shop"
    );
    let bad = app
        .query(
            "select count(*) from raw.returns r \
             left join raw.orders o on o.id = r.order_id and o._shop_id = r._shop_id \
             where o.id is null or o.delivery_time is null or r.create_time < o.delivery_time",
        )
        .await
        .unwrap();
    assert_eq!(
        scalar_i64(&bad),
        0,
        "returns are on delivered orders, after delivery"
    );
    let bad = app
        .query(
            "select count(*) from raw.return_line_items r \
             left join raw.order_line_items l \
               on l.id = r.order_line_item_id and l.order_id = r.order_id and l._shop_id = r._shop_id \
             where l.id is null or l.sku_id <> r.sku_id or l.sale_price <> r.refund_total",
        )
        .await
        .unwrap();
    assert_eq!(
        scalar_i64(&bad),
        0,
        "returned units are the order's line items at their sale price"
    );
    let bad = app
        .query(
            "select count(*) from raw.returns r join \
               (select return_id, sum(refund_total) as s from raw.return_line_items group by return_id) l \
               on l.return_id = r.return_id where l.s <> r.refund_total",
        )
        .await
        .unwrap();
    assert_eq!(
        scalar_i64(&bad),
        0,
        "a return's refund is the sum of its units"
    );

    // The mart agrees with the truth, not only with the raw tables it reads.
    let got = key_counts(
        &app.query(
            "select shop_id, cast(sum(units_returned) as bigint) from marts.returns_refunds group by shop_id",
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        got,
        per_shop("return_line_items"),
        "marts.returns_refunds units per shop"
    );

    // Return records (one call per return): the history ends at the return's current
    // status, at its update time, with one record per status reached.
    let bad = app
        .query(
            "with h as ( \
               select return_id, _shop_id, count(*) as n, max(create_time) as last_at \
               from raw.return_records group by return_id, _shop_id) \
             select count(*) from raw.returns r \
             left join h on h.return_id = r.return_id and h._shop_id = r._shop_id \
             left join raw.return_records e on e.return_id = r.return_id \
               and e._shop_id = r._shop_id and e.create_time = r.update_time \
             where h.n is null or h.last_at <> r.update_time or e.event <> r.return_status \
                or h.n <> case \
                     when r.return_type = 'REFUND_ONLY' then \
                       case r.return_status when 'RETURN_OR_REFUND_REQUEST_PENDING' then 1 else 2 end \
                     else case r.return_status \
                       when 'RETURN_OR_REFUND_REQUEST_PENDING' then 1 \
                       when 'AWAITING_BUYER_SHIP' then 2 \
                       when 'BUYER_SHIPPED_ITEM' then 3 else 4 end end",
        )
        .await
        .unwrap();
    assert_eq!(scalar_i64(&bad), 0, "return records agree with the returns");
}
