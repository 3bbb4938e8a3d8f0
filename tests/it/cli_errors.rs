//! Bad input through the binary: a bad config key, a broken model file and an unreachable
//! API each end with one clear line naming the problem and a non-zero exit, and nothing
//! already landed is lost.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;

fn shoplake(
    dir: &Path,
    config: Option<&Path>,
    env: &[(&str, &str)],
    args: &[&str],
) -> (bool, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shoplake"));
    c.arg("--data-dir").arg(dir).arg("-q");
    if let Some(cfg) = config {
        c.arg("--config").arg(cfg);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c
        .args(args)
        .env_remove("SHOPLAKE_LOG")
        .output()
        .expect("run shoplake");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "one error line, got: {stderr}");
    lines[0].to_string()
}

#[test]
fn a_bad_config_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("shoplake.toml");
    std::fs::write(&cfg, "[warehouse]\nurii = \"./lake\"\n").unwrap();
    let (ok, _, err) = shoplake(dir.path(), Some(&cfg), &[], &["status"]);
    assert!(!ok);
    let line = error_line(&err);
    assert!(line.contains("urii"), "{line}");

    std::fs::write(&cfg, "[serve]\nusername = \"analyst\"\n").unwrap();
    let (ok, _, err) = shoplake(
        dir.path(),
        Some(&cfg),
        &[],
        &["serve", "--addr", "127.0.0.1:0"],
    );
    assert!(!ok);
    assert!(error_line(&err).contains("serve.password"), "{err}");
}

#[test]
fn a_broken_model_names_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for d in ["pipelines", "schemas", "sql"] {
        copy_dir(&root.join(d), &project.join(d));
    }
    std::fs::write(
        project.join("sql/marts/broken.sql"),
        "-- materialized: table\nselect\n  shop_id,, order_date\nfrom marts.gmv_daily\n",
    )
    .unwrap();
    let cfg = dir.path().join("shoplake.toml");
    std::fs::write(
        &cfg,
        format!("[project]\ndir = {:?}\n", project.display().to_string()),
    )
    .unwrap();
    let (ok, _, err) = shoplake(dir.path(), Some(&cfg), &[], &["build"]);
    assert!(!ok);
    let line = error_line(&err);
    assert!(line.contains("broken.sql:3"), "{line}");

    // An unknown model in --select is named too.
    std::fs::remove_file(project.join("sql/marts/broken.sql")).unwrap();
    let (ok, _, err) = shoplake(
        dir.path(),
        Some(&cfg),
        &[],
        &["build", "--select", "nope+", "--dry-run"],
    );
    assert!(!ok);
    assert!(error_line(&err).contains("no model `nope`"), "{err}");
    let (ok, out, err) = shoplake(
        dir.path(),
        Some(&cfg),
        &[],
        &["build", "--select", "gmv_daily+", "--dry-run"],
    );
    assert!(ok, "{err}");
    // The model and everything downstream, by layer, with inputs; nothing is built on an
    // empty lake, so nothing can be planned yet.
    let listed: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("layer "))
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(listed[0], "marts.gmv_daily", "{out}");
    for m in [
        "marts.gmv_weekly",
        "marts.gmv_monthly",
        "marts.kpi_summary",
        "marts.anomalies_daily",
        "marts.gmv_forecast",
    ] {
        assert!(listed.contains(&m), "{m} downstream of gmv_daily: {out}");
    }
    assert!(!listed.iter().any(|m| m.starts_with("staging.")), "{out}");
    assert!(out.contains("incremental by shop_id, order_date <- staging.stg_order_lines, staging.stg_orders, staging.stg_returns"), "{out}");
    assert!(out.contains("not planned: staging.stg_order_lines, staging.stg_orders, staging.stg_returns not built yet"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_fails_the_window_and_keeps_what_landed() {
    let sb = start(small(1, 300)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("shoplake.toml");
    std::fs::write(
        &cfg,
        format!(
            "[api]\nbase_url = \"{}\"\nmax_attempts = 2\nbackoff_base = \"10ms\"\nbackoff_max = \"20ms\"\ntimeout = \"2s\"\n[jobs]\nmax_attempts = 2\nretry_backoff = \"10ms\"\n",
            sb.base_url()
        ),
    )
    .unwrap();
    let d = dir.path().to_path_buf();
    let run = move |args: Vec<String>| {
        let d = d.clone();
        let cfg = d.join("shoplake.toml");
        async move {
            tokio::task::spawn_blocking(move || {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                shoplake(&d, Some(&cfg), &[], &a)
            })
            .await
            .unwrap()
        }
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (ok, _, err) = run(s(&["auth", "exchange", "--code", "SANDBOX_AUTH_CODE"])).await;
    assert!(ok, "{err}");
    let backfill = s(&[
        "backfill",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--pipeline",
        "orders",
    ]);
    let (ok, out, err) = run(backfill.clone()).await;
    assert!(ok, "{out}{err}");
    let count = s(&[
        "query",
        "select count(*) as n from raw.orders",
        "--format",
        "csv",
    ]);
    let (ok, before, err) = run(count.clone()).await;
    assert!(ok, "{err}");
    assert!(
        before
            .lines()
            .nth(1)
            .is_some_and(|n| n.parse::<u64>().unwrap() > 0),
        "{before}"
    );

    // Re-running a finished backfill resumes: nothing left to do, no request made.
    let (ok, out, err) = run(backfill.clone()).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("backfill: 1 of 1 windows done"), "{out}");

    sb.stop().await;
    let mut forced = backfill.clone();
    forced.push("--force".into());
    let (ok, _, err) = run(forced).await;
    assert!(!ok);
    let line = error_line(&err);
    assert!(line.contains("failed"), "{line}");
    assert!(
        err.contains("stream orders window 2026-10-01T00:00:00Z.."),
        "{err}"
    );
    let (ok, after, err) = run(count).await;
    assert!(ok, "{err}");
    assert_eq!(before, after, "nothing landed was lost");
    let (ok, status, err) = run(s(&["status"])).await;
    assert!(ok, "{err}");
    assert!(status.contains("failed"), "{status}");
}

#[test]
fn a_closed_pipe_ends_quietly() {
    // `shoplake pipelines --coverage | head -1`: the reader goes away after one line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_shoplake"))
        .args(["pipelines", "--coverage"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Arguments, environment, and what stderr must say.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn bad_arguments_each_get_one_clear_line_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[Case] = &[
        (
            &[
                "backfill",
                "--from",
                "2026-10-01",
                "--to",
                "2026-10-02",
                "--pipeline",
                "nope",
            ],
            &[],
            "unknown pipeline `nope`",
        ),
        (
            &["backfill", "--from", "2026-10-05", "--to", "2026-10-01"],
            &[],
            "--from must be before --to",
        ),
        (
            &["backfill", "--from", "yesterday", "--to", "2026-10-01"],
            &[],
            "`yesterday` is not a date",
        ),
        (
            &["retry"],
            &[("SHOPLAKE_JOBS__BACKEND", "mysql://db/x")],
            "jobs.backend",
        ),
        (
            &["query", "select * from raw.no_such_table"],
            &[],
            "no_such_table",
        ),
        (&["build", "--select", "nope+"], &[], "no model `nope`"),
        (
            &["auth", "refresh"],
            &[("SHOPLAKE_TOKEN_KEY", "short")],
            "SHOPLAKE_TOKEN_KEY",
        ),
    ];
    for (args, env, want) in cases {
        let (ok, out, err) = shoplake(dir.path(), None, env, args);
        assert!(!ok, "{args:?} succeeded: {out}");
        let line = error_line(&err);
        assert!(line.contains(want), "{args:?}: {line}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
