//! Ground truth for the marts, computed from the generated world (orders, their
//! lifecycles, returns, products, SKUs), never from what the API serves or what the SQL
//! models compute: `GET /__sandbox/truth` → `shops[].marts`. tests/marts.rs checks every
//! mart against it.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate, Timelike};
use serde::Serialize;

use super::data::{Dataset, View, local_date, status};
use shoplake_tiktok::region::format_minor;

const COMPLETE: &str = "RETURN_OR_REFUND_REQUEST_COMPLETE";

/// One shop-local day.
#[derive(Serialize, Default)]
pub struct MartDay {
    date: String,
    /// Not-cancelled orders placed that day whose return or refund is complete.
    refunded_orders: u64,
    /// Σ refunded sale prices of those.
    refunded_gmv: String,
    /// Orders placed that day by their status now.
    statuses: BTreeMap<&'static str, u64>,
    /// Orders placed that day by shop-local hour of placing.
    hours: BTreeMap<u32, u64>,
}

/// A product with sales.
#[derive(Serialize)]
pub struct ProductTruth {
    product_id: String,
    /// The brand the seller set on the listing ("" when none).
    brand: &'static str,
    /// Units of not-cancelled orders.
    units: u64,
    net_gmv: String,
    /// net_gmv of orders placed in the 7 local days up to as_of.
    net_gmv_7d: String,
    /// Units the analytics reports count: orders paid by the clock, placed before today
    /// (local), cancelled or not.
    report_units: u64,
}

/// A SKU.
#[derive(Serialize)]
pub struct SkuTruth {
    sku_id: String,
    product_id: String,
    stock: i64,
    /// Units of not-cancelled orders placed in the 28 local days up to the shop's latest
    /// order date.
    units_28d: u64,
    /// The same over 30 days.
    units_30d: u64,
    /// as_of − the UTC date the product was created, in days.
    listed_days: i64,
}

/// A creator and what they brought (not-cancelled orders).
#[derive(Serialize)]
pub struct CreatorTruth {
    id: String,
    orders: u64,
    units: u64,
    gmv: String,
    commission: String,
}

/// One shop-local month of buyers (not-cancelled orders).
#[derive(Serialize)]
pub struct MonthTruth {
    month: String,
    buyers: u64,
    new_buyers: u64,
    repeat_buyers: u64,
}

/// Returns per reason.
#[derive(Serialize)]
pub struct ReasonTruth {
    returns: u64,
    refund_total: String,
}

/// What the marts should show for one shop.
#[derive(Serialize)]
pub struct MartTruth {
    /// The shop's latest local order date.
    as_of: String,
    days: Vec<MartDay>,
    products: Vec<ProductTruth>,
    skus: Vec<SkuTruth>,
    months: Vec<MonthTruth>,
    packages_shipped: u64,
    packages_delivered: u64,
    returns_by_reason: BTreeMap<&'static str, ReasonTruth>,
    /// Σ visitors the analytics API reports over the shop's whole history.
    visitors: u64,
    /// Orders the analytics reports count (paid by the clock, placed before today).
    report_orders: u64,
    /// LIVE sessions with what they drove.
    lives: Vec<super::media::LiveTruth>,
    /// Σ video views over the reported days, and the paid orders and GMV videos drove.
    video_views: u64,
    video_orders: u64,
    video_gmv: String,
    /// Creators with the not-cancelled orders they brought.
    creators: Vec<CreatorTruth>,
    /// Affiliate partner campaigns with what they brought the shop.
    partner_campaigns: Vec<super::partner::CampaignTruth>,
    /// Discount activities with what their products sold while they ran.
    promotions: Vec<super::promotion::PromotionTruth>,
    /// Conversations opened by the clock, answered ones, Σ first-response seconds.
    cs_conversations: u64,
    cs_answered: u64,
    cs_first_response_seconds: i64,
}

/// The marts' truth for shop `si` as of the view's clock.
pub fn truth(ds: &Dataset, view: &View, si: usize) -> MartTruth {
    let r = ds.shops[si].region;
    let money = |v: i64| format_minor(v, r.minor_digits);
    let sv = &view.shops[si];
    let mut days: BTreeMap<NaiveDate, (MartDay, i64)> = BTreeMap::new();
    // product → (units, net GMV, net GMV last 7 days, report units)
    let mut products: BTreeMap<u32, (u64, i64, i64, u64)> = BTreeMap::new();
    let today = local_date(r, view.clock);
    let mut report_orders = 0;
    let mut buyers: BTreeMap<NaiveDate, HashMap<u64, u32>> = BTreeMap::new();
    let mut first_month: HashMap<u64, NaiveDate> = HashMap::new();
    let mut reasons: BTreeMap<&'static str, (u64, i64)> = BTreeMap::new();
    let (mut shipped, mut delivered) = (0, 0);
    let as_of = sv
        .by_create
        .last()
        .map(|&(t, _)| local_date(r, t))
        .unwrap_or_default();
    let mut sku_units: HashMap<u32, (u64, u64)> = HashMap::new();
    for &(t, i) in &sv.by_create {
        let o = &ds.orders[i as usize];
        let day = local_date(r, t);
        let (st, _) = o.state_at(view.clock);
        let (d, refunded) = days.entry(day).or_default();
        *d.statuses.entry(st).or_default() += 1;
        let local = chrono::DateTime::from_timestamp(t, 0)
            .expect("valid time")
            .with_timezone(&r.tz);
        *d.hours.entry(local.hour()).or_default() += 1;
        if let Some((pk, _)) = o.package_at(view.clock) {
            shipped += u64::from(pk != "TO_FULFILL");
            delivered += u64::from(pk == "DELIVERED");
        }
        if let Some(plan) = ds.return_of(o)
            && let Some((rst, _)) = plan.state_at(view.clock)
        {
            let amount: i64 = ds.items_of(o)[..plan.items as usize]
                .iter()
                .map(|li| li.sale_price())
                .sum();
            let e = reasons.entry(plan.reason).or_default();
            e.0 += 1;
            e.1 += amount;
            if rst == COMPLETE && st != status::CANCELLED {
                d.refunded_orders += 1;
                *refunded += amount;
            }
        }
        let reported = o.ev.paid <= view.clock && day < today;
        report_orders += u64::from(reported);
        let age = (as_of - day).num_days();
        for li in ds.items_of(o) {
            let p = products
                .entry(ds.skus[li.sku as usize].product)
                .or_default();
            p.3 += u64::from(reported);
            if st == status::CANCELLED {
                continue;
            }
            p.0 += 1;
            p.1 += li.sale_price();
            if age < 7 {
                p.2 += li.sale_price();
            }
            let u = sku_units.entry(li.sku).or_default();
            u.0 += u64::from(age < 28);
            u.1 += u64::from(age < 30);
        }
        if st == status::CANCELLED {
            continue;
        }
        let month = day.with_day(1).expect("first of month");
        *buyers
            .entry(month)
            .or_default()
            .entry(o.user_id)
            .or_default() += 1;
        first_month
            .entry(o.user_id)
            .and_modify(|m| *m = (*m).min(month))
            .or_insert(month);
    }
    let (video_views, video_orders, video_gmv) = super::media::video_totals(ds, view, si);
    let (cs_conversations, cs_answered, cs_first_response_seconds) =
        super::service::totals(ds, view, si);
    // SKUs as of the clock (a SKU change swaps one; see `realism`).
    let skus = (0..ds.products.len() as u32)
        .filter(|&i| ds.products[i as usize].shop == si)
        .filter(|&i| ds.products[i as usize].create_time <= view.clock)
        .flat_map(|i| ds.skus_at(i, view.clock).into_iter().map(move |k| (i, k)))
        .map(|(i, k)| (&ds.products[i as usize], k))
        .map(|(p, k)| SkuTruth {
            sku_id: ds.skus[k as usize].id.clone(),
            product_id: p.id.clone(),
            stock: ds.skus[k as usize].stock,
            units_28d: sku_units.get(&k).map_or(0, |u| u.0),
            units_30d: sku_units.get(&k).map_or(0, |u| u.1),
            listed_days: (as_of
                - chrono::DateTime::from_timestamp(p.create_time, 0)
                    .expect("valid time")
                    .date_naive())
            .num_days(),
        })
        .collect();
    let months = buyers
        .iter()
        .map(|(m, bs)| MonthTruth {
            month: m.to_string(),
            buyers: bs.len() as u64,
            new_buyers: bs.keys().filter(|b| first_month[*b] == *m).count() as u64,
            repeat_buyers: bs.values().filter(|n| **n >= 2).count() as u64,
        })
        .collect();
    MartTruth {
        as_of: as_of.to_string(),
        visitors: super::analytics::visitors_total(ds, view, si),
        report_orders,
        lives: super::media::live_truth(ds, view, si),
        video_views,
        video_orders,
        video_gmv: money(video_gmv),
        promotions: super::promotion::performance_truth(ds, view, si),
        partner_campaigns: super::partner::performance(ds, view, si),
        creators: super::affiliate::creators(ds, si)
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let (orders, units, gmv, commission) =
                    super::affiliate::creator_sales(ds, view, si, k);
                CreatorTruth {
                    id: c.id.clone(),
                    orders,
                    units,
                    gmv: money(gmv),
                    commission: money(commission),
                }
            })
            .collect(),
        cs_conversations,
        cs_answered,
        cs_first_response_seconds,
        days: days
            .into_iter()
            .map(|(date, (mut d, refunded))| {
                d.date = date.to_string();
                d.refunded_gmv = money(refunded);
                d
            })
            .collect(),
        products: products
            .into_iter()
            .map(|(p, (units, gmv, gmv_7d, report_units))| ProductTruth {
                product_id: ds.products[p as usize].id.clone(),
                brand: ds.products[p as usize].brand,
                units,
                net_gmv: money(gmv),
                net_gmv_7d: money(gmv_7d),
                report_units,
            })
            .collect(),
        skus,
        months,
        packages_shipped: shipped,
        packages_delivered: delivered,
        returns_by_reason: reasons
            .into_iter()
            .map(|(k, (n, amount))| {
                (
                    k,
                    ReasonTruth {
                        returns: n,
                        refund_total: money(amount),
                    },
                )
            })
            .collect(),
    }
}
