//! `shoplake run` and `shoplake scheduler` through the binary: they start on the SQLite
//! queue, serve `/health` and `/metrics`, and stop cleanly on SIGTERM.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::helpers::*;
use shoplake_sandbox::DEFAULT_AUTH_CODE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_and_scheduler_start_serve_metrics_and_stop_on_sigterm() {
    let sb = start(small(1, 100)).await;
    let dir = tempfile::tempdir().unwrap();
    let port = pg::free_port();
    std::fs::write(
        dir.path().join("shoplake.toml"),
        format!(
            "[api]\nbase_url = \"{}\"\n[jobs]\nhttp_addr = \"127.0.0.1:{port}\"\n",
            sb.base_url()
        ),
    )
    .unwrap();
    let out = shoplake_in(
        dir.path(),
        &["auth", "exchange", "--code", DEFAULT_AUTH_CODE],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for cmd in ["run", "scheduler"] {
        let mut child = shoplake_in(dir.path(), &[cmd])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let t = Instant::now();
        let health = loop {
            if let Ok(r) = reqwest::get(format!("{url}/health")).await {
                break r.text().await.unwrap();
            }
            assert!(t.elapsed() < Duration::from_secs(30), "{cmd}: no /health");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(health.trim(), "ok");
        let metrics = reqwest::get(format!("{url}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("shoplake_jobs{state=\"pending\"}"),
            "{cmd}: {metrics}"
        );
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "{cmd} did not stop");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
        assert!(status.success(), "{cmd}: {status:?} {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    sb.stop().await;
}
