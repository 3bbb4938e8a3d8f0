//! `POST /webhooks/tiktok`: a signed, fresh, first-time event is accepted and queues an
//! extract of its shop's stream; unsigned, wrongly signed, tampered and stale deliveries
//! are refused with the reason; a duplicate delivery is acknowledged (TikTok retries any
//! other answer for hours) without queueing anything again; and a burst of events for one
//! shop × stream queues one extract.

use std::sync::Arc;

use crate::helpers::*;
use serde_json::json;
use shoplake::api::sign::webhook_signature;
use shoplake::app::App;
use shoplake::config::Config;
use shoplake::jobs::{self, Queue, Runtime};
use shoplake::serve::http::RunningHttp;
use shoplake_sandbox::{DEFAULT_AUTH_CODE, RunningSandbox};
use tokio::sync::watch;

/// A worker's webhook endpoint over a sandbox shop, with a queue nothing takes jobs from
/// (so what the webhooks queue stays there to be looked at).
struct Hooks {
    sb: RunningSandbox,
    q: Queue,
    url: String,
    shop: String,
    _http: RunningHttp,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn hooks() -> Hooks {
    let sb = start(small(1, 100)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(
        App::new(Config::default(), dir.path())
            .unwrap()
            .with_client_config(client_config(&sb)),
    );
    shoplake::api::auth::exchange_and_store(&app.client().unwrap(), DEFAULT_AUTH_CODE)
        .await
        .unwrap();
    let shop = app.shops(None).unwrap()[0].id.clone();
    let q = Queue::open("sqlite", dir.path()).await.unwrap();
    let (stop_tx, stop_rx) = watch::channel(false);
    let rt = Runtime::new(
        app.clone(),
        q.clone(),
        app.config.jobs_config().unwrap(),
        "w-hooks".into(),
        stop_rx,
    )
    .unwrap();
    let http = jobs::service::metrics_endpoint("127.0.0.1:0", q.clone(), Some(rt))
        .await
        .unwrap();
    Hooks {
        sb,
        q,
        url: format!("http://{}/webhooks/tiktok", http.addr),
        shop,
        _http: http,
        _stop: stop_tx,
        _dir: dir,
    }
}

/// A signed event body and its signature.
fn signed_event(shop: &str, id: &str, kind: i64, ts: i64) -> (Vec<u8>, String) {
    let body = serde_json::to_vec(&json!({
        "type": kind, "tts_notification_id": id, "shop_id": shop, "timestamp": ts,
        "data": {"order_id": "5764600000000000001", "order_status": "AWAITING_SHIPMENT"}
    }))
    .unwrap();
    let sig = webhook_signature(KEY, SECRET, &body);
    (body, sig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_signed_fresh_first_deliveries_are_accepted() {
    // Every field bound by name: `..` would drop the server, queue dir and stop sender
    // right here.
    let Hooks {
        sb,
        q,
        url,
        shop,
        _http,
        _stop,
        _dir,
    } = hooks().await;
    let client = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp();
    let event = |id: &str, kind: i64, ts: i64| {
        serde_json::to_vec(&json!({
            "type": kind, "tts_notification_id": id, "shop_id": shop, "timestamp": ts,
            "data": {"order_id": "5764600000000000001", "order_status": "AWAITING_SHIPMENT"}
        }))
        .unwrap()
    };
    let post = |body: Vec<u8>, sig: Option<String>| {
        let mut r = client.post(&url).body(body);
        if let Some(s) = sig {
            r = r.header("Authorization", s);
        }
        async move {
            let resp = r.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let signed = |b: &[u8]| Some(webhook_signature(KEY, SECRET, b));

    let body = event("n-1", 1, now);
    assert_eq!(post(body.clone(), signed(&body)).await.0, 200);
    let queued = q
        .jobs(&format!("extract/{shop}/orders/cursor/"))
        .await
        .unwrap();
    assert_eq!(queued.len(), 1, "an order event queues an orders extract");

    // A duplicate delivery (TikTok retrying, or a replay) is acknowledged, so TikTok
    // stops retrying, and queues nothing more.
    let (status, text) = post(body.clone(), signed(&body)).await;
    assert_eq!((status, text.contains("duplicate")), (200, true), "{text}");
    assert_eq!(
        q.jobs("").await.unwrap().len(),
        1,
        "a duplicate queues nothing"
    );
    let b2 = event("n-2", 1, now);
    let (status, text) = post(b2.clone(), None).await;
    assert_eq!((status, text.contains("unsigned")), (401, true), "{text}");
    let (status, text) = post(
        b2.clone(),
        Some(webhook_signature(KEY, "other-secret", &b2)),
    )
    .await;
    assert_eq!(
        (status, text.contains("bad signature")),
        (401, true),
        "{text}"
    );
    let mut tampered = b2.clone();
    let sig = signed(&b2);
    let i = tampered.iter().position(|&c| c == b'1').unwrap();
    tampered[i] = b'2';
    assert_eq!(
        post(tampered, sig).await.0,
        401,
        "a changed body fails the signature"
    );
    let stale = event("n-3", 1, now - 14 * 3600);
    let (status, text) = post(stale.clone(), signed(&stale)).await;
    assert_eq!((status, text.contains("stale")), (401, true), "{text}");
    // A refused delivery is not remembered: the genuine one still gets through.
    assert_eq!(post(b2.clone(), signed(&b2)).await.0, 200);
    // An event type with no stream to refresh is acknowledged and queues nothing.
    let other = event("n-4", 99, now);
    assert_eq!(post(other.clone(), signed(&other)).await.0, 200);
    let all = q.jobs("").await.unwrap();
    assert!(
        (1..=2).contains(&all.len())
            && all
                .iter()
                .all(|j| j.key.as_deref().unwrap_or("").contains("/orders/")),
        "only orders extracts (two events in one interval share one): {all:?}"
    );
    sb.stop().await;
}

/// A burst of events for one shop × stream — many of them at once — queues one extract,
/// its `to` the end of the coalescing interval and its key tagged as a webhook's (apart
/// from the scheduler's); another stream of the same shop gets its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_events_queues_one_extract_per_stream() {
    let h = hooks().await;
    let client = reqwest::Client::new();
    // The whole burst must fall into one interval: not right before one ends.
    let interval = jobs::service::WEBHOOK_COALESCE_SECS;
    let into = chrono::Utc::now().timestamp().rem_euclid(interval);
    if interval - into < 15 {
        let wait = (interval - into + 1) as u64;
        // Kept: pacing to the wall-clock interval the burst must fall into.
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
    let now = chrono::Utc::now().timestamp();
    let post = |id: String, kind: i64| {
        let (body, sig) = signed_event(&h.shop, &id, kind, now);
        let r = client.post(&h.url).header("Authorization", sig).body(body);
        async move { r.send().await.unwrap().status().as_u16() }
    };
    // Twenty order events and five return events, all in flight together.
    let orders = (0..20).map(|i| post(format!("burst-order-{i}"), 1));
    let returns = (0..5).map(|i| post(format!("burst-return-{i}"), 12));
    let statuses = futures::future::join_all(orders.chain(returns)).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");

    let mut keys: Vec<String> =
        h.q.jobs("")
            .await
            .unwrap()
            .into_iter()
            .filter_map(|j| j.key)
            .collect();
    keys.sort();
    let to = (now.div_euclid(interval) + 1) * interval;
    let shop = &h.shop;
    assert_eq!(
        keys,
        [
            format!("extract/{shop}/orders/cursor/{to}/webhook"),
            format!("extract/{shop}/returns/cursor/{to}/webhook"),
        ],
        "one extract per stream for the whole burst"
    );
    h.sb.stop().await;
}
