//! Product endpoints: search (page_token; 202502 and 202309 paths), product detail with
//! SKUs, prices and inventory, and the legacy page_number `/api/products/search`.

use serde::{Deserialize, Serialize};

use super::data::Dataset;
use super::gate::ApiFault;
use super::orders::parse_body;
use super::paging::{fingerprint, number_page, page_size, token_page};
use super::{Ctx, Sandbox};
use shoplake_tiktok::region::format_minor;

#[derive(Debug, Default, Deserialize)]
struct SearchFilter {
    status: Option<String>,
    update_time_ge: Option<i64>,
    update_time_le: Option<i64>,
    create_time_ge: Option<i64>,
    create_time_le: Option<i64>,
    /// Legacy only: 1-based page number.
    page_number: Option<u32>,
    /// Legacy only: page size in the body.
    page_size: Option<u32>,
}

impl SearchFilter {
    /// Whether product `i` matches, with its status and update time as of `clock`.
    fn keep(&self, ds: &Dataset, i: u32, clock: i64) -> bool {
        let p = &ds.products[i as usize];
        let (status, updated) = ds.product_state(i, clock);
        self.status
            .as_deref()
            .is_none_or(|s| s == "ALL" || s == status)
            && self.update_time_ge.is_none_or(|t| updated >= t)
            && self.update_time_le.is_none_or(|t| updated <= t)
            && self.create_time_ge.is_none_or(|t| p.create_time >= t)
            && self.create_time_le.is_none_or(|t| p.create_time <= t)
    }
}

#[derive(Serialize)]
struct Price {
    currency: &'static str,
    sale_price: String,
    tax_exclusive_price: String,
}

#[derive(Serialize)]
struct Money {
    amount: String,
    currency: &'static str,
}

#[derive(Serialize)]
struct Inventory<'a> {
    warehouse_id: &'a str,
    quantity: i64,
}

#[derive(Serialize)]
struct SalesAttribute {
    id: &'static str,
    name: &'static str,
    value_name: &'static str,
}

#[derive(Serialize)]
struct SkuJson<'a> {
    id: &'a str,
    seller_sku: &'a str,
    price: Price,
    list_price: Money,
    inventory: Vec<Inventory<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sales_attributes: Option<Vec<SalesAttribute>>,
}

#[derive(Serialize)]
struct Brand<'a> {
    id: String,
    name: &'a str,
}

#[derive(Serialize)]
struct Category<'a> {
    id: String,
    local_name: &'a str,
    is_leaf: bool,
    parent_id: &'static str,
}

#[derive(Serialize)]
struct ProductJson<'a> {
    id: &'a str,
    title: &'a str,
    status: &'static str,
    create_time: i64,
    update_time: i64,
    sales_regions: [&'static str; 1],
    is_not_for_sale: bool,
    has_draft: bool,
    listing_quality_tier: &'static str,
    product_tags: [&'static str; 0],
    skus: Vec<SkuJson<'a>>,
    // detail only
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    brand: Option<Brand<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category_chains: Option<Vec<Category<'a>>>,
}

/// Product `i` as of `clock` (status, update time and SKUs follow its lifecycle).
fn render(ds: &Dataset, i: u32, clock: i64, detail: bool) -> ProductJson<'_> {
    let p = &ds.products[i as usize];
    let (status, update_time) = ds.product_state(i, clock);
    let shop = &ds.shops[p.shop];
    let r = shop.region;
    let skus = ds
        .skus_at(i, clock)
        .into_iter()
        .map(|k| &ds.skus[k as usize])
        .map(|s| SkuJson {
            id: &s.id,
            seller_sku: &s.seller_sku,
            price: Price {
                currency: r.currency,
                sale_price: format_minor(s.price, r.minor_digits),
                tax_exclusive_price: format_minor(s.price, r.minor_digits),
            },
            list_price: Money {
                amount: format_minor(s.list_price, r.minor_digits),
                currency: r.currency,
            },
            inventory: vec![Inventory {
                warehouse_id: &shop.warehouse_id,
                quantity: s.stock,
            }],
            sales_attributes: detail.then(|| {
                vec![SalesAttribute {
                    id: "100000",
                    name: "Variant",
                    value_name: s.variant,
                }]
            }),
        })
        .collect();
    ProductJson {
        id: &p.id,
        title: &p.title,
        status,
        create_time: p.create_time,
        update_time,
        sales_regions: [r.code],
        is_not_for_sale: false,
        has_draft: false,
        listing_quality_tier: "GOOD",
        product_tags: [],
        skus,
        description: detail.then(|| format!("<p>{}</p>", p.title)),
        brand: (detail && !p.brand.is_empty()).then(|| Brand {
            id: stable_id(p.brand).to_string(),
            name: p.brand,
        }),
        category_chains: detail.then(|| {
            vec![Category {
                id: stable_id(p.category).to_string(),
                local_name: p.category,
                is_leaf: true,
                parent_id: "0",
            }]
        }),
    }
}

/// A stable 10-digit id for a name (brands, categories and the like).
pub(super) fn stable_id(s: &str) -> u64 {
    s.bytes().fold(7_000_000_000u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(b as u64) % 9_000_000_000 + 1_000_000_000
    })
}

/// `POST /product/202502/products/search` (also served at the 202309 path).
pub fn search(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let size = page_size(ctx.q("page_size"), 100)?;
    let f: SearchFilter = parse_body(ctx)?;
    let shop = ctx.shop.unwrap_or(0);
    let index = &ctx.view.shops[shop].products_by_update;
    let fp = fingerprint(&[&shop.to_le_bytes(), &ctx.body]);
    let ds = &sb.data;
    let clock = ctx.view.clock;
    let (rows, next_page_token, total) =
        token_page(ctx.q("page_token"), fp, index, false, size, |(_, i)| {
            f.keep(ds, i, clock)
        })?;
    #[derive(Serialize)]
    struct Out<'a> {
        total_count: u32,
        next_page_token: String,
        products: Vec<ProductJson<'a>>,
    }
    let out = Out {
        total_count: total,
        next_page_token,
        products: rows
            .iter()
            .map(|&(_, i)| render(ds, i, clock, false))
            .collect(),
    };
    Ok(serde_json::to_vec(&out).expect("serializable"))
}

/// `GET /product/202309/products/{product_id}`: the product object itself is `data`.
pub fn detail(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let id = ctx
        .params
        .get("product_id")
        .map(String::as_str)
        .unwrap_or("");
    let shop = ctx.shop.unwrap_or(0);
    let i = *sb
        .data
        .product_index
        .get(id)
        .filter(|&&i| {
            let p = &sb.data.products[i as usize];
            p.shop == shop && p.create_time <= ctx.view.clock
        })
        // The real API answers an unknown product with a product business error (12052xxx).
        .ok_or_else(|| {
            ApiFault::new(
                axum::http::StatusCode::OK,
                12052048,
                format!("The product {id} does not exist."),
            )
        })?;
    Ok(serde_json::to_vec(&render(&sb.data, i, ctx.view.clock, true)).expect("serializable"))
}

/// Legacy `POST /api/products/search`: `page_number` (1-based) and `page_size` in the body,
/// `data.products` + `data.total`; the page-number style older integrations used.
pub fn legacy_search(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let f: SearchFilter = parse_body(ctx)?;
    let size = page_size(f.page_size.map(|n| n.to_string()).as_deref(), 100)?;
    let shop = ctx.shop.unwrap_or(0);
    let ds = &sb.data;
    let clock = ctx.view.clock;
    let matching: Vec<u32> = ctx.view.shops[shop]
        .products_by_update
        .iter()
        .map(|&(_, i)| i)
        .filter(|&i| f.keep(ds, i, clock))
        .collect();
    let page = number_page(matching.len(), f.page_number, size)?;
    #[derive(Serialize)]
    struct Out<'a> {
        total: usize,
        products: Vec<ProductJson<'a>>,
    }
    let out = Out {
        total: matching.len(),
        products: matching[page]
            .iter()
            .map(|&i| render(ds, i, clock, false))
            .collect(),
    };
    Ok(serde_json::to_vec(&out).expect("serializable"))
}

#[cfg(test)]
mod tests {
    use super::super::data::DataConfig;
    use super::super::realism::{self, Realism};
    use super::*;

    fn sku_ids(v: &serde_json::Value) -> Vec<String> {
        v["skus"]
            .as_array()
            .expect("skus")
            .iter()
            .map(|s| s["id"].as_str().expect("id").to_string())
            .collect()
    }

    #[test]
    fn product_json_follows_its_sku_change_and_deletion() {
        let mut ds = Dataset::generate(DataConfig {
            seed: 5,
            shops: 2,
            orders: 1000,
            days: 30,
            clock: 1_790_000_000,
        });
        let on = Realism {
            sku_churn: true,
            deletes: true,
            ..Realism::default()
        };
        realism::apply(&mut ds, &on);
        let json = |i: u32, clock: i64, detail: bool| {
            serde_json::to_value(render(&ds, i, clock, detail)).expect("json")
        };
        let (&i, c) = ds.lifecycle.churn.iter().next().expect("a churned product");
        let (before, after) = (json(i, c.at - 1, true), json(i, c.at, true));
        assert_ne!(sku_ids(&before), sku_ids(&after));
        assert!(sku_ids(&after).contains(&ds.skus[c.gained as usize].id));
        assert!(!sku_ids(&after).contains(&ds.skus[c.lost as usize].id));
        assert_eq!(after["update_time"], c.at);
        assert_ne!(before["update_time"], c.at);
        let (&d, &t) = ds
            .lifecycle
            .deleted
            .iter()
            .next()
            .expect("a deleted product");
        assert_eq!(json(d, t, false)["status"], "DELETED");
        assert_eq!(json(d, t, false)["update_time"], t);
        assert_ne!(json(d, t - 1, false)["status"], "DELETED");
    }
}
