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

    // Cancellations per shop vs cancelled orders in the truth.
    assert_counts_per_shop(
        &app,
        &truth,
        "status_counts.CANCELLED",
        "select _shop_id, count(*) from raw.cancellations group by _shop_id",
    )
    .await;
    assert_none_break(&app, CANCELLATIONS_FOLLOW_THE_ORDERS).await;
    let n = query_i64(
        &app,
        "select count(*) from raw.cancellations where refund_total > 0",
    )
    .await;
    assert!(n > 0, "some cancelled orders were paid and refunded");

    // Returns.
    assert_counts_per_shop(
        &app,
        &truth,
        "returns",
        "select _shop_id, count(*) from raw.returns group by _shop_id",
    )
    .await;
    let got = query_key_counts(
        &app,
        "select _shop_id, count(*) from raw.return_line_items group by _shop_id",
    )
    .await;
    let returned_units = truth_per_shop(&truth, "return_line_items");
    assert_eq!(got, returned_units, "returned units per shop");
    assert_none_break(&app, RETURNS_FOLLOW_THE_ORDERS).await;

    // The mart agrees with the truth, not only with the raw tables it reads.
    let got = query_key_counts(
        &app,
        "select shop_id, cast(sum(units_returned) as bigint) from marts.returns_refunds group by shop_id",
    )
    .await;
    assert_eq!(got, returned_units, "marts.returns_refunds units per shop");
    assert_none_break(&app, RETURN_RECORDS_AGREE).await;
}

/// Each query counts the cancellations that break the rule.
const CANCELLATIONS_FOLLOW_THE_ORDERS: &[(&str, &str)] = &[
    (
        "every cancellation is a cancelled order, at its cancel time",
        "select count(*) from raw.cancellations c \
         left join raw.orders o on o.id = c.order_id and o._shop_id = c._shop_id \
         where o.id is null or o.status <> 'CANCELLED' or o.cancel_time <> c.create_time",
    ),
    (
        "refunds follow the orders",
        "select count(*) from raw.cancellations c join raw.orders o \
           on o.id = c.order_id and o._shop_id = c._shop_id \
         where c.currency <> o.currency \
            or (o.paid_time is not null and c.refund_subtotal <> o.sub_total) \
            or (o.paid_time is null and c.refund_total <> 0)",
    ),
];

/// Each query counts the returns (or returned units) that break the rule.
const RETURNS_FOLLOW_THE_ORDERS: &[(&str, &str)] = &[
    (
        "returns are on delivered orders, after delivery",
        "select count(*) from raw.returns r \
         left join raw.orders o on o.id = r.order_id and o._shop_id = r._shop_id \
         where o.id is null or o.delivery_time is null or r.create_time < o.delivery_time",
    ),
    (
        "returned units are the order's line items at their sale price",
        "select count(*) from raw.return_line_items r \
         left join raw.order_line_items l \
           on l.id = r.order_line_item_id and l.order_id = r.order_id and l._shop_id = r._shop_id \
         where l.id is null or l.sku_id <> r.sku_id or l.sale_price <> r.refund_total",
    ),
    (
        "a return's refund is the sum of its units",
        "select count(*) from raw.returns r join \
           (select return_id, sum(refund_total) as s from raw.return_line_items group by return_id) l \
           on l.return_id = r.return_id where l.s <> r.refund_total",
    ),
];

/// Return records (one call per return): the history ends at the return's current status,
/// at its update time, with one record per status reached.
const RETURN_RECORDS_AGREE: &[(&str, &str)] = &[(
    "return records agree with the returns",
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
)];
