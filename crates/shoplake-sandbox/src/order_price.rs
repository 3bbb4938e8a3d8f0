//! Per-order reads beside Get Order Detail. `GET /order/202407/orders/{order_id}/price_detail`:
//! the order's price build-up — list price, seller and platform deductions, shipping and
//! tax — in total and per line item, the same amounts order search's `payment` shows.
//! `GET /order/202406/orders/{order_id}/external_orders?platform=…`: the seller's own
//! references for the order on another platform; in the seed about 1 order in 12 was also
//! recorded in the seller's Shopify store.

use serde::Serialize;

use super::data::{Dataset, LineItem, Order};
use super::gate::ApiFault;
use super::orders::{OrderAmounts, line_item_id, path_order};
use super::{Ctx, Sandbox};
use shoplake_tiktok::region::Minor;

#[derive(Serialize)]
struct LinePrice<'a> {
    id: String,
    sku_id: &'a str,
    currency: &'static str,
    sku_list_price: Minor,
    sku_sale_price: Minor,
    subtotal_deduction_seller: Minor,
    subtotal_deduction_platform: Minor,
    tax: Minor,
    total: Minor,
}

#[derive(Serialize)]
struct PriceDetail<'a> {
    currency: &'static str,
    sku_list_price: Minor,
    sku_sale_price: Minor,
    subtotal_deduction_seller: Minor,
    subtotal_deduction_platform: Minor,
    subtotal: Minor,
    shipping_list_price: Minor,
    shipping_fee_deduction_platform: Minor,
    shipping_fee_deduction_seller: Minor,
    shipping_sale_price: Minor,
    tax: Minor,
    total: Minor,
    line_items: Vec<LinePrice<'a>>,
}

/// Order tax split over line items in proportion to their sale price (the last item
/// takes the rounding remainder, so the items add up to the order).
fn item_taxes(items: &[LineItem], tax: i64) -> Vec<i64> {
    let sub: i64 = items.iter().map(LineItem::sale_price).sum();
    let mut left = tax;
    let mut out: Vec<i64> = items
        .iter()
        .map(|li| {
            let t = if sub > 0 {
                tax * li.sale_price() / sub
            } else {
                0
            };
            left -= t;
            t
        })
        .collect();
    if let Some(last) = out.last_mut() {
        *last += left;
    }
    out
}

fn price_detail_of<'a>(ds: &'a Dataset, o: &Order) -> PriceDetail<'a> {
    let a = OrderAmounts::of(ds, o);
    let m = |v: i64| a.minor(v);
    let items = ds.items_of(o);
    let taxes = item_taxes(items, o.tax);
    PriceDetail {
        currency: a.currency,
        sku_list_price: m(a.list),
        sku_sale_price: m(a.sale),
        subtotal_deduction_seller: m(a.seller_discount),
        subtotal_deduction_platform: m(a.platform_discount),
        subtotal: m(a.sale),
        shipping_list_price: m(o.original_shipping_fee),
        shipping_fee_deduction_platform: m(o.shipping_fee_platform_discount),
        shipping_fee_deduction_seller: m(0),
        shipping_sale_price: m(a.shipping),
        tax: m(a.tax),
        total: m(a.total()),
        line_items: items
            .iter()
            .zip(taxes)
            .enumerate()
            .map(|(k, (li, tax))| LinePrice {
                id: line_item_id(o, k).to_string(),
                sku_id: &ds.skus[li.sku as usize].id,
                currency: a.currency,
                sku_list_price: m(li.original_price),
                sku_sale_price: m(li.sale_price()),
                subtotal_deduction_seller: m(li.seller_discount),
                subtotal_deduction_platform: m(li.platform_discount),
                tax: m(tax),
                total: m(li.sale_price() + tax),
            })
            .collect(),
    }
}

/// `GET /order/202407/orders/{order_id}/price_detail`.
pub fn price_detail(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let o = path_order(&sb.data, ctx)?;
    Ok(serde_json::to_vec(&price_detail_of(&sb.data, o)).expect("serializable"))
}

/// Platforms the `platform` parameter accepts.
const PLATFORMS: &[&str] = &["SHOPIFY", "WOOCOMMERCE", "BIGCOMMERCE", "MAGENTO", "AMAZON"];

/// The seller's Shopify order number for `o`, for about 1 order in 12 (by order id).
pub(super) fn shopify_reference(o: &Order) -> Option<String> {
    (o.id % 12 == 5).then(|| format!("#{}", 1000 + (o.id / 1000) % 1_000_000))
}

/// `GET /order/202406/orders/{order_id}/external_orders?platform=…` (`platform` required).
pub fn external_orders(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let platform = ctx
        .q("platform")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiFault::param("platform is required"))?;
    if !PLATFORMS.contains(&platform) {
        return Err(ApiFault::param(format_args!(
            "platform {platform:?} is not supported"
        )));
    }
    let o = path_order(&sb.data, ctx)?;
    #[derive(Serialize)]
    struct External {
        id: String,
        platform: &'static str,
        origin_id: String,
    }
    let list: Vec<External> = shopify_reference(o)
        .filter(|_| platform == "SHOPIFY")
        .map(|id| External {
            id,
            platform: "SHOPIFY",
            origin_id: o.id.to_string(),
        })
        .into_iter()
        .collect();
    #[derive(Serialize)]
    struct Out {
        external_orders: Vec<External>,
    }
    Ok(serde_json::to_vec(&Out {
        external_orders: list,
    })
    .expect("serializable"))
}
