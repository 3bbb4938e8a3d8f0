//! Schema drift, as an API changes under a running integration: Order Search records gain
//! a field nobody declared, lose an optional one, and some send a number as a string; one
//! chosen order can carry a required field no reader can use. Switched on per sandbox
//! (`SandboxConfig::drift`, `shoplake sandbox --drift`), off by default.

use serde_json::Value;

/// The endpoint whose answers drift.
pub const DRIFTING_PATH: &str = "/order/202309/orders/search";

/// What changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drift {
    /// An order whose `create_time` becomes an unusable string (its page must fail).
    pub bad_order: Option<String>,
}

impl Drift {
    /// Applies the drift to an Order Search `data` JSON: every order gains
    /// `x_promo_badge` (unknown), loses `buyer_message` (optional), orders whose id ends in
    /// 7 send `update_time` as a numeric string, and `bad_order` gets `create_time: "soon"`.
    pub fn apply(&self, data: &[u8]) -> Vec<u8> {
        let Ok(mut v) = serde_json::from_slice::<Value>(data) else {
            return data.to_vec();
        };
        if let Some(orders) = v.get_mut("orders").and_then(Value::as_array_mut) {
            for o in orders.iter_mut().filter_map(Value::as_object_mut) {
                o.insert(
                    "x_promo_badge".into(),
                    serde_json::json!({"kind": "flash_sale", "level": 2}),
                );
                o.remove("buyer_message");
                let id = o
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if id.ends_with('7') {
                    if let Some(t) = o.get("update_time").and_then(Value::as_i64) {
                        o.insert("update_time".into(), Value::String(t.to_string()));
                    }
                }
                if self.bad_order.as_deref() == Some(id.as_str()) {
                    o.insert("create_time".into(), Value::String("soon".into()));
                }
            }
        }
        serde_json::to_vec(&v).unwrap_or_else(|_| data.to_vec())
    }
}
