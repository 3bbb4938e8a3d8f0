//! Promotions: discount activities and coupons, seeded per shop.
//!
//! A shop runs a discount activity every 10–20 days (3–7 days long, 2–5 of its products,
//! 10–30% off) and issues a coupon every 15–25 days. Status follows the clock: NOT_START
//! before the start, ONGOING, then EXPIRED; `update_time` is the last status change.
//! With [`super::realism::Realism::deletes`] some activities are deleted: from then on
//! search leaves them out and detail answers not found.
//!
//! - `POST /promotion/202309/activities/search` (page_size/page_token in the JSON body;
//!   filters `status`, `activity_type`, `activity_title`) → `activities`
//! - `GET /promotion/202309/activities/{activity_id}` → the activity with its `products`
//! - `POST /promotion/202406/coupons/search` (page_size/page_token in the query; body
//!   `status`, `display_type`, `title_keyword`) → `coupons`
//! - `GET /promotion/202406/coupons/{coupon_id}` → `coupon`

use serde::Deserialize;
use serde_json::{Value, json};

use super::data::Dataset;
use super::gate::ApiFault;
use super::orders::parse_body;
use super::paging::{fingerprint, page_json, page_size, token_page};
use super::rng::Rng;
use super::seller::json_bytes;
use super::{Ctx, Sandbox};
use shoplake_tiktok::region::Minor;

const ACTIVITY_TYPES: &[&str] = &["FIXED_PRICE", "DIRECT_DISCOUNT", "FLASHSALE"];

/// A discount activity.
#[derive(Debug, Clone)]
pub struct Activity {
    /// Activity id.
    pub id: String,
    /// Title.
    pub title: String,
    /// FIXED_PRICE, DIRECT_DISCOUNT or FLASHSALE.
    pub kind: &'static str,
    /// Created (unix).
    pub create: i64,
    /// Starts.
    pub begin: i64,
    /// Ends (exclusive).
    pub end: i64,
    /// Product indices.
    pub products: Vec<u32>,
    /// Percent off.
    pub discount_pct: i64,
    /// When it is deleted ([`super::realism::Realism::deletes`]), if it is.
    pub deleted: Option<i64>,
}

impl Activity {
    /// Whether the API shows it at `clock`: created by then and not deleted. A deleted
    /// activity is gone from search and detail alike (a guess; see `realism`).
    pub fn visible(&self, clock: i64) -> bool {
        self.create <= clock && self.deleted.is_none_or(|t| t > clock)
    }
}

/// A coupon.
#[derive(Debug, Clone)]
pub struct Coupon {
    /// Coupon id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Created (unix).
    pub create: i64,
    /// Claimable from.
    pub begin: i64,
    /// Until.
    pub end: i64,
    /// Percent off (0 for an amount-off coupon).
    pub pct: i64,
    /// Amount off, minor units (0 for a percentage coupon).
    pub amount: i64,
    /// Minimum spend, minor units.
    pub threshold: i64,
}

/// Status and its time at `clock`.
fn status(create: i64, begin: i64, end: i64, clock: i64) -> (&'static str, i64) {
    if clock < begin {
        ("NOT_START", create)
    } else if clock < end {
        ("ONGOING", begin)
    } else {
        ("EXPIRED", end)
    }
}

fn history(ds: &Dataset) -> (i64, i64) {
    let c = &ds.config;
    (c.clock - i64::from(c.days) * 86_400, c.clock)
}

/// The activities of shop `shop` created by the end of the seed's history.
pub fn activities(ds: &Dataset, shop: usize) -> Vec<Activity> {
    let (first, last) = history(ds);
    let own: Vec<u32> = (0..ds.products.len() as u32)
        .filter(|&p| ds.products[p as usize].shop == shop)
        .collect();
    let mut r = Rng::new(ds.config.seed ^ 0x50524F4D, shop as u64);
    let mut out = Vec::new();
    let mut t = first + r.range(0, 10) * 86_400;
    while t < last && !own.is_empty() {
        let begin = t + r.range(0, 86_400);
        let days = r.range(3, 8);
        let n = r.range(2, 6).min(own.len() as i64);
        let mut products: Vec<u32> = (0..n)
            .map(|_| own[r.range(0, own.len() as i64) as usize])
            .collect();
        products.sort_unstable();
        products.dedup();
        let kind = ACTIVITY_TYPES[r.range(0, ACTIVITY_TYPES.len() as i64) as usize];
        let create = begin - 3 * 86_400;
        out.push(Activity {
            id: format!("75{:017}", r.range(0, 99_999_999_999_999_999)),
            title: format!(
                "{} {}",
                kind.replace('_', " ").to_lowercase(),
                out.len() + 1
            ),
            kind,
            create,
            begin,
            end: begin + days * 86_400,
            products,
            discount_pct: r.range(10, 31),
            deleted: super::realism::activity_deleted_at(ds, shop, out.len(), create),
        });
        t += r.range(10, 21) * 86_400;
    }
    out
}

/// The coupons of shop `shop`.
pub fn coupons(ds: &Dataset, shop: usize) -> Vec<Coupon> {
    let (first, last) = history(ds);
    let region = ds.shops[shop].region;
    let unit = 10i64.pow(region.minor_digits) * (region.usd_rate.max(1.0) as i64);
    let mut r = Rng::new(ds.config.seed ^ 0x434F5550, shop as u64);
    let mut out = Vec::new();
    let mut t = first + r.range(0, 15) * 86_400;
    while t < last {
        let pct = if r.chance(0.5) { r.range(5, 21) } else { 0 };
        out.push(Coupon {
            id: format!("76{:017}", r.range(0, 99_999_999_999_999_999)),
            title: if pct > 0 {
                format!("{pct}% off")
            } else {
                "Money off".to_string()
            },
            create: t - 86_400,
            begin: t,
            end: t + r.range(7, 15) * 86_400,
            pct,
            amount: if pct > 0 { 0 } else { r.range(2, 11) * unit },
            threshold: r.range(10, 51) * unit,
        });
        t += r.range(15, 26) * 86_400;
    }
    out
}

#[derive(Deserialize, Default)]
struct ActivityFilter {
    status: Option<String>,
    activity_type: Option<String>,
    activity_title: Option<String>,
    page_size: Option<Value>,
    page_token: Option<String>,
}

fn activity_json(ds: &Dataset, a: &Activity, clock: i64, with_products: bool) -> Value {
    let (st, updated) = status(a.create, a.begin, a.end, clock);
    let mut v = json!({
        "id": a.id,
        "title": a.title,
        "activity_type": a.kind,
        "status": st,
        "product_level": "PRODUCT",
        "begin_time": a.begin,
        "end_time": a.end,
        "create_time": a.create,
        "update_time": updated,
    });
    if with_products {
        let products: Vec<Value> = a
            .products
            .iter()
            .map(|&p| {
                json!({
                    "id": ds.products[p as usize].id,
                    "discount": { "percentage": a.discount_pct.to_string() },
                })
            })
            .collect();
        v["discount_type"] = json!("PERCENTAGE");
        v["products"] = json!(products);
    }
    v
}

/// `POST /promotion/202309/activities/search`.
pub fn search_activities(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let f: ActivityFilter = parse_body(ctx)?;
    let size_text = f.page_size.as_ref().map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let size = page_size(size_text.as_deref(), 100)?;
    let clock = ctx.view.clock;
    let all = activities(&sb.data, shop);
    let idx: Vec<u32> = (0..all.len() as u32)
        .filter(|&i| {
            let a = &all[i as usize];
            let st = status(a.create, a.begin, a.end, clock).0;
            a.visible(clock)
                && f.status.as_deref().is_none_or(|s| s == st)
                && f.activity_type.as_deref().is_none_or(|t| t == a.kind)
                && f.activity_title
                    .as_deref()
                    .is_none_or(|t| a.title.contains(t))
        })
        .collect();
    let fp = fingerprint(&[
        &shop.to_le_bytes(),
        b"activities",
        f.status.as_deref().unwrap_or("").as_bytes(),
    ]);
    let (page, next, total) = token_page(f.page_token.as_deref(), fp, &idx, false, size, |_| true)?;
    let list: Vec<Value> = page
        .iter()
        .map(|&i| activity_json(&sb.data, &all[i as usize], clock, false))
        .collect();
    Ok(page_json("activities", next, total, &list))
}

/// `GET /promotion/202309/activities/{activity_id}`.
pub fn get_activity(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let id = ctx.params.get("activity_id").map_or("", String::as_str);
    let a = activities(&sb.data, shop)
        .into_iter()
        .find(|a| a.id == id && a.visible(ctx.view.clock))
        .ok_or_else(|| ApiFault::param(format_args!("activity_id {id:?} not found")))?;
    json_bytes(activity_json(&sb.data, &a, ctx.view.clock, true))
}

#[derive(Deserialize, Default)]
struct CouponFilter {
    status: Option<String>,
    title_keyword: Option<String>,
}

fn coupon_json(ds: &Dataset, shop: usize, c: &Coupon, clock: i64) -> Value {
    let region = ds.shops[shop].region;
    let m = |v: i64| {
        json!({
            "amount": Minor { minor: v, digits: region.minor_digits }.to_string(),
            "currency": region.currency,
        })
    };
    let (st, updated) = status(c.create, c.begin, c.end, clock);
    let discount = if c.pct > 0 {
        json!({ "type": "PERCENTAGE_OFF", "percentage": c.pct.to_string() })
    } else {
        json!({ "type": "AMOUNT_OFF", "amount": m(c.amount) })
    };
    json!({
        "id": c.id,
        "title": c.title,
        "status": st,
        "display_type": "REGULAR",
        "discount": discount,
        "threshold": m(c.threshold),
        "start_time": c.begin,
        "end_time": c.end,
        "create_time": c.create,
        "update_time": updated,
    })
}

/// `POST /promotion/202406/coupons/search`.
pub fn search_coupons(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let f: CouponFilter = parse_body(ctx)?;
    let size = page_size(ctx.q("page_size"), 100)?;
    let clock = ctx.view.clock;
    let all = coupons(&sb.data, shop);
    let idx: Vec<u32> = (0..all.len() as u32)
        .filter(|&i| {
            let c = &all[i as usize];
            c.create <= clock
                && f.status
                    .as_deref()
                    .is_none_or(|s| s == status(c.create, c.begin, c.end, clock).0)
                && f.title_keyword
                    .as_deref()
                    .is_none_or(|t| c.title.contains(t))
        })
        .collect();
    let fp = fingerprint(&[&shop.to_le_bytes(), b"coupons"]);
    let (page, next, total) = token_page(ctx.q("page_token"), fp, &idx, false, size, |_| true)?;
    let list: Vec<Value> = page
        .iter()
        .map(|&i| coupon_json(&sb.data, shop, &all[i as usize], clock))
        .collect();
    Ok(page_json("coupons", next, total, &list))
}

/// `GET /promotion/202406/coupons/{coupon_id}`.
pub fn get_coupon(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let id = ctx.params.get("coupon_id").map_or("", String::as_str);
    let c = coupons(&sb.data, shop)
        .into_iter()
        .find(|c| c.id == id && c.create <= ctx.view.clock)
        .ok_or_else(|| ApiFault::param(format_args!("coupon_id {id:?} not found")))?;
    json_bytes(json!({ "coupon": coupon_json(&sb.data, shop, &c, ctx.view.clock) }))
}

/// Rows a snapshot lands per promotion table for shop `shop` at `clock`.
pub fn truth(ds: &Dataset, shop: usize, clock: i64) -> [(&'static str, u64); 4] {
    let acts: Vec<Activity> = activities(ds, shop)
        .into_iter()
        .filter(|a| a.visible(clock))
        .collect();
    let coups = coupons(ds, shop)
        .into_iter()
        .filter(|c| c.create <= clock)
        .count() as u64;
    [
        ("promotion_activities", acts.len() as u64),
        (
            "promotion_products",
            acts.iter().map(|a| a.products.len() as u64).sum(),
        ),
        ("coupons", coups),
        ("coupon_details", coups),
    ]
}

/// Ids of shop `shop`'s activities deleted by `clock` ([`super::realism::Realism::deletes`]).
pub fn deleted_activities(ds: &Dataset, shop: usize, clock: i64) -> Vec<String> {
    activities(ds, shop)
        .into_iter()
        .filter(|a| a.deleted.is_some_and(|t| t <= clock))
        .map(|a| a.id)
        .collect()
}

/// What one activity's products sold while it ran (not-cancelled orders placed in
/// `[begin, end)`), as marts.promotion_performance should show it.
#[derive(serde::Serialize)]
pub struct PromotionTruth {
    /// Activity id.
    pub id: String,
    /// Orders with one of its products.
    pub orders: u64,
    /// Units of its products.
    pub units: u64,
    /// Σ their sale prices (decimal string).
    pub gmv: String,
    /// Σ their seller discounts (decimal string).
    pub discount: String,
}

/// Every activity of shop `shop` the API shows at the clock (created, not deleted).
pub fn performance_truth(
    ds: &Dataset,
    view: &super::data::View,
    shop: usize,
) -> Vec<PromotionTruth> {
    let digits = ds.shops[shop].region.minor_digits;
    activities(ds, shop)
        .into_iter()
        .filter(|a| a.visible(view.clock))
        .map(|a| {
            let (mut orders, mut units, mut gmv, mut discount) = (0, 0, 0, 0);
            let idx = &view.shops[shop].by_create;
            let lo = idx.partition_point(|&(t, _)| t < a.begin);
            for &(t, i) in &idx[lo..] {
                if t >= a.end {
                    break;
                }
                let o = &ds.orders[i as usize];
                if o.state_at(view.clock).0 == super::data::status::CANCELLED {
                    continue;
                }
                let mine: Vec<_> = ds
                    .items_of(o)
                    .iter()
                    .filter(|it| a.products.contains(&ds.skus[it.sku as usize].product))
                    .collect();
                if !mine.is_empty() {
                    orders += 1;
                    units += mine.len() as u64;
                    gmv += mine.iter().map(|it| it.sale_price()).sum::<i64>();
                    discount += mine.iter().map(|it| it.seller_discount).sum::<i64>();
                }
            }
            PromotionTruth {
                id: a.id,
                orders,
                units,
                gmv: shoplake_tiktok::region::format_minor(gmv, digits),
                discount: shoplake_tiktok::region::format_minor(discount, digits),
            }
        })
        .collect()
}
