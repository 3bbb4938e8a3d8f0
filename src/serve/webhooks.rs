//! `POST /webhooks/tiktok`: TikTok's event deliveries, verified before anything is done
//! with them. The `Authorization` header must be the request's HMAC-SHA256 signature
//! (`app_key + raw body`, keyed by the app secret; see `api::sign`), the event no older than
//! TikTok's last retry (12 h, plus an hour) and not from the future. An accepted event
//! goes to the sink (the jobs wiring queues an extract for the shop's stream); a sink
//! failure answers 500 so TikTok delivers again.
//!
//! A delivery whose `tts_notification_id` was already accepted (TikTok's retry of a
//! delivery whose answer it missed, or a replay) is acknowledged with 200 and
//! `"duplicate":true` but not passed to the sink again: TikTok retries every non-2xx
//! answer for hours, so refusing a duplicate would only bring it back. It is still
//! verified first, so only a correctly signed, fresh copy is acknowledged.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;

use crate::secret::Secret;

/// One delivered event.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct WebhookEvent {
    /// Event type (1 order status, 2 reverse order, 4 package, 5 product, 12 return …).
    #[serde(rename = "type")]
    pub kind: i64,
    /// Unique per notification; deliveries of one notification share it.
    pub tts_notification_id: String,
    /// Shop id.
    pub shop_id: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// Event body.
    #[serde(default)]
    pub data: Value,
}

/// Takes an accepted event.
pub type WebhookSink =
    Arc<dyn Fn(WebhookEvent) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// How old an event may be: TikTok's last retry comes 12 h after the first delivery.
pub const MAX_AGE_SECS: i64 = 13 * 3600;
const SEEN_CAPACITY: usize = 100_000;

/// The receiver's state.
pub struct Webhooks {
    app_key: String,
    app_secret: Secret,
    sink: WebhookSink,
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl Webhooks {
    /// A receiver for the app `app_key` / `app_secret`.
    pub fn new(app_key: &str, app_secret: Secret, sink: WebhookSink) -> Arc<Webhooks> {
        Arc::new(Webhooks {
            app_key: app_key.to_string(),
            app_secret,
            sink,
            seen: Mutex::new(Default::default()),
        })
    }

    /// Records `id`; false when it was already there.
    fn first_time(&self, id: &str) -> bool {
        let mut g = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *g;
        if !set.insert(id.to_string()) {
            return false;
        }
        order.push_back(id.to_string());
        if order.len() > SEEN_CAPACITY
            && let Some(old) = order.pop_front()
        {
            set.remove(&old);
        }
        true
    }

    fn forget(&self, id: &str) {
        let mut g = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        g.0.remove(id);
    }
}

fn refuse(status: StatusCode, why: &str) -> (StatusCode, String) {
    tracing::warn!(target: "shoplake::webhooks", status = status.as_u16(), why, "webhook refused");
    (status, format!("{{\"error\":\"{why}\"}}"))
}

/// The handler.
pub async fn receive(
    State(w): State<Arc<Webhooks>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let Some(sig) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unsigned: no Authorization header",
        );
    };
    if !crate::api::sign::verify_webhook(&w.app_key, w.app_secret.expose(), &body, sig) {
        return refuse(StatusCode::UNAUTHORIZED, "bad signature");
    }
    let event: WebhookEvent = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("not an event: {e}")),
    };
    let now = chrono::Utc::now().timestamp();
    if event.timestamp < now - MAX_AGE_SECS || event.timestamp > now + 300 {
        return refuse(StatusCode::UNAUTHORIZED, "stale or future timestamp");
    }
    if !w.first_time(&event.tts_notification_id) {
        tracing::info!(
            target: "shoplake::webhooks",
            id = %event.tts_notification_id,
            shop = %event.shop_id,
            "duplicate webhook acknowledged"
        );
        return (StatusCode::OK, "{\"ok\":true,\"duplicate\":true}".into());
    }
    let id = event.tts_notification_id.clone();
    match (w.sink)(event).await {
        Ok(()) => (StatusCode::OK, "{\"ok\":true}".into()),
        Err(e) => {
            // Not processed: let TikTok's next delivery through.
            w.forget(&id);
            refuse(StatusCode::INTERNAL_SERVER_ERROR, &e)
        }
    }
}
