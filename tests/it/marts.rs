//! Every mart against the sandbox's ground truth (`/__sandbox/truth` → `shops[].marts`,
//! `days`, `finance`), which the sandbox computes from its generated world — orders,
//! lifecycles, returns, SKUs — not from the API responses or the SQL. Numbers the marts
//! derive further (weeks, months, KPI periods, anomalies, forecasts) are recomputed here in
//! Rust from the truth's days.
//!
//! Also: the time-zone rule (an order placed late in the evening counts on its shop-local
//! date in every shop, whatever the UTC date), and the data tests of every mart.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::helpers::*;
use chrono::{Datelike, NaiveDate, Timelike};
use serde_json::Value;
use shoplake::app::App;
use shoplake_sandbox as sandbox;

const CLOCK: i64 = sandbox::DEFAULT_CLOCK;
const DAYS: u32 = 60;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// A decimal string of the truth in millionths.
fn money(v: &Value) -> i128 {
    micros(v.as_str().unwrap())
}

/// One shop's truth, keyed for lookups.
struct ShopTruth<'a> {
    id: String,
    /// The SQL filter on the shop.
    w: String,
    t: &'a Value,
    /// date → the truth's day and the marts truth's day
    days: BTreeMap<NaiveDate, (&'a Value, &'a Value)>,
}

impl<'a> ShopTruth<'a> {
    fn new(t: &'a Value) -> ShopTruth<'a> {
        let marts: HashMap<&str, &Value> = t["marts"]["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["date"].as_str().unwrap(), d))
            .collect();
        let days = t["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let s = d["date"].as_str().unwrap();
                (date(s), (d, marts[s]))
            })
            .collect();
        let id = t["shop_id"].as_str().unwrap().to_string();
        ShopTruth {
            w: format!("shop_id = '{id}'"),
            id,
            t,
            days,
        }
    }

    fn as_of(&self) -> NaiveDate {
        date(self.t["marts"]["as_of"].as_str().unwrap())
    }

    /// Net GMV per day in millionths, every day from the first order to as_of (0 without orders).
    fn net_by_day(&self) -> BTreeMap<NaiveDate, i128> {
        let first = *self.days.keys().next().unwrap();
        let mut out = BTreeMap::new();
        let mut d = first;
        while d <= self.as_of() {
            let v = self
                .days
                .get(&d)
                .map_or(0, |(day, _)| money(&day["net_gmv"]));
            out.insert(d, v);
            d = d.succ_opt().unwrap();
        }
        out
    }

    /// The truth list `marts.<list>` of the shop as a map: `key` → the `fields`.
    fn list<V: FromRow>(&self, list: &str, key: &str, fields: &[&str]) -> BTreeMap<String, V> {
        json_keyed(&self.t["marts"][list], key, fields)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The marts checked against the truth so far.
type Checked = BTreeSet<&'static str>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mart_matches_the_sandbox_truth() {
    let mut cfg = small(3, 6000);
    cfg.data.days = DAYS;
    let sb = start(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let from = CLOCK - (i64::from(DAYS) + 2) * 86_400;
    let app = backfilled(&sb, dir.path(), from, CLOCK + 1).await;
    app.build(None, &Default::default()).await.unwrap();
    let marts = marts_pass_their_own_data_tests(&app).await;
    let mut checked = Checked::new();
    let mut slow = 0;

    let truth = truth(&sb).await;
    let shops: Vec<ShopTruth> = truth["shops"]
        .as_array()
        .unwrap()
        .iter()
        .map(ShopTruth::new)
        .collect();
    for s in &shops {
        check_sales(&app, s, &mut checked).await;
        check_kpi_summary(&app, s, &mut checked).await;
        check_products(&app, s, &mut checked).await;
        slow += check_inventory(&app, s, &mut checked).await;
        check_operations_and_finance(&app, s, &mut checked).await;
        check_customers(&app, s, &mut checked).await;
        check_anomalies_and_forecast(&app, s, &mut checked).await;
        check_live_and_video(&app, s, &mut checked).await;
        check_promotions_and_service(&app, s, &mut checked).await;
        check_affiliates(&app, s, &mut checked).await;
    }
    // The slow-mover rule must have something to decide on, or the comparison proves little.
    assert!(slow > 0, "no slow movers in any shop");
    let unchecked: Vec<&String> = marts
        .iter()
        .filter(|m| !checked.contains(m.as_str()))
        .collect();
    assert!(
        unchecked.is_empty(),
        "marts without a truth check: {unchecked:?}"
    );
}

/// Runs the data tests (all must pass) and asserts that every mart has data tests of its
/// own besides the unique key; returns the marts.
async fn marts_pass_their_own_data_tests(app: &App) -> BTreeSet<String> {
    let tests = app.test(None).await.unwrap();
    let failed: Vec<_> = tests.iter().filter(|t| !t.passed()).collect();
    assert!(failed.is_empty(), "data tests failed: {failed:?}");

    // Every mart has data tests of its own besides the unique key.
    let ctx = app.session().await.unwrap();
    let project = app.project(&ctx).await.unwrap();
    for m in project.models.iter().filter(|m| m.schema == "marts") {
        let own = m
            .config
            .tests
            .iter()
            .filter(|t| !matches!(t, shoplake::models::DataTest::Unique(_)))
            .count();
        assert!(
            own >= 1,
            "{} has no data test besides its key",
            m.qualified()
        );
    }
    project
        .models
        .iter()
        .filter(|m| m.schema == "marts")
        .map(|m| m.name.clone())
        .collect()
}

/// gmv_daily, gmv_weekly, gmv_monthly, order_status_daily, hourly_sales.
async fn check_sales(app: &App, s: &ShopTruth<'_>, checked: &mut Checked) {
    let (sid, w) = (&s.id, &s.w);
    // gmv_daily: every day's orders, cancellations, units, GMV and refunds.
    type Day = (NaiveDate, u64, u64, u64, i128, i128, i128, u64, i128);
    let got: Vec<Day> = parsed(app, &format!("select order_date, orders, cancelled_orders, units, gross_gmv, net_gmv, total_amount, refunded_orders, refunded_gmv from marts.gmv_daily where {w} order by order_date")).await;
    assert_eq!(got.len(), s.days.len(), "shop {sid}: days in gmv_daily");
    for (dt, orders, cancelled, units, gross, net, total, refunded, refunded_gmv) in got {
        let (d, m) = s.days[&dt];
        assert_eq!(
            (orders, cancelled, units, gross, net, total),
            (
                u(&d["orders"]),
                u(&d["cancelled_orders"]),
                u(&d["units"]),
                money(&d["gross_gmv"]),
                money(&d["net_gmv"]),
                money(&d["total_amount"])
            ),
            "shop {sid} day {dt}: orders, cancelled, units, gross, net, total"
        );
        assert_eq!(
            (refunded, refunded_gmv),
            (u(&m["refunded_orders"]), money(&m["refunded_gmv"])),
            "shop {sid} day {dt}: refunded orders and gmv"
        );
    }
    checked.insert("gmv_daily");

    // gmv_weekly / gmv_monthly: the truth's days summed by ISO week and month.
    let mut weeks: BTreeMap<NaiveDate, (u64, i128)> = BTreeMap::new();
    let mut months: BTreeMap<NaiveDate, (u64, i128)> = BTreeMap::new();
    for (dt, (d, _)) in &s.days {
        let wk = *dt - chrono::Duration::days(i64::from(dt.weekday().num_days_from_monday()));
        let mo = dt.with_day(1).unwrap();
        for (map, k) in [(&mut weeks, wk), (&mut months, mo)] {
            let e = map.entry(k).or_default();
            e.0 += u(&d["orders"]);
            e.1 += money(&d["net_gmv"]);
        }
    }
    for (table, col, want) in [
        ("gmv_weekly", "week_start", &weeks),
        ("gmv_monthly", "month_start", &months),
    ] {
        let sql =
            format!("select {col}, orders, net_gmv from marts.{table} where {w} order by {col}");
        assert_keyed(app, &sql, want, &format!("shop {sid}: {table}")).await;
        checked.insert(table);
    }

    // order_status_daily and hourly_sales: counts per day by status and by local hour.
    let mut want: BTreeMap<(NaiveDate, String), u64> = BTreeMap::new();
    for (dt, (_, m)) in &s.days {
        for (st, n) in m["statuses"].as_object().unwrap() {
            want.insert((*dt, st.clone()), u(n));
        }
    }
    let sql = format!("select order_date, status, orders from marts.order_status_daily where {w}");
    assert_keyed(app, &sql, &want, &format!("shop {sid}: order_status_daily")).await;
    checked.insert("order_status_daily");
    let mut want: BTreeMap<(NaiveDate, u32), u64> = BTreeMap::new();
    for (dt, (_, m)) in &s.days {
        for (h, n) in m["hours"].as_object().unwrap() {
            want.insert((*dt, h.parse::<u32>().unwrap()), u(n));
        }
    }
    let sql = format!("select order_date, local_hour, orders from marts.hourly_sales where {w}");
    assert_keyed(app, &sql, &want, &format!("shop {sid}: hourly_sales")).await;
    checked.insert("hourly_sales");
}

/// kpi_summary, from the truth's days.
async fn check_kpi_summary(app: &App, s: &ShopTruth<'_>, checked: &mut Checked) {
    let (sid, w) = (&s.id, &s.w);
    // kpi_summary: net GMV and orders of the last 7 and 30 days and the periods before.
    let as_of = s.as_of();
    let sum_days = |from_back: i64, to_back: i64| -> (i128, u64) {
        s.days
            .iter()
            .filter(|(dt, _)| {
                let age = (as_of - **dt).num_days();
                age >= to_back && age < from_back
            })
            .fold((0, 0), |(g, o), (_, (d, _))| {
                (g + money(&d["net_gmv"]), o + u(&d["orders"]))
            })
    };
    for period in [7i64, 30] {
        let got: Vec<(String, i128, i128)> = parsed(app, &format!("select metric, current_value, previous_value from marts.kpi_summary where {w} and period_days = {period} and metric in ('net_gmv', 'orders') order by metric")).await;
        let (cur_g, cur_o) = sum_days(period, 0);
        let (prev_g, prev_o) = sum_days(2 * period, period);
        assert_eq!(got[0].0, "net_gmv");
        assert_eq!(
            (got[0].1, got[0].2),
            (cur_g, prev_g),
            "shop {sid}: kpi net_gmv {period}d"
        );
        assert_eq!(
            (got[1].1, got[1].2),
            (cur_o as i128 * 1_000_000, prev_o as i128 * 1_000_000),
            "shop {sid}: kpi orders {period}d"
        );
    }
    checked.insert("kpi_summary");
}

/// sku_daily, brand_daily, brand_summary, best_sellers, the analytics marts.
async fn check_products(app: &App, s: &ShopTruth<'_>, checked: &mut Checked) {
    let (sid, w) = (&s.id, &s.w);
    // Products: GMV and units per product (sku_daily summed), brand totals, best sellers.
    let products = s.t["marts"]["products"].as_array().unwrap();
    let got: BTreeMap<String, (u64, i128)> = keyed(app, &format!("select product_id, sum(net_units), sum(net_gmv) from marts.sku_daily where {w} group by product_id")).await;
    let got: BTreeMap<String, (u64, i128)> = got.into_iter().filter(|(_, v)| v.0 > 0).collect();
    let want: BTreeMap<String, (u64, i128)> =
        s.list("products", "product_id", &["units", "net_gmv"]);
    let want: BTreeMap<String, (u64, i128)> = want.into_iter().filter(|(_, v)| v.0 > 0).collect();
    assert_eq!(got, want, "shop {sid}: sku_daily per product");
    checked.insert("sku_daily");

    // Brands: the listing brand is the sandbox's truth; products the seller left
    // unbranded may still be parsed to a brand from their title, so a brand's mart GMV is
    // at least the GMV of the products listed under it, and all brands sum to the shop.
    let mut truth_brand: BTreeMap<String, i128> = BTreeMap::new();
    for p in products {
        let b = p["brand"].as_str().unwrap();
        if !b.is_empty() {
            *truth_brand.entry(b.to_string()).or_default() += money(&p["net_gmv"]);
        }
    }
    let total: i128 = products.iter().map(|p| money(&p["net_gmv"])).sum();
    for (table, col) in [
        ("brand_daily", "sum(net_gmv)"),
        ("brand_summary", "sum(net_gmv)"),
    ] {
        let got: BTreeMap<String, i128> = keyed(
            app,
            &format!("select brand, {col} from marts.{table} where {w} group by brand"),
        )
        .await;
        assert_eq!(
            got.values().sum::<i128>(),
            total,
            "shop {sid}: {table} sums to the shop's GMV"
        );
        for (b, g) in &truth_brand {
            assert!(
                got.get(b).copied().unwrap_or(0) >= *g,
                "shop {sid}: {table} {b} below its listed products' GMV"
            );
        }
        checked.insert(table);
    }
    let top = products
        .iter()
        .max_by_key(|p| money(&p["net_gmv_7d"]))
        .unwrap();
    let got: Vec<(String, i128)> = parsed(app, &format!("select product_id, net_gmv from marts.best_sellers where {w} and period_days = 7 and rank_by_gmv = 1")).await;
    assert_eq!(got.len(), 1, "shop {sid}: one 7-day best seller");
    assert_eq!(
        got[0].0,
        top["product_id"].as_str().unwrap(),
        "shop {sid}: 7-day best seller"
    );
    assert_eq!(got[0].1, money(&top["net_gmv_7d"]));
    checked.insert("best_sellers");

    // Analytics marts: units per product (product and SKU reports), orders and visitors.
    let want: BTreeMap<String, u64> = s.list("products", "product_id", &["report_units"]);
    let want: BTreeMap<String, u64> = want.into_iter().filter(|(_, n)| *n > 0).collect();
    for table in ["product_performance", "sku_performance"] {
        let sql = format!(
            "select product_id, sum(units_sold) from marts.{table} where {w} group by product_id"
        );
        assert_keyed(
            app,
            &sql,
            &want,
            &format!("shop {sid}: {table} units per product"),
        )
        .await;
        checked.insert(table);
    }
    let report_orders = u(&s.t["marts"]["report_orders"]);
    assert_one(
        app,
        &format!("select sum(orders), sum(visitors) from marts.shop_performance_daily where {w}"),
        (report_orders, u(&s.t["marts"]["visitors"])),
        &format!("shop {sid}: analytics orders and visitors"),
    )
    .await;
    checked.insert("shop_performance_daily");
    assert_one(
        app,
        &format!("select sum(orders) from marts.shop_performance_hourly where {w}"),
        report_orders,
        &format!("shop {sid}: hourly analytics orders"),
    )
    .await;
    checked.insert("shop_performance_hourly");
}

/// inventory_status and slow_movers; returns the shop's slow movers.
async fn check_inventory(app: &App, s: &ShopTruth<'_>, checked: &mut Checked) -> usize {
    let (sid, w) = (&s.id, &s.w);
    // Inventory: stock and the last 28 days' units per SKU; slow movers by the rule.
    let skus = s.t["marts"]["skus"].as_array().unwrap();
    let want: BTreeMap<String, (i64, u64)> = s.list("skus", "sku_id", &["stock", "units_28d"]);
    let sql = format!("select sku_id, stock, units_sold_28d from marts.inventory_status where {w}");
    assert_keyed(app, &sql, &want, &format!("shop {sid}: inventory_status")).await;
    checked.insert("inventory_status");
    let want: BTreeSet<String> = skus
        .iter()
        .filter(|k| {
            let (stock, u28, u30) = (
                k["stock"].as_i64().unwrap(),
                u(&k["units_28d"]),
                u(&k["units_30d"]),
            );
            let cover = if u28 == 0 {
                f64::INFINITY
            } else {
                stock as f64 / (u28 as f64 / 28.0)
            };
            stock > 0 && k["listed_days"].as_i64().unwrap() >= 30 && (u30 == 0 || cover > 90.0)
        })
        .map(|k| k["sku_id"].as_str().unwrap().to_string())
        .collect();
    let got: Vec<String> = parsed(
        app,
        &format!("select sku_id from marts.slow_movers where {w}"),
    )
    .await;
    let got: BTreeSet<String> = got.into_iter().collect();
    assert_eq!(got, want, "shop {sid}: slow_movers");
    checked.insert("slow_movers");
    got.len()
}

/// fulfillment_sla, returns_refunds, finance_daily, finance_reconciliation.
async fn check_operations_and_finance(app: &App, s: &ShopTruth<'_>, checked: &mut Checked) {
    let (sid, w, t) = (&s.id, &s.w, s.t);
    // Operations: packages shipped and delivered; returns and refunds per reason.
    assert_one(
        app,
        &format!("select sum(packages), sum(shipped), sum(delivered) from marts.fulfillment_sla where {w}"),
        (
            u(&t["packages"]),
            u(&t["marts"]["packages_shipped"]),
            u(&t["marts"]["packages_delivered"]),
        ),
        &format!("shop {sid}: fulfillment_sla"),
    )
    .await;
    checked.insert("fulfillment_sla");
    let want: BTreeMap<String, i128> = t["marts"]["returns_by_reason"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), money(&v["refund_total"])))
        .collect();
    let sql = format!(
        "select reason, sum(refund_total) from marts.returns_refunds where {w} group by reason"
    );
    assert_keyed(
        app,
        &sql,
        &want,
        &format!("shop {sid}: returns_refunds refunds per reason"),
    )
    .await;
    checked.insert("returns_refunds");

    // Finance: settlements and settled orders.
    let settled = u(&t["finance"]["settled_orders"]);
    assert_one(
        app,
        &format!(
            "select sum(settlement_amount), sum(settled_orders) from marts.finance_daily where {w}"
        ),
        (money(&t["finance"]["settlement_amount"]), settled),
        &format!("shop {sid}: finance_daily settlement and settled orders"),
    )
    .await;
    checked.insert("finance_daily");
    assert_one(
        app,
        &format!(
            "select count(*) from marts.finance_reconciliation where {w} and state = 'settled'"
        ),
        settled,
        &format!("shop {sid}: reconciled settled orders"),
    )
    .await;
    assert_one(
        app,
        &format!("select count(*) from marts.finance_reconciliation where {w} and state in ('mismatch', 'missing')"),
        0u64,
        &format!("shop {sid}: the sandbox settles every completed order exactly"),
    )
    .await;
    checked.insert("finance_reconciliation");
}

/// customers_monthly and customer_retention.
async fn check_customers(app: &App, s: &ShopTruth<'_>, checked: &mut Checked) {
    let (sid, w) = (&s.id, &s.w);
    // Buyers per month; cohorts start with their new buyers.
    let want: BTreeMap<NaiveDate, (u64, u64, u64)> = json_keyed(
        &s.t["marts"]["months"],
        "month",
        &["buyers", "new_buyers", "repeat_buyers"],
    );
    let sql = format!(
        "select month, buyers, new_buyers, repeat_buyers from marts.customers_monthly where {w}"
    );
    assert_keyed(app, &sql, &want, &format!("shop {sid}: customers_monthly")).await;
    checked.insert("customers_monthly");
    let cohorts: BTreeMap<NaiveDate, (u64, u64)> =
        want.iter().map(|(m, v)| (*m, (v.1, v.1))).collect();
    let sql = format!(
        "select cohort_month, cohort_buyers, active_buyers from marts.customer_retention where {w} and months_since_first = 0"
    );
    assert_keyed(
        app,
        &sql,
        &cohorts,
        &format!("shop {sid}: customer_retention cohorts"),
    )
    .await;
    checked.insert("customer_retention");
}

/// anomalies_daily and gmv_forecast, recomputed from the truth's days.
async fn check_anomalies_and_forecast(app: &App, s: &ShopTruth<'_>, checked: &mut Checked) {
    let (sid, w) = (&s.id, &s.w);
    // anomalies_daily: expected net GMV = median of the same weekday in the 8 weeks before.
    let net: BTreeMap<NaiveDate, f64> = s
        .days
        .iter()
        .map(|(dt, (d, _))| (*dt, money(&d["net_gmv"]) as f64 / 1e6))
        .collect();
    let got: Vec<(NaiveDate, String, usize, String)> = parsed(app, &format!("select order_date, expected, history_days, is_anomaly, score from marts.anomalies_daily where {w} and metric = 'net_gmv'")).await;
    for (dt, expected, history_days, is_anomaly) in &got {
        let dt = *dt;
        let hist: Vec<f64> = (1..=8)
            .filter_map(|k| net.get(&(dt - chrono::Duration::days(7 * k))).copied())
            .collect();
        assert_eq!(*history_days, hist.len(), "shop {sid} {dt}: history days");
        if hist.is_empty() {
            assert_eq!(
                expected, "",
                "shop {sid} {dt}: no expectation without history"
            );
            continue;
        }
        let exp = median(hist.clone());
        assert!(
            close(expected.parse().unwrap(), exp),
            "shop {sid} {dt}: expected {expected} vs {exp}"
        );
        let mad = median(hist.iter().map(|x| (x - exp).abs()).collect());
        let scale = (1.4826 * mad).max(0.05 * exp.abs());
        let score = (net[&dt] - exp) / scale;
        let anomaly = hist.len() >= 4 && score.abs() > 3.5;
        assert_eq!(
            is_anomaly == "true",
            anomaly,
            "shop {sid} {dt}: anomaly flag (score {score})"
        );
    }
    // The seed's campaign days (10.10 here: 2.5× the usual sales) are the anomalies.
    let got = text_rows(app, &format!("select is_anomaly, direction, history_days from marts.anomalies_daily where {w} and metric = 'orders' and order_date = date '2026-10-10'")).await;
    assert_eq!(
        got,
        vec![vec!["true".to_string(), "high".into(), got[0][2].clone()]],
        "shop {sid}: 10.10 is an anomaly"
    );
    checked.insert("anomalies_daily");

    // gmv_forecast: mean of the latest 4 same weekdays up to as_of (0 for days without orders).
    let as_of = s.as_of();
    let filled = s.net_by_day();
    let got: Vec<(NaiveDate, i64, i128)> = parsed(app, &format!("select forecast_date, horizon_days, forecast_net_gmv from marts.gmv_forecast where {w} order by forecast_date")).await;
    assert_eq!(got.len(), 30, "shop {sid}: 30 forecast days");
    for (dt, horizon, forecast) in got {
        assert_eq!((dt - as_of).num_days(), horizon);
        let same: Vec<i128> = filled
            .iter()
            .rev()
            .filter(|(d, _)| (dt - **d).num_days() % 7 == 0 && (as_of - **d).num_days() < 28)
            .map(|(_, v)| *v)
            .collect();
        let mean = same.iter().sum::<i128>() as f64 / same.len() as f64 / 1e6;
        let forecast = forecast as f64 / 1e6;
        assert!(
            close(forecast, mean),
            "shop {sid} {dt}: forecast {forecast} vs {mean}"
        );
    }
    checked.insert("gmv_forecast");
}

/// live_sessions, live_minute, video_performance.
async fn check_live_and_video(app: &App, s: &ShopTruth<'_>, checked: &mut Checked) {
    let (sid, w) = (&s.id, &s.w);
    // LIVE: each session's length, peak viewers and the orders and GMV it drove.
    let want: BTreeMap<String, (i64, u64, u64, i128)> =
        s.list("lives", "id", &["minutes", "peak_viewers", "orders", "gmv"]);
    assert!(!want.is_empty(), "shop {sid}: no LIVE sessions");
    let sql = format!(
        "select live_id, duration_minutes, peak_viewers, orders, gmv from marts.live_sessions where {w}"
    );
    assert_keyed(app, &sql, &want, &format!("shop {sid}: live_sessions")).await;
    checked.insert("live_sessions");
    let got: Vec<(String, i64, i64, i128, u64)> = parsed(app, &format!("select live_id, count(*), max(minute) + 1, max(session_gmv), sum(orders) from marts.live_minute where {w} group by live_id")).await;
    let got: BTreeMap<String, (i64, u64, i128)> = got
        .into_iter()
        .map(|(id, minutes, numbered, gmv, orders)| {
            assert_eq!(
                minutes, numbered,
                "shop {sid} live {id}: minutes numbered without gaps"
            );
            (id, (minutes, orders, gmv))
        })
        .collect();
    let want: BTreeMap<String, (i64, u64, i128)> = want
        .iter()
        .map(|(k, v)| (k.clone(), (v.0, v.2, v.3)))
        .collect();
    assert_eq!(got, want, "shop {sid}: live_minute per session");
    checked.insert("live_minute");

    // Videos: views, and the orders and GMV videos drove.
    assert_one(
        app,
        &format!("select sum(views), sum(orders), sum(gmv) from marts.video_performance where {w}"),
        (
            u(&s.t["marts"]["video_views"]),
            u(&s.t["marts"]["video_orders"]),
            money(&s.t["marts"]["video_gmv"]),
        ),
        &format!("shop {sid}: video_performance"),
    )
    .await;
    assert!(
        u(&s.t["marts"]["video_orders"]) > 0,
        "shop {sid}: videos drove no orders"
    );
    checked.insert("video_performance");
}

/// promotion_performance and customer_service.
async fn check_promotions_and_service(app: &App, s: &ShopTruth<'_>, checked: &mut Checked) {
    let (sid, w) = (&s.id, &s.w);
    // Promotions: each activity's orders, units, GMV and discount cost while it ran.
    let want: BTreeMap<String, (u64, u64, i128, i128)> =
        s.list("promotions", "id", &["orders", "units", "gmv", "discount"]);
    assert!(
        want.values().any(|v| v.0 > 0),
        "shop {sid}: no promotion sold anything"
    );
    let sql = format!(
        "select activity_id, orders, units, gmv, discount_cost from marts.promotion_performance where {w}"
    );
    assert_keyed(
        app,
        &sql,
        &want,
        &format!("shop {sid}: promotion_performance"),
    )
    .await;
    checked.insert("promotion_performance");

    // Customer service: conversations, answered ones and their mean first response.
    let (conversations, answered, seconds): (u64, u64, f64) = one(app, &format!("select sum(conversations), sum(answered), sum(avg_first_response_minutes * answered) * 60 from marts.customer_service where {w}")).await;
    assert_eq!(
        conversations,
        u(&s.t["marts"]["cs_conversations"]),
        "shop {sid}: conversations"
    );
    assert_eq!(
        answered,
        u(&s.t["marts"]["cs_answered"]),
        "shop {sid}: answered"
    );
    assert!(
        close(
            seconds,
            s.t["marts"]["cs_first_response_seconds"].as_i64().unwrap() as f64
        ),
        "shop {sid}: first response seconds {seconds}"
    );
    checked.insert("customer_service");
}

/// creator_performance, partner_performance, affiliate_commissions.
async fn check_affiliates(app: &App, s: &ShopTruth<'_>, checked: &mut Checked) {
    let (sid, w) = (&s.id, &s.w);
    // Affiliates: per creator, the orders, units, GMV and commission they brought.
    let want: BTreeMap<String, (u64, u64, i128, i128)> =
        s.list("creators", "id", &["orders", "units", "gmv", "commission"]);
    let want: BTreeMap<String, (u64, u64, i128, i128)> =
        want.into_iter().filter(|(_, v)| v.0 > 0).collect();
    assert!(!want.is_empty(), "shop {sid}: no affiliate orders");
    let sql = format!(
        "select creator_id, sum(orders), sum(units), sum(gmv), sum(estimated_commission) from marts.creator_performance where {w} group by creator_id"
    );
    assert_keyed(
        app,
        &sql,
        &want,
        &format!("shop {sid}: creator_performance"),
    )
    .await;
    checked.insert("creator_performance");

    // Affiliate partner campaigns: per campaign with products of the shop, the
    // products, TAP orders, units, GMV and the partner's fee (estimated, settled).
    type Camp = (u64, u64, u64, i128, i128, i128);
    let pwant: BTreeMap<String, Camp> = s.list(
        "partner_campaigns",
        "id",
        &[
            "products",
            "orders",
            "units",
            "gmv",
            "estimated_fee",
            "actual_fee",
        ],
    );
    assert!(
        pwant.values().any(|c| c.1 > 0 && c.5 > 0),
        "shop {sid}: no settled partner campaign orders"
    );
    let sql = format!(
        "select campaign_id, products, orders, units, campaign_gmv, estimated_partner_fee, actual_partner_fee from marts.partner_performance where {w}"
    );
    assert_keyed(
        app,
        &sql,
        &pwant,
        &format!("shop {sid}: partner_performance"),
    )
    .await;
    checked.insert("partner_performance");
    let total = want.values().fold((0u64, 0i128, 0i128), |a, v| {
        (a.0 + v.0, a.1 + v.2, a.2 + v.3)
    });
    let sql = format!(
        "select sum(affiliate_orders), sum(affiliate_gmv), sum(estimated_commission) from marts.affiliate_commissions where {w}"
    );
    assert_one(
        app,
        &sql,
        total,
        &format!("shop {sid}: affiliate_commissions"),
    )
    .await;
    checked.insert("affiliate_commissions");
}

/// An order placed at 23:xx shop-local time counts on that local date in every shop, in
/// staging and in the daily and hourly marts — including shops where that is already the
/// next day in UTC (US, Pacific time) or still the same (Asia).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_evening_orders_count_on_their_local_date_in_every_shop() {
    let sb = start(small(3, 3000)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = backfilled(&sb, dir.path(), CLOCK - 32 * 86_400, CLOCK + 1).await;
    app.build(Some("+hourly_sales,+gmv_daily"), &Default::default())
        .await
        .unwrap();
    let truth = truth(&sb).await;
    let mut utc_differs = 0;
    for s in truth["shops"].as_array().unwrap() {
        let sid = s["shop_id"].as_str().unwrap();
        let tz: chrono_tz::Tz = s["time_zone"].as_str().unwrap().parse().unwrap();
        // Every order's UTC time, placed in the shop's zone here (not by shoplake).
        let orders: Vec<(String, i64, NaiveDate)> = parsed(&app, &format!("select o.order_id, cast(cast(o.created_at as bigint) / 1000000 as bigint), cast(o.order_date as varchar) from staging.stg_orders o where shop_id = '{sid}'")).await;
        let mut per_day: BTreeMap<NaiveDate, u64> = BTreeMap::new();
        let mut late = Vec::new();
        for (id, created, order_date) in &orders {
            let utc = chrono::DateTime::from_timestamp(*created, 0).unwrap();
            let local = utc.with_timezone(&tz);
            *per_day.entry(local.date_naive()).or_default() += 1;
            assert_eq!(
                *order_date,
                local.date_naive(),
                "shop {sid} order {id}: order_date"
            );
            if local.hour() == 23 && local.minute() >= 30 {
                late.push((local.date_naive(), utc.date_naive()));
            }
        }
        assert!(
            !late.is_empty(),
            "shop {sid}: no order placed after 23:30 local"
        );
        utc_differs += late.iter().filter(|(l, u)| l != u).count();
        let hourly: BTreeMap<NaiveDate, u64> = keyed(&app, &format!("select order_date, orders from marts.hourly_sales where shop_id = '{sid}' and local_hour = 23")).await;
        for (local, _) in &late {
            assert!(
                hourly.get(local).copied().unwrap_or(0) >= 1,
                "shop {sid}: 23:xx order missing from hourly_sales on {local}"
            );
        }
        let daily: BTreeMap<NaiveDate, u64> = keyed(
            &app,
            &format!("select order_date, orders from marts.gmv_daily where shop_id = '{sid}'"),
        )
        .await;
        assert_eq!(
            daily, per_day,
            "shop {sid} ({tz}): gmv_daily orders per local date"
        );
    }
    assert!(
        utc_differs > 0,
        "no shop had a late order on a different UTC date: the test would not catch UTC dates"
    );
}
