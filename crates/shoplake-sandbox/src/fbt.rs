//! FBT (Fulfilled by TikTok): the seller's stock in TikTok's warehouses. Shops in the US
//! market are onboarded (others get empty lists); every third SKU of an onboarded shop
//! is an FBT good, stocked in one of two FBT warehouses. Stock moves two ways:
//! - **inbound orders** every 14 days from the start of the history (created 3 days
//!   before they arrive): per good, 20 units plus what the next 14 days will ship, so
//!   stock never runs out;
//! - **outbound**: each unit of an FBT good in a TikTok order leaves when the carrier
//!   collects the order.
//!
//! Inventory = received − shipped by the clock (in transit = inbound not yet arrived).
//! Multi-channel fulfilment (MCF) is enabled for onboarded shops; its inventory is the
//! available stock.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::data::{Dataset, View};
use super::gate::ApiFault;
use super::orders::parse_body;
use super::paging::{list_page, page_json};
use super::seller::json_bytes;
use super::{Ctx, Sandbox};

const DAY: i64 = 86_400;
const RESTOCK_EVERY: i64 = 14 * DAY;

/// Whether shop `shop` is onboarded to FBT.
pub fn onboarded(ds: &Dataset, shop: usize) -> bool {
    ds.shops[shop].region.code == "US"
}

/// When the shop was onboarded: a week before the history starts.
fn onboard_time(ds: &Dataset) -> i64 {
    ds.config.clock - i64::from(ds.config.days) * DAY - 7 * DAY
}

/// The FBT goods of shop `shop`: indices of its SKUs (every third), none when not onboarded.
pub fn goods(ds: &Dataset, shop: usize) -> Vec<u32> {
    if !onboarded(ds, shop) {
        return Vec::new();
    }
    ds.products
        .iter()
        .filter(|p| p.shop == shop)
        .flat_map(|p| p.skus.clone())
        .filter(|k| k % 3 == 0)
        .collect()
}

/// The shop's two FBT warehouses.
pub fn warehouses(ds: &Dataset, shop: usize) -> Vec<String> {
    if !onboarded(ds, shop) {
        return Vec::new();
    }
    (1..=2)
        .map(|w| format!("7310{:03}{w}", shop % 1000))
        .collect()
}

fn goods_id(ds: &Dataset, sku: u32) -> String {
    format!("G{}", ds.skus[sku as usize].id)
}

fn warehouse_of(ds: &Dataset, shop: usize, sku: u32) -> String {
    warehouses(ds, shop)[(sku % 2) as usize].clone()
}

/// One stock movement.
#[derive(Debug, Clone)]
pub struct Movement {
    /// When the stock changed (received, or collected by the carrier).
    pub time: i64,
    /// SKU index.
    pub sku: u32,
    /// INBOUND or OUTBOUND.
    pub kind: &'static str,
    /// Units (positive).
    pub quantity: i64,
    /// The inbound order or the TikTok order.
    pub reference: String,
}

/// An inbound order: (id, warehouse, created, arrives, units per SKU).
pub type Inbound = (String, String, i64, i64, BTreeMap<u32, i64>);

/// Every inbound order and outbound movement of shop `shop` (any time; filter by the
/// clock), in time order.
pub fn world(ds: &Dataset, view: &View, shop: usize) -> (Vec<Inbound>, Vec<Movement>) {
    let g = goods(ds, shop);
    if g.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let fbt: BTreeMap<u32, ()> = g.iter().map(|&k| (k, ())).collect();
    let mut out = Vec::new();
    for &(_, i) in &view.shops[shop].by_create {
        let o = &ds.orders[i as usize];
        if o.ev.shipped == super::data::NEVER {
            continue;
        }
        let mut units: BTreeMap<u32, i64> = BTreeMap::new();
        for li in ds.items_of(o) {
            if fbt.contains_key(&li.sku) {
                *units.entry(li.sku).or_default() += 1;
            }
        }
        out.extend(units.into_iter().map(|(sku, q)| Movement {
            time: o.ev.shipped,
            sku,
            kind: "OUTBOUND",
            quantity: q,
            reference: o.id.to_string(),
        }));
    }
    out.sort_by(|a, b| (a.time, &a.reference, a.sku).cmp(&(b.time, &b.reference, b.sku)));
    // The first delivery arrives as the history starts (a backfill of it sees every one).
    let first = onboard_time(ds) + 7 * DAY;
    // Units shipped per SKU and restock period (the 14 days after each arrival).
    let mut shipped: BTreeMap<(u32, i64), i64> = BTreeMap::new();
    for m in &out {
        if m.time >= first {
            *shipped
                .entry((m.sku, (m.time - first) / RESTOCK_EVERY))
                .or_default() += m.quantity;
        }
    }
    let mut inbound = Vec::new();
    let mut k = 0i64;
    loop {
        let arrive = first + k * RESTOCK_EVERY;
        if arrive - 3 * DAY > view.clock {
            break;
        }
        for w in warehouses(ds, shop) {
            let mut qty = BTreeMap::new();
            for &sku in g.iter().filter(|&&s| warehouse_of(ds, shop, s) == w) {
                let next = shipped.get(&(sku, k)).copied().unwrap_or(0);
                qty.insert(sku, 20 + next);
            }
            let id = format!("{}{:04}", &w, k);
            inbound.push((id, w, arrive - 3 * DAY, arrive, qty));
        }
        k += 1;
    }
    for (id, _, _, arrive, qty) in &inbound {
        out.extend(qty.iter().map(|(&sku, &q)| Movement {
            time: *arrive,
            sku,
            kind: "INBOUND",
            quantity: q,
            reference: id.clone(),
        }));
    }
    out.sort_by(|a, b| (a.time, &a.reference, a.sku).cmp(&(b.time, &b.reference, b.sku)));
    (inbound, out)
}

/// `GET /fbt/202408/warehouses`.
pub fn list_warehouses(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let list: Vec<Value> = warehouses(&sb.data, shop)
        .iter()
        .enumerate()
        .map(|(i, w)| {
            json!({
                "id": w,
                "name": format!("FBT {} {}", sb.data.shops[shop].region.code, ["East", "West"][i % 2]),
                "region": sb.data.shops[shop].region.code,
                "type": "FBT",
            })
        })
        .collect();
    json_bytes(json!({ "warehouses": list }))
}

/// `GET /fbt/202409/merchants/onboarded_regions`.
pub fn onboarded_regions(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let shop = ctx.shop.unwrap_or(0);
    let list: Vec<Value> = if onboarded(ds, shop) {
        vec![json!({ "region": ds.shops[shop].region.code, "onboard_time": onboard_time(ds) })]
    } else {
        Vec::new()
    };
    json_bytes(json!({ "onboarded_regions": list }))
}

/// `GET /fbt/202601/merchants/mcf_status`.
pub fn mcf_status(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let on = onboarded(ds, ctx.shop.unwrap_or(0));
    json_bytes(json!({ "mcf_status": {
        "status": if on { "ENABLED" } else { "NOT_ENABLED" },
        "enabled_time": on.then(|| onboard_time(ds)),
    }}))
}

/// `POST /fbt/202409/goods/search` (page_size 1–100).
pub fn search_goods(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let shop = ctx.shop.unwrap_or(0);
    let g = goods(ds, shop);
    let (rows, next, total) = list_page(ctx, b"fbt_goods", 100, &g)?;
    let list: Vec<Value> = rows
        .iter()
        .map(|&k| {
            let s = &ds.skus[k as usize];
            let p = &ds.products[s.product as usize];
            json!({
                "goods_id": goods_id(ds, k),
                "name": format!("{} {}", p.title, s.variant),
                "barcode": format!("0{}", &s.id[5..]),
                "skus": [{ "sku_id": s.id, "product_id": p.id, "seller_sku": s.seller_sku }],
                "fbt_warehouse_id": warehouse_of(ds, shop, k),
            })
        })
        .collect();
    Ok(page_json("goods", next, total, &list))
}

/// Stock per FBT good at `clock`: (on hand, in transit).
pub fn stock(ds: &Dataset, view: &View, shop: usize) -> BTreeMap<u32, (i64, i64)> {
    let (inbound, moves) = world(ds, view, shop);
    let mut out: BTreeMap<u32, (i64, i64)> =
        goods(ds, shop).into_iter().map(|k| (k, (0, 0))).collect();
    for m in moves.iter().filter(|m| m.time <= view.clock) {
        let e = out.entry(m.sku).or_default();
        e.0 += if m.kind == "INBOUND" {
            m.quantity
        } else {
            -m.quantity
        };
    }
    for (_, _, created, arrive, qty) in &inbound {
        if *created <= view.clock && *arrive > view.clock {
            for (k, q) in qty {
                out.entry(*k).or_default().1 += q;
            }
        }
    }
    out
}

/// `POST /fbt/202408/inventory/search` (page_size 1–100): per good and FBT warehouse.
pub fn search_inventory(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let shop = ctx.shop.unwrap_or(0);
    let st = stock(ds, &ctx.view, shop);
    let keys: Vec<u32> = st.keys().copied().collect();
    let (rows, next, total) = list_page(ctx, b"fbt_inventory", 100, &keys)?;
    let list: Vec<Value> = rows
        .iter()
        .map(|k| {
            let (on_hand, transit) = st[k];
            json!({
                "goods_id": goods_id(ds, *k),
                "sku_id": ds.skus[*k as usize].id,
                "fbt_warehouse_id": warehouse_of(ds, shop, *k),
                "on_hand_quantity": on_hand,
                "available_quantity": on_hand,
                "in_transit_quantity": transit,
            })
        })
        .collect();
    Ok(page_json("inventory", next, total, &list))
}

/// `POST /fbt/202601/mcf/goods/inventory/search` (body `goods_ids`, optional): what MCF
/// orders can draw on, per good.
pub fn mcf_inventory(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    #[derive(serde::Deserialize, Default)]
    struct Filter {
        goods_ids: Option<Vec<String>>,
    }
    let ds: &Dataset = &sb.data;
    let f: Filter = parse_body(ctx)?;
    let shop = ctx.shop.unwrap_or(0);
    let list: Vec<Value> = stock(ds, &ctx.view, shop)
        .iter()
        .filter(|(k, _)| f.goods_ids.as_ref().is_none_or(|ids| ids.contains(&goods_id(ds, **k))))
        .map(|(k, (on_hand, _))| json!({ "goods_id": goods_id(ds, *k), "available_quantity": on_hand }))
        .collect();
    json_bytes(json!({ "goods_inventory_list": list }))
}

#[derive(serde::Deserialize, Default)]
struct RecordFilter {
    create_time_ge: Option<i64>,
    create_time_le: Option<i64>,
}

/// `POST /fbt/202410/inventory_records/search` (page_size 1–100; body `create_time_ge` /
/// `create_time_le`, both inclusive): stock movements by the clock.
pub fn search_records(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let f: RecordFilter = parse_body(ctx)?;
    let shop = ctx.shop.unwrap_or(0);
    let (_, moves) = world(ds, &ctx.view, shop);
    let keep: Vec<u32> = (0..moves.len() as u32)
        .filter(|&i| {
            let t = moves[i as usize].time;
            t <= ctx.view.clock
                && f.create_time_ge.is_none_or(|g| t >= g)
                && f.create_time_le.is_none_or(|l| t <= l)
        })
        .collect();
    let (rows, next, total) = list_page(ctx, b"fbt_records", 100, &keep)?;
    let list: Vec<Value> = rows
        .iter()
        .map(|&i| {
            let m = &moves[i as usize];
            let inbound = m.kind == "INBOUND";
            json!({
                "id": format!("{}-{}-{}", m.kind.chars().next().unwrap_or('X'), m.reference, m.sku),
                "goods_id": goods_id(ds, m.sku),
                "fbt_warehouse_id": warehouse_of(ds, shop, m.sku),
                "type": m.kind,
                "quantity_change": if inbound { m.quantity } else { -m.quantity },
                "inbound_order_id": inbound.then(|| m.reference.clone()),
                "order_id": (!inbound).then(|| m.reference.clone()),
                "create_time": m.time,
            })
        })
        .collect();
    Ok(page_json("inventory_records", next, total, &list))
}

/// `GET /fbt/202409/inbound_orders?ids=…` (required, up to 50).
pub fn inbound_orders(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let ids = ctx.ids("ids", 50)?;
    let (inbound, _) = world(ds, &ctx.view, ctx.shop.unwrap_or(0));
    let clock = ctx.view.clock;
    let mut list = Vec::new();
    for id in ids {
        let (id, w, created, arrive, qty) = inbound
            .iter()
            .find(|x| x.0 == id && x.2 <= clock)
            .ok_or_else(|| ApiFault::param(format_args!("inbound order {id} not found")))?;
        list.push(json!({
            "id": id,
            "fbt_warehouse_id": w,
            "status": if *arrive <= clock { "RECEIVED" } else { "IN_TRANSIT" },
            "create_time": created,
            "expected_arrival_time": arrive,
            "receive_time": (*arrive <= clock).then_some(*arrive),
            "goods": qty.iter().map(|(k, q)| json!({ "goods_id": goods_id(ds, *k), "quantity": q })).collect::<Vec<_>>(),
        }));
    }
    json_bytes(json!({ "inbound_orders": list }))
}

/// Rows a backfill lands per FBT table for shop `shop`.
pub fn truth(ds: &Dataset, view: &View, shop: usize) -> Vec<(&'static str, u64)> {
    let (inbound, moves) = world(ds, view, shop);
    let on = u64::from(onboarded(ds, shop));
    let landed = moves.iter().filter(|m| m.time <= view.clock);
    let referenced: std::collections::BTreeSet<&str> = landed
        .clone()
        .filter(|m| m.kind == "INBOUND")
        .map(|m| m.reference.as_str())
        .collect();
    vec![
        ("fbt_warehouses", warehouses(ds, shop).len() as u64),
        ("fbt_onboarded_regions", on),
        ("fbt_mcf_status", 1),
        ("fbt_goods", goods(ds, shop).len() as u64),
        ("fbt_inventory", goods(ds, shop).len() as u64),
        ("fbt_mcf_inventory", goods(ds, shop).len() as u64),
        ("fbt_inventory_records", landed.count() as u64),
        (
            "fbt_inbound_orders",
            inbound
                .iter()
                .filter(|x| referenced.contains(x.0.as_str()))
                .count() as u64,
        ),
    ]
}
