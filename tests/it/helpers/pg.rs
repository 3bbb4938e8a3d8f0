//! A throwaway PostgreSQL server for a test: `initdb` + `pg_ctl` from PATH into a temp
//! dir, on a free loopback port, stopped on drop. As root (CI), the server runs as the
//! `postgres` (or `nobody`) user, since PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    pub url: String,
    data: PathBuf,
    user: Option<String>,
    _dir: tempfile::TempDir,
}

fn run_as(user: &Option<String>, program: &str) -> Command {
    match user {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--", program]);
            c
        }
        None => Command::new(program),
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

fn ids(user: &str) -> Option<(u32, u32)> {
    let out = Command::new("id").arg("-u").arg(user).output().ok()?;
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").arg("-g").arg(user).output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

impl Postgres {
    /// Starts a server; panics with what to install when initdb/pg_ctl are missing.
    pub fn start() -> Postgres {
        for tool in ["initdb", "pg_ctl"] {
            let found = Command::new(tool).arg("--version").output().is_ok();
            assert!(
                found,
                "`{tool}` is not on PATH: this test starts a throwaway PostgreSQL server and needs the PostgreSQL server binaries (Debian: apt-get install postgresql; or put /usr/lib/postgresql/<version>/bin on PATH)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let is_root = unsafe { libc::geteuid() } == 0;
        let user = if is_root {
            ["postgres", "nobody"]
                .iter()
                .find(|u| ids(u).is_some())
                .map(|u| u.to_string())
        } else {
            None
        };
        if let Some(u) = &user {
            let (uid, gid) = ids(u).unwrap();
            chown_tree(dir.path(), uid, gid);
        }
        let data = dir.path().join("data");
        let out = run_as(&user, "initdb")
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            dir.path().display()
        );
        let out = run_as(&user, "pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(dir.path().join("log"))
            .args(["-w", "start"])
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
        Postgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            data,
            user,
            _dir: dir,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = run_as(&self.user, "pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}
