//! Event endpoints. `GET /event/202309/webhooks`: the webhooks the app registered for the
//! shop — one per event type shoplake consumes (see serve/webhooks.rs), all pointing at
//! the worker's `/webhooks/tiktok`.

use serde_json::json;

use super::gate::ApiFault;
use super::seller::json_bytes;
use super::{Ctx, Sandbox};

/// Event types the sandbox app subscribes to (api.md §9 webhook types).
pub const WEBHOOK_EVENTS: &[&str] = &[
    "ORDER_STATUS_CHANGE",
    "RETURN_STATUS_CHANGE",
    "PACKAGE_UPDATE",
    "PRODUCT_STATUS_CHANGE",
];

/// `GET /event/202309/webhooks`.
pub fn webhooks(sb: &Sandbox, _ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let created = sb.data.config.clock - i64::from(sb.data.config.days) * 86_400;
    let list: Vec<_> = WEBHOOK_EVENTS
        .iter()
        .map(|e| {
            json!({
                "event_type": e,
                "address": "https://shoplake.example/webhooks/tiktok",
                "create_time": created,
                "update_time": created,
            })
        })
        .collect();
    json_bytes(json!({ "webhooks": list }))
}
