//! The job queue: apalis storage on SQLite (`<data-dir>/state/jobs.sqlite`, one machine) or
//! Postgres (many workers on many machines), plus the few things apalis does not keep
//! that workers must share: a rate limit per endpoint family, concurrency leases per shop
//! and endpoint family, and the scheduler's last tick. Every worker process opens the same
//! [`Queue`]; nothing here lives only in one process's memory.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use super::{Job, JobError, Result};

/// The apalis queue (job type) every shoplake job goes to.
pub const QUEUE: &str = "shoplake";

/// One job as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobRow {
    /// apalis task id.
    pub id: String,
    /// The job.
    pub job: Option<Job>,
    /// apalis status: Pending, Queued, Running, Done, Failed, Killed.
    pub status: String,
    /// Runs so far.
    pub attempts: i64,
    /// Runs allowed.
    pub max_attempts: i64,
    /// The handler's last result (JSON: `{"Ok": …}` or `{"Err": "…"}`), if any.
    pub last_result: Option<String>,
    /// Idempotency key.
    pub key: Option<String>,
    /// The worker that took it last.
    pub worker: Option<String>,
}

impl JobRow {
    /// Dead: failed on every allowed run, or killed. Waits for `shoplake retry`.
    pub fn is_dead(&self) -> bool {
        self.status == "Killed" || (self.status == "Failed" && self.attempts >= self.max_attempts)
    }

    /// Finished for good: done or dead.
    pub fn is_finished(&self) -> bool {
        self.status == "Done" || self.is_dead()
    }

    /// The last error message, unwrapped from apalis' `{"Err": "…"}`.
    pub fn last_error(&self) -> Option<String> {
        let r = self.last_result.as_deref()?;
        match serde_json::from_str::<serde_json::Value>(r) {
            Ok(serde_json::Value::Object(o)) => o
                .get("Err")
                .map(|e| e.as_str().map_or(e.to_string(), str::to_string)),
            Ok(serde_json::Value::String(s)) if self.status != "Done" => Some(s),
            _ if self.status != "Done" => Some(r.to_string()),
            _ => None,
        }
    }

    /// The handler's result on success.
    pub fn outcome(&self) -> Option<super::Outcome> {
        let v: serde_json::Value = serde_json::from_str(self.last_result.as_deref()?).ok()?;
        let ok = v.get("Ok").cloned().unwrap_or(v);
        serde_json::from_value(ok).ok()
    }

    /// A row of [`Queue::select`]'s columns.
    fn from_columns<I: Into<i64>>(
        (id, job, status, attempts, max_attempts, last_result, key, worker): Columns<I>,
    ) -> JobRow {
        JobRow {
            id,
            job: serde_json::from_slice(&job).ok(),
            status,
            attempts: attempts.into(),
            max_attempts: max_attempts.into(),
            last_result,
            key,
            worker,
        }
    }
}

/// The columns [`Queue::select`] reads: id, job (JSON), status, attempts, max_attempts,
/// last_result, idempotency key, lock_by; `I` is the attempts type of the backend.
type Columns<I> = (
    String,
    Vec<u8>,
    String,
    I,
    I,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The parameter of a job listing.
enum Filter {
    /// A LIKE pattern.
    Text(String),
    /// Idempotency keys.
    Keys(Vec<String>),
}

/// The shared queue.
#[derive(Clone, Debug)]
pub enum Queue {
    /// One machine.
    Sqlite(SqlitePool),
    /// Many machines.
    Postgres(PgPool),
}

fn db(what: &str) -> impl Fn(sqlx::Error) -> JobError + '_ {
    move |e| JobError::Backend(format!("{what}: {e}"))
}

/// An apalis migration error on `backend` (`sqlite` / `postgres`).
fn migrations<E: std::fmt::Display>(backend: &'static str) -> impl Fn(E) -> JobError {
    move |e| JobError::Backend(format!("apalis migrations ({backend}): {e}"))
}

/// An apalis enqueue error.
fn enqueue_error(e: impl std::fmt::Display) -> JobError {
    JobError::Backend(format!("enqueue: {e}"))
}

/// Runs one sqlx call (`on_both!(q, execute, query(sql), arg1, arg2)`: make, bind each
/// argument, run; written once) on whichever
/// pool the queue has; the statement text comes from [`Queue::dialect`].
macro_rules! on_both {
    ($q:expr, execute, $make:ident($sql:expr) $(, $arg:expr)*) => {
        on_both!($q, rows_affected, $make($sql) $(, $arg)*).map(|_| ())
    };
    ($q:expr, rows_affected, $make:ident($sql:expr) $(, $arg:expr)*) => {
        match $q {
            Queue::Sqlite(pool) => sqlx::$make(sqlx::AssertSqlSafe($sql))
                $(.bind($arg))*
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Queue::Postgres(pool) => sqlx::$make(sqlx::AssertSqlSafe($sql))
                $(.bind($arg))*
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        }
    };
    ($q:expr, $run:ident, $make:ident($sql:expr) $(, $arg:expr)*) => {
        match $q {
            Queue::Sqlite(pool) => {
                sqlx::$make(sqlx::AssertSqlSafe($sql))$(.bind($arg))*.$run(pool).await
            }
            Queue::Postgres(pool) => {
                sqlx::$make(sqlx::AssertSqlSafe($sql))$(.bind($arg))*.$run(pool).await
            }
        }
    };
}

/// Seconds since the epoch by the database's clock (all workers agree on it).
const SQLITE_NOW: &str = "((julianday('now') - 2440587.5) * 86400.0)";
const PG_NOW: &str = "extract(epoch from clock_timestamp())::float8";

/// The shoplake tables, in [`Queue::dialect`] (`{real}`, `{int}`: the column types).
const TABLES: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS shoplake_rate (key TEXT PRIMARY KEY, tat {real} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS shoplake_leases (key TEXT NOT NULL, slot {int} NOT NULL, holder TEXT NOT NULL, expires_at {real} NOT NULL, PRIMARY KEY (key, slot))",
    "CREATE TABLE IF NOT EXISTS shoplake_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
];

impl Queue {
    /// Opens (and migrates) `backend`: `sqlite` (→ `<data-dir>/state/jobs.sqlite`),
    /// `sqlite:PATH`, or a `postgres://` URL.
    pub async fn open(backend: &str, data_dir: &Path) -> Result<Queue> {
        let queue = if backend.starts_with("postgres://") || backend.starts_with("postgresql://") {
            Queue::open_postgres(backend).await?
        } else {
            Queue::open_sqlite(backend, data_dir).await?
        };
        queue.create_tables().await?;
        Ok(queue)
    }

    /// Connects to the Postgres queue and runs apalis' migrations.
    async fn open_postgres(backend: &str) -> Result<Queue> {
        let opts: PgConnectOptions = backend
            .parse()
            .map_err(|e| JobError::Backend(format!("jobs.backend is not a Postgres URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(|e| {
                JobError::Backend(format!(
                    "cannot connect to the Postgres queue {}: {e}",
                    redact(backend)
                ))
            })?;
        PostgresStorage::setup(&pool)
            .await
            .map_err(migrations("postgres"))?;
        Ok(Queue::Postgres(pool))
    }

    /// Opens (creating) the SQLite queue file and runs apalis' migrations.
    async fn open_sqlite(backend: &str, data_dir: &Path) -> Result<Queue> {
        let path = match backend.strip_prefix("sqlite:") {
            Some(p) => std::path::PathBuf::from(p.trim_start_matches("//")),
            None => data_dir.join("state").join("jobs.sqlite"),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| JobError::Backend(format!("cannot create {}: {e}", dir.display())))?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|e| JobError::Backend(format!("cannot open {}: {e}", path.display())))?;
        SqliteStorage::setup(&pool)
            .await
            .map_err(migrations("sqlite"))?;
        Ok(Queue::Sqlite(pool))
    }

    /// Creates the shoplake tables (rate limit, leases, shared values) if missing.
    async fn create_tables(&self) -> Result<()> {
        for ddl in TABLES {
            let sql = self.dialect(ddl);
            match (self, on_both!(self, execute, query(sql))) {
                (_, Ok(())) => {}
                // Two processes starting at once may race on CREATE: the loser's error is harmless.
                (Queue::Postgres(_), Err(e)) => {
                    tracing::debug!(error = %e, "create shoplake tables");
                }
                (Queue::Sqlite(_), Err(e)) => return Err(db("create shoplake tables")(e)),
            }
        }
        Ok(())
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            Queue::Sqlite(_) => "sqlite",
            Queue::Postgres(_) => "postgres",
        }
    }

    /// Enqueues `jobs`, each under its idempotency key: a job whose key is already queued
    /// (pending, running, done or dead) is not added again. Returns how many were new.
    pub async fn push(&self, jobs: &[Job], max_attempts: u32) -> Result<u64> {
        let before = self.total().await?;
        let tasks: Vec<_> = jobs
            .iter()
            .map(|j| {
                TaskBuilder::new(j.clone())
                    .idempotency_key(j.key())
                    .max_attempts(max_attempts as usize)
                    .build()
            })
            .collect();
        let mut stream = futures::stream::iter(tasks);
        match self {
            Queue::Sqlite(pool) => {
                let mut s = SqliteStorage::<Job>::new(pool).with_config(sqlite_config(None));
                s.push_all(&mut stream).await.map_err(enqueue_error)?;
            }
            Queue::Postgres(pool) => {
                let mut s = PostgresStorage::<Job>::new(pool).with_config(pg_config(None));
                s.push_all(&mut stream).await.map_err(enqueue_error)?;
            }
        }
        Ok(self.total().await?.saturating_sub(before))
    }

    async fn total(&self) -> Result<u64> {
        Ok(self.counts().await?.values().sum())
    }

    /// Jobs by state: pending, running, done, retrying (failed, runs left), dead.
    pub async fn counts(&self) -> Result<BTreeMap<String, u64>> {
        let sql = match self {
            Queue::Sqlite(_) => {
                "SELECT status, attempts >= max_attempts AS spent, count(*) AS n FROM Jobs WHERE job_type = ?1 GROUP BY 1, 2"
            }
            Queue::Postgres(_) => {
                "SELECT status::text AS status, attempts >= max_attempts AS spent, count(*) AS n FROM apalis.jobs WHERE job_type = $1 GROUP BY 1, 2"
            }
        };
        let rows: Vec<(String, bool, i64)> =
            on_both!(self, fetch_all, query_as(sql), QUEUE).map_err(db("count jobs"))?;
        let mut out: BTreeMap<String, u64> = ["pending", "running", "done", "retrying", "dead"]
            .iter()
            .map(|s| (s.to_string(), 0))
            .collect();
        for (status, spent, n) in rows {
            let state = match status.as_str() {
                "Pending" => "pending",
                "Queued" | "Running" => "running",
                "Done" => "done",
                "Failed" if !spent => "retrying",
                _ => "dead",
            };
            *out.entry(state.into()).or_default() += n as u64;
        }
        Ok(out)
    }

    /// Every job whose key starts with `key_prefix` (all jobs for `""`), oldest first.
    pub async fn jobs(&self, key_prefix: &str) -> Result<Vec<JobRow>> {
        let pattern = format!("{}%", key_prefix.replace('%', "\\%").replace('_', "\\_"));
        self.select(
            "coalesce(idempotency_key, '') LIKE ?2 ESCAPE '\\' ORDER BY id",
            "coalesce(idempotency_key, '') LIKE $2 ESCAPE '\\' ORDER BY id",
            Filter::Text(pattern),
        )
        .await
    }

    /// The jobs stored under `keys` (in any order; unknown keys are skipped).
    pub async fn by_keys(&self, keys: &[String]) -> Result<Vec<JobRow>> {
        self.select(
            "idempotency_key IN (SELECT value FROM json_each(?2))",
            "idempotency_key = ANY($2)",
            Filter::Keys(keys.to_vec()),
        )
        .await
    }

    /// Jobs of the shoplake queue matching a condition on the second parameter.
    async fn select(&self, sqlite_where: &str, pg_where: &str, arg: Filter) -> Result<Vec<JobRow>> {
        match self {
            Queue::Sqlite(pool) => {
                let sql = format!(
                    "SELECT id, job, status, attempts, max_attempts, last_result, idempotency_key, lock_by \
                     FROM Jobs WHERE job_type = ?1 AND {sqlite_where}"
                );
                let arg = match arg {
                    Filter::Text(t) => t,
                    Filter::Keys(k) => serde_json::to_string(&k).expect("keys serialize"),
                };
                let rows: Vec<Columns<i64>> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(QUEUE)
                    .bind(arg)
                    .fetch_all(pool)
                    .await
                    .map_err(db("list jobs"))?;
                Ok(rows.into_iter().map(JobRow::from_columns).collect())
            }
            Queue::Postgres(pool) => {
                let sql = format!(
                    "SELECT id, job, status::text AS status, attempts, max_attempts, last_result::text AS last_result, \
                     idempotency_key, lock_by FROM apalis.jobs WHERE job_type = $1 AND {pg_where}"
                );
                let q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(QUEUE);
                let q = match arg {
                    Filter::Text(t) => q.bind(t),
                    Filter::Keys(k) => q.bind(k),
                };
                let rows: Vec<Columns<i32>> = q.fetch_all(pool).await.map_err(db("list jobs"))?;
                Ok(rows.into_iter().map(JobRow::from_columns).collect())
            }
        }
    }

    /// True when every job under `keys` is done or dead.
    pub async fn all_finished(&self, keys: &[String]) -> Result<bool> {
        let rows = self.by_keys(keys).await?;
        Ok(rows.len() >= keys.len() && rows.iter().all(JobRow::is_finished))
    }

    /// Dead jobs (failed on every allowed run).
    pub async fn dead(&self) -> Result<Vec<JobRow>> {
        // Filtered in the database: done jobs pile up over months, dead ones should not.
        const DEAD: &str =
            "(status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))";
        self.select(
            &format!("coalesce(idempotency_key, '') LIKE ?2 AND {DEAD} ORDER BY id"),
            &format!("coalesce(idempotency_key, '') LIKE $2 AND {DEAD} ORDER BY id"),
            Filter::Text("%".into()),
        )
        .await
    }

    /// Requeues dead jobs (all, or the one with `id`) with a fresh set of runs.
    pub async fn retry(&self, id: Option<&str>) -> Result<u64> {
        let sql = match self {
            Queue::Sqlite(_) => {
                "UPDATE Jobs SET status = 'Pending', attempts = 0, lock_by = NULL, lock_at = NULL, done_at = NULL, run_at = strftime('%s', 'now') \
                 WHERE job_type = ?1 AND (status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts)) AND (?2 IS NULL OR id = ?2)"
            }
            Queue::Postgres(_) => {
                "UPDATE apalis.jobs SET status = 'Pending', attempts = 0, lock_by = NULL, lock_at = NULL, done_at = NULL, run_at = now() \
                 WHERE job_type = $1 AND (status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts)) AND ($2::text IS NULL OR id = $2)"
            }
        };
        on_both!(self, rows_affected, query(sql), QUEUE, id).map_err(db("retry jobs"))
    }

    /// `template` in this backend's dialect: `{now}` is the database clock in unix
    /// seconds, `{max}` the two-argument maximum, `{real}` and `{int}` the float and
    /// 64-bit integer column types, and `?N` placeholders become `$N` on Postgres. The
    /// shoplake tables below are the same on both.
    fn dialect(&self, template: &str) -> String {
        match self {
            Queue::Sqlite(_) => template
                .replace("{now}", SQLITE_NOW)
                .replace("{max}", "max")
                .replace("{real}", "REAL")
                .replace("{int}", "INTEGER"),
            Queue::Postgres(_) => template
                .replace("{now}", PG_NOW)
                .replace("{max}", "greatest")
                .replace("{real}", "DOUBLE PRECISION")
                .replace("{int}", "BIGINT")
                .replace('?', "$"),
        }
    }

    /// Reserves one request for `key` at `rps` (burst `burst`) on the shared clock and
    /// returns how long to wait before sending (a GCRA over one row per key).
    pub async fn reserve_rate(&self, key: &str, rps: f64, burst: f64) -> Result<Duration> {
        if rps <= 0.0 {
            return Ok(Duration::ZERO);
        }
        let t = 1.0 / rps;
        let sql = self.dialect(
            "INSERT INTO shoplake_rate (key, tat) VALUES (?1, {now} + ?2) \
             ON CONFLICT (key) DO UPDATE SET tat = {max}(shoplake_rate.tat, {now}) + ?2 \
             RETURNING tat - {now}",
        );
        let ahead: f64 = on_both!(self, fetch_one, query_scalar(sql), key, t)
            .map_err(db("shared rate limit"))?;
        Ok(Duration::from_secs_f64((ahead - t - burst * t).max(0.0)))
    }

    /// Takes one of `limit` slots of `key` for `ttl` (a slot whose holder stopped renewing
    /// is free again after its ttl); `None` when all are taken.
    pub async fn try_lease(
        &self,
        key: &str,
        limit: u32,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<u32>> {
        let sql = self.dialect(
            "INSERT INTO shoplake_leases (key, slot, holder, expires_at) VALUES (?1, ?2, ?3, {now} + ?4) \
             ON CONFLICT (key, slot) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE shoplake_leases.expires_at < {now} RETURNING slot",
        );
        for slot in 0..limit as i64 {
            let got: Option<i64> = on_both!(
                self,
                fetch_optional,
                query_scalar(sql.clone()),
                key,
                slot,
                holder,
                ttl.as_secs_f64()
            )
            .map_err(db("lease"))?;
            if let Some(s) = got {
                return Ok(Some(s as u32));
            }
        }
        Ok(None)
    }

    /// Extends a held lease by `ttl` from now; `false` when `holder` no longer holds it
    /// (it expired and another worker took the slot).
    pub async fn renew_lease(
        &self,
        key: &str,
        slot: u32,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool> {
        let sql = self.dialect(
            "UPDATE shoplake_leases SET expires_at = {now} + ?4 WHERE key = ?1 AND slot = ?2 AND holder = ?3",
        );
        let rows = on_both!(
            self,
            rows_affected,
            query(sql),
            key,
            slot as i64,
            holder,
            ttl.as_secs_f64()
        )
        .map_err(db("renew lease"))?;
        Ok(rows > 0)
    }

    /// Gives a lease back.
    pub async fn release(&self, key: &str, slot: u32, holder: &str) -> Result<()> {
        let sql = self
            .dialect("DELETE FROM shoplake_leases WHERE key = ?1 AND slot = ?2 AND holder = ?3");
        on_both!(self, execute, query(sql), key, slot as i64, holder).map_err(db("release lease"))
    }

    /// A small shared value (the scheduler's last tick).
    pub async fn get(&self, key: &str) -> Result<Option<String>> {
        let sql = self.dialect("SELECT value FROM shoplake_kv WHERE key = ?1");
        on_both!(self, fetch_optional, query_scalar(sql), key).map_err(db("read state"))
    }

    /// Sets a shared value.
    pub async fn set(&self, key: &str, value: &str) -> Result<()> {
        let sql = self.dialect(
            "INSERT INTO shoplake_kv (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        );
        on_both!(self, execute, query(sql), key, value).map_err(db("write state"))
    }
}

/// apalis config of the SQLite storage (`heartbeat` for workers).
pub fn sqlite_config(heartbeat: Option<Duration>) -> apalis_sqlite::Config {
    let c = apalis_sqlite::Config::default().queue(QUEUE).batch_size(1);
    match heartbeat {
        Some(h) => c.heartbeat_interval(h),
        None => c,
    }
}

/// apalis config of the Postgres storage.
pub fn pg_config(heartbeat: Option<Duration>) -> apalis_postgres::Config {
    let c = apalis_postgres::Config::default()
        .queue(QUEUE)
        .batch_size(1);
    match heartbeat {
        Some(h) => c.heartbeat_interval(h),
        None => c,
    }
}

/// A backend URL without its password, for messages.
pub fn redact(backend: &str) -> String {
    match url::Url::parse(backend) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => backend.to_string(),
    }
}
