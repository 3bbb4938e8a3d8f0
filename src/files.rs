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

/// An advisory `flock` on a lock file (created mode 0600), released when dropped (the
/// descriptor closes). Each acquisition opens the file anew, so two holders in one process
/// exclude each other just as two processes do. Run state and the token store use it so
/// several processes sharing a data dir never interleave a read-modify-write.
#[derive(Debug)]
pub struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    /// Blocks until the lock is held: exclusive, or shared with other shared holders.
    pub fn acquire(path: &Path, exclusive: bool) -> std::io::Result<FileLock> {
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(path)?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let op = if exclusive {
                libc::LOCK_EX
            } else {
                libc::LOCK_SH
            };
            loop {
                // SAFETY: `file` owns the descriptor and outlives the call.
                if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
                    break;
                }
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
        #[cfg(not(unix))]
        let _ = exclusive;
        Ok(FileLock { _file: file })
    }
}
