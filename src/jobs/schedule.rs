//! Schedules and the cron producer.
//!
//! A stream's schedule comes from its pipeline file (`schedule = "15m"`) or `[jobs.schedule]`
//! in shoplake.toml (by stream or category name), and is either an interval (`15m`, `1h`,
//! `1d`: fires at multiples of it in the shop's local time, so `1d` is local midnight) or a
//! cron expression evaluated in the shop's time zone (`0 30 1 * * *`: 01:30 local, after
//! the shop's day closed). [`Producer::due`] is a pure function of two clock readings, so
//! tests drive it with any clock; [`Producer::tick`] is what apalis-cron calls every minute.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{Job, JobError, Queue, Result};
use crate::pipeline::{Pipelines, Shop};

/// When a stream runs.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every interval, aligned to the shop's local midnight.
    Every(Duration),
    /// A cron expression in the shop's time zone.
    Cron(Box<cron::Schedule>),
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Schedule, String> {
        let s = s.trim();
        if let Ok(d) = crate::duration::parse(s) {
            if d < Duration::from_secs(60) {
                return Err(format!("{s:?}: the shortest interval is 1m"));
            }
            return Ok(Schedule::Every(d));
        }
        // Five fields (minute hour day month weekday) get a leading seconds field.
        let expr = if s.split_whitespace().count() == 5 {
            format!("0 {s}")
        } else {
            s.to_string()
        };
        cron::Schedule::from_str(&expr)
            .map(|c| Schedule::Cron(Box::new(c)))
            .map_err(|e| {
                format!("{s:?} is neither an interval (\"15m\") nor a cron expression (\"0 30 1 * * *\"): {e}")
            })
    }
}

impl Schedule {
    /// The latest fire time in `(after, now]` for a shop in `tz`, if any.
    pub fn due(&self, tz: Tz, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if now <= after {
            return None;
        }
        let fire = match self {
            Schedule::Every(d) => {
                let d = d.as_secs() as i64;
                let offset = tz
                    .offset_from_utc_datetime(&now.naive_utc())
                    .fix()
                    .local_minus_utc() as i64;
                let local = now.timestamp() + offset;
                Utc.timestamp_opt(local - local.rem_euclid(d) - offset, 0)
                    .single()?
            }
            Schedule::Cron(c) => {
                let from = after.with_timezone(&tz);
                c.after(&from)
                    .take_while(|t| t.with_timezone(&Utc) <= now)
                    .last()?
                    .with_timezone(&Utc)
            }
        };
        (fire > after && fire <= now).then_some(fire)
    }
}

use chrono::Offset;

/// One scheduled shop × stream.
#[derive(Debug, Clone)]
struct Entry {
    shop: Shop,
    stream: String,
    schedule: Schedule,
}

/// Builds from the streams that have a schedule, for every shop.
#[derive(Debug, Clone)]
pub struct Producer {
    entries: Vec<Entry>,
    /// Queue a model build once a tick's extracts landed (on by default).
    pub build_models: bool,
    /// When table maintenance is queued (UTC; `None`: never).
    pub maintain: Option<Schedule>,
}

/// Tick state kept in the queue database.
#[derive(Debug, Default, Serialize, Deserialize)]
struct TickState {
    /// Last clock reading handled (unix seconds).
    last: Option<i64>,
    /// Ticks whose extracts have not all finished yet: tick id → job keys.
    waiting: BTreeMap<String, Vec<String>>,
}

const STATE_KEY: &str = "scheduler";

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TickReport {
    /// Extract jobs enqueued (new ones).
    pub extracts: u64,
    /// Model builds enqueued (after earlier ticks' extracts finished).
    pub builds: u64,
    /// Maintenance runs enqueued.
    pub maintains: u64,
}

impl Producer {
    /// Schedules for every top-level stream of `pipelines` and every shop; `overrides`
    /// (`[jobs.schedule]`) by stream or category name win over the pipeline files.
    pub fn new(
        shops: &[Shop],
        pipelines: &Pipelines,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Producer> {
        for name in overrides.keys() {
            if !pipelines
                .streams
                .iter()
                .any(|s| &s.name == name || &s.category == name)
            {
                return Err(JobError::Job(format!(
                    "jobs.schedule.{name}: no stream or category of that name"
                )));
            }
        }
        let mut entries = Vec::new();
        for st in pipelines
            .streams
            .iter()
            .filter(|s| s.enabled && !s.is_detail())
        {
            let (key, text) = match overrides
                .get(&st.name)
                .map(|t| (format!("jobs.schedule.{}", st.name), t))
                .or_else(|| {
                    overrides
                        .get(&st.category)
                        .map(|t| (format!("jobs.schedule.{}", st.category), t))
                })
                .or_else(|| {
                    st.schedule.as_ref().map(|t| {
                        (
                            format!("pipelines/{}.toml: stream {}", st.category, st.name),
                            t,
                        )
                    })
                }) {
                Some(x) => x,
                None => continue,
            };
            let schedule: Schedule = text
                .parse()
                .map_err(|e: String| JobError::Job(format!("{key}: {e}")))?;
            for shop in shops {
                entries.push(Entry {
                    shop: shop.clone(),
                    stream: st.name.clone(),
                    schedule: schedule.clone(),
                });
            }
        }
        Ok(Producer {
            entries,
            build_models: true,
            maintain: None,
        })
    }

    /// Scheduled shop × stream pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The extract jobs due in `(after, now]`: one per shop × stream whose schedule fired,
    /// up to its latest fire time (several missed fires make one job, not a flood).
    pub fn due(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Vec<Job> {
        self.entries
            .iter()
            .filter_map(|e| {
                e.schedule
                    .due(e.shop.tz, after, now)
                    .map(|fire| Job::ExtractWindow {
                        shop: e.shop.id.clone(),
                        stream: e.stream.clone(),
                        from: None,
                        to: fire.timestamp(),
                        run: String::new(),
                        origin: None,
                    })
            })
            .collect()
    }

    /// One tick at `now`: enqueues the extracts due since the last tick (the first tick
    /// looks back one minute), and a model build for every earlier tick whose extracts
    /// have all finished. State lives in the queue database, so a restarted scheduler
    /// (or a second one) carries on where the last left off.
    pub async fn tick(
        &self,
        queue: &Queue,
        now: DateTime<Utc>,
        max_attempts: u32,
    ) -> Result<TickReport> {
        let mut state: TickState = match queue.get(STATE_KEY).await? {
            Some(s) => serde_json::from_str(&s).unwrap_or_default(),
            None => TickState::default(),
        };
        let after = state
            .last
            .and_then(|l| Utc.timestamp_opt(l, 0).single())
            .unwrap_or(now - chrono::Duration::minutes(1));
        let mut report = TickReport::default();
        let jobs = self.due(after, now);
        if !jobs.is_empty() {
            report.extracts = queue.push(&jobs, max_attempts).await?;
            state.waiting.insert(
                format!("tick-{}", now.timestamp()),
                jobs.iter().map(Job::key).collect(),
            );
        }
        let mut ready = Vec::new();
        for (tick, keys) in &state.waiting {
            if queue.all_finished(keys).await? {
                ready.push(tick.clone());
            }
        }
        for tick in &ready {
            state.waiting.remove(tick);
        }
        // Several ticks landed since the last look: one build covers them all.
        if let (Some(tick), true) = (ready.last(), self.build_models) {
            report.builds += queue
                .push(
                    &[Job::BuildModels {
                        select: None,
                        after: tick.clone(),
                    }],
                    max_attempts,
                )
                .await?;
        }
        // Maintenance on its own schedule (UTC), one job per fire time: it runs beside
        // extracts and builds, whose commits it never loses (conflicts are retried).
        if let Some(fire) = self
            .maintain
            .as_ref()
            .and_then(|s| s.due(chrono_tz::UTC, after, now))
        {
            report.maintains += queue
                .push(
                    &[Job::Maintain {
                        at: fire.timestamp(),
                    }],
                    max_attempts,
                )
                .await?;
        }
        state.last = Some(now.timestamp().max(after.timestamp()));
        queue
            .set(
                STATE_KEY,
                &serde_json::to_string(&state).expect("state serializes"),
            )
            .await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Checks `(schedule, shop time zone, after, now, expected fire time)` cases.
    fn fires(cases: &[(&str, &str, &str, &str, Option<&str>)]) {
        for &(schedule, tz, after, now, want) in cases {
            let s: Schedule = schedule.parse().unwrap();
            assert_eq!(
                s.due(tz.parse().unwrap(), at(after), at(now)),
                want.map(at),
                "{schedule} in {tz}, ({after}, {now}]"
            );
        }
    }

    #[test]
    fn intervals_fire_on_local_multiples() {
        fires(&[
            (
                "15m",
                "UTC",
                "2026-03-02T10:14:00Z",
                "2026-03-02T10:15:00Z",
                Some("2026-03-02T10:15:00Z"),
            ),
            (
                "15m",
                "UTC",
                "2026-03-02T10:15:00Z",
                "2026-03-02T10:16:00Z",
                None,
            ),
            // One day in Jakarta (UTC+7) fires at local midnight = 17:00 UTC.
            (
                "1d",
                "Asia/Jakarta",
                "2026-03-02T16:59:00Z",
                "2026-03-02T17:00:00Z",
                Some("2026-03-02T17:00:00Z"),
            ),
            (
                "1d",
                "Asia/Jakarta",
                "2026-03-02T00:00:00Z",
                "2026-03-02T16:59:59Z",
                None,
            ),
        ]);
    }

    #[test]
    fn cron_runs_in_the_shop_time_zone() {
        fires(&[
            // 01:30 in Los Angeles (PST, UTC-8) is 09:30 UTC.
            (
                "30 1 * * *",
                "America/Los_Angeles",
                "2026-01-10T09:00:00Z",
                "2026-01-10T10:00:00Z",
                Some("2026-01-10T09:30:00Z"),
            ),
            // Missed for three days: one fire, the latest.
            (
                "30 1 * * *",
                "America/Los_Angeles",
                "2026-01-07T00:00:00Z",
                "2026-01-10T10:00:00Z",
                Some("2026-01-10T09:30:00Z"),
            ),
        ]);
    }

    #[test]
    fn bad_schedules_say_what_is_accepted() {
        let e = "every tuesday".parse::<Schedule>().unwrap_err();
        assert!(e.contains("neither an interval"), "{e}");
        assert!("10s".parse::<Schedule>().unwrap_err().contains("1m"));
    }
}
