//! `shoplake run` and `shoplake scheduler` through the binary: they start on the SQLite
//! queue, serve `/health` and `/metrics`, and stop cleanly on SIGTERM.

use std::process::Stdio;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_and_scheduler_start_serve_metrics_and_stop_on_sigterm() {
    let sb = start(small(1, 100)).await;
    let port = pg::free_port();
    let dir = dir_with_config(&format!(
        "[api]\nbase_url = \"{}\"\n[jobs]\nhttp_addr = \"127.0.0.1:{port}\"\n",
        sb.base_url()
    ));
    authorize_cli(dir.path());
    for cmd in ["run", "scheduler"] {
        let mut child = shoplake_in(dir.path(), &[cmd])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let health = poll(&format!("{cmd}: /health"), 30, async || {
            let r = reqwest::get(format!("{url}/health")).await.ok()?;
            Some(r.text().await.unwrap())
        })
        .await;
        assert_eq!(health.trim(), "ok");
        let metrics = http_text(&format!("{url}/metrics")).await;
        assert!(
            metrics.contains("shoplake_jobs{state=\"pending\"}"),
            "{cmd}: {metrics}"
        );
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = exited(&mut child, &format!("{cmd} to stop"), 30).await;
        let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
        assert!(status.success(), "{cmd}: {status:?} {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    sb.stop().await;
}
