//! `shoplake bench api`: how fast the client walks the sandbox, and what a page costs the
//! sandbox in CPU. Writes a JSON results file; numbers are for reports, never asserted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures::TryStreamExt;
use serde::Serialize;
use serde_json::json;

use shoplake::api::auth::{TokenStore, exchange_and_store};
use shoplake::api::paginate::{ParamsIn, pages};
use shoplake::api::{ApiClient, ApiRequest, ClientConfig, PageSpec, PageStyle};
use shoplake_sandbox::{self as sandbox, DEFAULT_AUTH_CODE, SandboxConfig};

pub mod build;
pub mod flight;
pub mod jobs;
pub use build::{BuildBench, run_build_bench};
pub use flight::{FlightBench, run_flight_bench};
pub use jobs::{JobsBench, run_jobs_bench};

/// Bench parameters.
#[derive(Debug, Clone)]
pub struct ApiBench {
    /// Orders the in-process sandbox generates.
    pub orders: usize,
    /// Shops.
    pub shops: usize,
    /// Concurrent page walks (windows) per shop.
    pub concurrency: usize,
    /// Page size.
    pub page_size: u32,
    /// Results file.
    pub out: PathBuf,
}

/// What one bench run measured.
#[derive(Debug, Serialize)]
pub struct ApiBenchResult {
    /// Orders listed.
    pub orders: u64,
    /// Search pages fetched.
    pub pages: u64,
    /// Wall seconds of the listing phase.
    pub list_seconds: f64,
    /// Search requests per second.
    pub list_requests_per_second: f64,
    /// Orders per second through search.
    pub list_orders_per_second: f64,
    /// Detail requests (50 ids each).
    pub detail_requests: u64,
    /// Detail requests per second.
    pub detail_requests_per_second: f64,
    /// Sandbox CPU per search page (gate + handler + JSON), microseconds.
    pub sandbox_cpu_us_per_search_page: f64,
    /// Sandbox CPU per detail request, microseconds.
    pub sandbox_cpu_us_per_detail: f64,
    /// Mean response size of a search page, bytes.
    pub bytes_per_search_page: f64,
    /// Whole-process CPU seconds (client + sandbox share the machine).
    pub process_cpu_seconds: f64,
}

fn process_cpu_seconds() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Runs the bench against an in-process sandbox with rate limits off.
pub async fn run_api_bench(b: &ApiBench) -> anyhow::Result<ApiBenchResult> {
    let mut cfg = SandboxConfig::default();
    cfg.data.orders = b.orders;
    cfg.data.shops = b.shops;
    cfg.rps = 0.0;
    let sb = sandbox::spawn(cfg, "127.0.0.1:0".parse()?).await?;
    let dir = tempfile_dir()?;
    let store = Arc::new(TokenStore::open(dir.join("tokens"))?);
    let mut cc = ClientConfig::for_base(
        &sb.base_url(),
        sandbox::DEFAULT_APP_KEY,
        sandbox::DEFAULT_APP_SECRET,
    )?;
    cc.max_rps = 0.0;
    let client = ApiClient::new(cc, Some(store))?;
    let shops = exchange_and_store(&client, DEFAULT_AUTH_CODE).await?;
    let clock = sb.sandbox.view().clock;
    let start_t = clock - sb.sandbox.config.data.days as i64 * 86_400 - 86_400;
    let cpu0 = process_cpu_seconds();

    // Listing: each shop's history split into `concurrency` create-time windows.
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    let span = (clock + 1 - start_t) / b.concurrency.max(1) as i64;
    for shop in &shops {
        for w in 0..b.concurrency.max(1) as i64 {
            let (lo, hi) = (
                start_t + w * span,
                if w + 1 == b.concurrency as i64 {
                    clock + 1
                } else {
                    start_t + (w + 1) * span
                },
            );
            let req = ApiRequest::post(
                "/order/202309/orders/search",
                &json!({"create_time_ge": lo, "create_time_lt": hi}),
            )
            .shop(shop.cipher.clone())
            .query("sort_field", "create_time")
            .query("sort_order", "ASC");
            let spec = PageSpec {
                request: req,
                style: PageStyle::Token,
                page_size: b.page_size,
                params_in: ParamsIn::Query,
                records: "orders".into(),
            };
            let client = client.clone();
            let cipher = shop.cipher.clone();
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                let mut n_pages = 0u64;
                let mut s = std::pin::pin!(pages(client, spec));
                while let Some(p) = s.try_next().await? {
                    n_pages += 1;
                    ids.extend(
                        p.records
                            .iter()
                            .filter_map(|o| o.get("id").and_then(|v| v.as_str()).map(String::from)),
                    );
                }
                anyhow::Ok((cipher, ids, n_pages))
            }));
        }
    }
    let mut all = Vec::new();
    let mut n_pages = 0;
    for t in tasks {
        let (cipher, ids, p) = t.await??;
        n_pages += p;
        all.push((cipher, ids));
    }
    let list_seconds = t0.elapsed().as_secs_f64();
    let orders: u64 = all.iter().map(|(_, ids)| ids.len() as u64).sum();

    // Detail: batches of 50 ids, `concurrency` batches in flight per shop.
    let t1 = Instant::now();
    let mut detail_requests = 0u64;
    let mut tasks = Vec::new();
    for (cipher, ids) in &all {
        let batches: Vec<String> = ids.chunks(50).take(200).map(|c| c.join(",")).collect();
        detail_requests += batches.len() as u64;
        for part in batches.chunks(batches.len().div_ceil(b.concurrency.max(1)).max(1)) {
            let client = client.clone();
            let cipher = cipher.clone();
            let part = part.to_vec();
            tasks.push(tokio::spawn(async move {
                for ids in part {
                    let req = ApiRequest::get("/order/202507/orders")
                        .shop(cipher.clone())
                        .query("ids", ids);
                    client.send(&req).await?;
                }
                anyhow::Ok(())
            }));
        }
    }
    for t in tasks {
        t.await??;
    }
    let detail_seconds = t1.elapsed().as_secs_f64();
    let stats = sb.sandbox.stats();
    let search = stats
        .get("/order/202309/orders/search")
        .cloned()
        .unwrap_or_default();
    let detail = stats
        .get("/order/202507/orders")
        .cloned()
        .unwrap_or_default();
    let per = |ns: u64, n: u64| {
        if n == 0 {
            0.0
        } else {
            ns as f64 / n as f64 / 1000.0
        }
    };
    let result = ApiBenchResult {
        orders,
        pages: n_pages,
        list_seconds,
        list_requests_per_second: n_pages as f64 / list_seconds,
        list_orders_per_second: orders as f64 / list_seconds,
        detail_requests,
        detail_requests_per_second: detail_requests as f64 / detail_seconds,
        sandbox_cpu_us_per_search_page: per(search.cpu_ns, search.requests),
        sandbox_cpu_us_per_detail: per(detail.cpu_ns, detail.requests),
        bytes_per_search_page: if search.ok == 0 {
            0.0
        } else {
            search.bytes as f64 / search.ok as f64
        },
        process_cpu_seconds: process_cpu_seconds() - cpu0,
    };
    if let Some(parent) = b.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let report = json!({
        "bench": "api",
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "params": {"orders": b.orders, "shops": b.shops, "concurrency": b.concurrency, "page_size": b.page_size},
        "result": &result,
    });
    std::fs::write(&b.out, serde_json::to_vec_pretty(&report)?)?;
    sb.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(result)
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("shoplake-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Peak resident set size of this process, in MiB (Linux `VmHWM`; 0 elsewhere).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `shoplake bench e2e`: the demo path (sandbox → backfill → build → test) in a fresh
/// temp data dir, with phase timings, rows/s and peak RSS, written to `out`.
pub async fn run_e2e_bench(
    spec: &crate::cli::demo::DemoSpec,
    out: &std::path::Path,
) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    let (_app, sb, r) =
        crate::cli::demo::run(shoplake::config::Config::default(), dir.path(), spec).await?;
    let total = t.elapsed().as_secs_f64();
    sb.stop().await;
    let result = json!({
        "spec": spec,
        "phases": r,
        "total_seconds": total,
        "rows_per_second_backfill": r.rows as f64 / r.backfill_secs.max(1e-9),
        "orders_per_second_backfill": spec.orders as f64 / r.backfill_secs.max(1e-9),
        "peak_rss_mib": peak_rss_mib(),
        "process_cpu_seconds": process_cpu_seconds(),
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
    });
    if let Some(p) = out.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(out, serde_json::to_vec_pretty(&result)?)?;
    Ok(result)
}
