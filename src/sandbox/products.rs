//! Product endpoints: search (page_token; 202502 and 202309 paths), product detail with
//! SKUs, prices and inventory, and the legacy page_number `/api/products/search`.

use serde::{Deserialize, Serialize};

use super::data::{Dataset, Product};
use super::gate::ApiFault;
use super::orders::parse_body;
use super::paging::{fingerprint, number_page, page_size, token_page};
use super::{Ctx, Sandbox};
use crate::region::format_minor;

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
    fn keep(&self, p: &Product) -> bool {
        self.status
            .as_deref()
            .is_none_or(|s| s == "ALL" || s == p.status)
            && self.update_time_ge.is_none_or(|t| p.update_time >= t)
            && self.update_time_le.is_none_or(|t| p.update_time <= t)
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

fn render<'a>(ds: &'a Dataset, p: &'a Product, detail: bool) -> ProductJson<'a> {
    let shop = &ds.shops[p.shop];
    let r = shop.region;
    let skus = ds.skus[p.skus.start as usize..p.skus.end as usize]
        .iter()
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
        status: p.status,
        create_time: p.create_time,
        update_time: p.update_time,
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
    let (rows, next_page_token, total) =
        token_page(ctx.q("page_token"), fp, index, false, size, |(_, i)| {
            f.keep(&ds.products[i as usize])
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
            .map(|&(_, i)| render(ds, &ds.products[i as usize], false))
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
    let p = sb
        .data
        .product_index
        .get(id)
        .map(|&i| &sb.data.products[i as usize])
        .filter(|p| p.shop == shop && p.create_time <= ctx.view.clock)
        // The real API answers an unknown product with a product business error (12052xxx).
        .ok_or_else(|| {
            ApiFault::new(
                axum::http::StatusCode::OK,
                12052048,
                format!("The product {id} does not exist."),
            )
        })?;
    Ok(serde_json::to_vec(&render(&sb.data, p, true)).expect("serializable"))
}

/// Legacy `POST /api/products/search`: `page_number` (1-based) and `page_size` in the body,
/// `data.products` + `data.total`; the page-number style older integrations used.
pub fn legacy_search(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let f: SearchFilter = parse_body(ctx)?;
    let size = page_size(f.page_size.map(|n| n.to_string()).as_deref(), 100)?;
    let shop = ctx.shop.unwrap_or(0);
    let ds = &sb.data;
    let matching: Vec<u32> = ctx.view.shops[shop]
        .products_by_update
        .iter()
        .map(|&(_, i)| i)
        .filter(|&i| f.keep(&ds.products[i as usize]))
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
            .map(|&i| render(ds, &ds.products[i as usize], false))
            .collect(),
    };
    Ok(serde_json::to_vec(&out).expect("serializable"))
}
