//! `/metrics` in the Prometheus text format: the queue (shared, so every process reports
//! the same numbers), and this process's jobs, rows, API answers, rate-limit waits and
//! last successful sync per shop and stream.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
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

/// `{k="v",…}`, the values escaped.
fn labels(pairs: &[(&str, &str)]) -> String {
    let pairs: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// One metric: its header, then a sample per `(labels, value)` (labels from [`labels`],
/// or empty for the one sample of an unlabelled metric).
fn metric<V: std::fmt::Display>(
    out: &mut String,
    (name, kind, help): (&str, &str, &str),
    samples: impl IntoIterator<Item = (String, V)>,
) {
    header(out, name, kind, help);
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// The samples of a counter map, its key labelled `name`.
fn by_key<V: Copy>(map: &Mutex<BTreeMap<String, V>>, name: &str) -> Vec<(String, V)> {
    let map = map.lock().expect("metrics");
    map.iter()
        .map(|(k, v)| (labels(&[(name, k.as_str())]), *v))
        .collect()
}

/// The samples of a map keyed by pairs, labelled `a` and `b`.
fn by_pair<V: Copy>(
    map: &Mutex<BTreeMap<(String, String), V>>,
    (a, b): (&str, &str),
) -> Vec<(String, V)> {
    let map = map.lock().expect("metrics");
    map.iter()
        .map(|((x, y), v)| (labels(&[(a, x.as_str()), (b, y.as_str())]), *v))
        .collect()
}

/// Renders every metric; `rt` is `None` in a process that runs no jobs (the scheduler).
pub async fn render(queue: &Queue, rt: Option<&Runtime>) -> String {
    let mut out = String::new();
    let counts = queue.counts().await;
    metric(
        &mut out,
        (
            "shoplake_jobs",
            "gauge",
            "Jobs in the queue by state (pending, running, retrying, done, dead).",
        ),
        counts
            .iter()
            .flatten()
            .map(|(state, n)| (labels(&[("state", state.as_str())]), n)),
    );
    if let Err(e) = &counts {
        let _ = writeln!(out, "# queue unavailable: {}", escape(&e.to_string()));
    }
    let Some(rt) = rt else {
        return out;
    };
    let m = &rt.metrics;
    metric(
        &mut out,
        (
            "shoplake_jobs_finished_total",
            "counter",
            "Jobs this process finished, by kind and outcome.",
        ),
        by_pair(&m.jobs, ("kind", "outcome")),
    );
    metric(
        &mut out,
        (
            "shoplake_rows_landed_total",
            "counter",
            "Rows fetched and merged into raw tables by this process, by stream.",
        ),
        by_key(&m.rows, "stream"),
    );
    let client = rt.extractor.client();
    metric(
        &mut out,
        (
            "shoplake_api_requests_total",
            "counter",
            "API requests sent by this process, by answer (ok, rate_limited = HTTP 429, server_error, transport, other).",
        ),
        ANSWER_KINDS.iter().enumerate().map(|(i, kind)| {
            (
                labels(&[("answer", *kind)]),
                client.stats().answers[i].load(Ordering::Relaxed),
            )
        }),
    );
    metric(
        &mut out,
        (
            "shoplake_rate_limit_wait_seconds_total",
            "counter",
            "Time requests waited for the client-side and shared rate limits.",
        ),
        [(
            String::new(),
            format!("{:.3}", client.rate_limit_waited().as_secs_f64()),
        )],
    );
    metric(
        &mut out,
        (
            "shoplake_lease_wait_seconds_total",
            "counter",
            "Time jobs waited for a per-shop or per-family concurrency slot.",
        ),
        [(
            String::new(),
            format!(
                "{:.3}",
                m.lease_wait_ms.load(Ordering::Relaxed) as f64 / 1000.0
            ),
        )],
    );
    metric(
        &mut out,
        (
            "shoplake_last_sync_timestamp_seconds",
            "gauge",
            "End of the last window landed per shop and stream (unix seconds).",
        ),
        by_pair(&m.last_sync, ("shop", "stream")),
    );
    out
}
