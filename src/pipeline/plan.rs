//! The one window planner: every path that lands data — `shoplake backfill` and `extract`,
//! the queued backfill, a worker running a queued or scheduled job, a webhook-queued
//! refresh — asks [`Planner::plan`] which windows to run, so they agree on three rules:
//!
//! 1. **Settle margin.** No window ends closer than `settle` to the present. Search indexes
//!    lag their writes (Order Search is eventually consistent), so a window read up to "now"
//!    can miss an update made seconds before its end; waiting `settle` lets it arrive.
//! 2. **Lookback.** A run from a stored cursor starts `lookback` before it (the stream's own,
//!    else the default for unix-time windows), re-reading what the previous run may have
//!    seen before the index caught up or while page tokens shifted under a changing record.
//!    The re-read is idempotent: rows merge by key and version (or fetch time).
//! 3. **One start per range.** A backfill's `full_history` start applies once to the whole
//!    range; a queued window runs exactly as it was planned.

use super::extract::{Window, windows};
use super::spec::{StreamSpec, WindowFormat};
use super::{PipelineError, Result};

/// Where a plan starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A backfill of `[from, to)`: a `full_history` stream starts at the catalog's
    /// beginning instead.
    Range(i64),
    /// A window exactly as a backfill planned it (a queued job): no adjustment.
    Exact {
        /// Start of this window.
        from: i64,
        /// Start of the whole backfill it belongs to (where a new cursor may begin).
        origin: i64,
    },
    /// From the committed cursor, minus the lookback; `initial` when there is no cursor
    /// yet (a scheduled run of a new stream), else "no cursor" is an error.
    Cursor {
        /// The committed cursor.
        cursor: Option<i64>,
        /// Where to start without one.
        initial: Option<i64>,
    },
}

/// The windows to run, oldest first, and where a cursor may begin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Windows, contiguous and oldest first (one `{to, to}` window for a snapshot).
    pub windows: Vec<Window>,
    /// With no cursor stored, only a window starting at or before this point starts one;
    /// windows landing beyond a gap are recorded but do not move the cursor.
    pub origin: Option<i64>,
}

/// Settle margin and default lookback, from `[extract]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planner {
    /// Seconds a window end keeps from the present.
    pub settle: i64,
    /// Seconds a cursor run re-reads, for unix-time windows that set no `lookback`.
    pub lookback: i64,
}

/// Default settle margin: two minutes (what `shoplake extract` always kept).
pub const DEFAULT_SETTLE_SECS: i64 = 120;
/// Default lookback of unix-time incremental streams: fifteen minutes.
pub const DEFAULT_LOOKBACK_SECS: i64 = 900;

impl Default for Planner {
    fn default() -> Self {
        Planner {
            settle: DEFAULT_SETTLE_SECS,
            lookback: DEFAULT_LOOKBACK_SECS,
        }
    }
}

impl Planner {
    /// The lookback a cursor run of `stream` re-reads, in seconds. Local-date reports
    /// (whole shop-local days) only re-read what they declare: a quarter hour back would
    /// mean a whole extra day per run.
    pub fn lookback(&self, stream: &StreamSpec) -> i64 {
        match stream.window() {
            Some(w) => match (w.lookback, w.format) {
                (Some(d), _) => d.as_secs() as i64,
                (None, WindowFormat::Unix) => self.lookback,
                (None, WindowFormat::LocalDate) => 0,
            },
            None => 0,
        }
    }

    /// The windows of `stream` from `start` to `to`, never ending later than
    /// `now − settle`. A snapshot is one listing versioned by that end.
    pub fn plan(&self, stream: &StreamSpec, start: Start, to: i64, now: i64) -> Result<Plan> {
        if stream.is_detail() {
            return Err(PipelineError::Invalid(format!(
                "stream `{}` is a detail stream; it runs with its parent",
                stream.name
            )));
        }
        let to = to.min(now - self.settle);
        let Some(w) = stream.window() else {
            return Ok(Plan {
                windows: vec![Window { from: to, to }],
                origin: None,
            });
        };
        let (from, origin) = match start {
            Start::Range(from) => {
                let f = w.backfill_start(from);
                (f, f)
            }
            Start::Exact { from, origin } => (from, origin),
            Start::Cursor {
                cursor: Some(c), ..
            } => {
                let f = c - self.lookback(stream);
                (f, f)
            }
            Start::Cursor {
                cursor: None,
                initial: Some(i),
            } => {
                let f = w.backfill_start(i);
                (f, f)
            }
            Start::Cursor {
                cursor: None,
                initial: None,
            } => {
                return Err(PipelineError::Invalid(format!(
                    "stream {}: no cursor yet; run `shoplake backfill --from DATE --to DATE` first",
                    stream.name
                )));
            }
        };
        Ok(Plan {
            windows: windows(from, to, w.size.as_secs() as i64),
            origin: Some(origin),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::spec::Pipelines;

    fn stream(toml: &str) -> StreamSpec {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.toml"), toml).unwrap();
        Pipelines::load(dir.path()).unwrap().streams.remove(0)
    }

    fn products(full_history: bool) -> StreamSpec {
        stream(&format!(
            r#"
doc = "test"
[[streams]]
name = "products"
doc = "test"
kind = "incremental"
path = "/product/202502/products/search"
method = "POST"
pagination = "page_token"
records = "products"
tables = ["products"]
window = {{ start_param = "update_time_ge", end_param = "update_time_lt", size = "30days", full_history = {full_history} }}
"#
        ))
    }

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_queued_window_of_a_full_history_backfill_runs_as_planned() {
        let p = Planner::default();
        let st = products(true);
        let from = NOW - 400 * DAY;
        let range = p.plan(&st, Start::Range(from), NOW - DAY, NOW).unwrap();
        // The range starts at the catalog's beginning once …
        assert_eq!(
            range.windows[0].from,
            crate::pipeline::spec::FULL_HISTORY_START
        );
        // … and each of its windows, queued, is exactly one window.
        for w in &range.windows {
            let one = p
                .plan(
                    &st,
                    Start::Exact {
                        from: w.from,
                        origin: range.origin.unwrap(),
                    },
                    w.to,
                    NOW,
                )
                .unwrap();
            assert_eq!(one.windows, vec![*w]);
        }
    }

    #[test]
    fn windows_keep_the_settle_margin_and_cursor_runs_look_back() {
        let p = Planner {
            settle: 120,
            lookback: 900,
        };
        let st = products(false);
        let plan = p
            .plan(
                &st,
                Start::Cursor {
                    cursor: Some(NOW - 3600),
                    initial: None,
                },
                NOW,
                NOW,
            )
            .unwrap();
        assert_eq!(
            plan.windows,
            vec![Window {
                from: NOW - 3600 - 900,
                to: NOW - 120
            }]
        );
        // Nothing to read yet inside the margin.
        let none = p
            .plan(
                &st,
                Start::Cursor {
                    cursor: Some(NOW - 60),
                    initial: None,
                },
                NOW,
                NOW,
            )
            .unwrap();
        assert!(none.windows.iter().all(|w| w.to <= NOW - 120), "{none:?}");
        assert!(
            p.plan(
                &st,
                Start::Cursor {
                    cursor: None,
                    initial: None
                },
                NOW,
                NOW
            )
            .is_err()
        );
    }
}
