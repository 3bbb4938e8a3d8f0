//! Customer Engagement endpoints (the shop's outreach to buyers), fixed per shop:
//! `GET /customer_engagement/202412/message_templates?locale=…` (`locale` required),
//! `GET /customer_engagement/202502/permissions` (which features the shop may use) and
//! `GET /customer_engagement/202501/customer_tab/visibility` (one object).

use serde_json::json;

use super::gate::ApiFault;
use super::seller::json_bytes;
use super::{Ctx, Sandbox};

/// Message templates every shop has: (id suffix, name, purpose).
pub const TEMPLATES: &[(&str, &str, &str)] = &[
    ("1", "Thanks for your order", "ORDER_FOLLOW_UP"),
    ("2", "Your parcel is on its way", "SHIPPING_UPDATE"),
    ("3", "Come back for 10% off", "RE_ENGAGEMENT"),
];

/// Features and whether the shop may use them.
pub const FEATURES: &[(&str, bool)] = &[
    ("BROADCAST_MESSAGE", true),
    ("TARGETED_COUPON", true),
    ("CUSTOMER_SEGMENT", false),
];

/// `GET /customer_engagement/202412/message_templates`.
pub fn message_templates(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let locale = ctx.q("locale").filter(|l| !l.is_empty());
    let Some(locale) = locale else {
        return Err(ApiFault::param("locale is required"));
    };
    let shop = &sb.data.shops[ctx.shop.unwrap_or(0)];
    let list: Vec<_> = TEMPLATES
        .iter()
        .map(|(id, name, purpose)| {
            json!({
                "id": format!("{}{id}", shop.id),
                "name": name,
                "purpose": purpose,
                "locale": locale,
                "status": "APPROVED",
            })
        })
        .collect();
    json_bytes(json!({ "message_templates": list }))
}

/// `GET /customer_engagement/202502/permissions`.
pub fn feature_permissions(_sb: &Sandbox, _ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let list: Vec<_> = FEATURES
        .iter()
        .map(|(f, ok)| json!({ "feature": f, "is_available": ok }))
        .collect();
    json_bytes(json!({ "features": list }))
}

/// `GET /customer_engagement/202501/customer_tab/visibility`.
pub fn customer_tab_visibility(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = &sb.data.shops[ctx.shop.unwrap_or(0)];
    json_bytes(json!({ "is_visible": shop.seller_type == "LOCAL" }))
}
