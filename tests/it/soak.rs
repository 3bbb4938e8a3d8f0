//! Soak: the scheduler driven through half a simulated day (48 ticks of 15 minutes, the
//! sandbox's clock moving with it, 10% of requests faulty). After every tick each
//! scheduled stream's cursor sits at the tick; at the end the lake holds exactly the
//! sandbox's orders; resident memory stays flat (start and end are printed).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::helpers::*;
use chrono::{TimeZone, Utc};
use shoplake::app::App;
use shoplake::config::Config;
use shoplake::jobs::{self, Job, Producer, Queue, Runtime};
use shoplake_sandbox::{DEFAULT_AUTH_CODE, DEFAULT_CLOCK};
use tokio::sync::watch;

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// 15-minute ticks: half a day (the month test covers the scheduler over weeks; this one
/// watches every tick's cursor and the memory).
const TICKS: i64 = 48;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_simulated_day_of_schedules_keeps_cursors_moving_and_memory_flat() {
    let mut cfg = small(2, 2_000);
    cfg.faults = 0.1;
    cfg.fault_delay = Duration::from_millis(300);
    let sb = start(cfg).await;
    let day0 = DEFAULT_CLOCK - 86_400;
    sb.sandbox.set_clock(day0);
    let dir = tempfile::tempdir().unwrap();
    let mut cc = client_config(&sb);
    cc.timeout = Duration::from_millis(250);
    cc.retry.max_attempts = 12;
    let app = Arc::new(
        App::new(Config::default(), dir.path())
            .unwrap()
            .with_client_config(cc),
    );
    shoplake::api::auth::exchange_and_store(&app.client().unwrap(), DEFAULT_AUTH_CODE)
        .await
        .unwrap();
    let sum = app
        .backfill(day0 - 30 * 86_400, day0, None, None)
        .await
        .unwrap();
    assert!(sum.errors.is_empty(), "{:?}", sum.errors);

    let q = Queue::open("sqlite", dir.path()).await.unwrap();
    let shops = app.shops(None).unwrap();
    let (pipelines, _) = app.pipelines().unwrap();
    let mut producer = Producer::new(&shops, &pipelines, &BTreeMap::new()).unwrap();
    producer.build_models = false; // extraction is what this soaks
    let (stop_tx, stop_rx) = watch::channel(false);
    let rt = Runtime::new(
        app.clone(),
        q.clone(),
        app.config.jobs_config().unwrap(),
        "w-soak".into(),
        stop_rx,
    )
    .unwrap();
    let (quit_tx, mut quit_rx) = watch::channel(false);
    let worker = tokio::spawn(jobs::worker::work(rt, stop_tx, async move {
        let _ = quit_rx.wait_for(|v| *v).await;
    }));

    let ex = app.extractor().unwrap();
    let orders = pipelines.get("orders").unwrap();
    let start_rss = rss_mib();
    let mut extracts = 0;
    let mut peaks = [0f64; 2]; // RSS peak over each half of the day
    for i in 1..=TICKS {
        let t = day0 + i * 900;
        sb.sandbox.set_clock(t);
        let now = Utc.timestamp_opt(t, 0).unwrap();
        let r = producer.tick(&q, now, 5).await.unwrap();
        extracts += r.extracts;
        let keys: Vec<String> = producer
            .due(now - chrono::Duration::minutes(15), now)
            .iter()
            .map(Job::key)
            .collect();
        let (_, dead) = jobs::backfill::wait(&q, &keys).await.unwrap();
        assert!(dead.is_empty(), "tick {i}: {dead:?}");
        if i % 8 == 0 {
            let rss = rss_mib();
            eprintln!("tick {i}: RSS {rss:.0} MiB");
            let half = if i <= TICKS / 2 { 0 } else { 1 };
            peaks[half] = peaks[half].max(rss);
        }
        for s in &shops {
            assert_eq!(
                ex.cursor(&s.id, orders).await.unwrap(),
                Some(t),
                "tick {i}: orders cursor of {}",
                s.id
            );
        }
    }
    let end_rss = rss_mib();
    eprintln!(
        "{TICKS} ticks, {extracts} extract jobs; RSS {start_rss:.0} MiB at the first tick, {end_rss:.0} MiB after the last"
    );
    assert!(
        extracts >= TICKS as u64 * 2,
        "every tick queued the 15-minute streams"
    );
    // Flat: the second half of the day peaks no more than a little above the first (a
    // worker that kept what its jobs freed, as before release_free_memory, climbed 40 MiB
    // here), and the day ends near where it started.
    assert!(
        peaks[1] < peaks[0] + 24.0,
        "RSS still climbing: peak {:.0} MiB in the first half of the day, {:.0} MiB in the second",
        peaks[0],
        peaks[1]
    );
    assert!(
        end_rss < start_rss + 48.0,
        "RSS grew {start_rss:.0} → {end_rss:.0} MiB"
    );

    let truth = truth(&sb).await;
    let want = truth_per_shop(&truth, "orders");
    let got = key_counts(
        &app.query("select _shop_id, count(*) from raw.orders group by 1")
            .await
            .unwrap(),
    );
    assert_eq!(
        got, want,
        "the lake holds exactly the sandbox's orders at the day's end"
    );
    quit_tx.send(true).unwrap();
    worker.await.unwrap().unwrap();
    sb.stop().await;
}
