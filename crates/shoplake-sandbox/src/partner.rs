//! Affiliate Partner: an agency (the partner) that runs affiliate campaigns for the
//! seller's products in each market and manages half of each shop's creators. Calls carry
//! the seller's `category_asset_cipher` for a market instead of a `shop_cipher`; the data
//! covers every shop of that market.
//!
//! The world, derived from the seed and the orders:
//! - **Campaigns**: one every 30 days per market from 5 days into the history, each 21 days
//!   long and announced 7 days ahead; each enrolls 4–8 of the market's products (listed by
//!   its start, drawn by popularity) at a creator commission of 10–20% and a partner service fee of 2–5%.
//! - **Partner creators**: the even-numbered of each shop's affiliate creators
//!   ([`super::affiliate::creators`]); each promotes an enrolled product of its shop with
//!   probability 3/4, posting 1–3 videos and 0–1 LIVE for it, after a free sample.
//! - **TAP orders**: an affiliate order placed during a campaign through a partner creator
//!   who promotes one of its enrolled products: the units of those products are the
//!   campaign's, and the partner earns its fee on their sale price (estimated at order
//!   time, actual once the order completes, 0 when cancelled).
//! - **CAP orders**: every affiliate order through a partner creator, campaign or not;
//!   the agency earns 10% of the creator's commission.
//!
//! Endpoints: campaigns (list, detail, products), per-product creator fulfilment (list
//! per campaign, per product), per creator content statistics and sample status, TAP and
//! CAP order search by create time.

use serde::Deserialize;
use serde_json::{Value, json};

use super::affiliate::{Creator, commission, creator_of, creators};
use super::data::{Dataset, Order, View};
use super::gate::ApiFault;
use super::orders::parse_body;
use super::paging::{list_page, page_json};
use super::rng::Rng;
use super::seller::json_bytes;
use super::{Ctx, Sandbox};
use shoplake_tiktok::region::Minor;

const DAY: i64 = 86_400;
/// Days between campaign starts, campaign length, days announced ahead.
const EVERY: i64 = 30;
const LENGTH: i64 = 21;
const AHEAD: i64 = 7;
/// The agency's share of its creators' commission on CAP orders, basis points.
const CAP_SHARE_BP: i64 = 1_000;

/// A product enrolled in a campaign.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// Index into [`Dataset::products`].
    pub product: u32,
    /// Creator commission, basis points.
    pub rate_bp: i64,
    /// The partner's service fee, basis points.
    pub fee_bp: i64,
    /// When the seller registered it.
    pub registered: i64,
}

/// A campaign of one market.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// Campaign id.
    pub id: String,
    /// Its number in the market (0, 1, …).
    pub k: u64,
    /// Name.
    pub name: String,
    /// Created (announced).
    pub create: i64,
    /// Runs from …
    pub start: i64,
    /// … until (exclusive).
    pub end: i64,
    /// Enrolled products.
    pub products: Vec<Enrolled>,
}

impl Campaign {
    fn status(&self, clock: i64) -> &'static str {
        if self.start > clock {
            "NOT_STARTED"
        } else if self.end <= clock {
            "ENDED"
        } else {
            "ONGOING"
        }
    }
}

fn region_key(region: &str) -> u64 {
    region.bytes().fold(0u64, |h, b| h * 131 + u64::from(b))
}

/// The shops of `region`.
fn market_shops(ds: &Dataset, region: &str) -> Vec<usize> {
    (0..ds.shops.len())
        .filter(|&s| ds.shops[s].region.code == region)
        .collect()
}

/// The campaigns of market `region` announced by `clock`.
pub fn campaigns(ds: &Dataset, region: &str, clock: i64) -> Vec<Campaign> {
    let first = ds.config.clock - i64::from(ds.config.days) * DAY + 5 * DAY;
    let shops = market_shops(ds, region);
    let mut out = Vec::new();
    for k in 0u64.. {
        let start = first + k as i64 * EVERY * DAY;
        let create = start - AHEAD * DAY;
        if create > clock {
            break;
        }
        let mut r = Rng::new(ds.config.seed ^ 0x5041_5254, region_key(region) * 1_000 + k);
        let listed: Vec<u32> = (0..ds.products.len() as u32)
            .filter(|&p| {
                let p = &ds.products[p as usize];
                shops.contains(&p.shop) && p.create_time <= create
            })
            .collect();
        if listed.is_empty() {
            continue;
        }
        // Sellers enroll what sells: products are drawn by their popularity.
        let cum = super::rng::cumulative(listed.iter().map(|&p| ds.products[p as usize].weight));
        let n = (r.range(4, 9) as usize).min(listed.len());
        let mut products: Vec<Enrolled> = Vec::with_capacity(n);
        for _ in 0..1_000 {
            if products.len() == n {
                break;
            }
            let p = listed[r.pick_cumulative(&cum)];
            if products.iter().all(|e| e.product != p) {
                products.push(Enrolled {
                    product: p,
                    rate_bp: r.range(10, 21) * 100,
                    fee_bp: r.range(2, 6) * 100,
                    registered: create + r.range(0, 3 * DAY),
                });
            }
        }
        products.sort_by_key(|e| e.product);
        out.push(Campaign {
            id: format!(
                "73{:02}{:014}",
                k % 100,
                region_key(region) % 10_000 * 10_000_000_000 + ds.config.seed % 10_000_000_000
            ),
            k,
            name: format!("{region} partner campaign {}", k + 1),
            create,
            start,
            end: start + LENGTH * DAY,
            products,
        });
    }
    out
}

/// A creator's id as partner endpoints show it (creators are not named by user id there).
pub fn temp_id(c: &Creator) -> String {
    format!("T{}", c.id)
}

/// How creator `c` (index `ci` of its shop) promotes enrolled product `e` of campaign
/// `camp`: (videos, LIVEs), or None when it does not. Only partner creators (even index)
/// promote.
pub fn promotion(seed: u64, camp: &Campaign, e: &Enrolled, ci: usize) -> Option<(u32, u32)> {
    if !ci.is_multiple_of(2) {
        return None;
    }
    let mut r = Rng::new(
        seed ^ 0x5052_4F4D,
        camp.k * 1_000_003 + u64::from(e.product) * 31 + ci as u64,
    );
    r.chance(0.75)
        .then(|| (r.range(1, 4) as u32, r.range(0, 2) as u32))
}

/// The campaign units of a TAP order: (campaign index, enrolled indices, creator index).
pub fn tap_of(
    ds: &Dataset,
    camps: &[Campaign],
    cs: &[Creator],
    o: &Order,
) -> Option<(usize, Vec<usize>, usize)> {
    let ci = creator_of(ds, cs, o)?;
    if ci % 2 != 0 {
        return None;
    }
    let c = camps
        .iter()
        .position(|c| c.start <= o.ev.create && o.ev.create < c.end)?;
    let camp = &camps[c];
    let shop_products: Vec<usize> = camp
        .products
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            ds.items_of(o)
                .iter()
                .any(|li| ds.skus[li.sku as usize].product == e.product)
                && promotion(ds.config.seed, camp, e, ci).is_some()
        })
        .map(|(i, _)| i)
        .collect();
    (!shop_products.is_empty()).then_some((c, shop_products, ci))
}

/// Sale price and units of `o`'s items of the enrolled products `enrolled`.
fn campaign_units(ds: &Dataset, camp: &Campaign, enrolled: &[usize], o: &Order) -> (i64, u64) {
    let mut out = (0, 0);
    for li in ds.items_of(o) {
        let p = ds.skus[li.sku as usize].product;
        if enrolled.iter().any(|&i| camp.products[i].product == p) {
            out.0 += li.sale_price();
            out.1 += 1;
        }
    }
    out
}

/// The partner's fee on `o`: each unit of an enrolled product at its fee rate (rounded
/// down per unit).
fn partner_fee(ds: &Dataset, camp: &Campaign, enrolled: &[usize], o: &Order) -> i64 {
    ds.items_of(o)
        .iter()
        .filter_map(|li| {
            let p = ds.skus[li.sku as usize].product;
            enrolled
                .iter()
                .map(|&x| &camp.products[x])
                .find(|e| e.product == p)
                .map(|e| li.sale_price() * e.fee_bp / 10_000)
        })
        .sum()
}

fn money(ds: &Dataset, shop: usize, minor: i64) -> Value {
    let r = ds.shops[shop].region;
    json!({ "amount": Minor { minor, digits: r.minor_digits }.to_string(), "currency": r.currency })
}

/// The market of the call's category asset (the gate put its first shop in the context).
fn market(ds: &Dataset, ctx: &Ctx) -> &'static str {
    ds.shops[ctx.shop.unwrap_or(0)].region.code
}

fn find_campaign(ds: &Dataset, ctx: &Ctx) -> Result<Campaign, ApiFault> {
    let id = ctx.params.get("campaign_id").map_or("", String::as_str);
    campaigns(ds, market(ds, ctx), ctx.view.clock)
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiFault::param(format_args!("campaign_id {id:?} not found")))
}

fn find_enrolled(ds: &Dataset, ctx: &Ctx, camp: &Campaign) -> Result<Enrolled, ApiFault> {
    let id = ctx.params.get("product_id").map_or("", String::as_str);
    camp.products
        .iter()
        .find(|e| ds.products[e.product as usize].id == id)
        .cloned()
        .ok_or_else(|| {
            ApiFault::param(format_args!(
                "product_id {id:?} is not in campaign {}",
                camp.id
            ))
        })
}

/// Per creator of the enrolled product's shop who promotes it: (creator index, creator,
/// videos, LIVEs).
fn promoters(ds: &Dataset, camp: &Campaign, e: &Enrolled) -> Vec<(usize, Creator, u32, u32)> {
    let shop = ds.products[e.product as usize].shop;
    creators(ds, shop)
        .into_iter()
        .enumerate()
        .filter_map(|(ci, c)| promotion(ds.config.seed, camp, e, ci).map(|(v, l)| (ci, c, v, l)))
        .collect()
}

/// TAP orders of campaign `camp` for enrolled product `e` (placed by the clock), with
/// the creator index, the product's units and their sale price.
fn product_orders<'a>(
    ds: &'a Dataset,
    view: &View,
    camps: &[Campaign],
    c: usize,
    e: &Enrolled,
) -> Vec<(&'a Order, usize, u64, i64)> {
    let shop = ds.products[e.product as usize].shop;
    let cs = creators(ds, shop);
    let camp = &camps[c];
    let idx = &view.shops[shop].by_create;
    let lo = idx.partition_point(|&(t, _)| t < camp.start);
    let hi = idx.partition_point(|&(t, _)| t < camp.end);
    idx[lo..hi]
        .iter()
        .map(|&(_, i)| &ds.orders[i as usize])
        .filter_map(|o| {
            let (oc, enrolled, ci) = tap_of(ds, camps, &cs, o)?;
            let mine = enrolled
                .iter()
                .position(|&k| camp.products[k].product == e.product)?;
            (oc == c).then_some(())?;
            let (gmv, units) = campaign_units(ds, camp, &[enrolled[mine]], o);
            (o.state_at(view.clock).0 != super::data::status::CANCELLED)
                .then_some((o, ci, units, gmv))
        })
        .collect()
}

fn campaign_json(ds: &Dataset, region: &str, c: &Campaign, clock: i64, detail: bool) -> Value {
    let mut v = json!({
        "id": c.id,
        "name": c.name,
        "status": c.status(clock),
        "type": "OPEN",
        "target_market": region,
        "create_time": c.create,
        "start_time": c.start,
        "end_time": c.end,
    });
    if detail {
        v["description"] = json!(format!("{} — {} products", c.name, c.products.len()));
        v["registration_end_time"] = json!(c.start);
        v["product_count"] = json!(c.products.len());
        v["creator_count"] = json!(
            c.products
                .iter()
                .map(|e| promoters(ds, c, e).len())
                .sum::<usize>()
        );
    }
    v
}

/// `GET /affiliate_partner/202405/campaigns` (page_size 1–100).
pub fn list_campaigns(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let region = market(ds, ctx);
    let camps = campaigns(ds, region, ctx.view.clock);
    let idx: Vec<u32> = (0..camps.len() as u32).collect();
    let (rows, next, total) = list_page(ctx, b"campaigns", 100, &idx)?;
    let list: Vec<Value> = rows
        .iter()
        .map(|&i| campaign_json(ds, region, &camps[i as usize], ctx.view.clock, false))
        .collect();
    Ok(page_json("campaigns", next, total, &list))
}

/// `GET /affiliate_partner/202405/campaigns/{campaign_id}`.
pub fn campaign_detail(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let c = find_campaign(ds, ctx)?;
    json_bytes(campaign_json(ds, market(ds, ctx), &c, ctx.view.clock, true))
}

/// `GET /affiliate_partner/202405/campaigns/{campaign_id}/products` (page_size 1–100).
pub fn campaign_products(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let c = find_campaign(ds, ctx)?;
    let idx: Vec<u32> = (0..c.products.len() as u32).collect();
    let (rows, next, total) = list_page(ctx, b"campaign_products", 100, &idx)?;
    let list: Vec<Value> = rows
        .iter()
        .map(|&i| {
            let e = &c.products[i as usize];
            let p = &ds.products[e.product as usize];
            json!({
                "product_id": p.id,
                "shop_id": ds.shops[p.shop].id,
                "title": p.title,
                "review_status": "APPROVED",
                "commission_rate": e.rate_bp.to_string(),
                "partner_commission_rate": e.fee_bp.to_string(),
                "registration_time": e.registered,
            })
        })
        .collect();
    Ok(page_json("products", next, total, &list))
}

/// `GET /affiliate_partner/202501/campaigns/{campaign_id}/products/performance`
/// (page_size 1–50): per enrolled product, its creators and what they sold.
pub fn campaign_product_stats(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let region = market(ds, ctx);
    let camps = campaigns(ds, region, ctx.view.clock);
    let c = find_campaign(ds, ctx)?;
    let ci = camps.iter().position(|x| x.id == c.id).expect("listed");
    let idx: Vec<u32> = (0..c.products.len() as u32).collect();
    let (rows, next, total) = list_page(ctx, b"product_stats", 50, &idx)?;
    let started = c.start <= ctx.view.clock;
    let list: Vec<Value> = rows
        .iter()
        .map(|&i| {
            let e = &c.products[i as usize];
            let shop = ds.products[e.product as usize].shop;
            let prom = promoters(ds, &c, e);
            let orders = product_orders(ds, &ctx.view, &camps, ci, e);
            json!({
                "product_id": ds.products[e.product as usize].id,
                "promotion_creator_count": prom.len(),
                "content_posted_creator_count": if started { prom.len() } else { 0 },
                "sample_shipped_count": prom.len(),
                "orders_count": orders.len(),
                "units_sold": orders.iter().map(|x| x.2).sum::<u64>(),
                "gmv": money(ds, shop, orders.iter().map(|x| x.3).sum()),
            })
        })
        .collect();
    Ok(page_json("campaign_product_statistics", next, total, &list))
}

/// `GET /affiliate_partner/202501/campaigns/{campaign_id}/products/{product_id}/performance`
/// (page_size 1–50): the product's promoting creators.
pub fn product_creators(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let camps = campaigns(ds, market(ds, ctx), ctx.view.clock);
    let c = find_campaign(ds, ctx)?;
    let ci = camps.iter().position(|x| x.id == c.id).expect("listed");
    let e = find_enrolled(ds, ctx, &c)?;
    let shop = ds.products[e.product as usize].shop;
    let prom = promoters(ds, &c, &e);
    let orders = product_orders(ds, &ctx.view, &camps, ci, &e);
    let idx: Vec<u32> = (0..prom.len() as u32).collect();
    let (rows, next, total) = list_page(ctx, b"product_creators", 50, &idx)?;
    let started = c.start <= ctx.view.clock;
    let list: Vec<Value> = rows
        .iter()
        .map(|&i| {
            let (k, cr, videos, lives) = &prom[i as usize];
            let mine: Vec<_> = orders.iter().filter(|x| x.1 == *k).collect();
            json!({
                "creator_temp_id": temp_id(cr),
                "creator_username": cr.username,
                "follower_count": cr.followers,
                "fulfillment_status": if started { "CONTENT_POSTED" } else { "SAMPLE_SENT" },
                "video_count": if started { *videos } else { 0 },
                "live_count": if started { *lives } else { 0 },
                "orders_count": mine.len(),
                "units_sold": mine.iter().map(|x| x.2).sum::<u64>(),
                "gmv": money(ds, shop, mine.iter().map(|x| x.3).sum()),
            })
        })
        .collect();
    let mut body: Value =
        serde_json::from_slice(&page_json("promotion_creators", next, total, &list))
            .expect("page json");
    body["total_creator_count"] = json!(prom.len());
    json_bytes(body)
}

/// The promoting creator named by `{creator_temp_id}`, with its videos and LIVEs.
fn find_promoter(
    ds: &Dataset,
    ctx: &Ctx,
    c: &Campaign,
    e: &Enrolled,
) -> Result<(usize, Creator, u32, u32), ApiFault> {
    let id = ctx.params.get("creator_temp_id").map_or("", String::as_str);
    promoters(ds, c, e)
        .into_iter()
        .find(|p| temp_id(&p.1) == id)
        .ok_or_else(|| {
            ApiFault::param(format_args!(
                "creator_temp_id {id:?} does not promote this product"
            ))
        })
}

/// `GET …/campaigns/{campaign_id}/products/{product_id}/creator/{creator_temp_id}/content/statistics`
/// (`affiliate_product_id` and `content_type` 1 = video, 2 = LIVE required): each piece
/// of content the creator posted for the product, with the campaign orders it drove (the
/// creator's orders split over its contents).
pub fn content_statistics(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let camps = campaigns(ds, market(ds, ctx), ctx.view.clock);
    let c = find_campaign(ds, ctx)?;
    let ci = camps.iter().position(|x| x.id == c.id).expect("listed");
    let e = find_enrolled(ds, ctx, &c)?;
    let pid = &ds.products[e.product as usize].id;
    if ctx.q("affiliate_product_id") != Some(pid.as_str()) {
        return Err(ApiFault::param(
            "affiliate_product_id is required and must be the product of the path",
        ));
    }
    let (kind, video) = match ctx.q("content_type") {
        Some("1") => ("VIDEO", true),
        Some("2") => ("LIVE_ROOM", false),
        other => {
            return Err(ApiFault::param(format_args!(
                "content_type must be 1 (video) or 2 (LIVE), got {other:?}"
            )));
        }
    };
    let (k, cr, videos, lives) = find_promoter(ds, ctx, &c, &e)?;
    let shop = ds.products[e.product as usize].shop;
    let started = c.start <= ctx.view.clock;
    let (n_videos, n_lives) = if started { (videos, lives) } else { (0, 0) };
    let n = n_videos + n_lives;
    let orders: Vec<_> = product_orders(ds, &ctx.view, &camps, ci, &e)
        .into_iter()
        .filter(|x| x.1 == k)
        .collect();
    let slots: Vec<u32> = if video {
        (0..n_videos).collect()
    } else {
        (n_videos..n).collect()
    };
    let list: Vec<Value> = slots
        .iter()
        .map(|&j| {
            let mine: Vec<_> = orders
                .iter()
                .filter(|x| (x.0.id % u64::from(n.max(1))) as u32 == j)
                .collect();
            let mut r = Rng::new(
                ds.config.seed ^ 0x434F_4E54,
                c.k * 7_919 + u64::from(e.product) * 101 + k as u64 * 13 + u64::from(j),
            );
            json!({
                "content_id": format!("{}{}{:02}", &cr.id[..8], c.k, j),
                "content_type": kind,
                "publish_time": c.start + i64::from(j) * DAY / 2,
                "views": r.range(500, 50_000),
                "likes": r.range(10, 2_000),
                "orders_count": mine.len(),
                "gmv": money(ds, shop, mine.iter().map(|x| x.3).sum()),
            })
        })
        .collect();
    json_bytes(json!({ "creator_content_statistics": list }))
}

/// `GET …/creator/{creator_temp_id}/content/statistics/sample/status`: the free sample
/// the creator got (applied at registration, shipped a day later, delivered 3 days after).
pub fn sample_status(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let c = find_campaign(ds, ctx)?;
    let e = find_enrolled(ds, ctx, &c)?;
    let _ = find_promoter(ds, ctx, &c, &e)?;
    let clock = ctx.view.clock;
    let (apply, ship, deliver) = (e.registered, e.registered + DAY, e.registered + 4 * DAY);
    let status = if deliver <= clock {
        "DELIVERED"
    } else if ship <= clock {
        "SHIPPED"
    } else {
        "APPROVED"
    };
    let seen = |t: i64| (t <= clock).then_some(t);
    json_bytes(json!({ "sample_status": {
        "status": status,
        "apply_time": apply,
        "ship_time": seen(ship),
        "deliver_time": seen(deliver),
    }}))
}

#[derive(Deserialize, Default)]
struct OrderFilter {
    create_time_ge: Option<i64>,
    create_time_lt: Option<i64>,
    campaign_id: Option<String>,
}

/// Orders of the market's shops placed in the filter's range, as (shop, order index).
fn market_orders(ds: &Dataset, ctx: &Ctx, f: &OrderFilter) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for s in market_shops(ds, market(ds, ctx)) {
        let idx = &ctx.view.shops[s].by_create;
        let lo = f
            .create_time_ge
            .map_or(0, |g| idx.partition_point(|&(t, _)| t < g));
        let hi = f
            .create_time_lt
            .map_or(idx.len(), |l| idx.partition_point(|&(t, _)| t < l));
        out.extend(idx[lo..hi.max(lo)].iter().map(|&(_, i)| (s as u32, i)));
    }
    out
}

fn order_base(ds: &Dataset, shop: usize, cr: &Creator, o: &Order, clock: i64) -> Value {
    let (st, upd) = o.state_at(clock);
    json!({
        "order_id": o.id.to_string(),
        "shop_id": ds.shops[shop].id,
        "creator_temp_id": temp_id(cr),
        "creator_username": cr.username,
        "order_status": st,
        "create_time": o.ev.create,
        "update_time": upd,
    })
}

/// `POST /affiliate_partner/202411/orders/search` (page_size 1–100 in the query; body
/// `create_time_ge` / `create_time_lt`, optional `campaign_id`): TAP orders.
pub fn tap_orders(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let f: OrderFilter = parse_body(ctx)?;
    let clock = ctx.view.clock;
    let camps = campaigns(ds, market(ds, ctx), clock);
    let mut rows = Vec::new();
    let mut cs_cache: Vec<Option<Vec<Creator>>> = vec![None; ds.shops.len()];
    for (s, i) in market_orders(ds, ctx, &f) {
        let cs = cs_cache[s as usize].get_or_insert_with(|| creators(ds, s as usize));
        let o = &ds.orders[i as usize];
        if let Some((c, _, _)) = tap_of(ds, &camps, cs, o)
            && f.campaign_id.as_deref().is_none_or(|id| camps[c].id == id)
        {
            rows.push((s, i));
        }
    }
    let (page_rows, next, total) = list_page(ctx, b"tap_orders", 100, &rows)?;
    let list: Vec<Value> = page_rows
        .iter()
        .map(|&(s, i)| {
            let (s, o) = (s as usize, &ds.orders[i as usize]);
            let cs = creators(ds, s);
            let (c, enrolled, k) = tap_of(ds, &camps, &cs, o).expect("filtered");
            let camp = &camps[c];
            let (gmv, units) = campaign_units(ds, camp, &enrolled, o);
            let fee = partner_fee(ds, camp, &enrolled, o);
            let (_, _, st) = commission(ds, &cs[k], o, clock);
            let (est, act) = match st {
                "CANCELLED" => (0, 0),
                "SETTLED" => (fee, fee),
                _ => (fee, 0),
            };
            let mut v = order_base(ds, s, &cs[k], o, clock);
            v["campaign_id"] = json!(camp.id);
            v["commission_status"] = json!(st);
            v["units"] = json!(units);
            v["gmv"] = money(ds, s, gmv);
            v["estimated_partner_commission"] = money(ds, s, est);
            v["actual_partner_commission"] = money(ds, s, act);
            v["product_ids"] = json!(
                enrolled
                    .iter()
                    .map(|&x| ds.products[camp.products[x].product as usize].id.clone())
                    .collect::<Vec<_>>()
            );
            v
        })
        .collect();
    Ok(page_json("orders", next, total, &list))
}

/// `POST /affiliate_partner/202504/cap_order/search` (page_size 1–100; body
/// `create_time_ge` / `create_time_lt`): every order through the agency's creators.
pub fn cap_orders(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let f: OrderFilter = parse_body(ctx)?;
    let clock = ctx.view.clock;
    let mut rows = Vec::new();
    let mut cs_cache: Vec<Option<Vec<Creator>>> = vec![None; ds.shops.len()];
    for (s, i) in market_orders(ds, ctx, &f) {
        let cs = cs_cache[s as usize].get_or_insert_with(|| creators(ds, s as usize));
        if creator_of(ds, cs, &ds.orders[i as usize]).is_some_and(|k| k % 2 == 0) {
            rows.push((s, i));
        }
    }
    let (page_rows, next, total) = list_page(ctx, b"cap_orders", 100, &rows)?;
    let list: Vec<Value> = page_rows
        .iter()
        .map(|&(s, i)| {
            let (s, o) = (s as usize, &ds.orders[i as usize]);
            let cs = creators(ds, s);
            let k = creator_of(ds, &cs, o).expect("filtered");
            let (est, act, st) = commission(ds, &cs[k], o, clock);
            let mut v = order_base(ds, s, &cs[k], o, clock);
            v["commission_status"] = json!(st);
            v["units"] = json!(o.items.len());
            v["gmv"] = money(
                ds,
                s,
                if st == "CANCELLED" {
                    0
                } else {
                    ds.sub_total(o)
                },
            );
            v["creator_commission_rate"] = json!(cs[k].rate_bp.to_string());
            v["estimated_creator_commission"] = money(ds, s, est);
            v["actual_creator_commission"] = money(ds, s, act);
            v["estimated_agency_commission"] = money(ds, s, est * CAP_SHARE_BP / 10_000);
            v["actual_agency_commission"] = money(ds, s, act * CAP_SHARE_BP / 10_000);
            v
        })
        .collect();
    Ok(page_json("orders", next, total, &list))
}

/// Rows a backfill of the whole history lands per partner table, for shop `shop` (the
/// partner data of its market lands under every shop of the market).
pub fn truth(ds: &Dataset, view: &View, shop: usize) -> Vec<(&'static str, u64)> {
    let clock = view.clock;
    let region = ds.shops[shop].region.code;
    let camps = campaigns(ds, region, clock);
    let products: u64 = camps.iter().map(|c| c.products.len() as u64).sum();
    let (mut creators_n, mut videos, mut lives) = (0u64, 0u64, 0u64);
    for c in &camps {
        for e in &c.products {
            for (_, _, v, l) in promoters(ds, c, e) {
                creators_n += 1;
                if c.start <= clock {
                    videos += u64::from(v);
                    lives += u64::from(l);
                }
            }
        }
    }
    let (mut tap, mut cap) = (0u64, 0u64);
    for s in market_shops(ds, region) {
        let cs = creators(ds, s);
        for &(_, i) in &view.shops[s].by_create {
            let o = &ds.orders[i as usize];
            if creator_of(ds, &cs, o).is_some_and(|k| k % 2 == 0) {
                cap += 1;
                tap += u64::from(tap_of(ds, &camps, &cs, o).is_some());
            }
        }
    }
    vec![
        ("partner_campaigns", camps.len() as u64),
        ("partner_campaign_details", camps.len() as u64),
        ("partner_campaign_products", products),
        ("partner_campaign_product_stats", products),
        ("partner_campaign_creators", creators_n),
        ("partner_creator_videos", videos),
        ("partner_creator_lives", lives),
        ("partner_sample_status", creators_n),
        ("partner_tap_orders", tap),
        ("partner_cap_orders", cap),
    ]
}

/// What a campaign brought shop `shop`, for marts.partner_performance.
#[derive(Debug, serde::Serialize)]
pub struct CampaignTruth {
    id: String,
    /// Enrolled products of the shop.
    products: u64,
    /// Not-cancelled TAP orders placed in the shop, their campaign units, GMV and the
    /// partner's estimated and settled fee.
    orders: u64,
    units: u64,
    gmv: String,
    estimated_fee: String,
    actual_fee: String,
}

/// Every campaign of `shop`'s market with at least one product of the shop.
pub fn performance(ds: &Dataset, view: &View, shop: usize) -> Vec<CampaignTruth> {
    let clock = view.clock;
    let camps = campaigns(ds, ds.shops[shop].region.code, clock);
    let cs = creators(ds, shop);
    let digits = ds.shops[shop].region.minor_digits;
    let fmt = |v: i64| Minor { minor: v, digits }.to_string();
    // campaign → (orders, units, gmv, estimated, actual)
    let mut acc = vec![(0u64, 0u64, 0i64, 0i64, 0i64); camps.len()];
    for &(_, i) in &view.shops[shop].by_create {
        let o = &ds.orders[i as usize];
        let Some((c, enrolled, k)) = tap_of(ds, &camps, &cs, o) else {
            continue;
        };
        let (_, _, st) = commission(ds, &cs[k], o, clock);
        if st == "CANCELLED" {
            continue;
        }
        let camp = &camps[c];
        let (gmv, units) = campaign_units(ds, camp, &enrolled, o);
        let fee = partner_fee(ds, camp, &enrolled, o);
        let a = &mut acc[c];
        a.0 += 1;
        a.1 += units;
        a.2 += gmv;
        a.3 += fee;
        a.4 += if st == "SETTLED" { fee } else { 0 };
    }
    camps
        .iter()
        .zip(acc)
        .filter_map(|(c, a)| {
            let own = c
                .products
                .iter()
                .filter(|e| ds.products[e.product as usize].shop == shop)
                .count() as u64;
            (own > 0).then(|| CampaignTruth {
                id: c.id.clone(),
                products: own,
                orders: a.0,
                units: a.1,
                gmv: fmt(a.2),
                estimated_fee: fmt(a.3),
                actual_fee: fmt(a.4),
            })
        })
        .collect()
}
