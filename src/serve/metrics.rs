//! What `shoplake serve` reports on `/metrics`: queries by how they ended, a latency
//! histogram, rows and bytes sent, refusals — counted where each query's audit line is
//! written, so the two always agree.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::audit::{Outcome, Record};

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 9] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 120.0];

/// Every outcome, in the order the counters are kept.
const OUTCOMES: [Outcome; 5] = [
    Outcome::Ok,
    Outcome::Error,
    Outcome::Cancelled,
    Outcome::Refused,
    Outcome::Timeout,
];

/// Query counters of one server.
#[derive(Debug, Default)]
pub struct QueryMetrics {
    by_outcome: [AtomicU64; 5],
    /// Per bucket: queries at or under its bound (cumulative at render time).
    buckets: [AtomicU64; BUCKETS.len()],
    over: AtomicU64,
    seconds_micros: AtomicU64,
    rows: AtomicU64,
    bytes: AtomicU64,
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Error => "error",
        Outcome::Cancelled => "cancelled",
        Outcome::Refused => "refused",
        Outcome::Timeout => "timeout",
    }
}

impl QueryMetrics {
    /// Counts one finished query.
    pub fn record(&self, r: &Record) {
        let i = OUTCOMES.iter().position(|o| *o == r.status).unwrap_or(0);
        self.by_outcome[i].fetch_add(1, Ordering::Relaxed);
        let secs = r.ms as f64 / 1000.0;
        match BUCKETS.iter().position(|b| secs <= *b) {
            Some(b) => self.buckets[b].fetch_add(1, Ordering::Relaxed),
            None => self.over.fetch_add(1, Ordering::Relaxed),
        };
        self.seconds_micros
            .fetch_add(r.ms.saturating_mul(1000), Ordering::Relaxed);
        self.rows.fetch_add(r.rows, Ordering::Relaxed);
        self.bytes.fetch_add(r.bytes, Ordering::Relaxed);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP shoplake_serve_queries_total Flight SQL queries by how they ended (refused: role, read-only or busy).\n# TYPE shoplake_serve_queries_total counter"
        );
        for (o, n) in OUTCOMES.iter().zip(&self.by_outcome) {
            let _ = writeln!(
                out,
                "shoplake_serve_queries_total{{status=\"{}\"}} {}",
                outcome_name(*o),
                get(n)
            );
        }
        let _ = writeln!(
            out,
            "# HELP shoplake_serve_query_seconds Query wall time.\n# TYPE shoplake_serve_query_seconds histogram"
        );
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += get(n);
            let _ = writeln!(
                out,
                "shoplake_serve_query_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = cumulative + get(&self.over);
        let _ = writeln!(
            out,
            "shoplake_serve_query_seconds_bucket{{le=\"+Inf\"}} {count}\nshoplake_serve_query_seconds_sum {}\nshoplake_serve_query_seconds_count {count}",
            get(&self.seconds_micros) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# HELP shoplake_serve_rows_total Rows sent.\n# TYPE shoplake_serve_rows_total counter\nshoplake_serve_rows_total {}",
            get(&self.rows)
        );
        let _ = writeln!(
            out,
            "# HELP shoplake_serve_bytes_total Arrow bytes sent.\n# TYPE shoplake_serve_bytes_total counter\nshoplake_serve_bytes_total {}",
            get(&self.bytes)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outcomes_buckets_rows_and_bytes() {
        let m = QueryMetrics::default();
        let rec = |status, ms, rows| Record {
            ts: String::new(),
            user: "u".into(),
            role: "analyst".into(),
            sql: "select 1".into(),
            rows,
            bytes: rows * 8,
            ms,
            status,
            error: None,
        };
        m.record(&rec(Outcome::Ok, 5, 10));
        m.record(&rec(Outcome::Ok, 700, 1));
        m.record(&rec(Outcome::Refused, 0, 0));
        m.record(&rec(Outcome::Timeout, 200_000, 0));
        let t = m.render();
        assert!(
            t.contains("shoplake_serve_queries_total{status=\"ok\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("shoplake_serve_queries_total{status=\"refused\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("shoplake_serve_query_seconds_bucket{le=\"0.01\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("shoplake_serve_query_seconds_bucket{le=\"1\"} 3"),
            "{t}"
        );
        assert!(
            t.contains("shoplake_serve_query_seconds_bucket{le=\"+Inf\"} 4"),
            "{t}"
        );
        assert!(t.contains("shoplake_serve_rows_total 11"), "{t}");
        assert!(t.contains("shoplake_serve_bytes_total 88"), "{t}");
    }
}
