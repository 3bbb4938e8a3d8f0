//! The per-order and per-package reads of Orders, TikTok Shipping, Fulfillment and Return
//! & Refund, with the ones that are off by default (one call per order or package) turned
//! on: every table holds the sandbox's truth per shop, and each agrees with the lists it
//! details — price details add up to the orders' payments, package details repeat the
//! packages, tracking ends where the package was delivered, split and after-sale
//! eligibility follow the order's status and returns. Also: parameters the real API
//! requires are enforced.

use crate::helpers::*;
use shoplake::api::ApiRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_and_package_details_agree_with_their_lists() {
    let dir = tempfile::tempdir().unwrap();
    let project = copy_project(&dir.path().join("project"));
    for (file, off) in [
        ("orders", 2),
        ("tiktok_shipping", 1),
        ("fulfillment", 1),
        ("return_refund", 1),
    ] {
        edit_file(
            &project.join(format!("pipelines/{file}.toml")),
            "enabled = false\n",
            "",
            off,
        );
    }
    let sb = start(small(2, 2_000)).await;
    let truth = truth(&sb).await;
    let app = app_for(&sb, &dir.path().join("data"), Some(&project)).await;
    // `fulfillment` has no stream of its own: it selects orders and packages, whose
    // windows run its details.
    backfill_history(
        &app,
        &truth,
        &["fulfillment", "tiktok_shipping", "return_refund"],
    )
    .await;
    assert_tables_match_truth(
        &app,
        &truth,
        &[
            "order_split_attributes",
            "price_details",
            "price_detail_line_items",
            "external_orders",
            "aftersale_eligibility",
            "package_details",
            "tracking_events",
            "reject_reasons",
            "combinable_packages",
        ],
        &["combinable_packages"],
    )
    .await;

    assert_none_break(&app, DETAILS_AGREE).await;
    combinable_groups_are_one_buyers_orders(&app).await;
    let cipher = truth["shops"][0]["shop_cipher"].as_str().unwrap();
    required_parameters_are_enforced(&app, cipher).await;
    sb.stop().await;
}

/// What the details must agree on with their lists: each query counts the rows that
/// break it.
const DETAILS_AGREE: &[(&str, &str)] = &[
    (
        "price detail total = the order's total_amount",
        "select count(*) from raw.orders o full join raw.price_details p on p._shop_id = o._shop_id and p.order_id = o.id where p.order_id is null or o.id is null or p.total <> o.total_amount or p.subtotal <> o.sub_total or p.currency <> o.currency",
    ),
    (
        "price detail line items add up to the order",
        "select count(*) from raw.price_details p join (select _shop_id, order_id, sum(sku_sale_price) as sale, sum(tax) as tax, count(*) as n from raw.price_detail_line_items group by 1, 2) l on l._shop_id = p._shop_id and l.order_id = p.order_id where l.sale <> p.subtotal or l.tax <> p.tax",
    ),
    (
        "every order line item has its price",
        "select count(*) from raw.order_line_items i left join raw.price_detail_line_items l on l._shop_id = i._shop_id and l.id = i.id where l.id is null or l.sku_sale_price <> i.sale_price",
    ),
    (
        "package details repeat the packages",
        "select count(*) from raw.packages p full join raw.package_details d on d._shop_id = p._shop_id and d.package_id = p.id where d.package_id is null or p.id is null or d.package_status <> p.package_status or coalesce(d.tracking_number, '') <> coalesce(p.tracking_number, '') or d.weight <= 0",
    ),
    (
        "a delivered package's last scan is its delivery",
        "select count(*) from raw.packages p left join (select _shop_id, order_id, max(update_time) as last from raw.tracking_events group by 1, 2) t on t._shop_id = p._shop_id and t.order_id = p.order_id where p.package_status = 'DELIVERED' and (t.last is null or t.last <> p.delivery_time)",
    ),
    (
        "no scans before collection",
        "select count(*) from raw.tracking_events t join raw.packages p on p._shop_id = t._shop_id and p.order_id = t.order_id where p.collection_time is null or t.update_time < p.collection_time or t.package_id <> p.id",
    ),
    (
        "only orders awaiting shipment with several items can split",
        "select count(*) from raw.order_split_attributes s join raw.orders o on o._shop_id = s._shop_id and o.id = s.order_id join (select _shop_id, order_id, count(*) as n from raw.order_line_items group by 1, 2) i on i._shop_id = o._shop_id and i.order_id = o.id where s.can_split <> (o.status = 'AWAITING_SHIPMENT' and i.n > 1)",
    ),
    (
        "returned items are not eligible again",
        "select count(*) from raw.return_line_items r join raw.aftersale_eligibility e on e._shop_id = r._shop_id and e.order_line_item_id = r.order_line_item_id where e.is_eligible",
    ),
    (
        "cancelled orders are not eligible; unshipped ones can be cancelled",
        "select count(*) from raw.aftersale_eligibility e join raw.orders o on o._shop_id = e._shop_id and o.id = e.order_id where (o.status = 'CANCELLED' and (e.is_eligible or e.ineligible_code <> 'ORDER_CANCELLED')) or (o.status in ('UNPAID', 'AWAITING_SHIPMENT', 'AWAITING_COLLECTION') and e.eligible_request_types <> '[\"CANCEL\"]')",
    ),
    (
        "every return has reject reasons",
        "select count(*) from raw.returns r left join raw.reject_reasons x on x._shop_id = r._shop_id and x.return_id = r.return_id where x.name is null",
    ),
    (
        "external references point at real orders",
        "select count(*) from raw.external_orders e left join raw.orders o on o._shop_id = e._shop_id and o.id = e.order_id where o.id is null or e.origin_id <> e.order_id",
    ),
];

/// Combinable groups (if any) are packages awaiting collection of one buyer.
async fn combinable_groups_are_one_buyers_orders(app: &shoplake::app::App) {
    let groups = app
        .query("select _shop_id, order_ids from raw.combinable_packages")
        .await
        .unwrap();
    for b in &groups {
        let shops = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let lists = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Utf8).unwrap();
        let text = |a: &arrow::array::ArrayRef, i: usize| {
            a.as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap()
                .value(i)
                .to_string()
        };
        for i in 0..b.num_rows() {
            let ids: Vec<String> = serde_json::from_str(&text(&lists, i)).unwrap();
            let quoted: Vec<String> = ids.iter().map(|x| format!("'{x}'")).collect();
            let sql = format!(
                "select count(distinct user_id) * 1000 + count(*) * 10 + sum(case when status = 'AWAITING_COLLECTION' then 0 else 1 end) from raw.orders where _shop_id = '{}' and id in ({})",
                text(&shops, i),
                quoted.join(", ")
            );
            let got = scalar_i64(&app.query(&sql).await.unwrap());
            assert_eq!(
                got,
                1000 + 10 * ids.len() as i64,
                "a group is one buyer's orders, all awaiting collection: {ids:?}"
            );
            assert!(ids.len() >= 2);
        }
    }
}

/// The real API's required parameters.
async fn required_parameters_are_enforced(app: &shoplake::app::App, cipher: &str) {
    let client = app.client().unwrap();
    let order = scalar_id(app, "select min(id) from raw.orders").await;
    for (path, query, why) in [
        (
            format!("/order/202406/orders/{order}/external_orders"),
            vec![],
            "platform is required",
        ),
        (
            format!("/order/202406/orders/{order}/external_orders"),
            vec![("platform", "ETSYY")],
            "not supported",
        ),
        (
            "/fulfillment/202309/orders/split_attributes".to_string(),
            vec![],
            "order_ids is required",
        ),
        (
            "/return_refund/202309/reject_reasons".to_string(),
            vec![("return_or_cancel_id", "123")],
            "not found",
        ),
        (
            "/fulfillment/202309/combinable_packages/search".to_string(),
            vec![("page_size", "51")],
            "page_size",
        ),
    ] {
        let mut req = ApiRequest::get(&path).shop(cipher);
        for (k, v) in query {
            req = req.query(k, v);
        }
        let err = client.send(&req).await.expect_err(&path).to_string();
        assert!(err.contains(why), "{path}: {err}");
    }
}

async fn scalar_id(app: &shoplake::app::App, sql: &str) -> String {
    let b = app.query(sql).await.unwrap();
    let c = arrow::compute::cast(b[0].column(0), &arrow::datatypes::DataType::Utf8).unwrap();
    c.as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap()
        .value(0)
        .to_string()
}
