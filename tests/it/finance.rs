//! Finance against the sandbox: after a demo backfill every finance table holds the
//! sandbox's ground truth per shop, and the money adds up across categories — each
//! settled order's revenue is its order's items after seller discounts (sub_total +
//! platform_discount from raw.orders), a statement is the sum of its transactions, a
//! payout pays its statement, no order is both settled and unsettled, and settled orders
//! are completed ones. Statements and payouts re-read 2 days, so a payout's status change
//! lands. The required `sort_field` / `types` parameters are enforced.

use crate::helpers::*;
use shoplake::api::ApiRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_tables_match_the_truth_and_settle_real_orders() {
    let dir = tempfile::tempdir().unwrap();
    let (app, sb) = demo(dir.path(), 2_000, 7).await;
    let truth = truth(&sb).await;

    for table in [
        "statements",
        "statement_transactions",
        "payments",
        "withdrawals",
        "unsettled_transactions",
    ] {
        let sql = format!("select _shop_id, count(*) from raw.{table} group by _shop_id");
        assert_counts_per_shop(&app, &truth, &format!("finance.{table}"), &sql).await;
    }
    let n = query_i64(&app, "select count(*) from raw.tax_information").await;
    assert_eq!(n, 2, "one tax registration per shop");

    // Settled orders: revenue = the order's items after seller discounts.
    assert_none_break(&app, &SETTLEMENTS_ADD_UP[..1]).await;
    let settled_gmv = app
        .query(
            "select t._shop_id, sum(t.revenue_amount) = sum(o.sub_total + o.platform_discount) as ok, \
                    count(*) as n \
             from raw.statement_transactions t join raw.orders o \
               on o.id = t.order_id and o._shop_id = t._shop_id \
             group by t._shop_id",
        )
        .await
        .unwrap();
    assert_eq!(rows(&settled_gmv), 2);
    assert_none_break(&app, &SETTLEMENTS_ADD_UP[1..]).await;
    settlements_per_shop_equal_the_truth(&app, &truth).await;
    processing_statements_are_paid_a_day_later(&app, &sb, &truth).await;

    // The API's required parameters.
    let client = app.client().unwrap();
    let cipher = truth["shops"][0]["shop_cipher"].as_str().unwrap();
    for (path, why) in [
        ("/finance/202309/statements", "sort_field is required"),
        ("/finance/202309/payments", "sort_field is required"),
        ("/finance/202309/withdrawals", "types is required"),
    ] {
        let e = api_error(&client, &ApiRequest::get(path).shop(cipher)).await;
        assert!(e.contains(why), "{path}: {e}");
    }
    sb.stop().await;
}

/// How the money adds up across categories: each query counts the rows that break it.
const SETTLEMENTS_ADD_UP: [(&str, &str); 4] = [
    (
        "every settled order exists, is completed, and its revenue is its items after seller discounts",
        "select count(*) from raw.statement_transactions t \
         left join raw.orders o on o.id = t.order_id and o._shop_id = t._shop_id \
         where t.transaction_type = 'ORDER' and (o.id is null \
            or t.revenue_amount <> o.sub_total + o.platform_discount \
            or t.currency <> o.currency or o.status <> 'COMPLETED')",
    ),
    (
        "a statement is the sum of its transactions",
        "select count(*) from raw.statements s left join ( \
           select statement_id, _shop_id, sum(settlement_amount) as total, \
                  sum(revenue_amount) as revenue, sum(fee_amount) as fees \
           from raw.statement_transactions group by 1, 2) t \
         on t.statement_id = s.id and t._shop_id = s._shop_id \
         where t.total is null or t.total <> s.settlement_amount \
            or t.revenue <> s.revenue_amount or t.fees <> s.fee_amount \
            or s.settlement_amount <> s.revenue_amount + s.fee_amount + s.adjustment_amount",
    ),
    (
        "each statement's payout pays it, with the same status",
        "select count(*) from raw.statements s left join raw.payments p \
           on p.id = s.payment_id and p._shop_id = s._shop_id \
         where p.id is null or p.amount <> s.settlement_amount or p.status <> s.payment_status",
    ),
    (
        "no order is both settled and unsettled",
        "select count(*) from raw.unsettled_transactions u join raw.statement_transactions t \
           on t.order_id = u.order_id and t._shop_id = u._shop_id",
    ),
];

/// Σ settlement per shop equals the truth's.
async fn settlements_per_shop_equal_the_truth(app: &shoplake::app::App, truth: &serde_json::Value) {
    let sums = app
        .query(
            "select _shop_id, cast(sum(settlement_amount) as varchar) from raw.statements group by 1",
        )
        .await
        .unwrap();
    let got = string_pairs(&sums);
    for shop in truth["shops"].as_array().unwrap() {
        let id = shop["shop_id"].as_str().unwrap();
        let want = shop["finance"]["settlement_amount"].as_str().unwrap();
        let have = got.get(id).map(String::as_str).unwrap_or("?");
        assert_eq!(
            minor(have, 6),
            minor(want, 6),
            "shop {id}: Σ settlement {have} vs truth {want}"
        );
    }
}

/// A statement still PROCESSING at the backfill's end is PAID a day later: the
/// statements and payments streams re-read their last 2 days (window lookback).
async fn processing_statements_are_paid_a_day_later(
    app: &shoplake::app::App,
    sb: &shoplake_sandbox::RunningSandbox,
    truth: &serde_json::Value,
) {
    let processing = "select count(*) from raw.statements where payment_status = 'PROCESSING'";
    let before = query_i64(app, processing).await;
    assert!(before > 0, "the newest statements are not paid out yet");
    let clock = truth["clock"].as_i64().unwrap() + 86_400;
    sb.sandbox.set_clock(clock);
    extract_ok(app, clock, Some("finance")).await;
    let still = query_i64(
        app,
        &format!(
            "{processing} and statement_time < to_timestamp({})",
            clock - 86_400
        ),
    )
    .await;
    assert_eq!(
        still, 0,
        "{before} statements were PROCESSING; re-read, they are PAID"
    );
    let paid = format!(
        "select count(*) from raw.payments where status = 'PROCESSING' and create_time < to_timestamp({})",
        clock - 86_400
    );
    assert_eq!(query_i64(app, &paid).await, 0, "payouts too");
}

fn string_pairs(
    batches: &[arrow::array::RecordBatch],
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for b in batches {
        let cast = |i: usize| {
            arrow::compute::cast(b.column(i), &arrow::datatypes::DataType::Utf8).unwrap()
        };
        let (k, v) = (cast(0), cast(1));
        let (k, v) = (
            arrow::array::cast::as_string_array(&k),
            arrow::array::cast::as_string_array(&v),
        );
        for i in 0..b.num_rows() {
            out.insert(k.value(i).to_string(), v.value(i).to_string());
        }
    }
    out
}
