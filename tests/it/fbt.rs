//! FBT: the seller's stock in TikTok's warehouses (the US shop is onboarded, the other is
//! not and lands nothing but its MCF status). Every table holds the sandbox's truth per
//! shop, and the stock adds up: movements sum to what is on hand, every outbound
//! movement is a unit of a real order collected at that moment, every inbound order's
//! goods are the units its movements received, and FBT goods are real SKUs.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fbt_stock_adds_up_from_movements_and_orders() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(small(2, 3_000)).await;
    let truth = truth(&sb).await;
    let app = app_for(&sb, &dir.path().join("data"), None).await;
    backfill_history(&app, &truth, &["fbt", "orders", "products"]).await;
    assert_tables_match_truth(
        &app,
        &truth,
        &[
            "fbt_warehouses",
            "fbt_onboarded_regions",
            "fbt_mcf_status",
            "fbt_goods",
            "fbt_inventory",
            "fbt_mcf_inventory",
            "fbt_inventory_records",
            "fbt_inbound_orders",
        ],
        &[],
    )
    .await;
    assert!(
        query_i64(
            &app,
            "select count(*) from raw.fbt_inventory_records where type = 'OUTBOUND'"
        )
        .await
            > 50
    );
    let zero = [
        (
            "movements sum to what is on hand, never below zero",
            "select count(*) from raw.fbt_inventory i full join (select _shop_id, goods_id, sum(quantity_change) as q from raw.fbt_inventory_records group by 1, 2) r on r._shop_id = i._shop_id and r.goods_id = i.goods_id where coalesce(r.q, 0) <> i.on_hand_quantity or i.on_hand_quantity < 0 or i.goods_id is null",
        ),
        (
            "MCF inventory = what is on hand",
            "select count(*) from raw.fbt_mcf_inventory m full join raw.fbt_inventory i on i._shop_id = m._shop_id and i.goods_id = m.goods_id where m.available_quantity is distinct from i.on_hand_quantity",
        ),
        (
            "an outbound movement is units of a real order, collected then",
            "select count(*) from raw.fbt_inventory_records r left join raw.orders o on o._shop_id = r._shop_id and o.id = r.order_id left join (select _shop_id, order_id, sku_id, count(*) as units from raw.order_line_items group by 1, 2, 3) l on l._shop_id = r._shop_id and l.order_id = r.order_id and 'G' || l.sku_id = r.goods_id where r.type = 'OUTBOUND' and (o.id is null or o.collection_time <> r.create_time or l.units is null or -r.quantity_change <> l.units)",
        ),
        (
            "every FBT good's unit sold and collected left FBT stock",
            "select count(*) from raw.order_line_items l join raw.orders o on o._shop_id = l._shop_id and o.id = l.order_id join raw.fbt_goods g on g._shop_id = l._shop_id and g.goods_id = 'G' || l.sku_id left join raw.fbt_inventory_records r on r._shop_id = l._shop_id and r.order_id = l.order_id and r.goods_id = g.goods_id where o.collection_time is not null and r.id is null",
        ),
        (
            "FBT goods are real SKUs",
            "select count(*) from raw.fbt_goods g left join raw.product_skus s on s._shop_id = g._shop_id and 'G' || s.id = g.goods_id where s.id is null",
        ),
        (
            "every inbound movement's order is landed and received",
            "select count(*) from raw.fbt_inventory_records r left join raw.fbt_inbound_orders b on b._shop_id = r._shop_id and b.id = r.inbound_order_id where r.type = 'INBOUND' and (b.id is null or b.status <> 'RECEIVED' or b.receive_time <> r.create_time)",
        ),
    ];
    assert_none_break(&app, &zero).await;
    sb.stop().await;
}
