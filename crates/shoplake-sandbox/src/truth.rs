//! `GET /__sandbox/truth[?shop=<cipher>]`: the ground truth tests check the warehouse
//! against, computed from the same data the API serves, as of the current clock.
//!
//! Per shop and shop-local day (by order `create_time` in the shop's time zone):
//! - `orders`: orders created that day; `cancelled_orders`: of those, status CANCELLED now;
//! - `units`: line items (the API has one line item per unit) of all those orders;
//! - `gross_gmv`: Σ `payment.sub_total` (items after discounts, before shipping and tax) of
//!   all orders; `net_gmv`: the same without cancelled orders;
//! - `total_amount`: Σ `payment.total_amount` (what buyers paid) without cancelled orders.
//!
//! Money is a decimal string in the shop's currency, like the API.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::Sandbox;
use super::data::{Dataset, View, local_date, status};
use shoplake_tiktok::region::format_minor;

#[derive(Deserialize)]
pub(super) struct TruthQuery {
    shop: Option<String>,
}

#[derive(Default)]
struct Acc {
    orders: u64,
    cancelled: u64,
    units: u64,
    gross: i64,
    net: i64,
    total: i64,
}

#[derive(Serialize)]
struct Day {
    date: String,
    orders: u64,
    cancelled_orders: u64,
    units: u64,
    gross_gmv: String,
    net_gmv: String,
    total_amount: String,
}

#[derive(Serialize)]
struct ShopTruth {
    shop_id: String,
    shop_cipher: String,
    name: String,
    region: &'static str,
    currency: &'static str,
    time_zone: &'static str,
    orders: u64,
    line_items: u64,
    products: u64,
    skus: u64,
    /// Products `DELETED` by the clock (`Realism::deletes`); omitted when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    deleted_products: Vec<String>,
    /// Products whose SKU change happened by the clock → their SKU ids now
    /// (`Realism::sku_churn`); omitted when none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    churned_products: BTreeMap<String, Vec<String>>,
    /// Discount activities deleted by the clock (`Realism::deletes`): absent from the API
    /// and from every count and mart here; omitted when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    deleted_activities: Vec<String>,
    status_counts: BTreeMap<&'static str, u64>,
    /// Return/refund requests made by the clock, and their line items.
    returns: u64,
    return_line_items: u64,
    /// Packages (orders marked ready to ship by the clock).
    packages: u64,
    /// Analytics: shop-local days before today with orders, and product × day pairs with a
    /// paid order (product performance rows).
    analytics_days: u64,
    product_performance: u64,
    /// Rows every raw table holds for the shop after a backfill of the data's whole
    /// history (`days` before the clock), by table: what tests/all_streams.rs checks.
    tables: BTreeMap<&'static str, u64>,
    /// Rows each snapshot endpoint lists for the shop, by raw table.
    snapshots: BTreeMap<&'static str, u64>,
    /// Statements, payouts and unsettled orders (see [`super::finance`]).
    finance: super::finance::FinanceTruth,
    /// What the marts should show (see [`super::mart_truth`]).
    marts: super::mart_truth::MartTruth,
    days: Vec<Day>,
}

#[derive(Serialize)]
pub(super) struct Truth {
    seed: u64,
    /// Start of the seed's history (clock − days): the per-table counts are what a
    /// backfill from here to the clock lands.
    history_start: i64,
    clock: i64,
    shops: Vec<ShopTruth>,
}

pub(super) async fn truth(
    State(sb): State<Arc<Sandbox>>,
    Query(q): Query<TruthQuery>,
) -> Json<Truth> {
    let view = sb.view();
    let ds = &sb.data;
    let mut shops = Vec::new();
    for (si, shop) in ds.shops.iter().enumerate() {
        if q.shop.as_deref().is_some_and(|c| c != shop.cipher) {
            continue;
        }
        shops.push(shop_truth(ds, &view, si));
    }
    Json(Truth {
        seed: ds.config.seed,
        history_start: history_start(ds),
        clock: view.clock,
        shops,
    })
}

/// The truth for shop `si` as of the view's clock.
fn shop_truth(ds: &Dataset, view: &View, si: usize) -> ShopTruth {
    let shop = &ds.shops[si];
    let r = shop.region;
    let sv = &view.shops[si];
    let orders = tally_orders(ds, view, si);
    // Products are a catalog (`full_history`): a backfill lands every product.
    let catalog = catalog_truth(ds, view.clock, si);
    let analytics = super::analytics::truth(ds, view, si);
    let finance = super::finance::truth(ds, view, si);
    let mut tables: BTreeMap<&'static str, u64> = snapshot_counts(ds, si);
    tables.extend(own_table_counts(ds, view, si, &orders, &catalog, &finance));
    extend_module_tables(&mut tables, ds, view, si, &analytics);
    ShopTruth {
        shop_id: shop.id.clone(),
        shop_cipher: shop.cipher.clone(),
        name: shop.name.clone(),
        region: r.code,
        currency: r.currency,
        time_zone: r.tz.name(),
        orders: sv.by_create.len() as u64,
        line_items: orders.line_items,
        products: catalog.products,
        skus: catalog.skus,
        deleted_products: catalog.deleted,
        churned_products: catalog.churned,
        deleted_activities: super::promotion::deleted_activities(ds, si, view.clock),
        status_counts: orders.status_counts,
        returns: sv.returns_by_update.len() as u64,
        packages: sv.packages_by_update.len() as u64,
        finance,
        marts: super::mart_truth::truth(ds, view, si),
        snapshots: snapshot_counts(ds, si),
        analytics_days: analytics["_days_with_orders"],
        product_performance: analytics["product_performance"],
        tables,
        return_line_items: orders.return_items,
        days: orders
            .days
            .into_iter()
            .map(|(d, a)| Day {
                date: d.to_string(),
                orders: a.orders,
                cancelled_orders: a.cancelled,
                units: a.units,
                gross_gmv: format_minor(a.gross, r.minor_digits),
                net_gmv: format_minor(a.net, r.minor_digits),
                total_amount: format_minor(a.total, r.minor_digits),
            })
            .collect(),
    }
}

/// Shop `si`'s orders (by the view) counted per local day and status, with their line
/// items and those of its return requests.
struct OrderCounts {
    days: BTreeMap<chrono::NaiveDate, Acc>,
    status_counts: BTreeMap<&'static str, u64>,
    line_items: u64,
    /// Line items of the return requests made by the clock.
    return_items: u64,
    /// Status steps of those requests reached by the clock.
    return_records: u64,
}

/// Counts shop `si`'s orders and return requests as of the view's clock.
fn tally_orders(ds: &Dataset, view: &View, si: usize) -> OrderCounts {
    let r = ds.shops[si].region;
    let mut days: BTreeMap<chrono::NaiveDate, Acc> = BTreeMap::new();
    let mut status_counts: BTreeMap<&'static str, u64> =
        status::ALL.iter().map(|s| (*s, 0)).collect();
    let mut line_items = 0;
    for &(create, i) in &view.shops[si].by_create {
        let o = &ds.orders[i as usize];
        let (st, _) = o.state_at(view.clock);
        *status_counts.entry(st).or_default() += 1;
        let a = days.entry(local_date(r, create)).or_default();
        let sub = ds.sub_total(o);
        let units = o.items.len() as u64;
        line_items += units;
        a.orders += 1;
        a.units += units;
        a.gross += sub;
        if st == status::CANCELLED {
            a.cancelled += 1;
        } else {
            a.net += sub;
            a.total += sub + o.original_shipping_fee - o.shipping_fee_platform_discount + o.tax;
        }
    }
    let returns = view.shops[si]
        .returns_by_update
        .iter()
        .filter_map(|&(_, i)| ds.return_of(&ds.orders[i as usize]));
    let (mut return_items, mut return_records) = (0u64, 0u64);
    for r in returns {
        return_items += u64::from(r.items);
        return_records += r.steps().iter().filter(|(t, _)| *t <= view.clock).count() as u64;
    }
    OrderCounts {
        days,
        status_counts,
        line_items,
        return_items,
        return_records,
    }
}

/// Rows of the order, product, return, package, logistics and finance tables.
fn own_table_counts(
    ds: &Dataset,
    view: &View,
    si: usize,
    orders: &OrderCounts,
    catalog: &CatalogTruth,
    finance: &super::finance::FinanceTruth,
) -> [(&'static str, u64); 18] {
    let sv = &view.shops[si];
    [
        ("orders", sv.by_create.len() as u64),
        ("order_line_items", line_items_of(ds, sv)),
        ("order_details", sv.by_create.len() as u64),
        ("products", catalog.products),
        ("product_details", catalog.products),
        ("product_skus", catalog.skus),
        ("cancellations", orders.status_counts[status::CANCELLED]),
        ("returns", sv.returns_by_update.len() as u64),
        ("return_line_items", orders.return_items),
        ("return_records", orders.return_records),
        ("packages", sv.packages_by_update.len() as u64),
        ("delivery_options", 4),
        // Per warehouse: standard (every provider) + express (two).
        (
            "shipping_providers",
            2 * (super::data::PROVIDERS.len() as u64 + 2),
        ),
        ("statements", finance.statements),
        ("statement_transactions", finance.statement_transactions),
        ("payments", finance.payments),
        ("withdrawals", finance.withdrawals),
        ("unsettled_transactions", finance.unsettled_transactions),
    ]
}

/// Adds the rows of the tables the other endpoint modules fill, in this order (a later
/// count of a table replaces an earlier one), then analytics' (its `_` keys are not
/// tables).
fn extend_module_tables(
    tables: &mut BTreeMap<&'static str, u64>,
    ds: &Dataset,
    view: &View,
    si: usize,
    analytics: &BTreeMap<&'static str, u64>,
) {
    tables.extend(order_detail_counts(ds, view, si));
    tables.extend(super::partner::truth(ds, view, si));
    tables.extend(super::listing::truth(ds, view, si));
    tables.extend(super::fbt::truth(ds, view, si));
    tables.extend(super::collab::truth(ds, view, si));
    tables.extend(super::media::truth(ds, view, si));
    tables.extend(super::promotion::truth(ds, si, view.clock));
    tables.extend(super::affiliate::truth(ds, view, si));
    tables.extend(super::service::truth(ds, view, si));
    tables.extend(
        analytics
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| (*k, *v)),
    );
}

/// Shop `si`'s products listed by the clock, as its catalog stands then.
struct CatalogTruth {
    /// Products (deleted ones too: search still lists them, as `DELETED`).
    products: u64,
    /// Their SKUs as of the clock.
    skus: u64,
    /// Ids of those `DELETED` by the clock.
    deleted: Vec<String>,
    /// Id → SKU ids, of those whose SKU change happened by the clock.
    churned: BTreeMap<String, Vec<String>>,
}

fn catalog_truth(ds: &super::data::Dataset, clock: i64, si: usize) -> CatalogTruth {
    let mut c = CatalogTruth {
        products: 0,
        skus: 0,
        deleted: Vec::new(),
        churned: BTreeMap::new(),
    };
    for i in 0..ds.products.len() as u32 {
        let p = &ds.products[i as usize];
        if p.shop != si || p.create_time > clock {
            continue;
        }
        let skus = ds.skus_at(i, clock);
        c.products += 1;
        c.skus += skus.len() as u64;
        if ds.product_state(i, clock).0 == "DELETED" {
            c.deleted.push(p.id.clone());
        }
        if ds.lifecycle.churn.get(&i).is_some_and(|ch| ch.at <= clock) {
            let ids = skus.iter().map(|&k| ds.skus[k as usize].id.clone());
            c.churned.insert(p.id.clone(), ids.collect());
        }
    }
    c
}

/// What the snapshot endpoints list for shop `si`: fixed by the seed's shops.
fn snapshot_counts(ds: &super::data::Dataset, si: usize) -> BTreeMap<&'static str, u64> {
    let shops = ds.shops.len() as u64;
    let mut regions: Vec<&str> = ds.shops.iter().map(|s| s.region.code).collect();
    regions.sort_unstable();
    regions.dedup();
    BTreeMap::from([
        ("warehouses", 2),
        ("authorized_shops", shops),
        ("active_shops", shops),
        ("category_assets", regions.len() as u64),
        (
            "seller_permissions",
            super::seller::PERMISSIONS.len() as u64,
        ),
        ("seller_status", 1),
        ("shop_creators", 2),
        ("shop_webhooks", super::events::WEBHOOK_EVENTS.len() as u64),
        (
            "global_warehouses",
            u64::from(ds.shops[si].seller_type == "CROSS_BORDER"),
        ),
        ("shipping_templates", 2),
        ("tax_information", 1),
        (
            "message_templates",
            super::engagement::TEMPLATES.len() as u64,
        ),
        (
            "engagement_features",
            super::engagement::FEATURES.len() as u64,
        ),
        ("customer_tab_visibility", 1),
    ])
}

/// Rows of the per-order and per-package detail tables (every order and package of the
/// history is a parent once), and the combinable package groups as of the clock.
fn order_detail_counts(
    ds: &super::data::Dataset,
    view: &super::data::View,
    si: usize,
) -> [(&'static str, u64); 9] {
    let sv = &view.shops[si];
    let orders = || sv.by_create.iter().map(|&(_, i)| &ds.orders[i as usize]);
    let packages = || {
        sv.packages_by_update
            .iter()
            .map(|&(_, i)| &ds.orders[i as usize])
    };
    let line_items = line_items_of(ds, sv);
    let returns = sv
        .returns_by_update
        .iter()
        .filter_map(|&(_, i)| ds.return_of(&ds.orders[i as usize]));
    [
        ("order_split_attributes", sv.by_create.len() as u64),
        ("price_details", sv.by_create.len() as u64),
        ("price_detail_line_items", line_items),
        ("aftersale_eligibility", line_items),
        (
            "external_orders",
            orders()
                .filter(|o| super::order_price::shopify_reference(o).is_some())
                .count() as u64,
        ),
        ("package_details", sv.packages_by_update.len() as u64),
        (
            "tracking_events",
            packages()
                .map(|o| super::fulfillment::tracking_events(o, view.clock).len() as u64)
                .sum(),
        ),
        (
            "reject_reasons",
            returns
                .map(|r| super::returns::reject_reasons_for(r.kind).len() as u64)
                .sum(),
        ),
        (
            "combinable_packages",
            super::fulfillment::combinable_groups(ds, view, si).len() as u64,
        ),
    ]
}

fn line_items_of(ds: &super::data::Dataset, sv: &super::data::ShopView) -> u64 {
    sv.by_create
        .iter()
        .map(|&(_, i)| ds.orders[i as usize].items.len() as u64)
        .sum()
}

fn history_start(ds: &super::data::Dataset) -> i64 {
    ds.config.clock - i64::from(ds.config.days) * 86_400
}

#[cfg(test)]
mod tests {
    use super::super::data::{DataConfig, Dataset};
    use super::super::realism::{self, Realism};
    use super::*;

    #[test]
    fn catalog_truth_follows_the_catalog_switches() {
        let config = DataConfig {
            seed: 8,
            shops: 2,
            orders: 500,
            days: 30,
            clock: 1_790_000_000,
        };
        let plain = Dataset::generate(config.clone());
        let mut ds = Dataset::generate(config);
        let on = Realism {
            sku_churn: true,
            deletes: true,
            ..Realism::default()
        };
        realism::apply(&mut ds, &on);
        let later = ds.config.clock + 30 * 86_400;
        let (a, b) = (
            catalog_truth(&plain, later, 0),
            catalog_truth(&ds, later, 0),
        );
        assert!(a.deleted.is_empty() && a.churned.is_empty());
        assert_eq!((a.products, a.skus), (b.products, b.skus));
        let own = |i: u32| ds.products[i as usize].shop == 0;
        let deleted = ds.lifecycle.deleted.keys().filter(|&&i| own(i)).count();
        let churned = ds.lifecycle.churn.keys().filter(|&&i| own(i)).count();
        assert_eq!((b.deleted.len(), b.churned.len()), (deleted, churned));
        assert!(deleted > 0 && churned > 0);
    }
}
