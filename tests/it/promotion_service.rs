//! Promotion and Customer Service against the sandbox, with the detail streams that are
//! off by default turned on: every conversation's messages add up to its message count,
//! the per-conversation and per-coupon endpoints repeat their lists, every activity has
//! products, the daily service performance agrees with the conversations, and the page
//! size limits the real API sets (conversations ≤ 20, messages ≤ 10) are enforced.

use crate::helpers::*;
use shoplake::api::ApiRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_and_conversations_land_whole_and_agree() {
    let dir = tempfile::tempdir().unwrap();
    // Messages and conversation details are off by default; turn them on.
    let project = copy_project(&dir.path().join("project"));
    edit_file(
        &project.join("pipelines/customer_service.toml"),
        "enabled = false\n",
        "",
        2,
    );
    let sb = start(small(2, 3_000)).await;
    let app = app_for(&sb, &dir.path().join("data"), Some(&project)).await;
    let clock = shoplake_sandbox::DEFAULT_CLOCK;
    for p in ["promotion", "customer_service", "orders"] {
        backfill_ok(&app, clock - 31 * 86_400, clock + 1, Some(p)).await;
    }
    let n = |sql: &'static str| {
        let app = &app;
        async move {
            scalar_i64(
                &app.query(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}")),
            )
        }
    };
    assert!(
        n("select count(*) from raw.cs_conversations").await > 20,
        "conversations"
    );
    assert!(
        n("select count(*) from raw.promotion_activities").await >= 2,
        "activities"
    );
    for (what, sql) in [
        (
            "messages add up to each conversation's count",
            "select count(*) from raw.cs_conversations c left join (select _shop_id, conversation_id, count(*) as n from raw.cs_messages group by 1, 2) m on m._shop_id = c._shop_id and m.conversation_id = c.id where coalesce(m.n, 0) <> c.message_count",
        ),
        (
            "conversation details repeat the list",
            "select count(*) from raw.cs_conversations c full join raw.cs_conversation_details d on d._shop_id = c._shop_id and d.id = c.id where d.id is null or c.id is null or d.status <> c.status or d.message_count <> c.message_count",
        ),
        (
            "coupon details repeat the list",
            "select count(*) from raw.coupons c full join raw.coupon_details d on d._shop_id = c._shop_id and d.id = c.id where d.id is null or c.id is null or d.threshold <> c.threshold",
        ),
        (
            "every activity has products",
            "select count(*) from raw.promotion_activities a left join raw.promotion_products p on p._shop_id = a._shop_id and p.activity_id = a.id where p.product_id is null",
        ),
        (
            "first responses: conversations agree with the performance report",
            "select count(*) from (select _shop_id, create_date, count(*) as n, count(first_response_seconds) as answered from raw.cs_conversations group by 1, 2) c join raw.cs_performance p on p._shop_id = c._shop_id and p.date = c.create_date where p.conversations <> c.n or p.answered_conversations <> c.answered",
        ),
        (
            "conversations point at real orders",
            "select count(*) from raw.cs_conversations c left join raw.orders o on o._shop_id = c._shop_id and o.id = c.order_id where o.id is null",
        ),
        (
            "the first message is the buyer's",
            "select count(*) from raw.cs_messages where \"index\" = 0 and sender_role <> 'BUYER'",
        ),
    ] {
        assert_eq!(
            scalar_i64(
                &app.query(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e}"))
            ),
            0,
            "{what}"
        );
    }

    // Page size limits, as the real API sets them.
    let client = app.client().unwrap();
    let shops = app.token_store().unwrap().shops();
    let cipher = shops[0].cipher.clone();
    for (path, size, ok) in [
        ("/customer_service/202309/conversations", "20", true),
        ("/customer_service/202309/conversations", "21", false),
    ] {
        let r = client
            .send(
                &ApiRequest::get(path)
                    .shop(cipher.clone())
                    .query("page_size", size),
            )
            .await;
        assert_eq!(r.is_ok(), ok, "{path} page_size {size}: {r:?}");
    }
}
