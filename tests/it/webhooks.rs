//! `POST /webhooks/tiktok`: a signed, fresh, first-time event is accepted and queues an
//! extract of its shop's stream; unsigned, wrongly signed, tampered, stale and replayed
//! deliveries are refused with the reason.

use std::sync::Arc;

use crate::helpers::*;
use serde_json::json;
use shoplake::api::sign::webhook_signature;
use shoplake::app::App;
use shoplake::config::Config;
use shoplake::jobs::{self, Queue, Runtime};
use shoplake::sandbox::DEFAULT_AUTH_CODE;
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_signed_fresh_first_deliveries_are_accepted() {
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
    let (_stop_tx, stop_rx) = watch::channel(false);
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
    let url = format!("http://{}/webhooks/tiktok", http.addr);
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

    let (status, text) = post(body.clone(), signed(&body)).await;
    assert_eq!((status, text.contains("replayed")), (409, true), "{text}");
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
        "only orders extracts (two events in one second share one): {all:?}"
    );
    sb.stop().await;
}
