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
use arrow::array::{Array, RecordBatch};
use chrono::{Datelike, NaiveDate, Timelike};
use serde_json::Value;
use shoplake::app::App;
use shoplake_sandbox as sandbox;

const CLOCK: i64 = sandbox::DEFAULT_CLOCK;
const DAYS: u32 = 60;

/// Rows of a query, every value as a string ("" for NULL).
async fn rows(app: &App, sql: &str) -> Vec<Vec<String>> {
    let batches: Vec<RecordBatch> = app
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out = Vec::new();
    for b in &batches {
        let cols: Vec<_> = b
            .columns()
            .iter()
            .map(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                cols.iter()
                    .map(|c| {
                        let a = arrow::array::cast::as_string_array(c);
                        if a.is_null(r) {
                            String::new()
                        } else {
                            a.value(r).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

/// A decimal string in millionths ("12.5" → 12_500_000), for exact money comparisons.
fn micros(s: &str) -> i128 {
    let s = s.trim();
    let neg = s.starts_with('-');
    let (int, frac) = s
        .trim_start_matches('-')
        .split_once('.')
        .unwrap_or((s.trim_start_matches('-'), ""));
    let frac = format!("{:0<6}", &frac[..frac.len().min(6)]);
    let v = int.parse::<i128>().unwrap() * 1_000_000 + frac.parse::<i128>().unwrap();
    if neg { -v } else { v }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// One shop's truth, keyed for lookups.
struct ShopTruth<'a> {
    id: String,
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
        ShopTruth {
            id: t["shop_id"].as_str().unwrap().to_string(),
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
                .map_or(0, |(day, _)| micros(day["net_gmv"].as_str().unwrap()));
            out.insert(d, v);
            d = d.succ_opt().unwrap();
        }
        out
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mart_matches_the_sandbox_truth() {
    let mut cfg = small(3, 6000);
    cfg.data.days = DAYS;
    let sb = start(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_for(&sb, dir.path(), None).await;
    let sum = app
        .backfill(
            CLOCK - (i64::from(DAYS) + 2) * 86_400,
            CLOCK + 1,
            None,
            None,
        )
        .await
        .unwrap();
    assert!(sum.errors.is_empty(), "{:?}", sum.errors);
    app.build(None, &Default::default()).await.unwrap();
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
    let marts: BTreeSet<String> = project
        .models
        .iter()
        .filter(|m| m.schema == "marts")
        .map(|m| m.name.clone())
        .collect();
    let mut checked: BTreeSet<&str> = BTreeSet::new();
    let mut slow = 0;

    let truth = truth(&sb).await;
    let shops: Vec<ShopTruth> = truth["shops"]
        .as_array()
        .unwrap()
        .iter()
        .map(ShopTruth::new)
        .collect();
    for s in &shops {
        let sid = &s.id;
        let w = format!("shop_id = '{sid}'");

        // gmv_daily: every day's orders, cancellations, units, GMV and refunds.
        let got = rows(&app, &format!("select order_date, orders, cancelled_orders, units, gross_gmv, net_gmv, total_amount, refunded_orders, refunded_gmv from marts.gmv_daily where {w} order by order_date")).await;
        assert_eq!(got.len(), s.days.len(), "shop {sid}: days in gmv_daily");
        for r in &got {
            let (d, m) = s.days[&date(&r[0])];
            let ctx = format!("shop {sid} day {}", r[0]);
            assert_eq!(
                r[1].parse::<u64>().unwrap(),
                u(&d["orders"]),
                "{ctx} orders"
            );
            assert_eq!(
                r[2].parse::<u64>().unwrap(),
                u(&d["cancelled_orders"]),
                "{ctx} cancelled"
            );
            assert_eq!(r[3].parse::<u64>().unwrap(), u(&d["units"]), "{ctx} units");
            assert_eq!(
                micros(&r[4]),
                micros(d["gross_gmv"].as_str().unwrap()),
                "{ctx} gross"
            );
            assert_eq!(
                micros(&r[5]),
                micros(d["net_gmv"].as_str().unwrap()),
                "{ctx} net"
            );
            assert_eq!(
                micros(&r[6]),
                micros(d["total_amount"].as_str().unwrap()),
                "{ctx} total"
            );
            assert_eq!(
                r[7].parse::<u64>().unwrap(),
                u(&m["refunded_orders"]),
                "{ctx} refunded orders"
            );
            assert_eq!(
                micros(&r[8]),
                micros(m["refunded_gmv"].as_str().unwrap()),
                "{ctx} refunded gmv"
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
                e.1 += micros(d["net_gmv"].as_str().unwrap());
            }
        }
        for (table, col, want) in [
            ("gmv_weekly", "week_start", &weeks),
            ("gmv_monthly", "month_start", &months),
        ] {
            let got = rows(
                &app,
                &format!(
                    "select {col}, orders, net_gmv from marts.{table} where {w} order by {col}"
                ),
            )
            .await;
            let got: BTreeMap<NaiveDate, (u64, i128)> = got
                .iter()
                .map(|r| (date(&r[0]), (r[1].parse().unwrap(), micros(&r[2]))))
                .collect();
            assert_eq!(&got, want, "shop {sid}: {table}");
            checked.insert(table);
        }

        // order_status_daily and hourly_sales: counts per day by status and by local hour.
        let got = rows(
            &app,
            &format!("select order_date, status, orders from marts.order_status_daily where {w}"),
        )
        .await;
        let mut by_status: BTreeMap<(NaiveDate, String), u64> = BTreeMap::new();
        for r in &got {
            by_status.insert((date(&r[0]), r[1].clone()), r[2].parse().unwrap());
        }
        let mut want = BTreeMap::new();
        for (dt, (_, m)) in &s.days {
            for (st, n) in m["statuses"].as_object().unwrap() {
                want.insert((*dt, st.clone()), u(n));
            }
        }
        assert_eq!(by_status, want, "shop {sid}: order_status_daily");
        checked.insert("order_status_daily");
        let got = rows(
            &app,
            &format!("select order_date, local_hour, orders from marts.hourly_sales where {w}"),
        )
        .await;
        let got: BTreeMap<(NaiveDate, u32), u64> = got
            .iter()
            .map(|r| ((date(&r[0]), r[1].parse().unwrap()), r[2].parse().unwrap()))
            .collect();
        let mut want = BTreeMap::new();
        for (dt, (_, m)) in &s.days {
            for (h, n) in m["hours"].as_object().unwrap() {
                want.insert((*dt, h.parse::<u32>().unwrap()), u(n));
            }
        }
        assert_eq!(got, want, "shop {sid}: hourly_sales");
        checked.insert("hourly_sales");

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
                    (
                        g + micros(d["net_gmv"].as_str().unwrap()),
                        o + u(&d["orders"]),
                    )
                })
        };
        for period in [7i64, 30] {
            let got = rows(&app, &format!("select metric, current_value, previous_value from marts.kpi_summary where {w} and period_days = {period} and metric in ('net_gmv', 'orders') order by metric")).await;
            let (cur_g, cur_o) = sum_days(period, 0);
            let (prev_g, prev_o) = sum_days(2 * period, period);
            assert_eq!(got[0][0], "net_gmv");
            assert_eq!(
                (micros(&got[0][1]), micros(&got[0][2])),
                (cur_g, prev_g),
                "shop {sid}: kpi net_gmv {period}d"
            );
            assert_eq!(
                (micros(&got[1][1]), micros(&got[1][2])),
                (cur_o as i128 * 1_000_000, prev_o as i128 * 1_000_000),
                "shop {sid}: kpi orders {period}d"
            );
        }
        checked.insert("kpi_summary");

        // Products: GMV and units per product (sku_daily summed), brand totals, best sellers.
        let products = s.t["marts"]["products"].as_array().unwrap();
        let got = rows(&app, &format!("select product_id, sum(net_units), sum(net_gmv) from marts.sku_daily where {w} group by product_id")).await;
        let got: BTreeMap<String, (u64, i128)> = got
            .iter()
            .map(|r| (r[0].clone(), (r[1].parse().unwrap(), micros(&r[2]))))
            .filter(|(_, v)| v.0 > 0)
            .collect();
        let want: BTreeMap<String, (u64, i128)> = products
            .iter()
            .map(|p| {
                (
                    p["product_id"].as_str().unwrap().to_string(),
                    (u(&p["units"]), micros(p["net_gmv"].as_str().unwrap())),
                )
            })
            .filter(|(_, v)| v.0 > 0)
            .collect();
        assert_eq!(got, want, "shop {sid}: sku_daily per product");
        checked.insert("sku_daily");

        // Brands: the listing brand is the sandbox's truth; products the seller left
        // unbranded may still be parsed to a brand from their title, so a brand's mart GMV is
        // at least the GMV of the products listed under it, and all brands sum to the shop.
        let mut truth_brand: BTreeMap<String, i128> = BTreeMap::new();
        for p in products {
            let b = p["brand"].as_str().unwrap();
            if !b.is_empty() {
                *truth_brand.entry(b.to_string()).or_default() +=
                    micros(p["net_gmv"].as_str().unwrap());
            }
        }
        let total: i128 = products
            .iter()
            .map(|p| micros(p["net_gmv"].as_str().unwrap()))
            .sum();
        for (table, col) in [
            ("brand_daily", "sum(net_gmv)"),
            ("brand_summary", "sum(net_gmv)"),
        ] {
            let got = rows(
                &app,
                &format!("select brand, {col} from marts.{table} where {w} group by brand"),
            )
            .await;
            let got: BTreeMap<String, i128> =
                got.iter().map(|r| (r[0].clone(), micros(&r[1]))).collect();
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
            .max_by_key(|p| micros(p["net_gmv_7d"].as_str().unwrap()))
            .unwrap();
        let got = rows(&app, &format!("select product_id, net_gmv from marts.best_sellers where {w} and period_days = 7 and rank_by_gmv = 1")).await;
        assert_eq!(got.len(), 1, "shop {sid}: one 7-day best seller");
        assert_eq!(
            got[0][0],
            top["product_id"].as_str().unwrap(),
            "shop {sid}: 7-day best seller"
        );
        assert_eq!(
            micros(&got[0][1]),
            micros(top["net_gmv_7d"].as_str().unwrap())
        );
        checked.insert("best_sellers");

        // Analytics marts: units per product (product and SKU reports), orders and visitors.
        let want: BTreeMap<String, u64> = products
            .iter()
            .map(|p| {
                (
                    p["product_id"].as_str().unwrap().to_string(),
                    u(&p["report_units"]),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        for table in ["product_performance", "sku_performance"] {
            let got = rows(&app, &format!("select product_id, sum(units_sold) from marts.{table} where {w} group by product_id")).await;
            let got: BTreeMap<String, u64> = got
                .iter()
                .map(|r| (r[0].clone(), r[1].parse().unwrap()))
                .collect();
            assert_eq!(got, want, "shop {sid}: {table} units per product");
            checked.insert(table);
        }
        let got = rows(
            &app,
            &format!(
                "select sum(orders), sum(visitors) from marts.shop_performance_daily where {w}"
            ),
        )
        .await;
        assert_eq!(
            got[0][0].parse::<u64>().unwrap(),
            u(&s.t["marts"]["report_orders"]),
            "shop {sid}: analytics orders"
        );
        assert_eq!(
            got[0][1].parse::<u64>().unwrap(),
            u(&s.t["marts"]["visitors"]),
            "shop {sid}: analytics visitors"
        );
        checked.insert("shop_performance_daily");
        let got = rows(
            &app,
            &format!("select sum(orders) from marts.shop_performance_hourly where {w}"),
        )
        .await;
        assert_eq!(
            got[0][0].parse::<u64>().unwrap(),
            u(&s.t["marts"]["report_orders"]),
            "shop {sid}: hourly analytics orders"
        );
        checked.insert("shop_performance_hourly");

        // Inventory: stock and the last 28 days' units per SKU; slow movers by the rule.
        let skus = s.t["marts"]["skus"].as_array().unwrap();
        let got = rows(
            &app,
            &format!("select sku_id, stock, units_sold_28d from marts.inventory_status where {w}"),
        )
        .await;
        let got: BTreeMap<String, (i64, u64)> = got
            .iter()
            .map(|r| (r[0].clone(), (r[1].parse().unwrap(), r[2].parse().unwrap())))
            .collect();
        let want: BTreeMap<String, (i64, u64)> = skus
            .iter()
            .map(|k| {
                (
                    k["sku_id"].as_str().unwrap().to_string(),
                    (k["stock"].as_i64().unwrap(), u(&k["units_28d"])),
                )
            })
            .collect();
        assert_eq!(got, want, "shop {sid}: inventory_status");
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
        let got: BTreeSet<String> = rows(
            &app,
            &format!("select sku_id from marts.slow_movers where {w}"),
        )
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
        assert_eq!(got, want, "shop {sid}: slow_movers");
        slow += got.len();
        checked.insert("slow_movers");

        // Operations: packages shipped and delivered; returns and refunds per reason.
        let got = rows(&app, &format!("select sum(packages), sum(shipped), sum(delivered) from marts.fulfillment_sla where {w}")).await;
        assert_eq!(
            (
                got[0][0].parse::<u64>().unwrap(),
                got[0][1].parse::<u64>().unwrap(),
                got[0][2].parse::<u64>().unwrap()
            ),
            (
                u(&s.t["packages"]),
                u(&s.t["marts"]["packages_shipped"]),
                u(&s.t["marts"]["packages_delivered"])
            ),
            "shop {sid}: fulfillment_sla"
        );
        checked.insert("fulfillment_sla");
        let got = rows(&app, &format!("select reason, sum(refund_total) from marts.returns_refunds where {w} group by reason")).await;
        let got: BTreeMap<String, i128> =
            got.iter().map(|r| (r[0].clone(), micros(&r[1]))).collect();
        let want: BTreeMap<String, i128> = s.t["marts"]["returns_by_reason"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), micros(v["refund_total"].as_str().unwrap())))
            .collect();
        assert_eq!(got, want, "shop {sid}: returns_refunds refunds per reason");
        checked.insert("returns_refunds");

        // Finance: settlements and settled orders.
        let got = rows(&app, &format!("select sum(settlement_amount), sum(settled_orders) from marts.finance_daily where {w}")).await;
        assert_eq!(
            micros(&got[0][0]),
            micros(s.t["finance"]["settlement_amount"].as_str().unwrap()),
            "shop {sid}: finance_daily settlement"
        );
        assert_eq!(
            got[0][1].parse::<u64>().unwrap(),
            u(&s.t["finance"]["settled_orders"]),
            "shop {sid}: finance_daily settled orders"
        );
        checked.insert("finance_daily");
        let got = rows(
            &app,
            &format!(
                "select count(*) from marts.finance_reconciliation where {w} and state = 'settled'"
            ),
        )
        .await;
        assert_eq!(
            got[0][0].parse::<u64>().unwrap(),
            u(&s.t["finance"]["settled_orders"]),
            "shop {sid}: reconciled settled orders"
        );
        let got = rows(&app, &format!("select count(*) from marts.finance_reconciliation where {w} and state in ('mismatch', 'missing')")).await;
        assert_eq!(
            got[0][0], "0",
            "shop {sid}: the sandbox settles every completed order exactly"
        );
        checked.insert("finance_reconciliation");

        // Buyers per month; cohorts start with their new buyers.
        let months = s.t["marts"]["months"].as_array().unwrap();
        let want: BTreeMap<NaiveDate, (u64, u64, u64)> = months
            .iter()
            .map(|m| {
                (
                    date(m["month"].as_str().unwrap()),
                    (u(&m["buyers"]), u(&m["new_buyers"]), u(&m["repeat_buyers"])),
                )
            })
            .collect();
        let got = rows(&app, &format!("select month, buyers, new_buyers, repeat_buyers from marts.customers_monthly where {w}")).await;
        let got: BTreeMap<NaiveDate, (u64, u64, u64)> = got
            .iter()
            .map(|r| {
                (
                    date(&r[0]),
                    (
                        r[1].parse().unwrap(),
                        r[2].parse().unwrap(),
                        r[3].parse().unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(got, want, "shop {sid}: customers_monthly");
        checked.insert("customers_monthly");
        let got = rows(&app, &format!("select cohort_month, cohort_buyers, active_buyers from marts.customer_retention where {w} and months_since_first = 0")).await;
        let got: BTreeMap<NaiveDate, (u64, u64)> = got
            .iter()
            .map(|r| (date(&r[0]), (r[1].parse().unwrap(), r[2].parse().unwrap())))
            .collect();
        let want: BTreeMap<NaiveDate, (u64, u64)> =
            want.iter().map(|(m, v)| (*m, (v.1, v.1))).collect();
        assert_eq!(got, want, "shop {sid}: customer_retention cohorts");
        checked.insert("customer_retention");

        // anomalies_daily: expected net GMV = median of the same weekday in the 8 weeks before.
        let net: BTreeMap<NaiveDate, f64> = s
            .days
            .iter()
            .map(|(dt, (d, _))| (*dt, micros(d["net_gmv"].as_str().unwrap()) as f64 / 1e6))
            .collect();
        let got = rows(&app, &format!("select order_date, expected, history_days, is_anomaly, score from marts.anomalies_daily where {w} and metric = 'net_gmv'")).await;
        for r in &got {
            let dt = date(&r[0]);
            let hist: Vec<f64> = (1..=8)
                .filter_map(|k| net.get(&(dt - chrono::Duration::days(7 * k))).copied())
                .collect();
            assert_eq!(
                r[2].parse::<usize>().unwrap(),
                hist.len(),
                "shop {sid} {dt}: history days"
            );
            if hist.is_empty() {
                assert_eq!(r[1], "", "shop {sid} {dt}: no expectation without history");
                continue;
            }
            let exp = median(hist.clone());
            assert!(
                close(r[1].parse().unwrap(), exp),
                "shop {sid} {dt}: expected {} vs {exp}",
                r[1]
            );
            let mad = median(hist.iter().map(|x| (x - exp).abs()).collect());
            let scale = (1.4826 * mad).max(0.05 * exp.abs());
            let score = (net[&dt] - exp) / scale;
            let anomaly = hist.len() >= 4 && score.abs() > 3.5;
            assert_eq!(
                r[3] == "true",
                anomaly,
                "shop {sid} {dt}: anomaly flag (score {score})"
            );
        }
        // The seed's campaign days (10.10 here: 2.5× the usual sales) are the anomalies.
        let got = rows(&app, &format!("select is_anomaly, direction, history_days from marts.anomalies_daily where {w} and metric = 'orders' and order_date = date '2026-10-10'")).await;
        assert_eq!(
            got,
            vec![vec!["true".to_string(), "high".into(), got[0][2].clone()]],
            "shop {sid}: 10.10 is an anomaly"
        );
        checked.insert("anomalies_daily");

        // gmv_forecast: mean of the latest 4 same weekdays up to as_of (0 for days without orders).
        let filled = s.net_by_day();
        let got = rows(&app, &format!("select forecast_date, horizon_days, forecast_net_gmv from marts.gmv_forecast where {w} order by forecast_date")).await;
        assert_eq!(got.len(), 30, "shop {sid}: 30 forecast days");
        for r in &got {
            let dt = date(&r[0]);
            assert_eq!((dt - as_of).num_days(), r[1].parse::<i64>().unwrap());
            let same: Vec<i128> = filled
                .iter()
                .rev()
                .filter(|(d, _)| (dt - **d).num_days() % 7 == 0 && (as_of - **d).num_days() < 28)
                .map(|(_, v)| *v)
                .collect();
            let mean = same.iter().sum::<i128>() as f64 / same.len() as f64 / 1e6;
            assert!(
                close(micros(&r[2]) as f64 / 1e6, mean),
                "shop {sid} {dt}: forecast {} vs {mean}",
                r[2]
            );
        }
        checked.insert("gmv_forecast");

        // LIVE: each session's length, peak viewers and the orders and GMV it drove.
        let want: BTreeMap<String, (i64, u64, u64, i128)> = s.t["marts"]["lives"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["id"].as_str().unwrap().to_string(),
                    (
                        l["minutes"].as_i64().unwrap(),
                        u(&l["peak_viewers"]),
                        u(&l["orders"]),
                        micros(l["gmv"].as_str().unwrap()),
                    ),
                )
            })
            .collect();
        assert!(!want.is_empty(), "shop {sid}: no LIVE sessions");
        let got = rows(&app, &format!("select live_id, duration_minutes, peak_viewers, orders, gmv from marts.live_sessions where {w}")).await;
        let got: BTreeMap<String, (i64, u64, u64, i128)> = got
            .iter()
            .map(|r| {
                (
                    r[0].clone(),
                    (
                        r[1].parse().unwrap(),
                        r[2].parse().unwrap(),
                        r[3].parse().unwrap(),
                        micros(&r[4]),
                    ),
                )
            })
            .collect();
        assert_eq!(got, want, "shop {sid}: live_sessions");
        checked.insert("live_sessions");
        let got = rows(&app, &format!("select live_id, count(*), max(minute) + 1, max(session_gmv), sum(orders) from marts.live_minute where {w} group by live_id")).await;
        let got: BTreeMap<String, (i64, u64, i128)> = got
            .iter()
            .map(|r| {
                assert_eq!(
                    r[1], r[2],
                    "shop {sid} live {}: minutes numbered without gaps",
                    r[0]
                );
                (
                    r[0].clone(),
                    (r[1].parse().unwrap(), r[4].parse().unwrap(), micros(&r[3])),
                )
            })
            .collect();
        let want: BTreeMap<String, (i64, u64, i128)> = want
            .iter()
            .map(|(k, v)| (k.clone(), (v.0, v.2, v.3)))
            .collect();
        assert_eq!(got, want, "shop {sid}: live_minute per session");
        checked.insert("live_minute");

        // Videos: views, and the orders and GMV videos drove.
        let got = rows(
            &app,
            &format!(
                "select sum(views), sum(orders), sum(gmv) from marts.video_performance where {w}"
            ),
        )
        .await;
        assert_eq!(
            (
                got[0][0].parse::<u64>().unwrap(),
                got[0][1].parse::<u64>().unwrap(),
                micros(&got[0][2])
            ),
            (
                u(&s.t["marts"]["video_views"]),
                u(&s.t["marts"]["video_orders"]),
                micros(s.t["marts"]["video_gmv"].as_str().unwrap())
            ),
            "shop {sid}: video_performance"
        );
        assert!(
            u(&s.t["marts"]["video_orders"]) > 0,
            "shop {sid}: videos drove no orders"
        );
        checked.insert("video_performance");

        // Promotions: each activity's orders, units, GMV and discount cost while it ran.
        let want: BTreeMap<String, (u64, u64, i128, i128)> = s.t["marts"]["promotions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_string(),
                    (
                        u(&p["orders"]),
                        u(&p["units"]),
                        micros(p["gmv"].as_str().unwrap()),
                        micros(p["discount"].as_str().unwrap()),
                    ),
                )
            })
            .collect();
        assert!(
            want.values().any(|v| v.0 > 0),
            "shop {sid}: no promotion sold anything"
        );
        let got = rows(&app, &format!("select activity_id, orders, units, gmv, discount_cost from marts.promotion_performance where {w}")).await;
        let got: BTreeMap<String, (u64, u64, i128, i128)> = got
            .iter()
            .map(|r| {
                (
                    r[0].clone(),
                    (
                        r[1].parse().unwrap(),
                        r[2].parse().unwrap(),
                        micros(&r[3]),
                        micros(&r[4]),
                    ),
                )
            })
            .collect();
        assert_eq!(got, want, "shop {sid}: promotion_performance");
        checked.insert("promotion_performance");

        // Customer service: conversations, answered ones and their mean first response.
        let got = rows(&app, &format!("select sum(conversations), sum(answered), sum(avg_first_response_minutes * answered) * 60 from marts.customer_service where {w}")).await;
        assert_eq!(
            got[0][0].parse::<u64>().unwrap(),
            u(&s.t["marts"]["cs_conversations"]),
            "shop {sid}: conversations"
        );
        assert_eq!(
            got[0][1].parse::<u64>().unwrap(),
            u(&s.t["marts"]["cs_answered"]),
            "shop {sid}: answered"
        );
        let seconds: f64 = got[0][2].parse().unwrap();
        assert!(
            close(
                seconds,
                s.t["marts"]["cs_first_response_seconds"].as_i64().unwrap() as f64
            ),
            "shop {sid}: first response seconds {seconds}"
        );
        checked.insert("customer_service");

        // Affiliates: per creator, the orders, units, GMV and commission they brought.
        let want: BTreeMap<String, (u64, u64, i128, i128)> = s.t["marts"]["creators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_string(),
                    (
                        u(&c["orders"]),
                        u(&c["units"]),
                        micros(c["gmv"].as_str().unwrap()),
                        micros(c["commission"].as_str().unwrap()),
                    ),
                )
            })
            .filter(|(_, v)| v.0 > 0)
            .collect();
        assert!(!want.is_empty(), "shop {sid}: no affiliate orders");
        let got = rows(&app, &format!("select creator_id, sum(orders), sum(units), sum(gmv), sum(estimated_commission) from marts.creator_performance where {w} group by creator_id")).await;
        let got: BTreeMap<String, (u64, u64, i128, i128)> = got
            .iter()
            .map(|r| {
                (
                    r[0].clone(),
                    (
                        r[1].parse().unwrap(),
                        r[2].parse().unwrap(),
                        micros(&r[3]),
                        micros(&r[4]),
                    ),
                )
            })
            .collect();
        assert_eq!(got, want, "shop {sid}: creator_performance");
        checked.insert("creator_performance");

        // Affiliate partner campaigns: per campaign with products of the shop, the
        // products, TAP orders, units, GMV and the partner's fee (estimated, settled).
        type Camp = (u64, u64, u64, i128, i128, i128);
        let pwant: BTreeMap<String, Camp> = s.t["marts"]["partner_campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_string(),
                    (
                        u(&c["products"]),
                        u(&c["orders"]),
                        u(&c["units"]),
                        micros(c["gmv"].as_str().unwrap()),
                        micros(c["estimated_fee"].as_str().unwrap()),
                        micros(c["actual_fee"].as_str().unwrap()),
                    ),
                )
            })
            .collect();
        assert!(
            pwant.values().any(|c| c.1 > 0 && c.5 > 0),
            "shop {sid}: no settled partner campaign orders"
        );
        let prow = rows(&app, &format!("select campaign_id, products, orders, units, campaign_gmv, estimated_partner_fee, actual_partner_fee from marts.partner_performance where {w}")).await;
        let pgot: BTreeMap<String, Camp> = prow
            .iter()
            .map(|r| {
                (
                    r[0].clone(),
                    (
                        r[1].parse().unwrap(),
                        r[2].parse().unwrap(),
                        r[3].parse().unwrap(),
                        micros(&r[4]),
                        micros(&r[5]),
                        micros(&r[6]),
                    ),
                )
            })
            .collect();
        assert_eq!(pgot, pwant, "shop {sid}: partner_performance");
        checked.insert("partner_performance");
        let got = rows(&app, &format!("select sum(affiliate_orders), sum(affiliate_gmv), sum(estimated_commission) from marts.affiliate_commissions where {w}")).await;
        let total = want.values().fold((0u64, 0i128, 0i128), |a, v| {
            (a.0 + v.0, a.1 + v.2, a.2 + v.3)
        });
        assert_eq!(
            (
                got[0][0].parse::<u64>().unwrap(),
                micros(&got[0][1]),
                micros(&got[0][2])
            ),
            total,
            "shop {sid}: affiliate_commissions"
        );
        checked.insert("affiliate_commissions");
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

/// An order placed at 23:xx shop-local time counts on that local date in every shop, in
/// staging and in the daily and hourly marts — including shops where that is already the
/// next day in UTC (US, Pacific time) or still the same (Asia).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_evening_orders_count_on_their_local_date_in_every_shop() {
    let sb = start(small(3, 3000)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_for(&sb, dir.path(), None).await;
    let sum = app
        .backfill(CLOCK - 32 * 86_400, CLOCK + 1, None, None)
        .await
        .unwrap();
    assert!(sum.errors.is_empty(), "{:?}", sum.errors);
    app.build(Some("+hourly_sales,+gmv_daily"), &Default::default())
        .await
        .unwrap();
    let truth = truth(&sb).await;
    let mut utc_differs = 0;
    for s in truth["shops"].as_array().unwrap() {
        let sid = s["shop_id"].as_str().unwrap();
        let tz: chrono_tz::Tz = s["time_zone"].as_str().unwrap().parse().unwrap();
        // Every order's UTC time, placed in the shop's zone here (not by shoplake).
        let orders = rows(&app, &format!("select o.order_id, cast(cast(o.created_at as bigint) / 1000000 as bigint), cast(o.order_date as varchar) from staging.stg_orders o where shop_id = '{sid}'")).await;
        let mut per_day: BTreeMap<NaiveDate, u64> = BTreeMap::new();
        let mut late = Vec::new();
        for r in &orders {
            let utc = chrono::DateTime::from_timestamp(r[1].parse().unwrap(), 0).unwrap();
            let local = utc.with_timezone(&tz);
            *per_day.entry(local.date_naive()).or_default() += 1;
            assert_eq!(
                date(&r[2]),
                local.date_naive(),
                "shop {sid} order {}: order_date",
                r[0]
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
        let hourly = rows(&app, &format!("select order_date, orders from marts.hourly_sales where shop_id = '{sid}' and local_hour = 23")).await;
        let hourly: HashMap<NaiveDate, u64> = hourly
            .iter()
            .map(|r| (date(&r[0]), r[1].parse().unwrap()))
            .collect();
        for (local, _) in &late {
            assert!(
                hourly.get(local).copied().unwrap_or(0) >= 1,
                "shop {sid}: 23:xx order missing from hourly_sales on {local}"
            );
        }
        let daily = rows(
            &app,
            &format!("select order_date, orders from marts.gmv_daily where shop_id = '{sid}'"),
        )
        .await;
        let daily: BTreeMap<NaiveDate, u64> = daily
            .iter()
            .map(|r| (date(&r[0]), r[1].parse().unwrap()))
            .collect();
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
