//! Analytics of LIVE sessions and videos ([`super::content`]), computed from the orders
//! they drove, so the reports agree with the order data (`room_id` on LIVE line items).
//!
//! - `GET /analytics/202509/shop_lives/performance` (page_token, `live_stream_sessions`):
//!   the sessions that started on the shop-local days asked, with their totals.
//! - `GET /analytics/202510/shop_lives/{live_id}/performance_per_minutes` (page_token,
//!   `performance.intervals`): one row per minute.
//! - `GET /analytics/202512/shop/{live_id}/products_performance` (`products`): the
//!   session's sales per product.
//! - `GET /analytics/202509/shop_videos/performance` (page_token, `videos`): every video
//!   with views in the days asked.
//! - `GET /analytics/202509/shop_videos/{video_id}/performance` (`performance.intervals`,
//!   granularity `ALL` or `1D`).
//!
//! Like every analytics report: dates are shop-local `YYYY-MM-DD` (start inclusive, end
//! exclusive), data is ready through yesterday, `currency` is LOCAL or USD.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::analytics::{currency, dates, money, opened, paid_orders, report, span};
use super::content::{LiveSession, Video};
use super::data::{Dataset, local_date, local_midnight};
use super::gate::ApiFault;
use super::paging::{fingerprint, page_json, page_size, token_page};
use super::{Ctx, Sandbox};

/// Sales a LIVE or video drove: orders, units, GMV (minor units), buyers.
#[derive(Default, Clone, Copy, Debug)]
pub struct Driven {
    /// Paid orders.
    pub orders: u64,
    /// Their units.
    pub units: u64,
    /// Σ sale price, minor units.
    pub gmv: i64,
}

/// Paid orders a session drove, by minute of the session.
pub fn live_sales(
    ds: &Dataset,
    view: &super::data::View,
    s: &LiveSession,
) -> BTreeMap<i64, Driven> {
    let mut out: BTreeMap<i64, Driven> = BTreeMap::new();
    for (t, o) in paid_orders(ds, view, s.shop, s.start, s.end) {
        if ds
            .content
            .live_of(ds.config.seed, o)
            .is_some_and(|l| l.id == s.id)
        {
            let d = out.entry((t - s.start) / 60).or_default();
            d.orders += 1;
            d.units += o.items.len() as u64;
            d.gmv += ds.sub_total(o);
        }
    }
    out
}

/// Paid orders a video drove, by shop-local day, over `[from, to)` (unix).
pub fn video_sales(
    ds: &Dataset,
    view: &super::data::View,
    v: &Video,
    from: i64,
    to: i64,
) -> BTreeMap<NaiveDate, Driven> {
    let region = ds.shops[v.shop].region;
    let mut out: BTreeMap<NaiveDate, Driven> = BTreeMap::new();
    for (t, o) in paid_orders(ds, view, v.shop, from.max(v.post_time), to) {
        if ds
            .content
            .video_of(ds.config.seed, o)
            .is_some_and(|x| x.id == v.id)
        {
            let d = out.entry(local_date(region, t)).or_default();
            d.orders += 1;
            d.units += o.items.len() as u64;
            d.gmv += ds.sub_total(o);
        }
    }
    out
}

fn sum(d: impl Iterator<Item = Driven>) -> Driven {
    d.fold(Driven::default(), |a, b| Driven {
        orders: a.orders + b.orders,
        units: a.units + b.units,
        gmv: a.gmv + b.gmv,
    })
}

fn find_live<'a>(sb: &'a Sandbox, ctx: &Ctx, shop: usize) -> Result<&'a LiveSession, ApiFault> {
    let id = ctx.params.get("live_id").map_or("", String::as_str);
    sb.data.content.lives[shop]
        .iter()
        .find(|s| s.id == id && s.end <= ctx.view.clock)
        .ok_or_else(|| {
            ApiFault::param(format_args!(
                "live_id {id:?} is not an ended LIVE session of this shop"
            ))
        })
}

/// `GET /analytics/202509/shop_lives/performance`.
pub fn live_list(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let d = dates(sb, ctx, shop)?;
    let (cur, rate) = currency(sb, ctx, shop)?;
    let size = page_size(ctx.q("page_size"), 100)?;
    let region = ds.shops[shop].region;
    let (from, to) = span(ds, shop, &d);
    let from = from.max(local_midnight(region, opened(ds, shop)));
    let sessions: Vec<u32> = ds.content.lives[shop]
        .iter()
        .enumerate()
        .filter(|(_, s)| s.start >= from && s.start < to && s.end <= ctx.view.clock)
        .map(|(i, _)| i as u32)
        .collect();
    let fp = fingerprint(&[
        &shop.to_le_bytes(),
        b"lives",
        d.start.to_string().as_bytes(),
        d.end.to_string().as_bytes(),
    ]);
    let (page, next, total) =
        token_page(ctx.q("page_token"), fp, &sessions, false, size, |_| true)?;
    let list: Vec<Value> = page
        .iter()
        .map(|&i| {
            let s = &ds.content.lives[shop][i as usize];
            let sales = sum(live_sales(ds, &ctx.view, s).into_values());
            let minutes = s.minutes();
            let viewers: Vec<u64> = (0..minutes).map(|m| s.viewers(m)).collect();
            let (likes, comments, followers) = (0..minutes)
                .map(|m| s.engagement(m))
                .fold((0, 0, 0), |a, e| (a.0 + e.0, a.1 + e.1, a.2 + e.2));
            let viewer_minutes: u64 = viewers.iter().sum();
            let unique = viewer_minutes / 6;
            json!({
                "id": s.id,
                "title": s.title,
                "username": ds.shops[shop].code.to_lowercase(),
                "start_time": s.start,
                "end_time": s.end,
                "duration": s.end - s.start,
                "sales_performance": {
                    "gmv": money(sales.gmv, region.minor_digits, cur, rate),
                    "sku_orders": sales.orders,
                    "items_sold": sales.units,
                },
                "interaction_performance": {
                    "views": unique,
                    "peak_concurrent_viewers": viewers.iter().max().copied().unwrap_or(0),
                    "avg_viewing_duration": (viewer_minutes * 60).checked_div(unique).unwrap_or(0),
                    "likes": likes,
                    "comments": comments,
                    "new_followers": followers,
                },
            })
        })
        .collect();
    Ok(page_json("live_stream_sessions", next, total, &list))
}

/// `GET /analytics/202510/shop_lives/{live_id}/performance_per_minutes`.
pub fn live_minutes(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let (cur, rate) = currency(sb, ctx, shop)?;
    let size = page_size(ctx.q("page_size"), 100)?;
    let s = find_live(sb, ctx, shop)?;
    let region = ds.shops[shop].region;
    let sales = live_sales(ds, &ctx.view, s);
    let minutes: Vec<i64> = (0..s.minutes()).collect();
    let fp = fingerprint(&[&shop.to_le_bytes(), b"live_minutes", s.id.as_bytes()]);
    let (page, next, total) = token_page(ctx.q("page_token"), fp, &minutes, false, size, |_| true)?;
    let intervals: Vec<Value> = page
        .iter()
        .map(|&m| {
            let d = sales.get(&m).copied().unwrap_or_default();
            let (likes, comments, followers) = s.engagement(m);
            json!({
                "start_time": s.start + m * 60,
                "end_time": s.start + (m + 1) * 60,
                "viewers": s.viewers(m),
                "gmv": money(d.gmv, region.minor_digits, cur, rate),
                "sku_orders": d.orders,
                "items_sold": d.units,
                "likes": likes,
                "comments": comments,
                "new_followers": followers,
            })
        })
        .collect();
    let all = sum(sales.values().copied());
    let body = json!({
        "performance": {
            "intervals": intervals,
            "overall": {
                "gmv": money(all.gmv, region.minor_digits, cur, rate),
                "sku_orders": all.orders,
                "items_sold": all.units,
            },
        },
        "next_page_token": next,
        "total_count": total,
    });
    Ok(serde_json::to_vec(&body).expect("serializable"))
}

/// `GET /analytics/202512/shop/{live_id}/products_performance`.
pub fn live_products(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let (cur, rate) = currency(sb, ctx, shop)?;
    let s = find_live(sb, ctx, shop)?;
    let region = ds.shops[shop].region;
    let mut per: BTreeMap<u32, Driven> = BTreeMap::new();
    for (_, o) in paid_orders(ds, &ctx.view, shop, s.start, s.end) {
        if ds
            .content
            .live_of(ds.config.seed, o)
            .is_none_or(|l| l.id != s.id)
        {
            continue;
        }
        let mut seen = Vec::new();
        for it in ds.items_of(o) {
            let p = ds.skus[it.sku as usize].product;
            let e = per.entry(p).or_default();
            if !seen.contains(&p) {
                e.orders += 1;
                seen.push(p);
            }
            e.units += 1;
            e.gmv += it.sale_price();
        }
    }
    let products: Vec<Value> = per
        .iter()
        .map(|(p, d)| {
            json!({
                "id": ds.products[*p as usize].id,
                "name": ds.products[*p as usize].title,
                "direct_gmv": money(d.gmv, region.minor_digits, cur, rate),
                "items_sold": d.units,
                "sku_orders": d.orders,
            })
        })
        .collect();
    Ok(serde_json::to_vec(&json!({ "products": products })).expect("serializable"))
}

/// The shop-local days `[start, end)` a report covers: from the day the shop opened (no
/// report before) to the latest ready day.
fn report_days(
    ds: &Dataset,
    shop: usize,
    start: NaiveDate,
    end: NaiveDate,
    latest: NaiveDate,
) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut day = start.max(opened(ds, shop));
    while day < end && day <= latest {
        out.push(day);
        day = day.succ_opt().expect("date");
    }
    out
}

/// One video's numbers over `days`.
fn video_interval(
    sb: &Sandbox,
    ctx: &Ctx,
    v: &Video,
    days: &[NaiveDate],
    cur: &'static str,
    rate: f64,
) -> Value {
    let ds: &Dataset = &sb.data;
    let shop = &ds.shops[v.shop];
    let (mut views, mut likes, mut comments, mut shares) = (0, 0, 0, 0);
    for d in days {
        let x = v.day(shop, *d);
        views += x.0;
        likes += x.1;
        comments += x.2;
        shares += x.3;
    }
    let (from, to) = match (days.first(), days.last()) {
        (Some(a), Some(b)) => (
            local_midnight(shop.region, *a),
            local_midnight(shop.region, b.succ_opt().expect("date")),
        ),
        _ => (0, 0),
    };
    let sales = sum(video_sales(ds, &ctx.view, v, from, to).into_values());
    json!({
        "start_date": days.first().map(ToString::to_string),
        "end_date": days.last().and_then(|d| d.succ_opt()).map(|d| d.to_string()),
        "views": views,
        "likes": likes,
        "comments": comments,
        "shares": shares,
        "gmv": money(sales.gmv, shop.region.minor_digits, cur, rate),
        "sku_orders": sales.orders,
        "units_sold": sales.units,
        "click_through_rate": if views == 0 { 0.0 } else { ((sales.orders as f64 / views as f64) * 10_000.0).round() / 10_000.0 },
    })
}

/// `GET /analytics/202509/shop_videos/performance`.
pub fn video_list(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let d = dates(sb, ctx, shop)?;
    let (cur, rate) = currency(sb, ctx, shop)?;
    let size = page_size(ctx.q("page_size"), 100)?;
    let days = report_days(ds, shop, d.start, d.end, d.latest);
    let s = &ds.shops[shop];
    let videos: Vec<u32> = ds.content.videos[shop]
        .iter()
        .enumerate()
        .filter(|(_, v)| days.iter().any(|day| v.day(s, *day).0 > 0))
        .map(|(i, _)| i as u32)
        .collect();
    let fp = fingerprint(&[
        &shop.to_le_bytes(),
        b"videos",
        d.start.to_string().as_bytes(),
        d.end.to_string().as_bytes(),
    ]);
    let (page, next, total) = token_page(ctx.q("page_token"), fp, &videos, false, size, |_| true)?;
    let list: Vec<Value> = page
        .iter()
        .map(|&i| {
            let v = &ds.content.videos[shop][i as usize];
            let mut row = video_interval(sb, ctx, v, &days, cur, rate);
            let o = row.as_object_mut().expect("object");
            o.remove("start_date");
            o.remove("end_date");
            o.insert("id".into(), json!(v.id));
            o.insert("title".into(), json!(v.title));
            o.insert("username".into(), json!(s.code.to_lowercase()));
            o.insert("video_post_time".into(), json!(v.post_time));
            o.insert("duration".into(), json!(v.duration));
            o.insert(
                "product_id".into(),
                json!(ds.products[v.product as usize].id),
            );
            row
        })
        .collect();
    Ok(page_json("videos", next, total, &list))
}

/// `GET /analytics/202509/shop_videos/{video_id}/performance`.
pub fn video_detail(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let d = dates(sb, ctx, shop)?;
    let (cur, rate) = currency(sb, ctx, shop)?;
    let id = ctx.params.get("video_id").map_or("", String::as_str);
    let v = ds.content.videos[shop]
        .iter()
        .find(|v| v.id == id && v.post_time <= ctx.view.clock)
        .ok_or_else(|| {
            ApiFault::param(format_args!("video_id {id:?} is not a video of this shop"))
        })?;
    let days = report_days(ds, shop, d.start, d.end, d.latest);
    let intervals: Vec<Value> = match ctx.q("granularity").unwrap_or("ALL") {
        "1D" => days
            .iter()
            .map(|day| video_interval(sb, ctx, v, std::slice::from_ref(day), cur, rate))
            .collect(),
        "ALL" | "" if days.is_empty() => Vec::new(),
        "ALL" | "" => vec![video_interval(sb, ctx, v, &days, cur, rate)],
        other => {
            return Err(ApiFault::param(format_args!(
                "invalid param error: granularity {other:?} is not one of ALL, 1D"
            )));
        }
    };
    Ok(report(intervals, d.latest))
}

/// Rows a backfill of the whole history lands per media table for shop `shop`.
pub fn truth(ds: &Dataset, view: &super::data::View, shop: usize) -> BTreeMap<&'static str, u64> {
    let s = &ds.shops[shop];
    let today = local_date(s.region, view.clock);
    let opened = local_date(
        s.region,
        ds.config.clock - i64::from(ds.config.days) * 86_400,
    );
    let mut out = BTreeMap::from([
        ("live_sessions", 0),
        ("live_minutes", 0),
        ("live_products", 0),
        ("video_performance", 0),
        ("video_daily", 0),
        ("video_products", 0),
        ("video_overview", 0),
        ("live_overview", 0),
    ]);
    for l in ds.content.lives[shop].iter().filter(|l| {
        let d = local_date(s.region, l.start);
        d >= opened && d < today && l.end <= view.clock
    }) {
        *out.get_mut("live_sessions").expect("key") += 1;
        *out.get_mut("live_minutes").expect("key") += l.minutes() as u64;
        let mut products = std::collections::BTreeSet::new();
        for (_, o) in paid_orders(ds, view, shop, l.start, l.end) {
            if ds
                .content
                .live_of(ds.config.seed, o)
                .is_some_and(|x| x.id == l.id)
            {
                products.extend(
                    ds.items_of(o)
                        .iter()
                        .map(|it| ds.skus[it.sku as usize].product),
                );
            }
        }
        *out.get_mut("live_products").expect("key") += products.len() as u64;
    }
    let mut day = opened;
    while day < today {
        let (from, to) = local_span(ds, shop, &[day]);
        let mut n = 0;
        for v in ds.content.videos[shop]
            .iter()
            .filter(|v| v.day(s, day).0 > 0)
        {
            n += 1;
            let mut products = std::collections::BTreeSet::new();
            for (_, o) in paid_orders(ds, view, shop, from.max(v.post_time), to) {
                if ds
                    .content
                    .video_of(ds.config.seed, o)
                    .is_some_and(|x| x.id == v.id)
                {
                    products.extend(
                        ds.items_of(o)
                            .iter()
                            .map(|it| ds.skus[it.sku as usize].product),
                    );
                }
            }
            *out.get_mut("video_products").expect("key") += products.len() as u64;
        }
        *out.get_mut("video_performance").expect("key") += n;
        *out.get_mut("video_daily").expect("key") += n;
        *out.get_mut("video_overview").expect("key") += 1;
        *out.get_mut("live_overview").expect("key") += 1;
        day = day.succ_opt().expect("date");
    }
    out
}

/// One LIVE session as the marts should show it.
#[derive(serde::Serialize)]
pub struct LiveTruth {
    /// Session id.
    pub id: String,
    /// Minutes.
    pub minutes: i64,
    /// Most viewers at once.
    pub peak_viewers: u64,
    /// Paid orders it drove.
    pub orders: u64,
    /// Their GMV (decimal string).
    pub gmv: String,
}

/// Sessions of shop `shop` that a backfill of the history lands, with what they drove.
pub fn live_truth(ds: &Dataset, view: &super::data::View, shop: usize) -> Vec<LiveTruth> {
    let s = &ds.shops[shop];
    let today = local_date(s.region, view.clock);
    let opened = local_date(
        s.region,
        ds.config.clock - i64::from(ds.config.days) * 86_400,
    );
    ds.content.lives[shop]
        .iter()
        .filter(|l| {
            let d = local_date(s.region, l.start);
            d >= opened && d < today && l.end <= view.clock
        })
        .map(|l| {
            let sales = sum(live_sales(ds, view, l).into_values());
            LiveTruth {
                id: l.id.clone(),
                minutes: l.minutes(),
                peak_viewers: (0..l.minutes()).map(|m| l.viewers(m)).max().unwrap_or(0),
                orders: sales.orders,
                gmv: shoplake_tiktok::region::format_minor(sales.gmv, s.region.minor_digits),
            }
        })
        .collect()
}

/// Σ views and the sales videos drove over shop `shop`'s reported days: (views, orders, gmv minor).
pub fn video_totals(ds: &Dataset, view: &super::data::View, shop: usize) -> (u64, u64, i64) {
    let s = &ds.shops[shop];
    let today = local_date(s.region, view.clock);
    let opened = local_date(
        s.region,
        ds.config.clock - i64::from(ds.config.days) * 86_400,
    );
    let (from, to) = (
        local_midnight(s.region, opened),
        local_midnight(s.region, today),
    );
    let mut views = 0;
    let mut day = opened;
    while day < today {
        views += ds.content.videos[shop]
            .iter()
            .map(|v| v.day(s, day).0)
            .sum::<u64>();
        day = day.succ_opt().expect("date");
    }
    let (mut orders, mut gmv) = (0, 0);
    for v in &ds.content.videos[shop] {
        let d = sum(video_sales(ds, view, v, from, to).into_values());
        orders += d.orders;
        gmv += d.gmv;
    }
    (views, orders, gmv)
}

/// The days an overview covers: `today=true` asks for today so far, else the dates.
fn overview_days(
    sb: &Sandbox,
    ctx: &Ctx,
    shop: usize,
) -> Result<(Vec<NaiveDate>, NaiveDate), ApiFault> {
    let region = sb.data.shops[shop].region;
    let today = local_date(region, ctx.view.clock);
    if ctx.q("today") == Some("true") {
        return Ok((vec![today], today));
    }
    let d = dates(sb, ctx, shop)?;
    Ok((
        report_days(&sb.data, shop, d.start, d.end, d.latest),
        d.latest,
    ))
}

/// Intervals per day (`1D`) or one for all days (`ALL`).
fn intervals(
    ctx: &Ctx,
    days: &[NaiveDate],
    one: impl Fn(&[NaiveDate]) -> Value,
) -> Result<Vec<Value>, ApiFault> {
    match ctx.q("granularity").unwrap_or("ALL") {
        "1D" => Ok(days.iter().map(|d| one(std::slice::from_ref(d))).collect()),
        "ALL" | "" if days.is_empty() => Ok(Vec::new()),
        "ALL" | "" => Ok(vec![one(days)]),
        other => Err(ApiFault::param(format_args!(
            "invalid param error: granularity {other:?} is not one of ALL, 1D"
        ))),
    }
}

fn local_span(ds: &Dataset, shop: usize, days: &[NaiveDate]) -> (i64, i64) {
    let region = ds.shops[shop].region;
    match (days.first(), days.last()) {
        (Some(a), Some(b)) => (
            local_midnight(region, *a),
            local_midnight(region, b.succ_opt().expect("date")),
        ),
        _ => (0, 0),
    }
}

/// `GET /analytics/202509/shop_videos/overview_performance`: all the shop's videos.
pub fn video_overview(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let (cur, rate) = currency(sb, ctx, shop)?;
    let (days, latest) = overview_days(sb, ctx, shop)?;
    let s = &ds.shops[shop];
    let one = |span: &[NaiveDate]| {
        let (from, to) = local_span(ds, shop, span);
        let (mut views, mut likes, mut comments, mut shares, mut posted) = (0, 0, 0, 0, 0);
        let mut sales = Driven::default();
        for v in &ds.content.videos[shop] {
            for d in span {
                let x = v.day(s, *d);
                views += x.0;
                likes += x.1;
                comments += x.2;
                shares += x.3;
            }
            posted += u64::from(span.contains(&v.post_date(s)) && v.post_time <= ctx.view.clock);
            let d = sum(video_sales(ds, &ctx.view, v, from, to).into_values());
            sales = sum([sales, d].into_iter());
        }
        json!({
            "start_date": span.first().map(ToString::to_string),
            "end_date": span.last().and_then(|d| d.succ_opt()).map(|d| d.to_string()),
            "videos_posted": posted,
            "views": views,
            "likes": likes,
            "comments": comments,
            "shares": shares,
            "gmv": money(sales.gmv, s.region.minor_digits, cur, rate),
            "sku_orders": sales.orders,
            "units_sold": sales.units,
        })
    };
    Ok(report(intervals(ctx, &days, one)?, latest))
}

/// `GET /analytics/202509/shop_lives/overview_performance`: all the shop's LIVE sessions.
pub fn live_overview(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let (cur, rate) = currency(sb, ctx, shop)?;
    let (days, latest) = overview_days(sb, ctx, shop)?;
    let s = &ds.shops[shop];
    let one = |span: &[NaiveDate]| {
        let (mut lives, mut minutes, mut views) = (0u64, 0i64, 0u64);
        let mut sales = Driven::default();
        for l in ds.content.lives[shop].iter().filter(|l| {
            let d = local_date(s.region, l.start);
            span.contains(&d) && d >= opened(ds, shop) && l.end <= ctx.view.clock
        }) {
            lives += 1;
            minutes += l.minutes();
            views += (0..l.minutes()).map(|m| l.viewers(m)).sum::<u64>() / 6;
            sales = sum([sales, sum(live_sales(ds, &ctx.view, l).into_values())].into_iter());
        }
        json!({
            "start_date": span.first().map(ToString::to_string),
            "end_date": span.last().and_then(|d| d.succ_opt()).map(|d| d.to_string()),
            "lives": lives,
            "live_minutes": minutes,
            "views": views,
            "gmv": money(sales.gmv, s.region.minor_digits, cur, rate),
            "sku_orders": sales.orders,
            "items_sold": sales.units,
        })
    };
    Ok(report(intervals(ctx, &days, one)?, latest))
}

/// `GET /analytics/202509/shop_videos/{video_id}/products/performance` (page_token,
/// `products`): what the video's orders bought, per product.
pub fn video_products(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let d = dates(sb, ctx, shop)?;
    let (cur, rate) = currency(sb, ctx, shop)?;
    let size = page_size(ctx.q("page_size"), 100)?;
    let sort = ctx.q("sort_field").unwrap_or("gmv");
    if !["gmv", "units_sold", "daily_avg_buyers"].contains(&sort) {
        return Err(ApiFault::param(format_args!(
            "invalid param error: sort_field {sort:?} is not one of gmv, units_sold, daily_avg_buyers"
        )));
    }
    let id = ctx.params.get("video_id").map_or("", String::as_str);
    let v = ds.content.videos[shop]
        .iter()
        .find(|v| v.id == id && v.post_time <= ctx.view.clock)
        .ok_or_else(|| {
            ApiFault::param(format_args!("video_id {id:?} is not a video of this shop"))
        })?;
    let days = report_days(ds, shop, d.start, d.end, d.latest);
    let (from, to) = local_span(ds, shop, &days);
    let mut per: BTreeMap<u32, (Driven, std::collections::BTreeSet<u64>)> = BTreeMap::new();
    for (_, o) in paid_orders(ds, &ctx.view, shop, from.max(v.post_time), to) {
        if ds
            .content
            .video_of(ds.config.seed, o)
            .is_none_or(|x| x.id != v.id)
        {
            continue;
        }
        let mut seen = Vec::new();
        for it in ds.items_of(o) {
            let p = ds.skus[it.sku as usize].product;
            let (e, buyers) = per.entry(p).or_default();
            if !seen.contains(&p) {
                e.orders += 1;
                buyers.insert(o.user_id);
                seen.push(p);
            }
            e.units += 1;
            e.gmv += it.sale_price();
        }
    }
    let mut rows: Vec<(i64, u32)> = per
        .iter()
        .map(|(p, (d, b))| {
            let key = match sort {
                "gmv" => d.gmv,
                "units_sold" => d.units as i64,
                _ => b.len() as i64,
            };
            (-key, *p)
        })
        .collect();
    rows.sort_unstable();
    let fp = fingerprint(&[
        &shop.to_le_bytes(),
        b"video_products",
        v.id.as_bytes(),
        d.start.to_string().as_bytes(),
        d.end.to_string().as_bytes(),
        sort.as_bytes(),
    ]);
    let (page, next, total) = token_page(ctx.q("page_token"), fp, &rows, false, size, |_| true)?;
    let region = ds.shops[shop].region;
    let n_days = days.len().max(1) as f64;
    let list: Vec<Value> = page
        .iter()
        .map(|&(_, p)| {
            let (d, buyers) = &per[&p];
            json!({
                "id": ds.products[p as usize].id,
                "name": ds.products[p as usize].title,
                "gmv": money(d.gmv, region.minor_digits, cur, rate),
                "units_sold": d.units,
                "sku_orders": d.orders,
                "daily_avg_buyers": ((buyers.len() as f64 / n_days) * 100.0).round() / 100.0,
            })
        })
        .collect();
    Ok(page_json("products", next, total, &list))
}
