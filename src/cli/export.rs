//! `shoplake export`: a model or a query to CSV, JSON, Parquet or xlsx.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use shoplake::export::{self, Format, Remote, Request, Source};
use shoplake::secret::Secret;

use super::{Cli, app};

/// `shoplake export` options.
#[derive(Args)]
pub struct ExportArgs {
    /// A model or table (`marts.gmv_daily`, or `gmv_daily`: marts, staging, seeds, raw are
    /// searched in that order) or a SELECT.
    pub target: String,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// First shop-local date kept (YYYY-MM-DD, inclusive), on the result's first DATE
    /// column or `--date-column`.
    #[arg(long)]
    pub from: Option<String>,
    /// Last shop-local date kept (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// The column `--from`/`--to` filter (a DATE, or a UTC timestamp).
    #[arg(long)]
    pub date_column: Option<String>,
    /// Only this shop (`shop_id`); repeat for several.
    #[arg(long = "shop")]
    pub shops: Vec<String>,
    /// xlsx: one sheet per shop.
    #[arg(long)]
    pub sheet_per_shop: bool,
    /// The file (written as FILE.partial, renamed when complete); standard output when
    /// omitted (csv, json, ndjson).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Export through a `shoplake serve` (Flight SQL, e.g. http://127.0.0.1:50051) instead
    /// of reading the lake: the server's users, roles, limits and audit apply.
    #[arg(long)]
    pub server: Option<String>,
    /// User on `--server`; the password is read from SHOPLAKE_PASSWORD.
    #[arg(long, requires = "server")]
    pub user: Option<String>,
    /// CA certificate (PEM) of an https:// `--server`.
    #[arg(long, requires = "server")]
    pub ca_cert: Option<PathBuf>,
}

pub async fn run(cli: &Cli, a: &ExportArgs) -> Result<()> {
    let req = Request {
        target: a.target.clone(),
        format: a.format,
        from: a.from.clone(),
        to: a.to.clone(),
        date_column: a.date_column.clone(),
        shops: a.shops.clone(),
        sheet_per_shop: a.sheet_per_shop,
        out: a.out.clone(),
    };
    let mut source = match &a.server {
        Some(url) => {
            let password = std::env::var("SHOPLAKE_PASSWORD").ok().map(Secret::new);
            if a.user.is_some() && password.is_none() {
                anyhow::bail!("--user needs the password in SHOPLAKE_PASSWORD");
            }
            Source::Remote(
                Remote::connect(
                    url,
                    a.ca_cert.as_deref(),
                    a.user.as_deref(),
                    password.as_ref(),
                )
                .await?,
            )
        }
        None => Source::Local(app(cli)?.session().await?),
    };
    let summary = export::export(&mut source, &req)
        .await
        .with_context(|| format!("export {}", a.target))?;
    if let Some(out) = &a.out {
        let sheets = if summary.sheets.is_empty() {
            String::new()
        } else {
            format!(", sheets: {}", summary.sheets.join(", "))
        };
        eprintln!(
            "exported {} rows to {} ({} bytes{sheets})",
            summary.rows,
            out.display(),
            summary.bytes
        );
    }
    tracing::info!(rows = summary.rows, batches = summary.batches, sql = %summary.sql, "export done");
    Ok(())
}
