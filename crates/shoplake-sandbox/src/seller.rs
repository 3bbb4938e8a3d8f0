//! Seller endpoints (seller-scoped: the shop's token, no `shop_cipher`, except shop
//! creators). Everything derives from the seed's shops, so the same ids appear here as in
//! Get Authorized Shops and on every order.
//!
//! - `GET /seller/202309/shops`: the seller's active shops (id, region).
//! - `GET /seller/202309/permissions`: the app's permissions, a list of strings.
//! - `GET /seller/202508/status`: the account's status (one object).
//! - `GET /authorization/202405/category_assets`: one category asset per selling region
//!   (partner apps use its cipher; sellers see their own).
//! - `GET /seller/202407/shop_creators` (shop-scoped): the shop's official and marketing
//!   TikTok accounts.

use serde_json::json;

use super::gate::ApiFault;
use super::{Ctx, Sandbox};

/// Permissions the sandbox app holds.
pub const PERMISSIONS: &[&str] = &[
    "ORDER_READ",
    "PRODUCT_READ",
    "FINANCE_READ",
    "FULFILLMENT_READ",
    "RETURN_REFUND_READ",
    "LOGISTICS_READ",
    "DATA_ANALYTICS_READ",
];

pub(super) fn json_bytes(v: serde_json::Value) -> Result<Vec<u8>, ApiFault> {
    Ok(serde_json::to_vec(&v).expect("serializable"))
}

/// `GET /seller/202309/shops`.
pub fn active_shops(sb: &Sandbox, _ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shops: Vec<_> = sb
        .data
        .shops
        .iter()
        .map(|s| json!({ "id": s.id, "region": s.region.code }))
        .collect();
    json_bytes(json!({ "shops": shops }))
}

/// `GET /seller/202309/permissions`.
pub fn permissions(_sb: &Sandbox, _ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    json_bytes(json!({ "permissions": PERMISSIONS }))
}

/// `GET /seller/202508/status`.
pub fn status(sb: &Sandbox, _ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let first = &sb.data.shops[0];
    json_bytes(json!({
        "seller_status_data": {
            "seller_id": format!("7{}", &first.id[1..]),
            "status": "ACTIVE",
            "is_global_seller": sb.data.shops.iter().any(|s| s.seller_type == "CROSS_BORDER"),
            "onboarding_time": sb.data.config.clock - i64::from(sb.data.config.days) * 86_400 - 30 * 86_400,
        }
    }))
}

/// The cipher of the seller's category asset for market `region`.
pub fn asset_cipher(region: &str, seed: u64) -> String {
    format!("CA_{region}_{seed}")
}

/// `GET /authorization/202405/category_assets`: one asset per region the seller sells in.
pub fn category_assets(sb: &Sandbox, _ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let mut regions: Vec<&str> = sb.data.shops.iter().map(|s| s.region.code).collect();
    regions.sort_unstable();
    regions.dedup();
    let assets: Vec<_> = regions
        .iter()
        .map(|r| {
            json!({
                "cipher": asset_cipher(r, sb.data.config.seed),
                "target_market": r,
                "category": { "id": "600001", "name": "Beauty & Personal Care" },
            })
        })
        .collect();
    json_bytes(json!({ "category_assets": assets }))
}

/// `GET /seller/202407/shop_creators`: the shop's own accounts.
pub fn shop_creators(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = &sb.data.shops[ctx.shop.unwrap_or(0)];
    let handle = shop
        .name
        .to_lowercase()
        .replace(|c: char| !c.is_alphanumeric(), "");
    let creators = [("OFFICIAL", ""), ("MARKETING", ".deals")]
        .iter()
        .enumerate()
        .map(|(k, (kind, suffix))| {
            json!({
                "open_id": format!("{}{}", shop.id, k + 1),
                "user_name": format!("{handle}{suffix}"),
                "nickname": format!("{}{}", shop.name, if k == 0 { "" } else { " Deals" }),
                "account_type": kind,
            })
        })
        .collect::<Vec<_>>();
    json_bytes(json!({ "shop_creators": creators }))
}
