//! Products: the listing tools around the catalog, shop-scoped. All derived from the
//! catalog templates ([`super::catalog::TEMPLATES`]) and the shop's own products, orders
//! and stock:
//! - categories (the catalog's, one level), each with attributes (the variant axis as a
//!   sales property, brand, warranty), rules (certifications, size chart, COD) and a
//!   listing schema; brands (authorized = the shop sells it); listing prerequisites;
//! - inventory per SKU: available = stock, committed = units in paid orders not yet
//!   collected by the carrier;
//! - size charts (categories whose variants are sizes); per product diagnoses (short or
//!   lower-case titles, no brand), SEO words and title suggestions;
//! - opportunities (trending products of the catalog's categories the shop does not sell), candidate products (the
//!   seller's products in other markets not listed here) and combined listing
//!   recommendations (the shop's products of one brand and category).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::catalog::TEMPLATES;
use super::data::{Dataset, Product};
use super::gate::ApiFault;
use super::orders::parse_body;
use super::paging::{list_page, page_json};
use super::products::stable_id;
use super::seller::json_bytes;
use super::{Ctx, Sandbox};

/// The catalog's categories, sorted.
pub fn categories() -> Vec<&'static str> {
    let set: BTreeSet<&str> = TEMPLATES.iter().map(|t| t.category).collect();
    set.into_iter().collect()
}

/// The category whose id is `id`.
fn category_of(id: &str) -> Result<&'static str, ApiFault> {
    categories()
        .into_iter()
        .find(|c| stable_id(c).to_string() == id)
        .ok_or_else(|| ApiFault::param(format_args!("category_id {id:?} does not exist")))
}

/// Variant values and brands of a category's templates.
fn category_values(cat: &str) -> (Vec<&'static str>, Vec<&'static str>) {
    let (mut variants, mut brands) = (BTreeSet::new(), BTreeSet::new());
    for t in TEMPLATES.iter().filter(|t| t.category == cat) {
        variants.extend(t.variants.iter().copied());
        if !t.brand.is_empty() {
            brands.insert(t.brand);
        }
    }
    (variants.into_iter().collect(), brands.into_iter().collect())
}

fn is_sized(cat: &str) -> bool {
    category_values(cat).0.contains(&"M")
}

/// `GET /product/202309/categories`.
pub fn list_categories(_sb: &Sandbox, _ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let list: Vec<Value> = categories()
        .iter()
        .map(|c| {
            json!({
                "id": stable_id(c).to_string(),
                "parent_id": "0",
                "local_name": c,
                "is_leaf": true,
                "permission_statuses": ["AVAILABLE"],
            })
        })
        .collect();
    json_bytes(json!({ "categories": list }))
}

/// The attributes of `cat`: (id, name, type, required, values).
pub fn attributes(
    cat: &str,
) -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    bool,
    Vec<&'static str>,
)> {
    let (variants, brands) = category_values(cat);
    vec![
        ("100000", "Variant", "SALES_PROPERTY", true, variants),
        ("100107", "Brand", "PRODUCT_PROPERTY", false, brands),
        (
            "100198",
            "Warranty",
            "PRODUCT_PROPERTY",
            false,
            vec!["No warranty", "1 year", "2 years"],
        ),
    ]
}

/// `GET /product/202309/categories/{category_id}/attributes`.
pub fn category_attributes(_sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let cat = category_of(ctx.params.get("category_id").map_or("", String::as_str))?;
    let list: Vec<Value> = attributes(cat)
        .into_iter()
        .map(|(id, name, kind, required, values)| {
            json!({
                "id": id,
                "name": name,
                "type": kind,
                "is_requried": required,
                "values": values.iter().map(|v| json!({ "id": stable_id(v).to_string(), "name": v })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json_bytes(json!({ "attributes": list }))
}

/// Certifications a category's listings need.
fn certifications(cat: &str) -> Vec<&'static str> {
    match cat {
        "Beauty & Personal Care" => vec!["Cosmetic product safety report"],
        "Phones & Electronics" | "Computers & Office" => vec!["FCC declaration of conformity"],
        _ => Vec::new(),
    }
}

/// `GET /product/202309/categories/{category_id}/rules`.
pub fn category_rules(_sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let cat = category_of(ctx.params.get("category_id").map_or("", String::as_str))?;
    let certs: Vec<Value> = certifications(cat)
        .iter()
        .map(|c| json!({ "id": stable_id(c).to_string(), "name": c, "is_required": true }))
        .collect();
    json_bytes(json!({
        "product_certifications": certs,
        "size_chart": { "is_supported": is_sized(cat), "is_required": false },
        "package_dimension": { "is_required": true },
        "cod": { "is_supported": true },
    }))
}

/// `GET /product/202407/listing_schemas?category_ids=…` (required, up to 20).
pub fn listing_schemas(_sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ids = ctx.ids("category_ids", 20)?;
    let mut list = Vec::new();
    for id in ids {
        let cat = category_of(id)?;
        let mut required = vec![
            "title",
            "description",
            "main_images",
            "skus",
            "package_weight",
        ];
        if !certifications(cat).is_empty() {
            required.push("certifications");
        }
        list.push(json!({
            "category_id": id,
            "required_fields": required,
            "attribute_ids": attributes(cat).iter().map(|a| a.0).collect::<Vec<_>>(),
            "max_skus": 100,
            "title_max_length": 255,
        }));
    }
    json_bytes(json!({ "listing_schemas": list }))
}

/// Brands every big marketplace knows (TikTok's "T1" brands).
const T1: &[&str] = &["Apple", "Samsung", "Anker", "Xiaomi", "L'Oreal"];

/// The catalog's brands, sorted.
pub fn brands() -> Vec<&'static str> {
    let set: BTreeSet<&str> = TEMPLATES
        .iter()
        .map(|t| t.brand)
        .filter(|b| !b.is_empty())
        .collect();
    set.into_iter().collect()
}

fn shop_products<'a>(ds: &'a Dataset, ctx: &Ctx) -> impl Iterator<Item = (u32, &'a Product)> {
    let (shop, clock) = (ctx.shop.unwrap_or(0), ctx.view.clock);
    ds.products
        .iter()
        .enumerate()
        .filter(move |(_, p)| p.shop == shop && p.create_time <= clock)
        .map(|(i, p)| (i as u32, p))
}

/// `GET /product/202309/brands` (page_size 1–100, page_token).
pub fn list_brands(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let all = brands();
    let sold: BTreeSet<&str> = shop_products(&sb.data, ctx).map(|(_, p)| p.brand).collect();
    let idx: Vec<u32> = (0..all.len() as u32).collect();
    let (rows, next, total) = list_page(ctx, b"brands", 100, &idx)?;
    let list: Vec<Value> = rows
        .iter()
        .map(|&i| {
            let b = all[i as usize];
            json!({
                "id": stable_id(b).to_string(),
                "name": b,
                "authorized_status": if sold.contains(b) { "AUTHORIZED" } else { "UNAUTHORIZED" },
                "brand_status": "AVAILABLE",
                "is_t1_brand": T1.contains(&b),
            })
        })
        .collect();
    Ok(page_json("brands", next, total, &list))
}

/// The checks Check Listing Prerequisites runs.
pub const PREREQUISITES: &[&str] = &[
    "SHOP_STATUS",
    "SALES_WAREHOUSE",
    "RETURN_WAREHOUSE",
    "PAYMENT_ACCOUNT",
    "TAX_INFORMATION",
];

/// `GET /product/202312/prerequisites`: every check passes for the sandbox's shops.
pub fn prerequisites(_sb: &Sandbox, _ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let list: Vec<Value> = PREREQUISITES
        .iter()
        .map(|c| json!({ "check_item": c, "is_failed": false, "fail_reasons": [] }))
        .collect();
    json_bytes(json!({ "check_results": list }))
}

/// Units of each SKU in the shop's paid orders not yet collected by the carrier.
pub fn committed(ds: &Dataset, view: &super::data::View, shop: usize) -> BTreeMap<u32, i64> {
    let clock = view.clock;
    let idx = &view.shops[shop].by_create;
    // Orders are collected within days of being placed; look back a month.
    let lo = idx.partition_point(|&(t, _)| t < clock - 30 * 86_400);
    let mut out = BTreeMap::new();
    for &(_, i) in &idx[lo..] {
        let o = &ds.orders[i as usize];
        if o.ev.paid <= clock && o.ev.shipped > clock && o.ev.cancelled > clock {
            for li in ds.items_of(o) {
                *out.entry(li.sku).or_default() += 1;
            }
        }
    }
    out
}

#[derive(serde::Deserialize, Default)]
struct InventoryFilter {
    product_ids: Option<Vec<String>>,
    sku_ids: Option<Vec<String>>,
}

/// `POST /product/202309/inventory/search` (body `product_ids` or `sku_ids`, up to 100).
pub fn inventory_search(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let f: InventoryFilter = parse_body(ctx)?;
    let (pids, sids) = (
        f.product_ids.unwrap_or_default(),
        f.sku_ids.unwrap_or_default(),
    );
    if pids.is_empty() == sids.is_empty() || pids.len().max(sids.len()) > 100 {
        return Err(ApiFault::param(
            "exactly one of product_ids or sku_ids (1–100 ids) is required",
        ));
    }
    let shop = ctx.shop.unwrap_or(0);
    let clock = ctx.view.clock;
    let held = committed(ds, &ctx.view, shop);
    let warehouse = &ds.shops[shop].warehouse_id;
    let list: Vec<Value> = shop_products(ds, ctx)
        .map(|(i, p)| (p, ds.skus_at(i, clock)))
        .filter(|(p, own)| {
            pids.contains(&p.id) || own.iter().any(|&k| sids.contains(&ds.skus[k as usize].id))
        })
        .map(|(p, own)| {
            let skus: Vec<Value> = own
                .into_iter()
                .filter(|&k| sids.is_empty() || sids.contains(&ds.skus[k as usize].id))
                .map(|k| {
                    let s = &ds.skus[k as usize];
                    let c = held.get(&k).copied().unwrap_or(0);
                    json!({
                        "id": s.id,
                        "total_available_quantity": s.stock,
                        "total_committed_quantity": c,
                        "warehouse_inventory": [{
                            "warehouse_id": warehouse,
                            "available_quantity": s.stock,
                            "committed_quantity": c,
                        }],
                    })
                })
                .collect();
            json!({ "product_id": p.id, "skus": skus })
        })
        .collect();
    json_bytes(json!({ "inventory": list }))
}

/// `POST /product/202407/sizecharts/search` (page_size 1–100): a size chart template per
/// sized category the shop sells in.
pub fn size_charts(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let cats: BTreeSet<&str> = shop_products(&sb.data, ctx)
        .map(|(_, p)| p.category)
        .filter(|c| is_sized(c))
        .collect();
    let cats: Vec<&str> = cats.into_iter().collect();
    let idx: Vec<u32> = (0..cats.len() as u32).collect();
    let (rows, next, total) = list_page(ctx, b"size_charts", 100, &idx)?;
    let list: Vec<Value> = rows
        .iter()
        .map(|&i| {
            let c = cats[i as usize];
            json!({
                "template_id": stable_id(&format!("{c} size chart")).to_string(),
                "name": format!("{c} sizes"),
                "locales": ["en-US"],
                "sizes": ["S", "M", "L", "XL"],
            })
        })
        .collect();
    Ok(page_json("size_chart", next, total, &list))
}

/// What a listing's diagnosis finds: (field, code, fix).
pub fn diagnosis(p: &Product) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut out = Vec::new();
    if p.title.chars().count() < 25 {
        out.push((
            "TITLE",
            "TITLE_TOO_SHORT",
            "Write a title of 25 characters or more",
        ));
    }
    if p.title == p.title.to_lowercase() {
        out.push((
            "TITLE",
            "TITLE_CAPITALIZATION",
            "Capitalize the brand and model",
        ));
    }
    if p.brand.is_empty() {
        out.push(("BRAND", "BRAND_MISSING", "Set the product's brand"));
    }
    out
}

/// The listing products named by `product_ids` (1..=max), in the order asked.
fn asked_products<'a>(
    ds: &'a Dataset,
    ctx: &Ctx,
    max: usize,
) -> Result<Vec<&'a Product>, ApiFault> {
    let ids = ctx.ids("product_ids", max)?;
    let shop = ctx.shop.unwrap_or(0);
    ids.iter()
        .map(|id| {
            ds.product_index
                .get(*id)
                .map(|&i| &ds.products[i as usize])
                .filter(|p| p.shop == shop && p.create_time <= ctx.view.clock)
                .ok_or_else(|| ApiFault::param(format_args!("product {id} not found in this shop")))
        })
        .collect()
}

/// `GET /product/202405/products/diagnoses?product_ids=…` (up to 200).
pub fn diagnoses(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let list: Vec<Value> = asked_products(&sb.data, ctx, 200)?
        .into_iter()
        .map(|p| {
            let found = diagnosis(p);
            json!({
                "product_id": p.id,
                "listing_quality_tier": if found.is_empty() { "GOOD" } else { "POOR" },
                "diagnoses": found.iter().map(|(field, code, fix)| json!({
                    "field": field,
                    "diagnosis_results": [{ "code": code, "how_to_solve": fix }],
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json_bytes(json!({ "products": list }))
}

/// Search words for a product: its brand, category words and title words of 4+ letters.
pub fn seo_words(p: &Product) -> Vec<String> {
    let mut words: BTreeSet<String> = BTreeSet::new();
    if !p.brand.is_empty() {
        words.insert(p.brand.to_lowercase());
    }
    for w in p.category.split([' ', '&']).chain(p.title.split(' ')) {
        let w: String = w.chars().filter(|c| c.is_alphanumeric()).collect();
        if w.len() >= 4 {
            words.insert(w.to_lowercase());
        }
    }
    words.into_iter().take(8).collect()
}

/// `GET /product/202405/products/seo_words?product_ids=…` (up to 20).
pub fn products_seo_words(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let list: Vec<Value> = asked_products(&sb.data, ctx, 20)?
        .into_iter()
        .map(|p| json!({ "id": p.id, "seo_words": seo_words(p).iter().map(|t| json!({ "text": t })).collect::<Vec<_>>() }))
        .collect();
    json_bytes(json!({ "products": list }))
}

/// `GET /product/202405/products/suggestions?product_ids=…` (up to 20): a clean title
/// ("Brand title" when the title lacks its brand) and a description.
pub fn suggestions(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let list: Vec<Value> = asked_products(&sb.data, ctx, 20)?
        .into_iter()
        .map(|p| {
            let title = if !p.brand.is_empty()
                && !p.title.to_lowercase().contains(&p.brand.to_lowercase())
            {
                format!("{} {}", p.brand, p.title)
            } else {
                p.title.clone()
            };
            json!({
                "id": p.id,
                "suggestions": [
                    { "field": "TITLE", "items": [{ "text": title }] },
                    { "field": "DESCRIPTION", "items": [{ "text": format!("{} — {}.", title, p.category) }] },
                ],
            })
        })
        .collect();
    json_bytes(json!({ "products": list }))
}

/// Products buyers search for that no catalog template makes: (category, name, USD
/// reference price in cents). Each category of the catalog has some.
const TRENDING: &[(&str, &str, i64)] = &[
    ("Phones & Electronics", "Magnetic Car Phone Mount", 1899),
    ("Phones & Electronics", "Clip-on Selfie Ring Light", 1499),
    ("Computers & Office", "Foldable Laptop Stand", 2999),
    ("Computers & Office", "Ergonomic Wrist Rest", 1299),
    ("Beauty & Personal Care", "Heatless Hair Curler Set", 1599),
    ("Beauty & Personal Care", "Ice Roller for Face", 999),
    ("Home Supplies", "Motion Sensor Closet Light", 2199),
    ("Home Supplies", "Reusable Silicone Food Bags", 1799),
    ("Menswear & Underwear", "Quick-dry Running Shorts", 2499),
    ("Womenswear & Underwear", "Seamless Ribbed Bodysuit", 2799),
];

/// Opportunities for a shop: the trending products of the categories it sells in, then
/// those of the catalog's other categories, excluding anything its titles already name:
/// (category, name, USD base price cents).
pub fn opportunities(
    ds: &Dataset,
    shop: usize,
    clock: i64,
) -> Vec<(&'static str, &'static str, i64)> {
    let own: Vec<&Product> = ds
        .products
        .iter()
        .filter(|p| p.shop == shop && p.create_time <= clock)
        .collect();
    let sells = |c: &str| own.iter().any(|p| p.category == c);
    let named = |n: &str| {
        own.iter()
            .any(|p| p.title.to_lowercase().contains(&n.to_lowercase()))
    };
    let mut out: Vec<_> = TRENDING
        .iter()
        .filter(|(c, n, _)| categories().contains(c) && !named(n))
        .copied()
        .collect();
    out.sort_by_key(|(c, n, _)| (!sells(c), *c, *n));
    out
}

/// `POST /product/202409/opportunities/search` (page_size 1–100).
pub fn search_opportunities(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ops = opportunities(&sb.data, ctx.shop.unwrap_or(0), ctx.view.clock);
    let idx: Vec<u32> = (0..ops.len() as u32).collect();
    let (rows, next, total) = list_page(ctx, b"opportunities", 100, &idx)?;
    let list: Vec<Value> = rows
        .iter()
        .map(|&i| {
            let (cat, name, cents) = ops[i as usize];
            json!({
                "id": stable_id(name).to_string(),
                "category_name": cat,
                "product_name": name,
                "reference_price_usd": format!("{}.{:02}", cents / 100, cents % 100),
                "demand_level": if cents < 3000 { "HIGH" } else { "MEDIUM" },
            })
        })
        .collect();
    Ok(page_json("opportunities", next, total, &list))
}

/// The seller's products in other shops (markets) whose model this shop does not list.
pub fn candidates(ds: &Dataset, shop: usize, clock: i64) -> Vec<u32> {
    let here: BTreeSet<&str> = ds
        .products
        .iter()
        .filter(|p| p.shop == shop && p.create_time <= clock)
        .map(|p| p.title.as_str())
        .collect();
    (0..ds.products.len() as u32)
        .filter(|&i| {
            let p = &ds.products[i as usize];
            p.shop != shop && p.create_time <= clock && !here.contains(p.title.as_str())
        })
        .collect()
}

/// `POST /product/202409/candidate_products/search` (page_size 1–100).
pub fn search_candidates(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let c = candidates(ds, ctx.shop.unwrap_or(0), ctx.view.clock);
    let (rows, next, total) = list_page(ctx, b"candidates", 100, &c)?;
    let list: Vec<Value> = rows
        .iter()
        .map(|&i| {
            let p = &ds.products[i as usize];
            json!({
                "id": format!("{}9", p.id),
                "source_product_id": p.id,
                "source_shop_id": ds.shops[p.shop].id,
                "source_region": ds.shops[p.shop].region.code,
                "title": p.title,
                "category_name": p.category,
            })
        })
        .collect();
    Ok(page_json("candidate_products", next, total, &list))
}

/// Groups of the shop's products sharing brand and category (two or more): (brand,
/// category, product indices).
pub fn combinable_listings(
    ds: &Dataset,
    shop: usize,
    clock: i64,
) -> Vec<(&'static str, &'static str, Vec<u32>)> {
    let mut groups: BTreeMap<(&str, &str), Vec<u32>> = BTreeMap::new();
    for (i, p) in ds.products.iter().enumerate() {
        if p.shop == shop && p.create_time <= clock && !p.brand.is_empty() {
            groups
                .entry((p.brand, p.category))
                .or_default()
                .push(i as u32);
        }
    }
    groups
        .into_iter()
        .filter(|(_, v)| v.len() >= 2)
        .map(|((b, c), v)| (b, c, v))
        .collect()
}

/// `POST /product/202506/combined_listing_recommendations/search` (page_size 1–100).
pub fn combined_listing_recommendations(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let groups = combinable_listings(ds, ctx.shop.unwrap_or(0), ctx.view.clock);
    let idx: Vec<u32> = (0..groups.len() as u32).collect();
    let (rows, next, total) = list_page(ctx, b"combined", 100, &idx)?;
    let list: Vec<Value> = rows
        .iter()
        .map(|&i| {
            let (brand, cat, ps) = &groups[i as usize];
            json!({
                "id": stable_id(&format!("{brand}|{cat}|{}", ctx.shop.unwrap_or(0))).to_string(),
                "reason": "SAME_BRAND_AND_CATEGORY",
                "brand_name": brand,
                "category_name": cat,
                "product_ids": ps.iter().map(|&p| ds.products[p as usize].id.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(page_json(
        "combined_listing_recommendations",
        next,
        total,
        &list,
    ))
}

/// Rows a backfill lands per Products listing table for shop `si` (products are a
/// catalog: every product listed by the clock), including the seller-level tables each
/// shop lands ([`super::global`]).
pub fn truth(ds: &Dataset, view: &super::data::View, si: usize) -> Vec<(&'static str, u64)> {
    let clock = view.clock;
    let own: Vec<&Product> = ds
        .products
        .iter()
        .filter(|p| p.shop == si && p.create_time <= clock)
        .collect();
    // SKUs as of the clock (a SKU change swaps one; see `realism`).
    let inventory_skus: u64 = (0..ds.products.len() as u32)
        .filter(|&i| ds.products[i as usize].shop == si)
        .filter(|&i| ds.products[i as usize].create_time <= clock)
        .map(|i| ds.skus_at(i, clock).len() as u64)
        .sum();
    let n = own.len() as u64;
    let cats = categories().len() as u64;
    let sized: BTreeSet<&str> = own
        .iter()
        .map(|p| p.category)
        .filter(|c| is_sized(c))
        .collect();
    let markets: BTreeSet<&str> = ds.shops.iter().map(|s| s.region.code).collect();
    let global = super::global::global_products(ds, clock).len() as u64;
    vec![
        ("product_inventory", n),
        ("product_inventory_skus", inventory_skus),
        ("product_diagnoses", n),
        ("product_seo_words", n),
        ("product_suggestions", n),
        ("categories", cats),
        ("category_attributes", cats * attributes("").len() as u64),
        ("category_rules", cats),
        ("listing_schemas", cats),
        ("brands", brands().len() as u64),
        ("listing_prerequisites", PREREQUISITES.len() as u64),
        ("size_charts", sized.len() as u64),
        (
            "product_opportunities",
            opportunities(ds, si, clock).len() as u64,
        ),
        ("candidate_products", candidates(ds, si, clock).len() as u64),
        (
            "combined_listing_recommendations",
            combinable_listings(ds, si, clock).len() as u64,
        ),
        ("global_products", global),
        ("global_product_details", global),
        ("replicated_products", global),
        ("global_categories", cats),
        (
            "global_category_attributes",
            cats * attributes("").len() as u64,
        ),
        ("global_category_rules", cats),
        ("global_listing_rules", markets.len() as u64),
        (
            "manufacturers",
            super::global::seller_brands(ds, clock).len() as u64,
        ),
        (
            "responsible_persons",
            super::global::RESPONSIBLE_PERSONS.len() as u64,
        ),
    ]
}
