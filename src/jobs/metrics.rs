//! `/metrics` in the Prometheus text format: the queue (shared, so every process reports
//! the same numbers), and this process's jobs, rows, API answers, rate-limit waits and
//! last successful sync per shop and stream.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::{Queue, Runtime};
use crate::api::client::ANSWER_KINDS;

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Renders every metric; `rt` is `None` in a process that runs no jobs (the scheduler).
pub async fn render(queue: &Queue, rt: Option<&Runtime>) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "shoplake_jobs",
        "gauge",
        "Jobs in the queue by state (pending, running, retrying, done, dead).",
    );
    match queue.counts().await {
        Ok(c) => {
            for (state, n) in c {
                let _ = writeln!(out, "shoplake_jobs{{state=\"{state}\"}} {n}");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "# queue unavailable: {}", escape(&e.to_string()));
        }
    }
    let Some(rt) = rt else {
        return out;
    };
    let m = &rt.metrics;
    header(
        &mut out,
        "shoplake_jobs_finished_total",
        "counter",
        "Jobs this process finished, by kind and outcome.",
    );
    for ((kind, outcome), n) in m.jobs.lock().expect("metrics").iter() {
        let _ = writeln!(
            out,
            "shoplake_jobs_finished_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    header(
        &mut out,
        "shoplake_rows_landed_total",
        "counter",
        "Rows fetched and merged into raw tables by this process, by stream.",
    );
    for (stream, n) in m.rows.lock().expect("metrics").iter() {
        let _ = writeln!(
            out,
            "shoplake_rows_landed_total{{stream=\"{}\"}} {n}",
            escape(stream)
        );
    }
    let client = rt.extractor.client();
    header(
        &mut out,
        "shoplake_api_requests_total",
        "counter",
        "API requests sent by this process, by answer (ok, rate_limited = HTTP 429, server_error, transport, other).",
    );
    for (i, kind) in ANSWER_KINDS.iter().enumerate() {
        let n = client.stats().answers[i].load(Ordering::Relaxed);
        let _ = writeln!(out, "shoplake_api_requests_total{{answer=\"{kind}\"}} {n}");
    }
    header(
        &mut out,
        "shoplake_rate_limit_wait_seconds_total",
        "counter",
        "Time requests waited for the client-side and shared rate limits.",
    );
    let _ = writeln!(
        out,
        "shoplake_rate_limit_wait_seconds_total {:.3}",
        client.rate_limit_waited().as_secs_f64()
    );
    header(
        &mut out,
        "shoplake_lease_wait_seconds_total",
        "counter",
        "Time jobs waited for a per-shop or per-family concurrency slot.",
    );
    let _ = writeln!(
        out,
        "shoplake_lease_wait_seconds_total {:.3}",
        m.lease_wait_ms.load(Ordering::Relaxed) as f64 / 1000.0
    );
    header(
        &mut out,
        "shoplake_last_sync_timestamp_seconds",
        "gauge",
        "End of the last window landed per shop and stream (unix seconds).",
    );
    for ((shop, stream), t) in m.last_sync.lock().expect("metrics").iter() {
        let _ = writeln!(
            out,
            "shoplake_last_sync_timestamp_seconds{{shop=\"{}\",stream=\"{}\"}} {t}",
            escape(shop),
            escape(stream)
        );
    }
    out
}
