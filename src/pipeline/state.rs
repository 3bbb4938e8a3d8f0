//! Run state per shop and stream (`<data-dir>/state/runs.json`): last run, rows and last
//! error, for `shoplake status`. The cursor itself is not here: it lives in the Delta
//! table, committed with the data.
//!
//! Several windows of one process, and several processes sharing a data dir (a worker and
//! a manual `extract`), record into the same file. Each [`StateStore::record`] is one
//! read-modify-write under the store's mutex and an exclusive `flock` on
//! `runs.json.lock`: it re-reads the file, updates its own entry (keeping every other
//! process's), writes a temp file of its own and renames it over `runs.json`. Readers see
//! either the old or the new file, never a partial one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::{PipelineError, Result};
use crate::files::FileLock;

/// The last run of one shop × stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// When the last window finished (unix seconds).
    pub last_run_at: i64,
    /// `ok` or `failed`.
    pub status: String,
    /// Rows landed by the last successful window (all tables of the stream).
    pub rows: u64,
    /// Rows landed in total by this installation.
    pub total_rows: u64,
    /// Last window (`from..to`).
    pub window: String,
    /// Last error, kept until a window succeeds.
    pub last_error: Option<String>,
}

type Runs = BTreeMap<String, RunRecord>;

/// The state file.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    /// What this process last read or wrote: the answer of [`StateStore::all`] when the
    /// file cannot be read. Its lock is held across a whole [`StateStore::record`].
    runs: Mutex<Runs>,
}

/// Key of a shop × stream.
pub fn key(shop: &str, stream: &str) -> String {
    format!("{shop}/{stream}")
}

/// Makes temp file names unique within the process (the pid makes them unique across).
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl StateStore {
    /// Opens (or starts) `<dir>/runs.json`.
    pub fn open(dir: &Path) -> Result<StateStore> {
        let path = dir.join("runs.json");
        let runs = read_runs(&path)?.unwrap_or_default();
        Ok(StateStore {
            path,
            runs: Mutex::new(runs),
        })
    }

    /// Every record, as the file holds them now (other processes' included). Falls back
    /// to what this process last saw when the file cannot be read.
    pub fn all(&self) -> BTreeMap<String, RunRecord> {
        let mut mem = self.lock_runs();
        // Renames are atomic, so the shared lock only waits out a writer in the middle of
        // its read-modify-write; with no state dir yet, or a read-only one, read without.
        let _shared = FileLock::acquire(&self.lock_path(), false)
            .inspect_err(
                |e| debug!(path = %self.path.display(), error = %e, "run state read unlocked"),
            )
            .ok();
        match read_runs(&self.path) {
            Ok(Some(runs)) => {
                *mem = runs.clone();
                runs
            }
            Ok(None) => mem.clone(),
            Err(e) => {
                warn!(error = %e, "showing the run state this process last saw");
                mem.clone()
            }
        }
    }

    /// Records a window's outcome and saves the file, keeping the entries other
    /// processes recorded meanwhile.
    pub fn record(
        &self,
        shop: &str,
        stream: &str,
        window: &str,
        outcome: std::result::Result<u64, String>,
    ) -> Result<()> {
        let err = |what: &str, e: std::io::Error| PipelineError::State {
            path: self.path.display().to_string(),
            message: format!("{what}: {e}"),
        };
        // Held to the end: one read-modify-write at a time in this process…
        let mut mem = self.lock_runs();
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err("creating its directory", e))?;
        }
        // …and across processes.
        let _lock = FileLock::acquire(&self.lock_path(), true).map_err(|e| err("locking it", e))?;
        let mut runs = match read_runs(&self.path) {
            Ok(runs) => runs.unwrap_or_default(),
            Err(e) => {
                // Rewritten whole below: what this process knows replaces the damage
                // instead of failing a window whose data is already committed.
                warn!(error = %e, "replacing the unreadable run state with this process's");
                mem.clone()
            }
        };
        apply(
            runs.entry(key(shop, stream)).or_default(),
            chrono::Utc::now().timestamp(),
            window,
            outcome,
        );
        let bytes = serde_json::to_vec_pretty(&runs).expect("state serializes");
        self.replace(&bytes).map_err(|e| err("writing it", e))?;
        *mem = runs;
        Ok(())
    }

    /// `runs.json.lock`, the file `flock`ed around reads and writes.
    fn lock_path(&self) -> PathBuf {
        self.path.with_extension("json.lock")
    }

    fn lock_runs(&self) -> std::sync::MutexGuard<'_, Runs> {
        // A panic mid-record leaves the map as it was last saved or read: still usable.
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `bytes` to a temp file of this process and call alone (same directory),
    /// syncs it and renames it over the state file. The temp file is removed on failure.
    fn replace(&self, bytes: &[u8]) -> std::io::Result<()> {
        let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .path
            .with_extension(format!("json.{}.{seq}.tmp", std::process::id()));
        let written = write_synced(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

/// Writes `bytes` to a new file at `path` and syncs it: a crash after the rename must not
/// leave an empty runs.json, which would block start-up.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Applies a window's outcome to its record.
fn apply(r: &mut RunRecord, now: i64, window: &str, outcome: std::result::Result<u64, String>) {
    r.last_run_at = now;
    r.window = window.to_string();
    match outcome {
        Ok(rows) => {
            r.status = "ok".into();
            r.rows = rows;
            r.total_rows += rows;
            r.last_error = None;
        }
        Err(e) => {
            r.status = "failed".into();
            r.last_error = Some(e);
        }
    }
}

/// The records in `path`: `None` when there is no file yet, an error when it cannot be
/// read or parsed.
fn read_runs(path: &Path) -> Result<Option<Runs>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(PipelineError::State {
                path: path.display().to_string(),
                message: format!("reading it: {e}"),
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| PipelineError::State {
            path: path.display().to_string(),
            message: format!(
                "unreadable ({e}); delete it to start over, cursors are kept in the lake"
            ),
        })
}
