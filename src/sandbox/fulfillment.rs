//! Fulfillment (TikTok Shipping) endpoints. `POST /fulfillment/202309/packages/search`:
//! one package per order the seller marked ready to ship, with the same package id,
//! carrier, tracking number and status the order's line items show, by update time.

use serde::{Deserialize, Serialize};

use super::data::{Dataset, Order, PROVIDERS};
use super::gate::ApiFault;
use super::orders::{Prefixed, package_id, parse_body, tracking_number};
use super::paging::{fingerprint, page_json, page_size, time_range, token_page};
use super::{Ctx, Sandbox};

/// Body filters of package search.
#[derive(Debug, Default, Deserialize)]
struct PackageFilter {
    update_time_ge: Option<i64>,
    update_time_lt: Option<i64>,
    create_time_ge: Option<i64>,
    create_time_lt: Option<i64>,
    package_status: Option<String>,
}

#[derive(Serialize)]
struct OrderRef {
    id: String,
}

#[derive(Serialize)]
struct PackageJson {
    id: Prefixed,
    order_id: String,
    orders: [OrderRef; 1],
    package_status: &'static str,
    shipping_provider_id: &'static str,
    shipping_provider_name: &'static str,
    tracking_number: Option<Prefixed>,
    create_time: i64,
    update_time: i64,
    collection_time: Option<i64>,
    delivery_time: Option<i64>,
}

fn render(o: &Order, clock: i64) -> Option<PackageJson> {
    let (status, update) = o.package_at(clock)?;
    let (prov_id, prov_name) = PROVIDERS[o.provider as usize];
    let seen = |t: i64| (t <= clock).then_some(t);
    Some(PackageJson {
        id: package_id(o),
        order_id: o.id.to_string(),
        orders: [OrderRef {
            id: o.id.to_string(),
        }],
        package_status: status,
        shipping_provider_id: prov_id,
        shipping_provider_name: prov_name,
        tracking_number: (o.ev.shipped <= clock).then(|| tracking_number(o)),
        create_time: o.ev.rts,
        update_time: update,
        collection_time: seen(o.ev.shipped),
        delivery_time: seen(o.ev.delivered),
    })
}

/// `POST /fulfillment/202309/packages/search` (page_size 1–50 in the query).
pub fn search_packages(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let size = page_size(ctx.q("page_size"), 50)?;
    let f: PackageFilter = parse_body(ctx)?;
    if let Some(s) = &f.package_status
        && !matches!(
            s.as_str(),
            "TO_FULFILL" | "IN_TRANSIT" | "DELIVERED" | "CANCELLED"
        )
    {
        return Err(ApiFault::param(format_args!(
            "package_status {s:?} is not a valid status"
        )));
    }
    let shop = ctx.shop.unwrap_or(0);
    let sv = &ctx.view.shops[shop];
    let clock = ctx.view.clock;
    let ds: &Dataset = &sb.data;
    let idx = &sv.packages_by_update;
    let range = time_range(idx, f.update_time_ge, f.update_time_lt);
    let keep = |(_, i): (i64, u32)| {
        let o = &ds.orders[i as usize];
        let st = o.package_at(clock).map(|s| s.0).unwrap_or_default();
        f.create_time_ge.is_none_or(|g| o.ev.rts >= g)
            && f.create_time_lt.is_none_or(|l| o.ev.rts < l)
            && f.package_status.as_deref().is_none_or(|s| s == st)
    };
    let shop_key = shop.to_le_bytes();
    let fp = fingerprint(&[&shop_key, b"packages", &ctx.body]);
    let (rows, next_page_token, total) =
        token_page(ctx.q("page_token"), fp, range, false, size, keep)?;
    let packages: Vec<_> = rows
        .iter()
        .filter_map(|&(_, i)| render(&ds.orders[i as usize], clock))
        .collect();
    Ok(page_json("packages", next_page_token, total, &packages))
}
