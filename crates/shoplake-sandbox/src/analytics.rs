//! Analytics reports, computed from the seed's orders so they agree with the order data:
//! a day's GMV is Σ `sub_total` of the orders created that shop-local day that were paid
//! (cancelled-after-payment included, unpaid ones not), its orders and units are theirs.
//! Traffic is generated per shop and day (and per product) from the seed: visitors such
//! that the conversion rate lands between 1.5% and 4.5%, 1.4–2.6 page views each.
//!
//! - `GET /analytics/202509/shop/performance?start_date_ge&end_date_lt&granularity&currency`
//! - `GET /analytics/202509/shop_products/performance` and `…/shop_skus/performance`
//!   (page_token): per product / SKU over the date range.
//! - `GET /analytics/202510/shop/performance/{date}/performance_per_hour`: one local day by
//!   hour.
//!
//! Dates are `YYYY-MM-DD` in the shop's time zone (start inclusive, end exclusive); data
//! is ready through yesterday (`latest_available_date`). `currency` is `LOCAL` (default)
//! or `USD`; anything else is refused like the real API does (36009004, invalid param).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde_json::{Value, json};

use super::data::{Dataset, local_date, local_midnight};
use super::gate::ApiFault;
use super::paging::{fingerprint, page_json, page_size, token_page};
use super::rng::Rng;
use super::{Ctx, Sandbox};
use shoplake_tiktok::region::Minor;

/// One shop-local day's sales.
#[derive(Default, Clone, Copy)]
pub struct DaySales {
    /// Paid orders created that day.
    pub orders: u64,
    /// Their units (line items).
    pub units: u64,
    /// Σ their sub_total, minor units.
    pub gmv: i64,
}

/// The shop's orders created in `[from, to)` and paid by the clock: what every report
/// counts. (create_time, order).
pub(super) fn paid_orders<'a>(
    ds: &'a Dataset,
    view: &'a super::data::View,
    shop: usize,
    from: i64,
    to: i64,
) -> impl Iterator<Item = (i64, &'a super::data::Order)> + 'a {
    let idx = &view.shops[shop].by_create;
    let lo = idx.partition_point(|&(t, _)| t < from);
    idx[lo..]
        .iter()
        .take_while(move |&&(t, _)| t < to)
        .map(|&(t, i)| (t, &ds.orders[i as usize]))
        .filter(|(_, o)| o.ev.paid <= view.clock)
}

/// The unix range of the whole local days a report covers: from the start date to the end
/// date or the first day with no data yet, whichever is earlier.
pub(super) fn span(ds: &Dataset, shop: usize, d: &Dates) -> (i64, i64) {
    let region = ds.shops[shop].region;
    let last = d.end.min(d.latest.succ_opt().unwrap_or(d.latest));
    let from = local_midnight(region, d.start);
    (from, local_midnight(region, last).max(from))
}

/// Sales per local day of shop `shop` for orders created in `[from, to)` (unix seconds),
/// as the clock sees them.
fn sales_by_day(
    ds: &Dataset,
    ctx: &Ctx,
    shop: usize,
    from: i64,
    to: i64,
) -> BTreeMap<NaiveDate, DaySales> {
    let region = ds.shops[shop].region;
    let mut out: BTreeMap<NaiveDate, DaySales> = BTreeMap::new();
    for (t, o) in paid_orders(ds, &ctx.view, shop, from, to) {
        let d = out.entry(local_date(region, t)).or_default();
        d.orders += 1;
        d.units += o.items.len() as u64;
        d.gmv += ds.sub_total(o);
    }
    out
}

/// Visitors and page views of a shop's day: seeded, consistent with its orders.
fn traffic(ds: &Dataset, shop: usize, day: NaiveDate, orders: u64, salt: u64) -> (u64, u64) {
    let key = (shop as u64) << 48 ^ day.num_days_from_ce() as u64 ^ salt << 20;
    let mut r = Rng::new(ds.config.seed ^ 0x5452_4146, key);
    let conversion = 0.015 + r.f64() * 0.03;
    let visitors =
        ((orders as f64 / conversion).round() as u64).max(orders + r.range(0, 40) as u64);
    let views = (visitors as f64 * (1.4 + r.f64() * 1.2)).round() as u64;
    (visitors, views)
}

/// Σ visitors the daily shop report gives over the shop's whole history (for the truth).
pub fn visitors_total(ds: &Dataset, view: &super::data::View, shop: usize) -> u64 {
    let region = ds.shops[shop].region;
    let today = local_date(region, view.clock);
    let mut orders: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for (t, _) in paid_orders(ds, view, shop, i64::MIN, i64::MAX) {
        *orders.entry(local_date(region, t)).or_default() += 1;
    }
    let mut total = 0;
    let mut day = opened(ds, shop);
    while day < today {
        total += traffic(ds, shop, day, orders.get(&day).copied().unwrap_or(0), 0).0;
        day = day.succ_opt().expect("date");
    }
    total
}

/// The shop-local day the shop opened: the first day of the seed's history.
pub(super) fn opened(ds: &Dataset, shop: usize) -> NaiveDate {
    local_date(
        ds.shops[shop].region,
        ds.config.clock - i64::from(ds.config.days) * 86_400,
    )
}

pub(super) struct Dates {
    pub(super) start: NaiveDate,
    pub(super) end: NaiveDate,
    pub(super) latest: NaiveDate,
}

pub(super) fn dates(sb: &Sandbox, ctx: &Ctx, shop: usize) -> Result<Dates, ApiFault> {
    let parse = |name: &str| -> Result<NaiveDate, ApiFault> {
        let v = ctx
            .q(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiFault::param(format_args!("{name} is required")))?;
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| ApiFault::param(format_args!("{name} must be YYYY-MM-DD, got {v:?}")))
    };
    let (start, end) = (parse("start_date_ge")?, parse("end_date_lt")?);
    if start >= end {
        return Err(ApiFault::param("start_date_ge must be before end_date_lt"));
    }
    let region = sb.data.shops[shop].region;
    let today = local_date(region, ctx.view.clock);
    Ok(Dates {
        start,
        end,
        latest: today.pred_opt().unwrap_or(today),
    })
}

/// `LOCAL` (default) or `USD`: the currency and the minor-unit divisor to convert by.
pub(super) fn currency(
    sb: &Sandbox,
    ctx: &Ctx,
    shop: usize,
) -> Result<(&'static str, f64), ApiFault> {
    let region = sb.data.shops[shop].region;
    match ctx.q("currency").unwrap_or("LOCAL") {
        "LOCAL" | "" => Ok((region.currency, 1.0)),
        "USD" => Ok(("USD", usd_rate(region.currency))),
        other => Err(ApiFault::param(format_args!(
            "invalid param error: currency {other:?} is not one of USD, LOCAL"
        ))),
    }
}

/// Local currency per USD (fixed, for the sandbox).
fn usd_rate(currency: &str) -> f64 {
    match currency {
        "GBP" => 0.79,
        "IDR" => 15_500.0,
        "THB" => 35.0,
        "VND" => 24_500.0,
        "MYR" => 4.6,
        "SGD" => 1.34,
        "PHP" => 56.0,
        _ => 1.0,
    }
}

pub(super) fn money(amount_minor: i64, digits: u32, currency: &'static str, rate: f64) -> Value {
    let amount = if rate == 1.0 {
        Minor {
            minor: amount_minor,
            digits,
        }
        .to_string()
    } else {
        let major = amount_minor as f64 / 10f64.powi(digits as i32) / rate;
        format!("{major:.2}")
    };
    json!({ "amount": amount, "currency": currency })
}

/// `GET /analytics/202509/shop/performance`.
pub fn shop_performance(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let d = dates(sb, ctx, shop)?;
    let (cur, rate) = currency(sb, ctx, shop)?;
    let daily = match ctx.q("granularity").unwrap_or("ALL") {
        "1D" => true,
        "ALL" | "" => false,
        other => {
            return Err(ApiFault::param(format_args!(
                "invalid param error: granularity {other:?} is not one of ALL, 1D"
            )));
        }
    };
    let region = ds.shops[shop].region;
    let last = d.end.min(d.latest.succ_opt().unwrap_or(d.latest));
    let (from, to) = span(ds, shop, &d);
    let sales = sales_by_day(ds, ctx, shop, from, to);
    let mut days = Vec::new();
    // No report before the shop opened (the first day of the seed's history).
    let mut day = d.start.max(opened(ds, shop));
    while day < last {
        days.push(day);
        day = day.succ_opt().expect("date");
    }
    let interval = |span: &[NaiveDate]| -> Value {
        let (mut orders, mut units, mut gmv, mut visitors, mut views) = (0, 0, 0, 0, 0);
        for day in span {
            let s = sales.get(day).copied().unwrap_or_default();
            let (v, p) = traffic(ds, shop, *day, s.orders, 0);
            orders += s.orders;
            units += s.units;
            gmv += s.gmv;
            visitors += v;
            views += p;
        }
        let n = span.len().max(1) as f64;
        json!({
            "start_date": span.first().map(ToString::to_string),
            "end_date": span.last().and_then(|d| d.succ_opt()).map(|d| d.to_string()),
            "gmv": { "amount": money(gmv, region.minor_digits, cur, rate)["amount"], "currency": cur },
            "orders_count": orders,
            "sku_orders_count": orders,
            "items_sold": units,
            "avg_visitors": (visitors as f64 / n).round() as u64,
            "avg_page_views": (views as f64 / n).round() as u64,
            "avg_conversation_rate": if visitors == 0 { 0.0 } else { ((orders as f64 / visitors as f64) * 10_000.0).round() / 10_000.0 },
        })
    };
    let intervals: Vec<Value> = if days.is_empty() {
        Vec::new()
    } else if daily {
        days.iter()
            .map(|d| interval(std::slice::from_ref(d)))
            .collect()
    } else {
        vec![interval(&days)]
    };
    Ok(report(intervals, d.latest))
}

/// The body of a date-range report: its intervals and the latest day with data.
pub(super) fn report(intervals: Vec<Value>, latest: NaiveDate) -> Vec<u8> {
    let body = json!({
        "performance": { "intervals": intervals },
        "latest_available_date": latest.to_string(),
    });
    serde_json::to_vec(&body).expect("serializable")
}

/// Product or SKU rows of the performance lists.
#[derive(Clone, Copy, PartialEq)]
enum Grain {
    Product,
    Sku,
}

/// `GET /analytics/202509/shop_products/performance`: every product with a paid order in
/// the range, by `sort_field` gmv (default), items_sold or orders, descending.
pub fn product_performance(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    performance_list(sb, ctx, Grain::Product)
}

/// `GET /analytics/202509/shop_skus/performance`: the same per SKU. Its `sort_field`
/// values differ from the product list's (gmv, sku_orders, units_sold): a product-list
/// value is refused, as the real API does.
pub fn sku_performance(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    performance_list(sb, ctx, Grain::Sku)
}

fn performance_list(sb: &Sandbox, ctx: &Ctx, grain: Grain) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let d = dates(sb, ctx, shop)?;
    let (cur, rate) = currency(sb, ctx, shop)?;
    let size = page_size(ctx.q("page_size"), 100)?;
    let sort = ctx.q("sort_field").unwrap_or("gmv");
    let (orders_key, units_key) = match grain {
        Grain::Product => ("orders", "items_sold"),
        Grain::Sku => ("sku_orders", "units_sold"),
    };
    if ![("gmv"), orders_key, units_key].contains(&sort) {
        return Err(ApiFault::param(format_args!(
            "invalid param error: sort_field {sort:?} is not one of gmv, {orders_key}, {units_key}"
        )));
    }
    let region = ds.shops[shop].region;
    let (from, to) = span(ds, shop, &d);
    // product or SKU index → (orders, units, gmv)
    let mut per: BTreeMap<u32, (u64, u64, i64)> = BTreeMap::new();
    for (_, o) in paid_orders(ds, &ctx.view, shop, from, to) {
        let mut seen = Vec::new();
        for it in ds.items_of(o) {
            let k = match grain {
                Grain::Product => ds.skus[it.sku as usize].product,
                Grain::Sku => it.sku,
            };
            let e = per.entry(k).or_default();
            if !seen.contains(&k) {
                e.0 += 1;
                seen.push(k);
            }
            e.1 += 1;
            e.2 += it.sale_price();
        }
    }
    let mut rows: Vec<(i64, u32)> = per
        .iter()
        .map(|(k, (o, u, g))| {
            let key = match sort {
                "gmv" => *g,
                s if s == orders_key => *o as i64,
                _ => *u as i64,
            };
            (-key, *k)
        })
        .collect();
    rows.sort_unstable();
    let fp = fingerprint(&[
        &shop.to_le_bytes(),
        if grain == Grain::Product {
            b"product_performance"
        } else {
            b"sku_performance_"
        },
        d.start.to_string().as_bytes(),
        d.end.to_string().as_bytes(),
        sort.as_bytes(),
    ]);
    let (page, next, total) = token_page(ctx.q("page_token"), fp, &rows, false, size, |_| true)?;
    let list: Vec<Value> = page
        .iter()
        .map(|&(_, k)| {
            let (orders, units, gmv) = per[&k];
            match grain {
                Grain::Product => {
                    let (visitors, views) = traffic(ds, shop, d.start, orders, u64::from(k) + 1);
                    json!({
                        "id": ds.products[k as usize].id,
                        "gmv": money(gmv, region.minor_digits, cur, rate),
                        "orders": orders,
                        "units_sold": units,
                        "page_views": views,
                        "avg_page_visitors": visitors,
                        "click_through_rate": if views == 0 { 0.0 } else { ((orders as f64 / views as f64) * 10_000.0).round() / 10_000.0 },
                    })
                }
                Grain::Sku => {
                    let sku = &ds.skus[k as usize];
                    json!({
                        "id": sku.id,
                        "product_id": ds.products[sku.product as usize].id,
                        "gmv": money(gmv, region.minor_digits, cur, rate),
                        "sku_orders": orders,
                        "units_sold": units,
                    })
                }
            }
        })
        .collect();
    let field = if grain == Grain::Product {
        "products"
    } else {
        "skus"
    };
    Ok(page_json(field, next, total, &list))
}

/// `GET /analytics/202510/shop/performance/{date}/performance_per_hour`: the day's 24
/// shop-local hours (fewer or more on a DST change day).
pub fn shop_performance_per_hour(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let (cur, rate) = currency(sb, ctx, shop)?;
    let raw = ctx.params.get("date").map_or("", String::as_str);
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| ApiFault::param(format_args!("date must be YYYY-MM-DD, got {raw:?}")))?;
    let region = ds.shops[shop].region;
    let today = local_date(region, ctx.view.clock);
    if day < opened(ds, shop) {
        return Err(ApiFault::param(format_args!(
            "date {day} is before the shop opened ({})",
            opened(ds, shop)
        )));
    }
    if day >= today {
        return Err(ApiFault::param(format_args!(
            "date {day} is not available yet (latest: {})",
            today.pred_opt().unwrap_or(today)
        )));
    }
    let start = local_midnight(region, day);
    let end = local_midnight(region, day.succ_opt().expect("date"));
    let hours = ((end - start) / 3600) as usize;
    let mut per = vec![DaySales::default(); hours];
    for (t, o) in paid_orders(ds, &ctx.view, shop, start, end) {
        let h = &mut per[((t - start) / 3600) as usize];
        h.orders += 1;
        h.units += o.items.len() as u64;
        h.gmv += ds.sub_total(o);
    }
    let intervals: Vec<Value> = per
        .iter()
        .enumerate()
        .map(|(h, s)| {
            let (visitors, views) = traffic(ds, shop, day, s.orders, 100 + h as u64);
            json!({
                "start_time": start + h as i64 * 3600,
                "end_time": start + (h as i64 + 1) * 3600,
                "gmv": money(s.gmv, region.minor_digits, cur, rate),
                "orders_count": s.orders,
                "items_sold": s.units,
                "visitors": visitors / 12,
                "page_views": views / 12,
            })
        })
        .collect();
    let body = json!({
        "performance": { "intervals": intervals },
        "latest_available_timestamp": local_midnight(region, today),
    });
    Ok(serde_json::to_vec(&body).expect("serializable"))
}

/// Rows the analytics reports give shop `shop` over its whole history (from the data's
/// first day to yesterday, shop-local), by raw table.
pub fn truth(ds: &Dataset, view: &super::data::View, shop: usize) -> BTreeMap<&'static str, u64> {
    let region = ds.shops[shop].region;
    let today = local_date(region, view.clock);
    let first = opened(ds, shop);
    let mut days_with_orders = std::collections::BTreeSet::new();
    let mut product_days = std::collections::BTreeSet::new();
    let mut sku_days = std::collections::BTreeSet::new();
    for &(t, i) in &view.shops[shop].by_create {
        let day = local_date(region, t);
        if day >= today {
            continue;
        }
        days_with_orders.insert(day);
        let o = &ds.orders[i as usize];
        if o.ev.paid > view.clock {
            continue;
        }
        for it in ds.items_of(o) {
            product_days.insert((day, ds.skus[it.sku as usize].product));
            sku_days.insert((day, it.sku));
        }
    }
    // Every day of the history is a row (zero-sales days too); each has its local hours.
    let (mut days, mut hours) = (0u64, 0u64);
    let mut day = first;
    while day < today {
        let next = day.succ_opt().expect("date");
        days += 1;
        hours += ((local_midnight(region, next) - local_midnight(region, day)) / 3600) as u64;
        day = next;
    }
    BTreeMap::from([
        ("shop_performance", days),
        ("shop_performance_hourly", hours),
        ("product_performance", product_days.len() as u64),
        ("sku_performance", sku_days.len() as u64),
        ("_days_with_orders", days_with_orders.len() as u64),
    ])
}

/// Paid orders, units and GMV of the items matching `item` on each shop-local day.
fn item_sales(
    ds: &Dataset,
    view: &super::data::View,
    shop: usize,
    days: &[NaiveDate],
    item: impl Fn(&super::data::LineItem) -> bool,
) -> Vec<DaySales> {
    let region = ds.shops[shop].region;
    days.iter()
        .map(|day| {
            let from = local_midnight(region, *day);
            let to = local_midnight(region, day.succ_opt().expect("date"));
            let mut s = DaySales::default();
            for (_, o) in paid_orders(ds, view, shop, from, to) {
                let mine: Vec<_> = ds.items_of(o).iter().filter(|it| item(it)).collect();
                if !mine.is_empty() {
                    s.orders += 1;
                    s.units += mine.len() as u64;
                    s.gmv += mine.iter().map(|it| it.sale_price()).sum::<i64>();
                }
            }
            s
        })
        .collect()
}

/// The days a detail report covers and its granularity (`1D` per day, `ALL` one interval).
fn detail_days(
    sb: &Sandbox,
    ctx: &Ctx,
    shop: usize,
) -> Result<(Dates, Vec<NaiveDate>, bool), ApiFault> {
    let d = dates(sb, ctx, shop)?;
    let daily = match ctx.q("granularity").unwrap_or("ALL") {
        "1D" => true,
        "ALL" | "" => false,
        other => {
            return Err(ApiFault::param(format_args!(
                "invalid param error: granularity {other:?} is not one of ALL, 1D"
            )));
        }
    };
    let mut days = Vec::new();
    let mut day = d.start.max(opened(&sb.data, shop));
    while day < d.end && day <= d.latest {
        days.push(day);
        day = day.succ_opt().expect("date");
    }
    Ok((d, days, daily))
}

/// Groups `days` into the intervals asked for: one per day, or one for all of them.
fn grouped(days: &[NaiveDate], daily: bool) -> Vec<&[NaiveDate]> {
    if days.is_empty() {
        Vec::new()
    } else if daily {
        days.chunks(1).collect()
    } else {
        vec![days]
    }
}

/// `GET /analytics/202509/shop_products/{product_id}/performance`: one product's days,
/// the same numbers the product list gives for each day.
pub fn product_detail(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let (cur, rate) = currency(sb, ctx, shop)?;
    let id = ctx.params.get("product_id").map_or("", String::as_str);
    let k = ds
        .product_index
        .get(id)
        .copied()
        .filter(|&k| ds.products[k as usize].shop == shop)
        .ok_or_else(|| {
            ApiFault::param(format_args!(
                "product_id {id:?} is not a product of this shop"
            ))
        })?;
    let (d, days, daily) = detail_days(sb, ctx, shop)?;
    let sales = item_sales(ds, &ctx.view, shop, &days, |it| {
        ds.skus[it.sku as usize].product == k
    });
    let by_day: BTreeMap<NaiveDate, DaySales> = days.iter().copied().zip(sales).collect();
    let region = ds.shops[shop].region;
    let intervals: Vec<Value> = grouped(&days, daily)
        .into_iter()
        .map(|span| {
            let (mut orders, mut units, mut gmv, mut visitors, mut views) = (0, 0, 0, 0, 0);
            for day in span {
                let s = by_day[day];
                orders += s.orders;
                units += s.units;
                gmv += s.gmv;
            }
            // Traffic as the list reports it for a range starting on the first day.
            let (v, p) = traffic(ds, shop, span[0], orders, u64::from(k) + 1);
            visitors += v;
            views += p;
            json!({
                "start_date": span[0].to_string(),
                "end_date": span[span.len() - 1].succ_opt().map(|d| d.to_string()),
                "gmv": money(gmv, region.minor_digits, cur, rate),
                "orders": orders,
                "units_sold": units,
                "page_views": views,
                "avg_page_visitors": visitors,
            })
        })
        .collect();
    Ok(report(intervals, d.latest))
}

/// `GET /analytics/202509/shop_skus/{sku_id}/performance`: one SKU's days.
pub fn sku_detail(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let (cur, rate) = currency(sb, ctx, shop)?;
    let id = ctx.params.get("sku_id").map_or("", String::as_str);
    let k = ds
        .skus
        .iter()
        .position(|s| s.id == id && ds.products[s.product as usize].shop == shop)
        .ok_or_else(|| ApiFault::param(format_args!("sku_id {id:?} is not a SKU of this shop")))?
        as u32;
    let (d, days, daily) = detail_days(sb, ctx, shop)?;
    let sales = item_sales(ds, &ctx.view, shop, &days, |it| it.sku == k);
    let by_day: BTreeMap<NaiveDate, DaySales> = days.iter().copied().zip(sales).collect();
    let region = ds.shops[shop].region;
    let intervals: Vec<Value> = grouped(&days, daily)
        .into_iter()
        .map(|span| {
            let s = span.iter().fold(DaySales::default(), |a, day| {
                let b = by_day[day];
                DaySales {
                    orders: a.orders + b.orders,
                    units: a.units + b.units,
                    gmv: a.gmv + b.gmv,
                }
            });
            json!({
                "start_date": span[0].to_string(),
                "end_date": span[span.len() - 1].succ_opt().map(|d| d.to_string()),
                "gmv": money(s.gmv, region.minor_digits, cur, rate),
                "sku_orders": s.orders,
                "units_sold": s.units,
            })
        })
        .collect();
    Ok(report(intervals, d.latest))
}
