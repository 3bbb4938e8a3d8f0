//! Logistics endpoints. `GET /logistics/202309/warehouses`: each shop's warehouses — the
//! sales warehouse its orders ship from (the `warehouse_id` order search shows) and a
//! returns warehouse — with their region and time zone.
//! `GET /logistics/202309/warehouses/{warehouse_id}/delivery_options`: the delivery
//! options of one of them (standard and express); an unknown warehouse is an error.

use serde::Serialize;

use super::data::Shop;
use super::gate::ApiFault;
use super::{Ctx, Sandbox};

#[derive(Serialize)]
struct Address {
    region_code: &'static str,
    city: String,
    postal_code: String,
}

#[derive(Serialize)]
struct Warehouse {
    id: String,
    name: String,
    effect_status: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    sub_type: &'static str,
    is_default: bool,
    time_zone: &'static str,
    address: Address,
}

/// `GET /logistics/202309/warehouses` (no paging).
pub fn warehouses(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = &sb.data.shops[ctx.shop.unwrap_or(0)];
    let r = shop.region;
    let addr = |n: u32| Address {
        region_code: r.code,
        city: format!("{} City {n}", r.code),
        postal_code: format!("{:05}", 10_000 + n * 731),
    };
    let list = vec![
        Warehouse {
            id: shop.warehouse_id.clone(),
            name: format!("{} main warehouse", shop.name),
            effect_status: "ENABLED",
            kind: "SALES_WAREHOUSE",
            sub_type: "DOMESTIC_WAREHOUSE",
            is_default: true,
            time_zone: r.tz.name(),
            address: addr(1),
        },
        Warehouse {
            id: returns_warehouse_id(shop),
            name: format!("{} returns", shop.name),
            effect_status: "ENABLED",
            kind: "RETURN_WAREHOUSE",
            sub_type: "DOMESTIC_WAREHOUSE",
            is_default: false,
            time_zone: r.tz.name(),
            address: addr(2),
        },
    ];
    #[derive(Serialize)]
    struct Out {
        warehouses: Vec<Warehouse>,
    }
    Ok(serde_json::to_vec(&Out { warehouses: list }).expect("serializable"))
}

/// The shop's returns warehouse: the sales warehouse id with a suffix digit (unique,
/// numeric, stable).
fn returns_warehouse_id(shop: &Shop) -> String {
    format!("{}2", shop.warehouse_id)
}

/// Whether `id` is one of the shop's warehouses (sales or returns).
fn is_shop_warehouse(shop: &Shop, id: &str) -> bool {
    id == shop.warehouse_id || id == returns_warehouse_id(shop)
}

/// `GET /logistics/202309/warehouses/{warehouse_id}/delivery_options`.
pub fn delivery_options(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = &sb.data.shops[ctx.shop.unwrap_or(0)];
    let wid = ctx
        .params
        .get("warehouse_id")
        .map(String::as_str)
        .unwrap_or("");
    if !is_shop_warehouse(shop, wid) {
        return Err(ApiFault::param(format_args!(
            "warehouse_id {wid:?} does not belong to this shop"
        )));
    }
    #[derive(Serialize)]
    struct DeliveryOption {
        id: String,
        name: &'static str,
        #[serde(rename = "type")]
        kind: &'static str,
        max_days: u32,
        min_days: u32,
        platform: &'static str,
    }
    #[derive(Serialize)]
    struct Out {
        delivery_options: Vec<DeliveryOption>,
    }
    let list = vec![
        DeliveryOption {
            id: format!("{wid}01"),
            name: "Standard shipping",
            kind: "STANDARD",
            min_days: 3,
            max_days: 7,
            platform: "TIKTOK_SHIPPING",
        },
        DeliveryOption {
            id: format!("{wid}02"),
            name: "Express shipping",
            kind: "EXPRESS",
            min_days: 1,
            max_days: 3,
            platform: "TIKTOK_SHIPPING",
        },
    ];
    Ok(serde_json::to_vec(&Out {
        delivery_options: list,
    })
    .expect("serializable"))
}

/// `GET /logistics/202309/global_warehouses`: a cross-border shop's overseas warehouse
/// (local sellers have none).
pub fn global_warehouses(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = &sb.data.shops[ctx.shop.unwrap_or(0)];
    let list: Vec<_> = if shop.seller_type == "CROSS_BORDER" {
        vec![serde_json::json!({
            "id": format!("{}9", shop.warehouse_id),
            "name": format!("{} global warehouse", shop.name),
            "region_code": "CN",
            "effect_status": "ENABLED",
        })]
    } else {
        Vec::new()
    };
    Ok(serde_json::to_vec(&serde_json::json!({ "global_warehouses": list })).expect("json"))
}

/// `GET /logistics/202510/seller_templates`: the shop's shipping templates (standard and
/// free shipping over a threshold).
pub fn seller_templates(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = &sb.data.shops[ctx.shop.unwrap_or(0)];
    let list = vec![
        serde_json::json!({
            "id": format!("{}1", shop.warehouse_id),
            "name": "Standard shipping",
            "is_default": true,
            "free_shipping_threshold": null,
            "currency": shop.region.currency,
        }),
        serde_json::json!({
            "id": format!("{}2", shop.warehouse_id),
            "name": "Free shipping over threshold",
            "is_default": false,
            "free_shipping_threshold": if shop.region.minor_digits == 0 { "200000" } else { "35.00" },
            "currency": shop.region.currency,
        }),
    ];
    Ok(serde_json::to_vec(&serde_json::json!({ "templates": list })).expect("json"))
}

/// `GET /logistics/202309/delivery_options/{delivery_option_id}/shipping_providers`: the
/// carriers of one of the shop's delivery options — every provider orders ship with for
/// standard shipping, the first two for express. An unknown option is an error.
pub fn shipping_providers(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = &sb.data.shops[ctx.shop.unwrap_or(0)];
    let id = ctx
        .params
        .get("delivery_option_id")
        .map(String::as_str)
        .unwrap_or("");
    let express = match id
        .strip_suffix("01")
        .map(|w| (w, false))
        .or_else(|| id.strip_suffix("02").map(|w| (w, true)))
    {
        Some((w, express)) if is_shop_warehouse(shop, w) => express,
        _ => {
            return Err(ApiFault::param(format_args!(
                "delivery_option_id {id:?} does not belong to this shop"
            )));
        }
    };
    let n = if express {
        2
    } else {
        super::data::PROVIDERS.len()
    };
    let list: Vec<_> = super::data::PROVIDERS[..n]
        .iter()
        .map(|(pid, name)| serde_json::json!({ "id": pid, "name": name }))
        .collect();
    Ok(serde_json::to_vec(&serde_json::json!({ "shipping_providers": list })).expect("json"))
}
