//! Secrets never leave the process: with a known app secret, Flight SQL password, token
//! key and the shops' tokens, every output of a working day — authorize, backfill and
//! build at -vv, status (text and JSON), queries, the Flight SQL server's logs and audit
//! log, failing runs and a panic report — and every file the run wrote outside
//! `secrets/` is searched for each value.

use std::process::Stdio;

use crate::helpers::*;
use shoplake_sandbox::{DEFAULT_AUTH_CODE, DEFAULT_CLOCK};

const APP_SECRET: &str = "known-app-secret-3e8f1a77";
const FLIGHT_PW: &str = "known-flight-pw-55d2";

fn run(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = shoplake_in(dir, args)
        .env("SHOPLAKE_API__APP_SECRET", APP_SECRET)
        .env("SHOPLAKE_TEST_FLIGHT_PW", FLIGHT_PW)
        .env_remove("SHOPLAKE_LOG")
        .env_remove("SHOPLAKE_TOKEN_KEY")
        .envs(env.iter().copied())
        .output()
        .expect("run shoplake");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Every file under `dir` except `secrets/` and Parquet data files (API data, compressed).
fn written_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "secrets") {
                written_files(&p, out);
            }
        } else if p.extension().is_none_or(|x| x != "parquet") {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_output_log_audit_line_or_file() {
    let mut cfg = small(2, 400);
    cfg.app_secret = APP_SECRET.into();
    let sb = start(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[api]\nbase_url = \"{}\"\nmax_attempts = 3\nbackoff_base = \"50ms\"\nbackoff_max = \"200ms\"\n[jobs]\nhttp_addr = \"\"\nretry_backoff = \"50ms\"\n\
             [serve]\naudit_log = \"{}\"\n\
             [[serve.users]]\nname = \"ana\"\nrole = \"analyst\"\npassword_env = \"SHOPLAKE_TEST_FLIGHT_PW\"\n",
        sb.base_url(),
        dir.path().join("audit.jsonl").display()
    );
    std::fs::write(dir.path().join("shoplake.toml"), config).unwrap();
    let mut outputs = a_working_day_and_its_failures(dir.path());
    outputs.extend(serve_log_in_and_query(dir.path()).await);

    // The values to look for: the app secret, the Flight password, the token key and
    // every token the store holds now (its key is in secrets/token.key).
    let secrets = secret_values(dir.path());
    let all = outputs.join("\n");
    assert!(all.contains("api response"), "debug logs were on");
    assert!(all.contains("wrong user name or password"), "{all}");
    for s in &secrets {
        assert!(
            !all.contains(s.as_str()),
            "a secret value reached an output"
        );
    }
    let mut files = Vec::new();
    written_files(dir.path(), &mut files);
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"user\":\"ana\""), "{audit}");
    assert!(files.len() > 20, "{files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for s in &secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "a secret value is in {}",
                f.display()
            );
        }
    }
    sb.stop().await;
}

/// A working day through the binary — authorize, backfill and build at -vv, status (text
/// and JSON), a query — and failing runs; returns every output.
fn a_working_day_and_its_failures(dir: &std::path::Path) -> Vec<String> {
    let day = |d: i64| {
        chrono::DateTime::from_timestamp(DEFAULT_CLOCK - d * 86_400, 0)
            .unwrap()
            .to_rfc3339()
    };
    let (from, mid, to) = (day(6), day(1), day(0));
    let mut outputs = Vec::new();
    let mut ok = |args: &[&str], env: &[(&str, &str)], expect: bool| {
        let (success, out) = run(dir, args, env);
        assert_eq!(success, expect, "{args:?}: {out}");
        outputs.push(out.clone());
        out
    };
    ok(
        &["-vv", "auth", "exchange", "--code", DEFAULT_AUTH_CODE],
        &[],
        true,
    );
    ok(
        &["-vv", "backfill", "--from", &from, "--to", &mid],
        &[],
        true,
    );
    ok(&["-vv", "build"], &[], true);
    ok(&["-vv", "auth", "refresh"], &[], true);
    ok(&["status"], &[], true);
    ok(&["status", "--format", "json"], &[], true);
    ok(
        &[
            "--log-format",
            "json",
            "-vv",
            "query",
            "select count(*) from raw.orders",
        ],
        &[],
        true,
    );
    // Failures: the token host unreachable (its URL carries the app secret in the query),
    // the API refusing a wrong secret, and a panic while the secret is loaded.
    let dead = format!("http://127.0.0.1:{}", crate::helpers::pg::free_port());
    let out = ok(
        &["-vv", "auth", "refresh"],
        &[("SHOPLAKE_API__BASE_URL", &dead)],
        false,
    );
    assert!(out.contains("error"), "{out}");
    let out = ok(
        &["-vv", "extract", "--pipeline", "orders", "--until", &to],
        &[("SHOPLAKE_API__APP_SECRET", "another-secret-value-0b9c")],
        false,
    );
    assert!(out.contains("106001"), "{out}");
    ok(
        &["-vv", "extract", "--pipeline", "orders", "--until", &to],
        &[],
        true,
    );
    let out = ok(&["status"], &[("SHOPLAKE_DEBUG_PANIC", "1")], false);
    assert!(
        out.contains("internal error at")
            && out.contains("debug panic holding the app secret [redacted]"),
        "the panic is reported, its secret redacted: {out}"
    );
    outputs
}

/// The Flight SQL server: a login, a wrong password, a query; returns the errors the
/// clients saw and the server's logs (its audit log included).
async fn serve_log_in_and_query(dir: &std::path::Path) -> Vec<String> {
    let mut outputs = Vec::new();
    let port = crate::helpers::pg::free_port();
    let http_port = crate::helpers::pg::free_port();
    let log_path = dir.join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = shoplake_in(
        dir,
        &[
            "-vv",
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--http-addr",
            &format!("127.0.0.1:{http_port}"),
        ],
    )
    .env("SHOPLAKE_API__APP_SECRET", APP_SECRET)
    .env("SHOPLAKE_TEST_FLIGHT_PW", FLIGHT_PW)
    .env_remove("SHOPLAKE_LOG")
    // A file, not a pipe: -vv fills a pipe nobody reads until the end, and blocks.
    .stdout(Stdio::from(log.try_clone().unwrap()))
    .stderr(Stdio::from(log))
    .spawn()
    .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for("the server to listen", 60, async || {
        std::net::TcpStream::connect(addr).is_ok()
    })
    .await;
    let mut wrong = flight_client(addr).await;
    let e = wrong
        .handshake("ana", "not-the-password-1")
        .await
        .unwrap_err();
    outputs.push(e.to_string());
    let mut c = flight_client(addr).await;
    c.handshake("ana", FLIGHT_PW).await.unwrap();
    let n = flight_query(&mut c, "select count(*) from marts.gmv_daily")
        .await
        .unwrap();
    assert!(scalar_i64(&n) > 0);
    let e = flight_query(&mut c, "select * from raw.orders")
        .await
        .unwrap_err();
    outputs.push(e.to_string());
    // `/metrics` counts what the audit log recorded: the query that ran, the one refused.
    let metrics = http_text(&format!("http://127.0.0.1:{http_port}/metrics")).await;
    let count = |status: &str| -> u64 {
        let line = format!("shoplake_serve_queries_total{{status=\"{status}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .unwrap_or_else(|| panic!("no {line} in /metrics:\n{metrics}"))
            .parse()
            .unwrap()
    };
    assert!(count("ok") >= 1 && count("refused") >= 1, "{metrics}");
    assert!(
        metrics.contains("shoplake_serve_query_seconds_count"),
        "{metrics}"
    );
    outputs.push(metrics);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || server.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "serve exits 0 on SIGTERM");
    let served = std::fs::read_to_string(&log_path).unwrap();
    assert!(served.contains("audit"), "{served}");
    outputs.push(served);
    outputs
}

/// The app secret, the Flight password, the token key and every token the store holds.
fn secret_values(dir: &std::path::Path) -> Vec<String> {
    let mut secrets = vec![APP_SECRET.to_string(), FLIGHT_PW.to_string()];
    secrets.push(
        std::fs::read_to_string(dir.join("secrets").join("token.key"))
            .unwrap()
            .trim()
            .to_string(),
    );
    let store = shoplake::api::auth::TokenStore::open(dir.join("secrets").join("tokens")).unwrap();
    for shop in store.shops() {
        let t = store.get(&shop.cipher).unwrap();
        secrets.push(t.access_token.expose().to_string());
        secrets.push(t.refresh_token.expose().to_string());
    }
    assert_eq!(secrets.len(), 3 + 2 * 2);
    secrets
}
