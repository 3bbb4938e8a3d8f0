//! Ground truth for the marts, computed from the generated world (orders, their
//! lifecycles, returns, products, SKUs), never from what the API serves or what the SQL
//! models compute: `GET /__sandbox/truth` → `shops[].marts`. tests/marts.rs checks every
//! mart against it.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate, Timelike};
use serde::Serialize;

use super::data::{Dataset, Order, View, local_date, status};
use shoplake_tiktok::region::{Region, format_minor};

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
    let digits = r.minor_digits;
    let sv = &view.shops[si];
    let as_of = sv
        .by_create
        .last()
        .map(|&(t, _)| local_date(r, t))
        .unwrap_or_default();
    let mut tally = OrderTally {
        as_of,
        today: local_date(r, view.clock),
        ..OrderTally::default()
    };
    for &(t, i) in &sv.by_create {
        tally.add(ds, view.clock, r, t, &ds.orders[i as usize]);
    }
    let (video_views, video_orders, video_gmv) = super::media::video_totals(ds, view, si);
    let (cs_conversations, cs_answered, cs_first_response_seconds) =
        super::service::totals(ds, view, si);
    let skus = sku_truths(ds, view.clock, si, as_of, &tally.sku_units);
    let months = tally.months();
    MartTruth {
        as_of: as_of.to_string(),
        visitors: super::analytics::visitors_total(ds, view, si),
        report_orders: tally.report_orders,
        lives: super::media::live_truth(ds, view, si),
        video_views,
        video_orders,
        video_gmv: format_minor(video_gmv, digits),
        promotions: super::promotion::performance_truth(ds, view, si),
        partner_campaigns: super::partner::performance(ds, view, si),
        creators: creator_truths(ds, view, si, digits),
        cs_conversations,
        cs_answered,
        cs_first_response_seconds,
        days: day_truths(tally.days, digits),
        products: product_truths(ds, tally.products, digits),
        skus,
        months,
        packages_shipped: tally.shipped,
        packages_delivered: tally.delivered,
        returns_by_reason: reason_truths(tally.reasons, digits),
    }
}

/// Running totals over one shop's orders as of a clock.
#[derive(Default)]
struct OrderTally {
    /// The shop's latest local order date.
    as_of: NaiveDate,
    /// The shop-local date of the clock.
    today: NaiveDate,
    /// Per local day of placing: the day and its refunded GMV.
    days: BTreeMap<NaiveDate, (MartDay, i64)>,
    /// Product → (units, net GMV, net GMV last 7 days, report units).
    products: BTreeMap<u32, (u64, i64, i64, u64)>,
    /// Orders the analytics reports count.
    report_orders: u64,
    /// Month → buyer → not-cancelled orders.
    buyers: BTreeMap<NaiveDate, HashMap<u64, u32>>,
    /// Buyer → month of their first not-cancelled order.
    first_month: HashMap<u64, NaiveDate>,
    /// Reason → (returns, refund total).
    reasons: BTreeMap<&'static str, (u64, i64)>,
    shipped: u64,
    delivered: u64,
    /// SKU → (units in the last 28 days, in the last 30 days).
    sku_units: HashMap<u32, (u64, u64)>,
}

impl OrderTally {
    /// Counts order `o`, placed at `t`, as of `clock`.
    fn add(&mut self, ds: &Dataset, clock: i64, region: &Region, t: i64, o: &Order) {
        let day = local_date(region, t);
        let (st, _) = o.state_at(clock);
        let hour = chrono::DateTime::from_timestamp(t, 0)
            .expect("valid time")
            .with_timezone(&region.tz)
            .hour();
        let refund = self.add_return(ds, clock, o, st);
        let (d, refunded) = self.days.entry(day).or_default();
        *d.statuses.entry(st).or_default() += 1;
        *d.hours.entry(hour).or_default() += 1;
        if let Some(amount) = refund {
            d.refunded_orders += 1;
            *refunded += amount;
        }
        if let Some((pk, _)) = o.package_at(clock) {
            self.shipped += u64::from(pk != "TO_FULFILL");
            self.delivered += u64::from(pk == "DELIVERED");
        }
        let reported = o.ev.paid <= clock && day < self.today;
        self.report_orders += u64::from(reported);
        self.add_items(ds, o, st, day, reported);
        if st != status::CANCELLED {
            self.add_buyer(o.user_id, day);
        }
    }

    /// Counts `o`'s return request by reason: the amount refunded when the return is
    /// complete and the order (status `st`) not cancelled.
    fn add_return(&mut self, ds: &Dataset, clock: i64, o: &Order, st: &str) -> Option<i64> {
        let plan = ds.return_of(o)?;
        let (rst, _) = plan.state_at(clock)?;
        let amount: i64 = ds.items_of(o)[..plan.items as usize]
            .iter()
            .map(|li| li.sale_price())
            .sum();
        let e = self.reasons.entry(plan.reason).or_default();
        e.0 += 1;
        e.1 += amount;
        (rst == COMPLETE && st != status::CANCELLED).then_some(amount)
    }

    /// Counts `o`'s units per product and SKU (placed on `day`, status `st`).
    fn add_items(&mut self, ds: &Dataset, o: &Order, st: &str, day: NaiveDate, reported: bool) {
        let age = (self.as_of - day).num_days();
        for li in ds.items_of(o) {
            let p = self
                .products
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
            let u = self.sku_units.entry(li.sku).or_default();
            u.0 += u64::from(age < 28);
            u.1 += u64::from(age < 30);
        }
    }

    /// Counts a not-cancelled order of `user_id` placed on `day`.
    fn add_buyer(&mut self, user_id: u64, day: NaiveDate) {
        let month = day.with_day(1).expect("first of month");
        *self
            .buyers
            .entry(month)
            .or_default()
            .entry(user_id)
            .or_default() += 1;
        self.first_month
            .entry(user_id)
            .and_modify(|m| *m = (*m).min(month))
            .or_insert(month);
    }

    /// Buyers per month: all, new ones, and those with two orders or more.
    fn months(&self) -> Vec<MonthTruth> {
        self.buyers
            .iter()
            .map(|(m, bs)| MonthTruth {
                month: m.to_string(),
                buyers: bs.len() as u64,
                new_buyers: bs.keys().filter(|b| self.first_month[*b] == *m).count() as u64,
                repeat_buyers: bs.values().filter(|n| **n >= 2).count() as u64,
            })
            .collect()
    }
}

/// Shop `si`'s SKUs as of `clock` (a SKU change swaps one; see `realism`).
fn sku_truths(
    ds: &Dataset,
    clock: i64,
    si: usize,
    as_of: NaiveDate,
    sku_units: &HashMap<u32, (u64, u64)>,
) -> Vec<SkuTruth> {
    (0..ds.products.len() as u32)
        .filter(|&i| ds.products[i as usize].shop == si)
        .filter(|&i| ds.products[i as usize].create_time <= clock)
        .flat_map(|i| ds.skus_at(i, clock).into_iter().map(move |k| (i, k)))
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
        .collect()
}

/// Shop `si`'s creators with the not-cancelled orders they brought.
fn creator_truths(ds: &Dataset, view: &View, si: usize, digits: u32) -> Vec<CreatorTruth> {
    super::affiliate::creators(ds, si)
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let (orders, units, gmv, commission) = super::affiliate::creator_sales(ds, view, si, k);
            CreatorTruth {
                id: c.id.clone(),
                orders,
                units,
                gmv: format_minor(gmv, digits),
                commission: format_minor(commission, digits),
            }
        })
        .collect()
}

/// The days with their date and refunded GMV filled in.
fn day_truths(days: BTreeMap<NaiveDate, (MartDay, i64)>, digits: u32) -> Vec<MartDay> {
    days.into_iter()
        .map(|(date, (mut d, refunded))| {
            d.date = date.to_string();
            d.refunded_gmv = format_minor(refunded, digits);
            d
        })
        .collect()
}

/// Products with sales: (units, net GMV, net GMV last 7 days, report units) per product.
fn product_truths(
    ds: &Dataset,
    products: BTreeMap<u32, (u64, i64, i64, u64)>,
    digits: u32,
) -> Vec<ProductTruth> {
    products
        .into_iter()
        .map(|(p, (units, gmv, gmv_7d, report_units))| ProductTruth {
            product_id: ds.products[p as usize].id.clone(),
            brand: ds.products[p as usize].brand,
            units,
            net_gmv: format_minor(gmv, digits),
            net_gmv_7d: format_minor(gmv_7d, digits),
            report_units,
        })
        .collect()
}

/// Returns and refund totals per reason.
fn reason_truths(
    reasons: BTreeMap<&'static str, (u64, i64)>,
    digits: u32,
) -> BTreeMap<&'static str, ReasonTruth> {
    reasons
        .into_iter()
        .map(|(k, (n, amount))| {
            (
                k,
                ReasonTruth {
                    returns: n,
                    refund_total: format_minor(amount, digits),
                },
            )
        })
        .collect()
}
