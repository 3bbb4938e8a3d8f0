//! Run state per shop and stream (`<data-dir>/state/runs.json`): last run, rows and last
//! error, for `shoplake status`. The cursor itself is not here: it lives in the Delta
//! table, committed with the data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{PipelineError, Result};

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

/// The state file.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    runs: Mutex<BTreeMap<String, RunRecord>>,
}

/// Key of a shop × stream.
pub fn key(shop: &str, stream: &str) -> String {
    format!("{shop}/{stream}")
}

impl StateStore {
    /// Opens (or starts) `<dir>/runs.json`.
    pub fn open(dir: &Path) -> Result<StateStore> {
        let path = dir.join("runs.json");
        let runs = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| PipelineError::State {
                path: path.display().to_string(),
                message: format!(
                    "unreadable ({e}); delete it to start over, cursors are kept in the lake"
                ),
            })?,
            Err(_) => BTreeMap::new(),
        };
        Ok(StateStore {
            path,
            runs: Mutex::new(runs),
        })
    }

    /// Every record.
    pub fn all(&self) -> BTreeMap<String, RunRecord> {
        self.runs.lock().expect("state lock").clone()
    }

    /// Records a window's outcome and saves the file.
    pub fn record(
        &self,
        shop: &str,
        stream: &str,
        window: &str,
        outcome: std::result::Result<u64, String>,
    ) -> Result<()> {
        let now = chrono::Utc::now().timestamp();
        let snapshot = {
            let mut runs = self.runs.lock().expect("state lock");
            let r = runs.entry(key(shop, stream)).or_default();
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
            serde_json::to_vec_pretty(&*runs).expect("state serializes")
        };
        let err = |e: std::io::Error| PipelineError::State {
            path: self.path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, snapshot).map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}
