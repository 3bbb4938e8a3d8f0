//! The audit log: one JSON line per query (user, role, SQL, rows, bytes, duration,
//! status), appended to a file when one is configured and always emitted as a `tracing`
//! event with target `shoplake::audit`. Passwords and tokens never reach it: only the
//! SQL text and the authenticated user are recorded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use super::access::Principal;

/// Bytes of Arrow data in `b` (its slice of each buffer, not the whole shared buffers a
/// slice points into, which `get_array_memory_size` would count once per batch).
pub fn batch_bytes(b: &arrow::array::RecordBatch) -> usize {
    b.columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0))
        .sum()
}

/// How a query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every batch was sent.
    Ok,
    /// Planning or execution failed.
    Error,
    /// The client went away before the last batch.
    Cancelled,
    /// Refused before running (role, read-only, busy).
    Refused,
    /// Exceeded `serve.query_timeout`.
    Timeout,
}

/// One audit line.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// RFC 3339 UTC time the query started.
    pub ts: String,
    /// Authenticated user.
    pub user: String,
    /// Their role.
    pub role: String,
    /// The SQL as received.
    pub sql: String,
    /// Rows sent.
    pub rows: u64,
    /// Arrow bytes sent (in-memory size of the batches).
    pub bytes: u64,
    /// Wall time in milliseconds.
    pub ms: u64,
    /// How it ended.
    pub status: Outcome,
    /// The error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where audit lines go.
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    file: Option<Arc<Mutex<std::fs::File>>>,
    path: Option<PathBuf>,
    metrics: Arc<super::metrics::QueryMetrics>,
}

impl AuditLog {
    /// Tracing only.
    pub fn tracing_only() -> AuditLog {
        AuditLog::default()
    }

    /// Appends to `path` (created with its directory) as well as tracing.
    pub fn to_file(path: &Path) -> std::io::Result<AuditLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(AuditLog {
            file: Some(Arc::new(Mutex::new(f))),
            path: Some(path.to_path_buf()),
            metrics: Default::default(),
        })
    }

    /// The file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The query counters every written record feeds (`/metrics`).
    pub fn metrics(&self) -> Arc<super::metrics::QueryMetrics> {
        self.metrics.clone()
    }

    /// Writes one record.
    pub fn write(&self, r: &Record) {
        self.metrics.record(r);
        tracing::info!(
            target: "shoplake::audit",
            user = %r.user,
            role = %r.role,
            sql = %r.sql,
            rows = r.rows,
            bytes = r.bytes,
            ms = r.ms,
            status = ?r.status,
            error = r.error.as_deref().unwrap_or(""),
            "query"
        );
        if let Some(f) = &self.file {
            let mut line = serde_json::to_vec(r).expect("audit record serializes");
            line.push(b'\n');
            let mut f = f.lock().expect("audit lock");
            if let Err(e) = f.write_all(&line) {
                tracing::warn!(error = %e, "cannot append to the audit log");
            }
        }
    }

    /// Starts timing a query; the entry writes itself when finished or dropped.
    pub fn start(&self, who: &Principal, sql: &str) -> Entry {
        Entry {
            log: self.clone(),
            started: Instant::now(),
            record: Record {
                ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                user: who.user.clone(),
                role: who.role.clone(),
                sql: sql.to_string(),
                rows: 0,
                bytes: 0,
                ms: 0,
                status: Outcome::Cancelled,
                error: None,
            },
            done: false,
        }
    }
}

/// A query in flight. Dropped without [`Entry::finish`] means the client went away.
#[derive(Debug)]
pub struct Entry {
    log: AuditLog,
    started: Instant,
    record: Record,
    done: bool,
}

impl Entry {
    /// Counts a batch sent.
    pub fn sent(&mut self, rows: usize, bytes: usize) {
        self.record.rows += rows as u64;
        self.record.bytes += bytes as u64;
    }

    /// Records how the query ended and writes the line.
    pub fn finish(mut self, status: Outcome, error: Option<String>) {
        self.record.status = status;
        self.record.error = error;
        self.flush();
    }

    /// Forgets the entry without writing (the query was only planned; its execution
    /// writes its own line).
    pub fn discard(mut self) {
        self.done = true;
    }

    fn flush(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.record.ms = self.started.elapsed().as_millis() as u64;
        self.log.write(&self.record);
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.flush();
    }
}
