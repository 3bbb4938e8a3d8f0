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
    /// An order whose `buyer_email` is sent with bytes that are not UTF-8 (its page can
    /// not be read at all).
    pub bad_utf8_order: Option<String>,
}

/// Stands in for the invalid bytes until the JSON is serialized.
const BAD_UTF8_MARK: &str = "\u{1}shoplake-bad-utf8\u{1}";

impl Drift {
    /// Applies the drift to an Order Search `data` JSON: every order gains
    /// `x_promo_badge` (unknown), loses `buyer_message` (optional), orders whose id ends in
    /// 7 send `update_time` as a numeric string, `bad_order` gets `create_time: "soon"`
    /// and `bad_utf8_order` a `buyer_email` that is not UTF-8.
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
                if id.ends_with('7')
                    && let Some(t) = o.get("update_time").and_then(Value::as_i64)
                {
                    o.insert("update_time".into(), Value::String(t.to_string()));
                }
                if self.bad_order.as_deref() == Some(id.as_str()) {
                    o.insert("create_time".into(), Value::String("soon".into()));
                }
                if self.bad_utf8_order.as_deref() == Some(id.as_str()) {
                    o.insert("buyer_email".into(), Value::String(BAD_UTF8_MARK.into()));
                }
            }
        }
        let out = serde_json::to_vec(&v).unwrap_or_else(|_| data.to_vec());
        // The marker as serialized (control characters escaped) → "caf" + 0xC3 0x28, a
        // two-byte sequence whose second byte is not a continuation byte.
        let mark = serde_json::to_vec(&Value::String(BAD_UTF8_MARK.into())).expect("string");
        let mark = &mark[1..mark.len() - 1];
        match out.windows(mark.len()).position(|w| w == mark) {
            Some(at) => [&out[..at], b"caf\xc3\x28", &out[at + mark.len()..]].concat(),
            None => out,
        }
    }
}
