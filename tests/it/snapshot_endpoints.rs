//! Snapshot endpoints of the Seller, Event, Logistics, Customer Engagement and Finance
//! categories: after a demo
//! backfill every snapshot table holds, per shop, exactly the rows the sandbox lists
//! (seller-scoped calls carry no shop_cipher — the sandbox refuses one); seller
//! permissions, which the API sends as bare strings, land one row each; the shop ids the
//! seller endpoints report are the shops the orders belong to.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_snapshot_table_holds_what_the_sandbox_lists() {
    let dir = tempfile::tempdir().unwrap();
    let (app, sb) = demo(dir.path(), 1_000, 11).await;
    let truth = truth(&sb).await;
    // Message templates need a locale (the pipeline sends en-US).
    let cipher = truth["shops"][0]["shop_cipher"].as_str().unwrap();
    let e = app
        .client()
        .unwrap()
        .send(
            &shoplake::api::ApiRequest::get("/customer_engagement/202412/message_templates")
                .shop(cipher),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("36009004") && e.contains("locale is required"),
        "{e}"
    );
    sb.stop().await;

    let tables: Vec<String> = truth["shops"][0]["snapshots"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(tables.len() >= 11, "{tables:?}");
    for table in &tables {
        let want = truth_per_shop(&truth, &format!("snapshots.{table}"))
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect::<std::collections::BTreeMap<_, _>>();
        let got = key_counts(
            &app.query(&format!(
                "select _shop_id, count(*) from raw.{table} group by _shop_id"
            ))
            .await
            .unwrap(),
        );
        assert_eq!(got, want, "raw.{table} rows per shop");
    }
    let perms = app
        .query("select distinct permission from raw.seller_permissions order by 1")
        .await
        .unwrap();
    assert_eq!(rows(&perms), 7);
    let n = scalar_i64(
        &app.query(
            "select count(*) from (select distinct _shop_id from raw.orders) o \
             left join raw.authorized_shops a on a.id = o._shop_id and a._shop_id = o._shop_id \
             left join raw.active_shops s on s.id = o._shop_id and s._shop_id = o._shop_id \
             where a.id is null or s.id is null",
        )
        .await
        .unwrap(),
    );
    assert_eq!(n, 0, "every shop with orders is authorized and active");
}
