//! Fulfillment (TikTok Shipping) endpoints. `POST /fulfillment/202309/packages/search`:
//! one package per order the seller marked ready to ship, with the same package id,
//! carrier, tracking number and status the order's line items show, by update time.
//! `GET …/packages/{package_id}`: one package with its SKUs, weight and size.
//! `GET …/combinable_packages/search`: packages awaiting collection for the same buyer.
//! Order level (the Fulfillment category): `GET …/orders/{order_id}/tracking` (the
//! carrier's scans) and `GET …/orders/split_attributes` (whether an order can be split).

use serde::{Deserialize, Serialize};

use super::data::{Dataset, Order, PROVIDERS};
use super::gate::ApiFault;
use super::orders::{
    Prefixed, find_order, not_the_sellers, package_id, parse_body, path_order, tracking_number,
};
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

/// The order shipped in package `id` (one package per order), if the package exists in
/// this shop by the clock.
fn package_order<'a>(ds: &'a Dataset, ctx: &Ctx, id: &str) -> Result<&'a Order, ApiFault> {
    // A package id is "1153" + the order id's last 15 digits; every order id shares the
    // digits above them.
    const LOW: u64 = 1_000_000_000_000_000;
    let high = ds.orders.first().map_or(0, |o| o.id - o.id % LOW);
    let low = id.strip_prefix("1153").and_then(|n| n.parse::<u64>().ok());
    low.and_then(|n| {
        find_order(
            ds,
            ctx.shop.unwrap_or(0),
            ctx.view.clock,
            &(high + n).to_string(),
        )
    })
    .filter(|o| o.ev.rts <= ctx.view.clock && package_id(o).to_string() == id)
    .ok_or_else(|| not_the_sellers(id))
}

#[derive(Serialize)]
struct Measure {
    value: String,
    unit: &'static str,
}

#[derive(Serialize)]
struct Dimension {
    length: String,
    width: String,
    height: String,
    unit: &'static str,
}

#[derive(Serialize)]
struct PackageSku<'a> {
    id: &'a str,
    name: &'static str,
    quantity: u32,
}

#[derive(Serialize)]
struct PackageOrder<'a> {
    id: String,
    skus: Vec<PackageSku<'a>>,
}

#[derive(Serialize)]
struct PackageDetail<'a> {
    package_id: Prefixed,
    package_status: &'static str,
    shipping_provider_id: &'static str,
    shipping_provider_name: &'static str,
    tracking_number: Option<Prefixed>,
    shipping_type: &'static str,
    handover_method: &'static str,
    delivery_option_name: &'static str,
    create_time: i64,
    update_time: i64,
    pickup_slot_start_time: Option<i64>,
    weight: Measure,
    dimension: Dimension,
    orders: [PackageOrder<'a>; 1],
}

/// `GET /fulfillment/202309/packages/{package_id}`: the package the search lists, with its
/// SKUs and quantities, weight (0.35 kg a unit + 0.1 kg of box) and box size.
pub fn package_detail(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let id = ctx
        .params
        .get("package_id")
        .map(String::as_str)
        .unwrap_or("");
    let o = package_order(ds, ctx, id)?;
    let clock = ctx.view.clock;
    let p = render(o, clock).expect("package_order checks rts");
    let mut skus: Vec<PackageSku> = Vec::new();
    for li in ds.items_of(o) {
        let sku = &ds.skus[li.sku as usize];
        match skus.iter_mut().find(|s| s.id == sku.id) {
            Some(s) => s.quantity += 1,
            None => skus.push(PackageSku {
                id: &sku.id,
                name: sku.variant,
                quantity: 1,
            }),
        }
    }
    let units = ds.items_of(o).len() as u32;
    let side = |base: u32| format!("{}", base + 5 * units.min(6));
    let detail = PackageDetail {
        package_id: p.id,
        package_status: p.package_status,
        shipping_provider_id: p.shipping_provider_id,
        shipping_provider_name: p.shipping_provider_name,
        tracking_number: p.tracking_number,
        shipping_type: "TIKTOK",
        handover_method: "PICKUP",
        delivery_option_name: "Standard shipping",
        create_time: p.create_time,
        update_time: p.update_time,
        pickup_slot_start_time: Some(o.ev.shipped - 2 * 3600).filter(|t| *t <= clock),
        weight: Measure {
            value: format!("{:.2}", 0.1 + 0.35 * f64::from(units)),
            unit: "KILOGRAM",
        },
        dimension: Dimension {
            length: side(20),
            width: side(15),
            height: side(5),
            unit: "CM",
        },
        orders: [PackageOrder {
            id: o.id.to_string(),
            skus,
        }],
    };
    Ok(serde_json::to_vec(&detail).expect("serializable"))
}

/// Groups of the shop's packages awaiting collection (created, not yet collected) that
/// go to the same buyer: each group could ship as one package. The first package of a
/// group (by creation) names it.
pub(super) fn combinable_groups(
    ds: &Dataset,
    view: &super::data::View,
    shop: usize,
) -> Vec<(String, Vec<u64>)> {
    let clock = view.clock;
    let mut by_buyer: std::collections::BTreeMap<u64, Vec<&Order>> = Default::default();
    for &(_, i) in &view.shops[shop].packages_by_update {
        let o = &ds.orders[i as usize];
        if o.ev.rts <= clock && o.ev.shipped > clock {
            by_buyer.entry(o.user_id).or_default().push(o);
        }
    }
    let mut groups: Vec<(String, Vec<u64>)> = by_buyer
        .into_values()
        .filter(|v| v.len() >= 2)
        .map(|mut v| {
            v.sort_by_key(|o| (o.ev.rts, o.id));
            (
                package_id(v[0]).to_string(),
                v.iter().map(|o| o.id).collect(),
            )
        })
        .collect();
    groups.sort();
    groups
}

/// `GET /fulfillment/202309/combinable_packages/search` (page_size 1–50 required,
/// page_token paged): see [`combinable_groups`].
pub fn combinable_packages(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let size = page_size(ctx.q("page_size"), 50)?;
    let shop = ctx.shop.unwrap_or(0);
    let groups = combinable_groups(&sb.data, &ctx.view, shop);
    let index: Vec<(i64, u32)> = (0..groups.len() as u32).map(|i| (0, i)).collect();
    let shop_key = shop.to_le_bytes();
    let fp = fingerprint(&[&shop_key, b"combinable"]);
    let (rows, next_page_token, total) =
        token_page(ctx.q("page_token"), fp, &index, false, size, |_| true)?;
    #[derive(Serialize)]
    struct Group<'a> {
        id: &'a str,
        order_ids: Vec<String>,
    }
    let list: Vec<Group> = rows
        .iter()
        .map(|&(_, i)| {
            let (id, orders) = &groups[i as usize];
            Group {
                id,
                order_ids: orders.iter().map(u64::to_string).collect(),
            }
        })
        .collect();
    Ok(page_json(
        "combinable_packages",
        next_page_token,
        total,
        &list,
    ))
}

/// The carrier's scan events of `o` up to `clock`: collected, left the sorting centre
/// (a third of the way), out for delivery (5 h before), delivered. None before collection.
pub(super) fn tracking_events(o: &Order, clock: i64) -> Vec<(i64, &'static str)> {
    if o.ev.shipped > clock {
        return Vec::new();
    }
    let (s, d) = (o.ev.shipped, o.ev.delivered);
    let transit = d.saturating_sub(s).min(30 * 86_400);
    [
        (s, "Package picked up by the carrier"),
        (s + transit / 3, "Departed the sorting center"),
        (s + transit - 5 * 3600, "Out for delivery"),
        (d, "Delivered"),
    ]
    .into_iter()
    .filter(|(t, _)| *t <= clock && *t >= s)
    .collect()
}

/// `GET /fulfillment/202309/orders/{order_id}/tracking`: [`tracking_events`], newest
/// first as the real API lists them, times in milliseconds.
pub fn tracking(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let o = path_order(&sb.data, ctx)?;
    #[derive(Serialize)]
    struct Event {
        description: &'static str,
        update_time_millis: i64,
    }
    let mut list: Vec<Event> = tracking_events(o, ctx.view.clock)
        .into_iter()
        .map(|(t, description)| Event {
            description,
            update_time_millis: t * 1000,
        })
        .collect();
    list.reverse();
    #[derive(Serialize)]
    struct Out {
        tracking: Vec<Event>,
    }
    Ok(serde_json::to_vec(&Out { tracking: list }).expect("serializable"))
}

/// `GET /fulfillment/202309/orders/split_attributes?order_ids=…` (at most 50): whether
/// each order can ship in several packages — only a paid order not yet packed with more
/// than one unit can.
pub fn split_attributes(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ids = ctx.ids("order_ids", 50)?;
    let (shop, clock) = (ctx.shop.unwrap_or(0), ctx.view.clock);
    #[derive(Serialize)]
    struct Attr {
        order_id: String,
        can_split: bool,
        reason: Option<&'static str>,
    }
    let mut list = Vec::with_capacity(ids.len());
    for id in ids {
        let o = find_order(&sb.data, shop, clock, id).ok_or_else(|| not_the_sellers(id))?;
        let (status, _) = o.state_at(clock);
        let reason = if status != super::data::status::AWAITING_SHIPMENT {
            Some("ORDER_STATUS_NOT_SUPPORTED")
        } else if o.items.len() < 2 {
            Some("ONLY_ONE_ITEM")
        } else {
            None
        };
        list.push(Attr {
            order_id: o.id.to_string(),
            can_split: reason.is_none(),
            reason,
        });
    }
    #[derive(Serialize)]
    struct Out {
        split_attributes: Vec<Attr>,
    }
    Ok(serde_json::to_vec(&Out {
        split_attributes: list,
    })
    .expect("serializable"))
}
