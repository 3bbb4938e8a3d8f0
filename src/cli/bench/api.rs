//! `shoplake bench api`: how fast the client walks the sandbox, and what a page costs the
//! sandbox in CPU.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use futures::TryStreamExt;
use serde::Serialize;
use serde_json::json;

use shoplake::api::auth::{ShopInfo, TokenStore, exchange_and_store};
use shoplake::api::paginate::{ParamsIn, pages};
use shoplake::api::{ApiClient, ApiRequest, ClientConfig, PageSpec, PageStyle};
use shoplake_sandbox::{self as sandbox, DEFAULT_AUTH_CODE, EndpointStats, SandboxConfig};

use super::{process_cpu_seconds, profile, spawn_sandbox, write_results};
use crate::cli::sandbox::SizeArgs;

/// Bench parameters.
#[derive(Debug, Clone, Args)]
pub struct ApiBench {
    /// Orders to generate.
    #[arg(long, default_value_t = 100_000)]
    pub orders: usize,
    /// Shops.
    #[arg(long, default_value_t = 3)]
    pub shops: usize,
    /// Concurrent walks per shop.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Page size.
    #[arg(long, default_value_t = 100)]
    pub page_size: u32,
    /// Results file.
    #[arg(long, default_value = "bench/results/api.json")]
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

const SEARCH: &str = "/order/202309/orders/search";
const DETAIL: &str = "/order/202507/orders";

/// Runs the bench against an in-process sandbox with rate limits off.
pub async fn run_api_bench(b: &ApiBench) -> Result<ApiBenchResult> {
    let size = SizeArgs {
        shops: b.shops,
        orders: b.orders,
        days: SandboxConfig::default().data.days,
    };
    let (_, sb) = spawn_sandbox(&size, 0.0).await?;
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

    let t0 = Instant::now();
    let (all, n_pages) = list_orders(&client, &shops, b, start_t, clock).await?;
    let list_seconds = t0.elapsed().as_secs_f64();
    let orders: u64 = all.iter().map(|(_, ids)| ids.len() as u64).sum();

    let t1 = Instant::now();
    let detail_requests = fetch_details(&client, &all, b.concurrency).await?;
    let detail_seconds = t1.elapsed().as_secs_f64();
    let stats = sb.sandbox.stats();
    let search = stats.get(SEARCH).cloned().unwrap_or_default();
    let detail = stats.get(DETAIL).cloned().unwrap_or_default();
    let result = ApiBenchResult {
        orders,
        pages: n_pages,
        list_seconds,
        list_requests_per_second: n_pages as f64 / list_seconds,
        list_orders_per_second: orders as f64 / list_seconds,
        detail_requests,
        detail_requests_per_second: detail_requests as f64 / detail_seconds,
        sandbox_cpu_us_per_search_page: cpu_us_per_request(&search),
        sandbox_cpu_us_per_detail: cpu_us_per_request(&detail),
        bytes_per_search_page: if search.ok == 0 {
            0.0
        } else {
            search.bytes as f64 / search.ok as f64
        },
        process_cpu_seconds: process_cpu_seconds() - cpu0,
    };
    write_results(
        &b.out,
        &json!({
            "bench": "api",
            "profile": profile(),
            "params": {"orders": b.orders, "shops": b.shops, "concurrency": b.concurrency, "page_size": b.page_size},
            "result": &result,
        }),
    )?;
    sb.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(result)
}

/// The sandbox's CPU per request to an endpoint, microseconds.
fn cpu_us_per_request(s: &EndpointStats) -> f64 {
    if s.requests == 0 {
        0.0
    } else {
        s.cpu_ns as f64 / s.requests as f64 / 1000.0
    }
}

/// Listing: each shop's history split into `concurrency` create-time windows, walked at
/// once. Returns each shop's order ids and the pages fetched.
async fn list_orders(
    client: &ApiClient,
    shops: &[ShopInfo],
    b: &ApiBench,
    start_t: i64,
    clock: i64,
) -> Result<(Vec<(String, Vec<String>)>, u64)> {
    let mut tasks = Vec::new();
    let span = (clock + 1 - start_t) / b.concurrency.max(1) as i64;
    for shop in shops {
        for w in 0..b.concurrency.max(1) as i64 {
            let (lo, hi) = (
                start_t + w * span,
                if w + 1 == b.concurrency as i64 {
                    clock + 1
                } else {
                    start_t + (w + 1) * span
                },
            );
            let req =
                ApiRequest::post(SEARCH, &json!({"create_time_ge": lo, "create_time_lt": hi}))
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
            tasks.push(tokio::spawn(walk(
                client.clone(),
                spec,
                shop.cipher.clone(),
            )));
        }
    }
    let mut all = Vec::new();
    let mut n_pages = 0;
    for t in tasks {
        let (cipher, ids, p) = t.await??;
        n_pages += p;
        all.push((cipher, ids));
    }
    Ok((all, n_pages))
}

/// One window's walk: the order ids and the pages fetched.
async fn walk(
    client: ApiClient,
    spec: PageSpec,
    cipher: String,
) -> Result<(String, Vec<String>, u64)> {
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
    Ok((cipher, ids, n_pages))
}

/// Detail: batches of 50 ids (at most 200 per shop), `concurrency` batches in flight per
/// shop. Returns the requests made.
async fn fetch_details(
    client: &ApiClient,
    all: &[(String, Vec<String>)],
    concurrency: usize,
) -> Result<u64> {
    let mut detail_requests = 0u64;
    let mut tasks = Vec::new();
    for (cipher, ids) in all {
        let batches: Vec<String> = ids.chunks(50).take(200).map(|c| c.join(",")).collect();
        detail_requests += batches.len() as u64;
        for part in batches.chunks(batches.len().div_ceil(concurrency.max(1)).max(1)) {
            let client = client.clone();
            let cipher = cipher.clone();
            let part = part.to_vec();
            tasks.push(tokio::spawn(async move {
                for ids in part {
                    let req = ApiRequest::get(DETAIL)
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
    Ok(detail_requests)
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("shoplake-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
