//! Project files: the one way pipelines/, schemas/, sql/ and seeds are listed.

use std::path::{Path, PathBuf};

/// Files of `dir` whose extension is `ext`, sorted by path (a stable order everywhere).
pub fn with_extension(dir: &Path, ext: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    paths.sort();
    Ok(paths)
}
