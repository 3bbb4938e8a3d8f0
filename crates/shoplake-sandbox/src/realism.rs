//! Real-world behaviour the sandbox can switch on (all off by default), so tests see the
//! API the way production does over months rather than the way the client expects it.
//!
//! - **Index lag** ([`Realism::index_lag`]): search endpoints (`…/search`) answer from an
//!   index that trails writes. A record changed less than the lag ago is listed as it was
//!   before (or not at all, when it is newer than the lag); detail endpoints read the
//!   primary store and are current. TikTok documents Order Search as a search API and
//!   sellers report updates showing up late in it; the size of the lag is a guess, and
//!   the sandbox applies it to every `…/search` endpoint, which is harsher than the
//!   evidence.
//! - **Omitted list** ([`Realism::omit_list_once`]): the next answer of the listed path
//!   templates comes back `{"code":0,"data":{}}` — success, but without its list field.
//!   Seen in practice from gateways that time out internally; how often is a guess.
//! - **A new market** ([`Realism::unknown_region_shop`]): that shop's region is reported as
//!   `JP`, a market TikTok Shop opened after the client's region table was written.
//! - **SKU churn** ([`Realism::sku_churn`]): every 7th product (index `i % 7 == 3`) with two
//!   or more SKUs, at its change time `T`, loses one SKU (drawn per product) and gains a new
//!   one (new id, its own price and stock). From `T` on its `update_time` is `T` and product
//!   search, product detail, inventory search, global product detail and the truth all
//!   show the new SKU list; orders placed from `T` on that sold the lost SKU sell the new
//!   one. Sellers do edit variants of live listings; how often is a guess.
//! - **Deletes** ([`Realism::deletes`]): every 11th product (index `i % 11 == 5`, unless
//!   `i % 7 == 3`, the churn subset) is deleted at its time `T`: product search still
//!   lists it, with status `DELETED` and `update_time` `T`, and product detail answers it
//!   with status `DELETED`. `DELETED` is in TikTok's product status enum; that search
//!   keeps listing deleted products is a guess. Every 5th discount activity of a shop (its
//!   `k`-th with `k % 5 == 2`) is deleted at its time `T`: from then on activity search
//!   leaves it out and its detail answers the not-found error — a guess, and harsher than
//!   a `DEACTIVATED` status would be: the client must notice the activity by its absence.
//! - **A late field** ([`Realism::late_field`]): from that unix time on (the answer's data
//!   clock at or after it), every order in Order Search and Get Order Detail carries a
//!   top-level field it never carried before, [`LATE_FIELD`] (value:
//!   [`delivery_option_tier`] of the order id). The name is the sandbox's own (not in the
//!   documented order shape): APIs add fields without a version bump, and a client must
//!   keep what it does not know rather than fail or drop it silently.
//! - **Shifting pages** ([`Realism::shifting_pages`]): token pages of search endpoints
//!   are offsets into the list *as it is now* (the documented brands token is base64 of
//!   `offset=0`), `total_count` is counted again on every page, pages hold at most
//!   [`SHIFTING_PAGE_ROWS`] rows whatever `page_size` asks, and every follow-up page moves
//!   the data clock on by the switch's duration: time passes while a client walks, records
//!   change, and a record that leaves the query shifts every later one a place back, so an
//!   offset walk skips one. That real tokens are offsets is documented; that pages come
//!   back short and how fast the data moves during a walk are guesses.
//!
//! Change times `T` (products and activities alike): with `c0` the data's start clock
//! (`DataConfig::clock`), `T = max(create_time, c0 − 7 days) + U[2 days, 20 days]` (drawn
//! per product or activity from the seed), and for products at least an hour after its
//! generated `update_time`, so `update_time` only moves forward. Every change thus falls
//! between `c0 − 5 days` and `c0 + 20 days`: some are already in the data at the start
//! clock, the rest happen when a test advances the clock by up to three weeks.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use super::catalog::TEMPLATES;
use super::data::{Dataset, Sku};
use super::rng::Rng;

/// The switches. `Default` is all off: the sandbox answers as a perfect API would.
#[derive(Debug, Clone, Default)]
pub struct Realism {
    /// Search endpoints lag writes by this much.
    pub index_lag: Option<Duration>,
    /// Path templates (as routed, e.g. `/logistics/202309/warehouses`) whose next
    /// successful answer omits its list field, once each.
    pub omit_list_once: Vec<String>,
    /// Index of a shop whose region `/authorization/202309/shops` reports as `JP`.
    pub unknown_region_shop: Option<usize>,
    /// Some products lose one SKU and gain a new one over time.
    pub sku_churn: bool,
    /// Some products are deleted (listed as `DELETED`) and some discount activities are
    /// deleted (gone from the API) over time.
    pub deletes: bool,
    /// Unix time from which orders carry [`LATE_FIELD`].
    pub late_field: Option<i64>,
    /// Search pages are offsets into the live list, and each follow-up page moves the
    /// data clock on by this much.
    pub shifting_pages: Option<Duration>,
}

/// Most rows a search page holds under [`Realism::shifting_pages`].
pub const SHIFTING_PAGE_ROWS: usize = 10;

thread_local! {
    /// Set while a handler answers under [`Realism::shifting_pages`]: token pages are
    /// offsets into the live list (see `paging::token_page`).
    pub(crate) static OFFSET_PAGES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The top-level order field [`Realism::late_field`] adds.
pub const LATE_FIELD: &str = "delivery_option_tier";

/// The value of [`LATE_FIELD`] for the order with id `order_id` (as the API writes it).
pub fn delivery_option_tier(order_id: &str) -> &'static str {
    const TIERS: [&str; 3] = ["STANDARD", "EXPRESS", "ECONOMY"];
    let h = super::paging::fingerprint(&[order_id.as_bytes()]);
    TIERS[(h % 3) as usize]
}

/// A product's SKU change ([`Realism::sku_churn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkuChurn {
    /// When it happens (unix seconds).
    pub at: i64,
    /// The SKU the product loses (index into [`Dataset::skus`]).
    pub lost: u32,
    /// The SKU it gains (index into [`Dataset::skus`], after the generated ones).
    pub gained: u32,
}

/// What the switched-on catalog changes do to the generated world: empty by default.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    /// Product index → its SKU change ([`Realism::sku_churn`]).
    pub churn: HashMap<u32, SkuChurn>,
    /// Product index → when it is deleted ([`Realism::deletes`]).
    pub deleted: HashMap<u32, i64>,
    /// Whether discount activities get deleted ([`Realism::deletes`]; see
    /// [`activity_deleted_at`]).
    pub activity_deletes: bool,
}

const DAY: i64 = 86_400;

/// `max(create, c0 − 7 days) + U[2 days, 20 days]`, drawn from `r` (see the module doc).
fn change_time(ds: &Dataset, create: i64, r: &mut Rng) -> i64 {
    create.max(ds.config.clock - 7 * DAY) + r.range(2 * DAY, 20 * DAY + 1)
}

/// Whether product `i` churns (before looking at its SKU count).
pub fn churn_candidate(i: u32) -> bool {
    i % 7 == 3
}

/// Whether product `i` is deleted when [`Realism::deletes`] is on.
pub fn delete_candidate(i: u32) -> bool {
    i % 11 == 5 && !churn_candidate(i)
}

/// When the `k`-th discount activity of shop `shop` (created at `create`) is deleted, if
/// [`Realism::deletes`] deletes it.
pub fn activity_deleted_at(ds: &Dataset, shop: usize, k: usize, create: i64) -> Option<i64> {
    if !ds.lifecycle.activity_deletes || k % 5 != 2 {
        return None;
    }
    let mut r = Rng::new(
        ds.config.seed ^ 0x4445_4C41_4354,
        (shop * 1_000_000 + k) as u64,
    );
    Some(change_time(ds, create, &mut r))
}

/// Applies the catalog switches of `realism` to a freshly generated world. With them off
/// it changes nothing.
pub fn apply(ds: &mut Dataset, realism: &Realism) {
    if realism.sku_churn {
        apply_churn(ds);
    }
    if realism.deletes {
        for i in (0..ds.products.len() as u32).filter(|&i| delete_candidate(i)) {
            let p = &ds.products[i as usize];
            let (create, updated) = (p.create_time, p.update_time);
            let mut r = Rng::new(ds.config.seed ^ 0x4445_4C45_5445, u64::from(i));
            let at = change_time(ds, create, &mut r).max(updated + 3600);
            ds.lifecycle.deleted.insert(i, at);
        }
        ds.lifecycle.activity_deletes = true;
    }
}

/// [`Realism::sku_churn`]: picks the lost SKU, appends the gained one, and moves the line
/// items of orders placed from the change on from the lost SKU to the gained one.
fn apply_churn(ds: &mut Dataset) {
    let mut ids: HashSet<String> = ds.skus.iter().map(|s| s.id.clone()).collect();
    for i in (0..ds.products.len() as u32).filter(|&i| churn_candidate(i)) {
        let p = &ds.products[i as usize];
        let range = p.skus.clone();
        if range.len() < 2 {
            continue;
        }
        let region = ds.shops[p.shop].region;
        let mut r = Rng::new(ds.config.seed ^ 0x0043_4855_524E, u64::from(i));
        let at = change_time(ds, p.create_time, &mut r).max(p.update_time + 3600);
        let lost = range.start + r.range(0, range.len() as i64) as u32;
        let old = &ds.skus[lost as usize];
        let used: Vec<&str> = range.clone().map(|k| ds.skus[k as usize].variant).collect();
        let variant = TEMPLATES
            .iter()
            .filter(|t| t.variants.contains(&old.variant))
            .flat_map(|t| t.variants.iter().copied())
            .find(|v| !used.contains(v))
            .unwrap_or(old.variant);
        let step = region.price_step.max(1);
        let mut price = (old.price * r.range(90, 116) / 100 / step).max(1) * step;
        if region.minor_digits == 2 && step == 1 {
            price = (price / 100) * 100 + 99; // charm pricing, as generated prices
        }
        let mut id = String::new();
        while id.is_empty() || ids.contains(&id) {
            id = format!("17293{:014}", r.range(0, 99_999_999_999_999));
        }
        ids.insert(id.clone());
        let sku = Sku {
            id,
            product: i,
            seller_sku: format!(
                "{}-{}-{}-N",
                region.code,
                i,
                variant.to_uppercase().replace(' ', "")
            ),
            variant,
            price,
            list_price: old.list_price.max(price),
            stock: r.range(0, 800),
        };
        let gained = ds.skus.len() as u32;
        ds.skus.push(sku);
        ds.lifecycle.churn.insert(i, SkuChurn { at, lost, gained });
    }
    let churn = &ds.lifecycle.churn;
    for o in &ds.orders {
        for li in &mut ds.items[o.items.start as usize..o.items.end as usize] {
            let p = ds.skus[li.sku as usize].product;
            if let Some(c) = churn
                .get(&p)
                .filter(|c| c.lost == li.sku && o.ev.create >= c.at)
            {
                li.sku = c.gained;
            }
        }
    }
}

/// The region [`Realism::unknown_region_shop`] reports.
pub const NEW_MARKET: &str = "JP";

/// What a running sandbox still has to do of [`Realism`].
#[derive(Debug, Default)]
pub(crate) struct RealismState {
    omit_pending: Mutex<BTreeSet<String>>,
}

impl RealismState {
    pub(crate) fn new(r: &Realism) -> RealismState {
        RealismState {
            omit_pending: Mutex::new(r.omit_list_once.iter().cloned().collect()),
        }
    }

    /// Queues one more list-less answer of `template`.
    pub(crate) fn omit_next(&self, template: &str) {
        self.omit_pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(template.to_string());
    }

    /// Whether this answer of `template` drops its list (at most once per arming).
    pub(crate) fn take_omit(&self, template: &str) -> bool {
        self.omit_pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(template)
    }
}

/// Whether `template` answers from the lagging search index.
pub(crate) fn is_search(template: &str) -> bool {
    template.ends_with("/search")
}

#[cfg(test)]
mod tests {
    use super::super::data::{DataConfig, View};
    use super::super::promotion;
    use super::*;

    const CLOCK: i64 = 1_790_000_000;

    fn world(r: &Realism) -> Dataset {
        let mut ds = Dataset::generate(DataConfig {
            seed: 11,
            shops: 2,
            orders: 3000,
            days: 60,
            clock: CLOCK,
        });
        apply(&mut ds, r);
        ds
    }

    #[test]
    fn off_changes_nothing() {
        let plain = world(&Realism::default());
        assert!(plain.lifecycle.churn.is_empty() && plain.lifecycle.deleted.is_empty());
        assert!(!plain.lifecycle.activity_deletes);
        for (i, p) in plain.products.iter().enumerate() {
            let i = i as u32;
            assert_eq!(plain.product_state(i, CLOCK), (p.status, p.update_time));
            assert_eq!(plain.skus_at(i, CLOCK), p.skus.clone().collect::<Vec<_>>());
        }
        assert!(
            promotion::activities(&plain, 0)
                .iter()
                .all(|a| a.deleted.is_none())
        );
    }

    #[test]
    fn churned_products_swap_a_sku_and_move_update_time() {
        let plain = world(&Realism::default());
        let ds = world(&Realism {
            sku_churn: true,
            ..Realism::default()
        });
        assert!(!ds.lifecycle.churn.is_empty());
        assert_eq!(ds.skus.len(), plain.skus.len() + ds.lifecycle.churn.len());
        for (&i, c) in &ds.lifecycle.churn {
            let p = &ds.products[i as usize];
            assert!(churn_candidate(i) && p.skus.len() >= 2);
            assert!(c.at > p.update_time && c.at >= CLOCK - 5 * DAY && c.at <= CLOCK + 20 * DAY);
            let before = ds.skus_at(i, c.at - 1);
            let after = ds.skus_at(i, c.at);
            assert_eq!(before, p.skus.clone().collect::<Vec<_>>());
            assert_ne!(before, after);
            assert_eq!(before.len(), after.len());
            assert!(before.contains(&c.lost) && !after.contains(&c.lost));
            assert!(after.contains(&c.gained) && !before.contains(&c.gained));
            let new = &ds.skus[c.gained as usize];
            assert_eq!(new.product, i);
            assert_eq!(ds.skus.iter().filter(|s| s.id == new.id).count(), 1);
            assert_eq!(ds.product_state(i, c.at - 1), (p.status, p.update_time));
            assert_eq!(ds.product_state(i, c.at), (p.status, c.at));
            let v = View::build(&ds, c.at);
            assert!(v.shops[p.shop].products_by_update.contains(&(c.at, i)));
        }
        // Orders placed from the change on sell the gained SKU, never the lost one.
        for o in &ds.orders {
            for li in ds.items_of(o) {
                let p = ds.skus[li.sku as usize].product;
                if let Some(c) = ds.lifecycle.churn.get(&p) {
                    assert!(li.sku != c.lost || o.ev.create < c.at);
                }
            }
        }
        assert_eq!(ds.orders.len(), plain.orders.len());
    }

    #[test]
    fn deletes_products_and_activities() {
        let plain = world(&Realism::default());
        let ds = world(&Realism {
            sku_churn: true,
            deletes: true,
            ..Realism::default()
        });
        assert!(!ds.lifecycle.deleted.is_empty());
        for (&i, &t) in &ds.lifecycle.deleted {
            let p = &ds.products[i as usize];
            assert!(delete_candidate(i) && !ds.lifecycle.churn.contains_key(&i));
            assert!(t > p.update_time && t <= CLOCK + 20 * DAY);
            assert_eq!(ds.product_state(i, t - 1), (p.status, p.update_time));
            assert_eq!(ds.product_state(i, t), ("DELETED", t));
        }
        let later = CLOCK + 30 * DAY;
        let mut deleted = 0;
        for shop in 0..ds.shops.len() {
            let acts = promotion::activities(&ds, shop);
            assert_eq!(acts.len(), promotion::activities(&plain, shop).len());
            for (k, a) in acts.iter().enumerate() {
                assert_eq!(a.deleted.is_some(), k % 5 == 2);
                if let Some(t) = a.deleted {
                    assert!(t >= a.create + 2 * DAY && a.visible(t - 1) && !a.visible(t));
                }
            }
            let gone = promotion::deleted_activities(&ds, shop, later).len() as u64;
            deleted += gone;
            assert_eq!(
                promotion::truth(&ds, shop, later)[0].1 + gone,
                promotion::truth(&plain, shop, later)[0].1
            );
        }
        assert!(deleted > 0);
    }

    #[test]
    fn late_field_value_is_stable() {
        let v = delivery_option_tier("576460000000123456");
        assert_eq!(v, delivery_option_tier("576460000000123456"));
        assert!(["STANDARD", "EXPRESS", "ECONOMY"].contains(&v));
        let seen: BTreeSet<&str> = (0..50)
            .map(|k| delivery_option_tier(&format!("5764600000001{k:05}")))
            .collect();
        assert_eq!(seen.len(), 3);
    }
}
