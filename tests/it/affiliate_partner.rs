//! Affiliate Partner: calls carry the seller's category asset for the shop's market
//! instead of a shop cipher (looked up by the extractor), campaigns fan out to products,
//! creators, content and samples through detail streams whose paths take several parent
//! fields, and every level adds up to the one above it; TAP orders are the campaign units
//! the creators report, every TAP order is a CAP order, and both point at real orders.

use crate::helpers::*;
use shoplake::api::ApiRequest;
use shoplake::api::client::Credential;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_campaigns_add_up_from_content_to_orders() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(small(2, 3_000)).await;
    let truth = truth(&sb).await;
    let app = app_for(&sb, &dir.path().join("data"), None).await;
    backfill_history(
        &app,
        &truth,
        &[
            "affiliate_partner",
            "orders",
            "affiliate_seller",
            "products",
        ],
    )
    .await;
    assert!(query_i64(&app, "select count(*) from raw.partner_tap_orders").await > 5);
    assert!(query_i64(&app, "select count(*) from raw.partner_creator_videos").await > 5);
    let zero = [
        (
            "a product's stats = Σ its creators",
            "select count(*) from raw.partner_campaign_product_stats s left join (select _shop_id, campaign_id, product_id, count(*) as creators, sum(orders_count) as orders, sum(units_sold) as units, sum(gmv) as gmv from raw.partner_campaign_creators group by 1, 2, 3) c on c._shop_id = s._shop_id and c.campaign_id = s.campaign_id and c.product_id = s.product_id where coalesce(c.creators, 0) <> s.promotion_creator_count or coalesce(c.orders, 0) <> s.orders_count or coalesce(c.units, 0) <> s.units_sold or coalesce(c.gmv, 0) <> s.gmv",
        ),
        (
            "a creator's videos and LIVEs = its counts, and their orders = its orders",
            "select count(*) from raw.partner_campaign_creators c left join (select _shop_id, campaign_id, product_id, creator_temp_id, sum(case when content_type = 'VIDEO' then 1 else 0 end) as videos, sum(case when content_type = 'LIVE_ROOM' then 1 else 0 end) as lives, sum(orders_count) as orders, sum(gmv) as gmv from (select * from raw.partner_creator_videos union all select * from raw.partner_creator_lives) group by 1, 2, 3, 4) x on x._shop_id = c._shop_id and x.campaign_id = c.campaign_id and x.product_id = c.product_id and x.creator_temp_id = c.creator_temp_id where coalesce(x.videos, 0) <> c.video_count or coalesce(x.lives, 0) <> c.live_count or (c.video_count + c.live_count > 0 and (x.orders <> c.orders_count or x.gmv <> c.gmv))",
        ),
        (
            "every promoting creator has a sample",
            "select count(*) from raw.partner_campaign_creators c left join raw.partner_sample_status s on s._shop_id = c._shop_id and s.campaign_id = c.campaign_id and s.product_id = c.product_id and s.creator_temp_id = c.creator_temp_id where s.status is null",
        ),
        (
            "campaign units in TAP orders = Σ the products' stats",
            "select count(*) from (select _shop_id, campaign_id, sum(units_sold) as units, sum(gmv) as gmv from raw.partner_campaign_product_stats group by 1, 2) s full join (select _shop_id, campaign_id, sum(units) as units, sum(gmv) as gmv from raw.partner_tap_orders where commission_status <> 'CANCELLED' group by 1, 2) t on t._shop_id = s._shop_id and t.campaign_id = s.campaign_id where coalesce(t.units, 0) <> coalesce(s.units, 0) or coalesce(t.gmv, 0) <> coalesce(s.gmv, 0)",
        ),
        (
            "every TAP order is a CAP order of the same creator",
            "select count(*) from raw.partner_tap_orders t left join raw.partner_cap_orders c on c._shop_id = t._shop_id and c.order_id = t.order_id where c.order_id is null or c.creator_temp_id <> t.creator_temp_id",
        ),
        (
            "CAP orders are real affiliate orders of their shop",
            "select count(*) from raw.partner_cap_orders c left join raw.orders o on o._shop_id = c.shop_id and o.id = c.order_id left join raw.affiliate_orders a on a._shop_id = c.shop_id and a.id = c.order_id where o.id is null or a.id is null or a.creator_username <> c.creator_username",
        ),
        (
            "the agency earns 10% of the creator's commission",
            "select count(*) from raw.partner_cap_orders where abs(estimated_agency_commission * 10 - estimated_creator_commission) >= 0.1",
        ),
        (
            "settled fees only on completed orders",
            "select count(*) from raw.partner_tap_orders where actual_partner_commission > 0 and order_status <> 'COMPLETED'",
        ),
        (
            "a shop's campaign products are its own products",
            "select count(*) from raw.partner_campaign_products p left join raw.products x on x._shop_id = p.shop_id and x.id = p.product_id where x.id is null",
        ),
    ];
    assert_none_break(&app, &zero).await;

    // The gate: a partner call takes category_asset_cipher, never shop_cipher.
    let client = app.client().unwrap();
    let cipher = truth["shops"][0]["shop_cipher"]
        .as_str()
        .unwrap()
        .to_string();
    let path = "/affiliate_partner/202405/campaigns";
    let with = |c: Credential| ApiRequest::get(path).query("page_size", "10").credential(c);
    let e = client
        .send(&with(Credential::Shop(cipher.clone())))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("36009004") && e.contains("shop_cipher"), "{e}");
    let e = client
        .send(&with(Credential::Partner {
            shop: cipher.clone(),
            asset: "CA_nowhere".into(),
        }))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("101000"), "{e}");
    // With the seller's asset for the shop's market, the same call answers.
    let assets = client
        .send(
            &ApiRequest::get("/authorization/202405/category_assets")
                .credential(Credential::Seller(cipher.clone())),
        )
        .await
        .unwrap();
    let region = truth["shops"][0]["region"].as_str().unwrap();
    let asset = assets.data["category_assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["target_market"] == region)
        .expect("an asset for the shop's market")["cipher"]
        .as_str()
        .unwrap()
        .to_string();
    let ok = client
        .send(&with(Credential::Partner {
            shop: cipher.clone(),
            asset,
        }))
        .await
        .unwrap();
    assert_eq!(
        ok.data["campaigns"].as_array().unwrap().len() as i64,
        truth["shops"][0]["tables"]["partner_campaigns"]
            .as_i64()
            .unwrap()
            .min(10)
    );
    sb.stop().await;
}
