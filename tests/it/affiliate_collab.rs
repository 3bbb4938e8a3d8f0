//! Affiliate Seller collaboration tools: open-collaboration products, settings and sample
//! rules, target collaborations and their detail, sample applications and the videos
//! creators posted for them, creator content per product, conversations with creators,
//! their messages and the newest unread ones, and the marketplace filters. Every table
//! holds the sandbox's truth per shop, and they agree with each other and with the
//! creators and products the shop has.

use crate::helpers::*;
use shoplake::api::ApiRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collaborations_samples_and_conversations_agree() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(small(2, 2_000)).await;
    let truth = truth(&sb).await;
    let app = app_for(&sb, &dir.path().join("data"), None).await;
    backfill_history(&app, &truth, &["affiliate_seller", "products"]).await;
    assert_tables_match_truth(
        &app,
        &truth,
        &[
            "open_collaboration_products",
            "open_collaboration_settings",
            "open_collaboration_sample_rules",
            "target_collaborations",
            "target_collaboration_details",
            "sample_applications",
            "sample_application_fulfillments",
            "creator_content_details",
            "affiliate_conversations",
            "affiliate_messages",
            "affiliate_unread_messages",
            "marketplace_filters",
        ],
        &[],
    )
    .await;
    let zero = [
        (
            "applications come from the shop's creators for its products",
            "select count(*) from raw.sample_applications a left join raw.affiliate_creators c on c._shop_id = a._shop_id and c.user_id = a.creator_user_id left join raw.products p on p._shop_id = a._shop_id and p.id = a.product_id where c.user_id is null or p.id is null",
        ),
        (
            "exactly the applications with content posted have a video",
            "select count(*) from raw.sample_applications a full join raw.sample_application_fulfillments f on f._shop_id = a._shop_id and f.application_id = a.id where (a.status = 'CONTENT_POSTED') <> (f.content_id is not null)",
        ),
        (
            "a product's creator content = the videos posted for its samples",
            "select count(*) from raw.creator_content_details d full join (select f._shop_id, a.product_id, f.content_id from raw.sample_application_fulfillments f join raw.sample_applications a on a._shop_id = f._shop_id and a.id = f.application_id) v on v._shop_id = d._shop_id and v.content_id = d.content_id and v.product_id = d.product_id where v.content_id is null or d.content_id is null",
        ),
        (
            "messages add up to each conversation",
            "select count(*) from raw.affiliate_conversations c left join (select _shop_id, conversation_id, count(*) as n, max(create_time) as last from raw.affiliate_messages group by 1, 2) m on m._shop_id = c._shop_id and m.conversation_id = c.id where (m.n is distinct from c.message_count) or m.last <> c.latest_message_time",
        ),
        (
            "unread = the conversations whose last message is the creator's",
            "select count(*) from raw.affiliate_conversations c full join raw.affiliate_unread_messages u on u._shop_id = c._shop_id and u.conversation_id = c.id where (c.unread_count > 0) <> (u.message_id is not null)",
        ),
        (
            "the sample rule matches the product's free-sample flag",
            "select count(*) from raw.open_collaboration_products p full join raw.open_collaboration_sample_rules r on r._shop_id = p._shop_id and r.product_id = p.product_id where r.is_sample_offered is distinct from p.has_free_sample",
        ),
        (
            "target plans are for the shop's creators",
            "select count(*) from raw.target_collaborations t left join raw.affiliate_creators c on c._shop_id = t._shop_id and t.creator_user_ids like '%' || c.user_id || '%' where c.user_id is null",
        ),
    ];
    assert_none_break(&app, &zero).await;
    // Target collaboration search only takes page sizes 20, 50 and 100.
    let client = app.client().unwrap();
    let cipher = truth["shops"][0]["shop_cipher"].as_str().unwrap();
    let search = ApiRequest::post(
        "/affiliate_seller/202508/target_collaborations/search",
        &serde_json::json!({}),
    )
    .query("page_size", "30")
    .shop(cipher);
    let e = api_error(&client, &search).await;
    assert!(e.contains("20, 50 or 100"), "{e}");
    sb.stop().await;
}
