//! Products beyond the listings: inventory, diagnoses, SEO words and suggestions per
//! product (batched, one with ids in the body), categories with their attributes, rules
//! and schemas, brands, prerequisites, size charts, opportunities, candidates and
//! combined listings per shop, and the seller-level global products, global categories
//! and compliance contacts (4 shops, the 4th cross-border so global products exist).
//! Every table holds the sandbox's truth per shop, and agrees with the other categories:
//! committed inventory = units of orders awaiting collection, authorized brands = the
//! brands the shop sells, replicated products are real products of their shop.

use crate::helpers::*;
use shoplake::api::ApiRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_tools_and_global_products_land_whole_and_agree() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(small(4, 2_000)).await;
    let truth = truth(&sb).await;
    let app = app_for(&sb, &dir.path().join("data"), None).await;
    backfill_history(&app, &truth, &["products", "orders"]).await;
    assert_tables_match_truth(
        &app,
        &truth,
        &[
            "product_inventory",
            "product_inventory_skus",
            "product_diagnoses",
            "product_seo_words",
            "product_suggestions",
            "categories",
            "category_attributes",
            "category_rules",
            "listing_schemas",
            "brands",
            "listing_prerequisites",
            "size_charts",
            "product_opportunities",
            "candidate_products",
            "combined_listing_recommendations",
            "global_products",
            "global_product_details",
            "replicated_products",
            "global_categories",
            "global_category_attributes",
            "global_category_rules",
            "global_listing_rules",
            "manufacturers",
            "responsible_persons",
        ],
        &[],
    )
    .await;
    assert_none_break(&app, LISTINGS_AGREE).await;
    assert!(
        query_i64(
            &app,
            "select count(*) from raw.product_inventory_skus where total_committed_quantity > 0"
        )
        .await
            > 0,
        "some units are committed"
    );
    let cipher = truth["shops"][0]["shop_cipher"].as_str().unwrap();
    the_api_limits_id_lists_and_global_products(&app, cipher).await;
    sb.stop().await;
}

/// How the listing tools agree with the other categories: each query counts the rows
/// that break it.
const LISTINGS_AGREE: &[(&str, &str)] = &[
    (
        "inventory = the SKUs' stock",
        "select count(*) from raw.product_skus s full join raw.product_inventory_skus i on i._shop_id = s._shop_id and i.id = s.id where i.id is null or s.id is null or i.total_available_quantity <> s.stock",
    ),
    (
        "committed units = units of paid orders awaiting collection",
        "select count(*) from (select _shop_id, sum(total_committed_quantity) as n from raw.product_inventory_skus group by 1) i full join (select o._shop_id, count(*) as n from raw.orders o join raw.order_line_items l on l._shop_id = o._shop_id and l.order_id = o.id where o.status in ('AWAITING_SHIPMENT', 'AWAITING_COLLECTION') group by 1) o on o._shop_id = i._shop_id where coalesce(i.n, 0) <> coalesce(o.n, 0)",
    ),
    (
        "a product without a brand is diagnosed POOR",
        "select count(*) from raw.product_details p join raw.product_diagnoses d on d._shop_id = p._shop_id and d.product_id = p.id where p.brand_name is null and d.listing_quality_tier <> 'POOR'",
    ),
    (
        "the brands the shop sells are authorized",
        "select count(*) from (select distinct _shop_id, brand_name from raw.product_details where brand_name is not null) p left join raw.brands b on b._shop_id = p._shop_id and b.name = p.brand_name where b.authorized_status is distinct from 'AUTHORIZED'",
    ),
    (
        "every category has its rules and schema",
        "select count(*) from raw.categories c left join raw.category_rules r on r._shop_id = c._shop_id and r.category_id = c.id left join raw.listing_schemas s on s._shop_id = c._shop_id and s.category_id = c.id where r.category_id is null or s.category_id is null",
    ),
    (
        "replicated products are real products of their shop",
        "select count(*) from raw.replicated_products r left join raw.products p on p._shop_id = r.shop_id and p.id = r.product_id where p.id is null",
    ),
    (
        "candidates are real products of another shop",
        "select count(*) from raw.candidate_products c left join raw.products p on p._shop_id = c.source_shop_id and p.id = c.source_product_id where p.id is null or c.source_shop_id = c._shop_id",
    ),
    (
        "listing prerequisites pass",
        "select count(*) from raw.listing_prerequisites where is_failed",
    ),
];

/// Limits the real API sets on id lists; global products are seller level.
async fn the_api_limits_id_lists_and_global_products(app: &shoplake::app::App, cipher: &str) {
    // Limits the real API sets on id lists.
    let client = app.client().unwrap();
    let many = vec!["1"; 21].join(",");
    for (req, why) in [
        (
            ApiRequest::get("/product/202405/products/seo_words")
                .query("product_ids", many.clone()),
            "at most 20",
        ),
        (
            ApiRequest::get("/product/202405/products/diagnoses"),
            "product_ids is required",
        ),
        (
            ApiRequest::post("/product/202309/inventory/search", &serde_json::json!({})),
            "product_ids or sku_ids",
        ),
    ] {
        let e = api_error(&client, &req.shop(cipher)).await;
        assert!(e.contains(why), "{e}");
    }
    // Global products are seller level: a shop_cipher is refused.
    let global = ApiRequest::post(
        "/product/202312/global_products/search",
        &serde_json::json!({}),
    )
    .query("page_size", "10")
    .shop(cipher);
    let e = api_error(&client, &global).await;
    assert!(e.contains("shop_cipher"), "{e}");
}
