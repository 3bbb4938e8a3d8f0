//! Affiliate (seller side): the creators who promote a shop's products, and the orders
//! they bring, with their commissions.
//!
//! Each shop works with 8 creators drawn from a pool, at a commission rate of 5–20% each.
//! An order that no LIVE session or video of the shop drove is an affiliate order with
//! probability 10%, credited to one of the shop's creators. Its commission is estimated at
//! the rate on every unit's sale price, and becomes actual (settled) when the order
//! completes; a cancelled order's commission is 0.
//!
//! - `POST /affiliate_seller/202410/orders/search` (page_size 1–100 and page_token in the
//!   query; body `create_time_ge` / `create_time_lt`, the filters the catalog lists; any
//!   other body field is refused) → `orders`, each with its `skus`
//! - `POST /affiliate_seller/202508/marketplace_creators/search` (page_token) → `creators`
//!   (the shop's creators)
//! - `GET /affiliate_seller/202508/marketplace_creators/{creator_user_id}` → `creator`,
//!   with its performance for the shop
//! - `POST /affiliate_seller/202412/open_collaborations/search` (page_token) →
//!   `open_collaborations`: the shop's open commission plans, one per product

use serde::Deserialize;
use serde_json::{Value, json};

use super::data::{Dataset, Order, status};
use super::gate::ApiFault;
use super::orders::parse_body;
use super::paging::{fingerprint, page_json, page_size, token_page};
use super::rng::Rng;
use super::seller::json_bytes;
use super::{Ctx, Sandbox};
use shoplake_tiktok::region::Minor;

/// Creators in the pool.
const POOL: u64 = 40;
/// Creators per shop.
const PER_SHOP: u64 = 8;
/// Probability that an order no LIVE or video drove came through a creator.
const AFFILIATE_SHARE: f64 = 0.10;

/// A creator working with a shop.
#[derive(Debug, Clone)]
pub struct Creator {
    /// Creator user id.
    pub id: String,
    /// Handle.
    pub username: String,
    /// Followers.
    pub followers: u64,
    /// Commission rate for this shop, basis points.
    pub rate_bp: i64,
}

fn creator(seed: u64, k: u64) -> (String, String, u64) {
    let mut r = Rng::new(seed ^ 0x4352_4541, k);
    (
        format!("77{:017}", r.range(0, 99_999_999_999_999_999)),
        format!("creator_{k:02}"),
        r.range(2_000, 2_000_000) as u64,
    )
}

/// The creators shop `shop` works with.
pub fn creators(ds: &Dataset, shop: usize) -> Vec<Creator> {
    let mut r = Rng::new(ds.config.seed ^ 0x4146_4649, shop as u64);
    let start = r.range(0, POOL as i64) as u64;
    (0..PER_SHOP)
        .map(|i| {
            let (id, username, followers) = creator(ds.config.seed, (start + i * 3) % POOL);
            Creator {
                id,
                username,
                followers,
                rate_bp: r.range(500, 2001),
            }
        })
        .collect()
}

/// The creator an order came through, if any.
pub fn creator_of(ds: &Dataset, creators: &[Creator], o: &Order) -> Option<usize> {
    if ds.content.live_of(ds.config.seed, o).is_some()
        || ds.content.video_of(ds.config.seed, o).is_some()
    {
        return None;
    }
    let mut r = Rng::new(ds.config.seed ^ 0x4146_464F, o.id);
    r.chance(AFFILIATE_SHARE)
        .then(|| r.range(0, creators.len() as i64) as usize)
}

/// An affiliate order's commission at `clock`: (estimated, actual, status), minor units.
pub fn commission(ds: &Dataset, c: &Creator, o: &Order, clock: i64) -> (i64, i64, &'static str) {
    let (st, _) = o.state_at(clock);
    // Per unit, rounded down, as the order's lines show it.
    let estimated: i64 = ds
        .items_of(o)
        .iter()
        .map(|it| it.sale_price() * c.rate_bp / 10_000)
        .sum();
    match st {
        status::CANCELLED => (0, 0, "CANCELLED"),
        status::COMPLETED => (estimated, estimated, "SETTLED"),
        _ => (estimated, 0, "ORDERED"),
    }
}

/// The filters the catalog documents for Search Seller Affiliate Orders
/// (`create_time_ge/lt`, `program_id`). Anything else is refused, as a strict gateway
/// would: a client filtering on `update_time_*` must not pass here and fail in production.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OrderFilter {
    create_time_ge: Option<i64>,
    create_time_lt: Option<i64>,
    #[allow(dead_code)]
    program_id: Option<String>,
}

/// `POST /affiliate_seller/202410/orders/search`.
pub fn search_orders(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let f: OrderFilter = parse_body(ctx)?;
    let size = page_size(ctx.q("page_size"), 100)?;
    let cs = creators(ds, shop);
    let clock = ctx.view.clock;
    let idx = &ctx.view.shops[shop].by_create;
    let lo = f
        .create_time_ge
        .map_or(0, |g| idx.partition_point(|&(t, _)| t < g));
    let hi = f
        .create_time_lt
        .map_or(idx.len(), |l| idx.partition_point(|&(t, _)| t < l));
    let rows: Vec<(i64, u32)> = idx[lo..hi.max(lo)]
        .iter()
        .copied()
        .filter(|&(_, i)| creator_of(ds, &cs, &ds.orders[i as usize]).is_some())
        .collect();
    let fp = fingerprint(&[
        &shop.to_le_bytes(),
        b"affiliate_orders",
        &f.create_time_ge.unwrap_or(0).to_le_bytes(),
        &f.create_time_lt.unwrap_or(0).to_le_bytes(),
    ]);
    let (page, next, total) = token_page(ctx.q("page_token"), fp, &rows, false, size, |_| true)?;
    let region = ds.shops[shop].region;
    let m = |v: i64| json!({ "amount": Minor { minor: v, digits: region.minor_digits }.to_string(), "currency": region.currency });
    let list: Vec<Value> = page
        .iter()
        .map(|&(_, i)| {
            let o = &ds.orders[i as usize];
            let updated = o.state_at(clock).1;
            let c = &cs[creator_of(ds, &cs, o).expect("filtered")];
            let (_, _, st) = commission(ds, c, o, clock);
            let skus: Vec<Value> = ds
                .items_of(o)
                .iter()
                .enumerate()
                .map(|(k, it)| {
                    let sku = &ds.skus[it.sku as usize];
                    let est = it.sale_price() * c.rate_bp / 10_000;
                    let (est, act) = match st {
                        "CANCELLED" => (0, 0),
                        "SETTLED" => (est, est),
                        _ => (est, 0),
                    };
                    json!({
                        "line_id": format!("{}{k}", o.id),
                        "sku_id": sku.id,
                        "product_id": ds.products[sku.product as usize].id,
                        "quantity": 1,
                        "price": m(it.sale_price()),
                        "commission_rate": c.rate_bp.to_string(),
                        "estimated_commission": m(est),
                        "actual_commission": m(act),
                    })
                })
                .collect();
            json!({
                "id": o.id.to_string(),
                "creator_user_id": c.id,
                "creator_username": c.username,
                "status": st,
                "create_time": o.ev.create,
                "update_time": updated,
                "skus": skus,
            })
        })
        .collect();
    Ok(page_json("orders", next, total, &list))
}

/// Paid, not-cancelled orders credited to creator `k` of shop `shop` by the clock:
/// (orders, units, GMV minor, estimated commission minor).
pub fn creator_sales(
    ds: &Dataset,
    view: &super::data::View,
    shop: usize,
    k: usize,
) -> (u64, u64, i64, i64) {
    let cs = creators(ds, shop);
    let mut s = (0, 0, 0, 0);
    for &(_, i) in &view.shops[shop].by_create {
        let o = &ds.orders[i as usize];
        if creator_of(ds, &cs, o) != Some(k) {
            continue;
        }
        let (est, _, st) = commission(ds, &cs[k], o, view.clock);
        if st == "CANCELLED" {
            continue;
        }
        s.0 += 1;
        s.1 += o.items.len() as u64;
        s.2 += ds.sub_total(o);
        s.3 += est;
    }
    s
}

fn creator_json(
    ds: &Dataset,
    shop: usize,
    c: &Creator,
    with_performance: Option<&super::data::View>,
) -> Value {
    let mut v = json!({
        "user_id": c.id,
        "username": c.username,
        "nickname": c.username.replace('_', " "),
        "follower_count": c.followers,
        "commission_rate": c.rate_bp.to_string(),
        "region": ds.shops[shop].region.code,
    });
    if let Some(view) = with_performance {
        let k = creators(ds, shop)
            .iter()
            .position(|x| x.id == c.id)
            .expect("own creator");
        let (orders, units, gmv, _) = creator_sales(ds, view, shop, k);
        let region = ds.shops[shop].region;
        v["performance"] = json!({
            "gmv": { "amount": Minor { minor: gmv, digits: region.minor_digits }.to_string(), "currency": region.currency },
            "orders": orders,
            "units_sold": units,
        });
    }
    v
}

/// `POST /affiliate_seller/202508/marketplace_creators/search`.
pub fn search_creators(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let size = page_size(ctx.q("page_size"), 20)?;
    let cs = creators(&sb.data, shop);
    let idx: Vec<u32> = (0..cs.len() as u32).collect();
    let fp = fingerprint(&[&shop.to_le_bytes(), b"creators"]);
    let (page, next, total) = token_page(ctx.q("page_token"), fp, &idx, false, size, |_| true)?;
    let list: Vec<Value> = page
        .iter()
        .map(|&k| creator_json(&sb.data, shop, &cs[k as usize], None))
        .collect();
    Ok(page_json("creators", next, total, &list))
}

/// `GET /affiliate_seller/202508/marketplace_creators/{creator_user_id}`.
pub fn get_creator(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let id = ctx.params.get("creator_user_id").map_or("", String::as_str);
    let c = creators(&sb.data, shop)
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiFault::param(format_args!("creator_user_id {id:?} not found")))?;
    json_bytes(json!({ "creator": creator_json(&sb.data, shop, &c, Some(&ctx.view)) }))
}

/// `POST /affiliate_seller/202412/open_collaborations/search`: one open plan per product,
/// at the shop's standard rate (10%).
pub fn search_open_collaborations(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let size = page_size(ctx.q("page_size"), 100)?;
    let own: Vec<u32> = (0..ds.products.len() as u32)
        .filter(|&p| {
            ds.products[p as usize].shop == shop
                && ds.products[p as usize].create_time <= ctx.view.clock
        })
        .collect();
    let fp = fingerprint(&[&shop.to_le_bytes(), b"open_collaborations"]);
    let (page, next, total) = token_page(ctx.q("page_token"), fp, &own, false, size, |_| true)?;
    let list: Vec<Value> = page
        .iter()
        .map(|&p| {
            let prod = &ds.products[p as usize];
            json!({
                "id": format!("{}8", prod.id),
                "product_id": prod.id,
                "product_title": prod.title,
                "commission_rate": "1000",
                "status": "ACTIVE",
                "create_time": prod.create_time,
            })
        })
        .collect();
    Ok(page_json("open_collaborations", next, total, &list))
}

/// Rows a backfill of the whole history lands per affiliate table for shop `shop`.
pub fn truth(ds: &Dataset, view: &super::data::View, shop: usize) -> [(&'static str, u64); 5] {
    let cs = creators(ds, shop);
    let (mut orders, mut lines) = (0, 0);
    for &(_, i) in &view.shops[shop].by_create {
        let o = &ds.orders[i as usize];
        if creator_of(ds, &cs, o).is_some() {
            orders += 1;
            lines += o.items.len() as u64;
        }
    }
    let products = ds
        .products
        .iter()
        .filter(|p| p.shop == shop && p.create_time <= view.clock)
        .count() as u64;
    [
        ("affiliate_orders", orders),
        ("affiliate_order_lines", lines),
        ("affiliate_creators", cs.len() as u64),
        ("affiliate_creator_details", cs.len() as u64),
        ("open_collaborations", products),
    ]
}
