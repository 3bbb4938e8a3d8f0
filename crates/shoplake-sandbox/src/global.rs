//! Products, seller level (no `shop_cipher`): global products and categories for a
//! cross-border (global) seller, and the compliance contacts every seller keeps.
//! - A global product is the master listing a cross-border shop's product was replicated
//!   from: one per product of the seller's cross-border shops, same title and times.
//!   A seller without a cross-border shop has none.
//! - Global categories mirror the catalog's; their attributes and rules are the local
//!   ones'. Global listing rules: one inventory rule per market the seller sells in.
//! - Manufacturers (one per brand the seller sells) and EU responsible persons (two).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::data::Dataset;
use super::gate::ApiFault;
use super::listing::{attributes, brands, categories};
use super::orders::parse_body;
use super::paging::{list_page, page_json};
use super::products::stable_id;
use super::seller::json_bytes;
use super::{Ctx, Sandbox};

/// Products of the seller's cross-border shops listed by `clock` (indices), by update time.
pub fn global_products(ds: &Dataset, clock: i64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..ds.products.len() as u32)
        .filter(|&i| {
            let p = &ds.products[i as usize];
            ds.shops[p.shop].seller_type == "CROSS_BORDER" && p.create_time <= clock
        })
        .collect();
    v.sort_by_key(|&i| (ds.product_state(i, clock).1, i));
    v
}

/// The global product id of product `i` (its local id with a different prefix).
pub fn global_id(ds: &Dataset, i: u32) -> String {
    format!("18{}", &ds.products[i as usize].id[2..])
}

fn find_global(ds: &Dataset, ctx: &Ctx, param: &str) -> Result<u32, ApiFault> {
    let id = ctx.params.get(param).map_or("", String::as_str);
    global_products(ds, ctx.view.clock)
        .into_iter()
        .find(|&i| global_id(ds, i) == id)
        .ok_or_else(|| ApiFault::param(format_args!("global product {id:?} not found")))
}

/// Global product `i` as of `clock` (update time and SKUs follow the local product's).
fn global_json(ds: &Dataset, i: u32, clock: i64, detail: bool) -> Value {
    let p = &ds.products[i as usize];
    let shop = &ds.shops[p.shop];
    let mut v = json!({
        "id": global_id(ds, i),
        "title": p.title,
        "status": "PUBLISHED",
        "create_time": p.create_time,
        "update_time": ds.product_state(i, clock).1,
        "products": [{ "id": p.id, "region": shop.region.code, "shop_id": shop.id }],
    });
    if detail {
        v["category"] = json!({ "id": stable_id(p.category).to_string(), "name": p.category });
        v["brand"] = json!(p.brand);
        v["description"] = json!(format!("<p>{}</p>", p.title));
        v["skus"] = json!(
            ds.skus_at(i, clock)
                .into_iter()
                .map(|k| &ds.skus[k as usize])
                .map(|s| json!({ "id": format!("18{}", &s.id[2..]), "seller_sku": s.seller_sku, "variant": s.variant }))
                .collect::<Vec<_>>()
        );
    }
    v
}

#[derive(serde::Deserialize, Default)]
struct GlobalFilter {
    update_time_ge: Option<i64>,
    update_time_le: Option<i64>,
}

/// `POST /product/202312/global_products/search` (page_size 1–100; body
/// `update_time_ge` / `update_time_le`, both inclusive).
pub fn search_global_products(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let f: GlobalFilter = parse_body(ctx)?;
    let rows: Vec<u32> = global_products(ds, ctx.view.clock)
        .into_iter()
        .filter(|&i| {
            let t = ds.product_state(i, ctx.view.clock).1;
            f.update_time_ge.is_none_or(|g| t >= g) && f.update_time_le.is_none_or(|l| t <= l)
        })
        .collect();
    let (page, next, total) = list_page(ctx, b"global_products", 100, &rows)?;
    let list: Vec<Value> = page
        .iter()
        .map(|&i| global_json(ds, i, ctx.view.clock, false))
        .collect();
    Ok(page_json("global_products", next, total, &list))
}

/// `GET /product/202309/global_products/{global_product_id}`.
pub fn global_product(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let i = find_global(&sb.data, ctx, "global_product_id")?;
    json_bytes(global_json(&sb.data, i, ctx.view.clock, true))
}

/// `GET /product/202507/products/{product_id}/replicated_products` (`product_id` is a
/// global product id): the local products replicated from it.
pub fn replicated_products(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let i = find_global(ds, ctx, "product_id")?;
    let p = &ds.products[i as usize];
    let shop = &ds.shops[p.shop];
    json_bytes(json!({ "replicated_products": [{
        "product_id": p.id,
        "shop_id": shop.id,
        "region": shop.region.code,
        "status": ds.product_state(i, ctx.view.clock).0,
    }]}))
}

fn global_category_id(c: &str) -> String {
    format!("9{}", stable_id(c))
}

fn global_category(ctx: &Ctx) -> Result<&'static str, ApiFault> {
    let id = ctx.params.get("category_id").map_or("", String::as_str);
    categories()
        .into_iter()
        .find(|c| global_category_id(c) == id)
        .ok_or_else(|| ApiFault::param(format_args!("global category_id {id:?} does not exist")))
}

/// `GET /product/202309/global_categories`.
pub fn global_categories(_sb: &Sandbox, _ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let list: Vec<Value> = categories()
        .iter()
        .map(|c| json!({ "id": global_category_id(c), "parent_id": "0", "local_name": c, "is_leaf": true }))
        .collect();
    json_bytes(json!({ "categories": list }))
}

/// `GET /product/202309/categories/{category_id}/global_attributes`.
pub fn global_attributes(_sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let cat = global_category(ctx)?;
    let list: Vec<Value> = attributes(cat)
        .into_iter()
        .map(|(id, name, kind, required, values)| {
            json!({ "id": id, "name": name, "type": kind, "is_requried": required, "value_count": values.len() })
        })
        .collect();
    json_bytes(json!({ "attributes": list }))
}

/// `GET /product/202309/categories/{category_id}/global_rules`.
pub fn global_rules(_sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let cat = global_category(ctx)?;
    json_bytes(json!({
        "category_id": global_category_id(cat),
        "package_dimension": { "is_required": true },
        "size_chart": { "is_supported": false, "is_required": false },
        "product_certifications": [],
    }))
}

/// `GET /product/202507/global_listing_rules`: per market, how inventory is shared.
pub fn global_listing_rules(sb: &Sandbox, _ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let markets: BTreeSet<&str> = sb.data.shops.iter().map(|s| s.region.code).collect();
    let rules: Vec<Value> = markets
        .iter()
        .map(|m| json!({ "target_market": m, "inventory_mode": if *m == "US" { "EXCLUSIVE" } else { "SHARED" } }))
        .collect();
    json_bytes(
        json!({ "inventory_rules": rules, "listing_methods": ["REPLICATE", "CREATE_LOCAL"] }),
    )
}

/// The brands the seller sells (manufacturer per brand).
pub fn seller_brands(ds: &Dataset, clock: i64) -> Vec<&'static str> {
    let sold: BTreeSet<&str> = ds
        .products
        .iter()
        .filter(|p| p.create_time <= clock)
        .map(|p| p.brand)
        .collect();
    brands().into_iter().filter(|b| sold.contains(b)).collect()
}

/// `POST /product/202501/compliance/manufacturers/search` (page_size 1–100).
pub fn manufacturers(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let list = seller_brands(&sb.data, ctx.view.clock);
    let idx: Vec<u32> = (0..list.len() as u32).collect();
    let (page, next, total) = list_page(ctx, b"manufacturers", 100, &idx)?;
    let rows: Vec<Value> = page
        .iter()
        .map(|&i| {
            let b = list[i as usize];
            json!({
                "id": stable_id(&format!("{b} manufacturer")).to_string(),
                "name": format!("{b} Manufacturing Ltd."),
                "registered_trade_name": b,
                "email": format!("compliance@{}.example", b.to_lowercase().replace(['\'', ' '], "")),
                "address": { "region_code": "CN", "city": "Shenzhen" },
            })
        })
        .collect();
    Ok(page_json("manufacturers", next, total, &rows))
}

/// The seller's EU responsible persons.
pub const RESPONSIBLE_PERSONS: &[(&str, &str)] = &[
    ("EU Compliance Partner GmbH", "DE"),
    ("Sandbox Responsible Person B.V.", "NL"),
];

/// `POST /product/202501/compliance/responsible_persons/search` (page_size 1–100).
pub fn responsible_persons(_sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let idx: Vec<u32> = (0..RESPONSIBLE_PERSONS.len() as u32).collect();
    let (page, next, total) = list_page(ctx, b"responsible_persons", 100, &idx)?;
    let rows: Vec<Value> = page
        .iter()
        .map(|&i| {
            let (name, country) = RESPONSIBLE_PERSONS[i as usize];
            json!({
                "id": stable_id(name).to_string(),
                "name": name,
                "email": format!("rp{}@compliance.example", i + 1),
                "address": { "region_code": country },
            })
        })
        .collect();
    Ok(page_json("responsible_persons", next, total, &rows))
}
