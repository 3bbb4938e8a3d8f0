//! Deterministic seeded data: shops, catalog, buyers and orders with a full status
//! lifecycle. Generated once at start-up (100K orders take well under a second); every
//! request is served from these arrays and the per-clock [`View`] indexes.
//!
//! Time model: each order has the times of its lifecycle events (paid, ready to ship,
//! shipped, delivered, completed, cancelled), some of them after the data clock. What an API
//! call sees is the order *as of the clock*: the status of the last event not after it and
//! `update_time` = that event's time. Advancing the clock (`POST /__sandbox/clock`) moves
//! orders forward exactly as a live shop would, which is what incremental syncs need.

use std::collections::HashMap;
use std::ops::Range;

use chrono::{Datelike, NaiveDate, TimeZone, Timelike, Weekday};

use super::catalog::{ALIASES, LOOKALIKE_STYLES, TEMPLATES, TITLE_STYLES};
use super::rng::{Rng, cumulative};
use shoplake_tiktok::region::{REGIONS, Region};

/// Sentinel for "this event never happens".
pub const NEVER: i64 = i64::MAX;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DataConfig {
    /// Seed: the same seed always gives the same data.
    pub seed: u64,
    /// Number of shops (regions cycle through [`REGIONS`]).
    pub shops: usize,
    /// Total orders over all shops.
    pub orders: usize,
    /// Days of history before the clock.
    pub days: u32,
    /// Data clock at start-up (unix seconds): the "now" of the simulated shops.
    pub clock: i64,
}

/// A shop the seller authorized.
#[derive(Debug, Clone)]
pub struct Shop {
    /// Shop id (numeric string).
    pub id: String,
    /// `shop_cipher` used on every shop-scoped call.
    pub cipher: String,
    /// Display name.
    pub name: String,
    /// Shop code.
    pub code: String,
    /// Selling region: currency and time zone.
    pub region: &'static Region,
    /// `LOCAL` or `CROSS_BORDER`.
    pub seller_type: &'static str,
    /// Warehouse id stock and orders are attached to.
    pub warehouse_id: String,
}

/// A product listing.
#[derive(Debug, Clone)]
pub struct Product {
    /// Product id.
    pub id: String,
    /// Owning shop index.
    pub shop: usize,
    /// Listing title as the seller wrote it (brand embedded, sometimes messily).
    pub title: String,
    /// The brand the seller set on the listing ("" when none): ground truth for parsing.
    pub brand: &'static str,
    /// Category name.
    pub category: &'static str,
    /// Listing status as generated ([`Dataset::product_state`] gives it at a clock).
    pub status: &'static str,
    /// Created (unix seconds).
    pub create_time: i64,
    /// Last updated (unix seconds), as generated ([`Dataset::product_state`] gives it at a
    /// clock).
    pub update_time: i64,
    /// Its SKUs as generated (indices into [`Dataset::skus`]; [`Dataset::skus_at`] gives
    /// them at a clock).
    pub skus: Range<u32>,
    /// Popularity weight used when generating orders.
    pub weight: f64,
}

/// A SKU (sellable variant) of a product.
#[derive(Debug, Clone)]
pub struct Sku {
    /// SKU id.
    pub id: String,
    /// Product index.
    pub product: u32,
    /// Seller's own SKU code.
    pub seller_sku: String,
    /// Variant value (colour, size …).
    pub variant: &'static str,
    /// Sale price in minor units.
    pub price: i64,
    /// List price in minor units.
    pub list_price: i64,
    /// Units in stock at the shop's warehouse.
    pub stock: i64,
}

/// One unit sold (the API has no quantity: a unit is a line item).
#[derive(Debug, Clone, Copy)]
pub struct LineItem {
    /// SKU index.
    pub sku: u32,
    /// Price before discounts (minor units).
    pub original_price: i64,
    /// Seller-funded discount.
    pub seller_discount: i64,
    /// Platform-funded discount.
    pub platform_discount: i64,
}

impl LineItem {
    /// What the buyer pays for the unit before shipping and tax.
    pub fn sale_price(&self) -> i64 {
        self.original_price - self.seller_discount - self.platform_discount
    }
}

/// Lifecycle events, as unix seconds ([`NEVER`] when it does not happen).
#[derive(Debug, Clone, Copy)]
pub struct Events {
    /// Order placed.
    pub create: i64,
    /// Payment received.
    pub paid: i64,
    /// Seller marked ready to ship (package created, awaiting collection).
    pub rts: i64,
    /// Collected by the carrier (in transit).
    pub shipped: i64,
    /// Delivered to the buyer.
    pub delivered: i64,
    /// Completed (after the return window).
    pub completed: i64,
    /// Cancelled.
    pub cancelled: i64,
}

/// Who cancelled an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// Not cancelled.
    None,
    /// The buyer.
    Buyer,
    /// The seller.
    Seller,
    /// The platform (unpaid timeout).
    System,
}

/// An order with its whole lifecycle.
#[derive(Debug, Clone)]
pub struct Order {
    /// Order id (rendered as a string; ids exceed 2^53).
    pub id: u64,
    /// Shop index.
    pub shop: u16,
    /// Buyer id.
    pub user_id: u64,
    /// Lifecycle.
    pub ev: Events,
    /// Who cancelled, if anyone.
    pub initiator: Initiator,
    /// Line items (indices into [`Dataset::items`]).
    pub items: Range<u32>,
    /// Shipping fee before discounts (minor units).
    pub original_shipping_fee: i64,
    /// Platform-paid shipping discount.
    pub shipping_fee_platform_discount: i64,
    /// Product tax (US sales tax).
    pub tax: i64,
    /// Index into [`PAYMENT_METHODS`].
    pub payment_method: u8,
    /// Index into [`PROVIDERS`].
    pub provider: u8,
}

/// Order statuses as the API spells them.
pub mod status {
    /// Placed, not paid.
    pub const UNPAID: &str = "UNPAID";
    /// Paid, waiting for the seller.
    pub const AWAITING_SHIPMENT: &str = "AWAITING_SHIPMENT";
    /// Packed, waiting for the carrier.
    pub const AWAITING_COLLECTION: &str = "AWAITING_COLLECTION";
    /// With the carrier.
    pub const IN_TRANSIT: &str = "IN_TRANSIT";
    /// Delivered.
    pub const DELIVERED: &str = "DELIVERED";
    /// Return window passed.
    pub const COMPLETED: &str = "COMPLETED";
    /// Cancelled.
    pub const CANCELLED: &str = "CANCELLED";
    /// Every status the sandbox produces.
    pub const ALL: &[&str] = &[
        UNPAID,
        AWAITING_SHIPMENT,
        AWAITING_COLLECTION,
        IN_TRANSIT,
        DELIVERED,
        COMPLETED,
        CANCELLED,
    ];
}

/// Payment method names.
pub const PAYMENT_METHODS: &[&str] = &[
    "Credit Card",
    "PayPal",
    "Apple Pay",
    "Cash on delivery",
    "E-wallet",
];
/// Shipping providers (id, name).
pub const PROVIDERS: &[(&str, &str)] = &[
    ("6617675021119438849", "USPS"),
    ("6617675021119438850", "J&T Express"),
    ("6617675021119438851", "Royal Mail"),
    ("6617675021119438852", "Ninja Van"),
];

impl Order {
    /// Status and update time as of `clock`.
    pub fn state_at(&self, clock: i64) -> (&'static str, i64) {
        let e = &self.ev;
        let steps = [
            (e.cancelled, status::CANCELLED),
            (e.completed, status::COMPLETED),
            (e.delivered, status::DELIVERED),
            (e.shipped, status::IN_TRANSIT),
            (e.rts, status::AWAITING_COLLECTION),
            (e.paid, status::AWAITING_SHIPMENT),
        ];
        for (t, s) in steps {
            if t <= clock {
                return (s, t);
            }
        }
        (status::UNPAID, e.create)
    }

    /// The package's status and update time at `clock`: an order gets one package when
    /// the seller marks it ready to ship; None before that.
    pub fn package_at(&self, clock: i64) -> Option<(&'static str, i64)> {
        let e = &self.ev;
        if e.rts > clock {
            return None;
        }
        // The same statuses order line items show for their package.
        let steps = [
            (e.delivered, "DELIVERED"),
            (e.shipped, "IN_TRANSIT"),
            (e.rts, "TO_FULFILL"),
        ];
        steps
            .into_iter()
            .find(|(t, _)| *t <= clock)
            .map(|(t, s)| (s, t))
    }

    /// A time if it happened by `clock`.
    pub fn seen(t: i64, clock: i64) -> Option<i64> {
        (t <= clock).then_some(t)
    }
}

/// A buyer's return or refund request on a delivered order (about 6 in 100 of them),
/// drawn from its own generator per order, so adding returns left every order as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReturnPlan {
    /// When the buyer asked (after delivery).
    pub request: i64,
    /// `RETURN_AND_REFUND` or `REFUND_ONLY`.
    pub kind: &'static str,
    /// Buyer's reason.
    pub reason: &'static str,
    /// How many of the order's line items are returned (from the first).
    pub items: u32,
}

/// Return reasons buyers pick.
pub const RETURN_REASONS: &[&str] = &[
    "Damaged item",
    "Wrong item sent",
    "Not as described",
    "Changed my mind",
    "Missing parts",
];

impl ReturnPlan {
    /// (time, status) steps; the last one at or before the clock is the current state.
    pub fn steps(&self) -> Vec<(i64, &'static str)> {
        let r = self.request;
        if self.kind == "REFUND_ONLY" {
            vec![
                (r, "RETURN_OR_REFUND_REQUEST_PENDING"),
                (r + 2 * 86_400, "RETURN_OR_REFUND_REQUEST_COMPLETE"),
            ]
        } else {
            vec![
                (r, "RETURN_OR_REFUND_REQUEST_PENDING"),
                (r + 86_400, "AWAITING_BUYER_SHIP"),
                (r + 3 * 86_400, "BUYER_SHIPPED_ITEM"),
                (r + 6 * 86_400, "RETURN_OR_REFUND_REQUEST_COMPLETE"),
            ]
        }
    }

    /// Status and update time at `clock` (None before the request).
    pub fn state_at(&self, clock: i64) -> Option<(&'static str, i64)> {
        self.steps()
            .into_iter()
            .take_while(|(t, _)| *t <= clock)
            .last()
            .map(|(t, s)| (s, t))
    }
}

/// The generated world.
#[derive(Debug)]
pub struct Dataset {
    /// Generation parameters.
    pub config: DataConfig,
    /// Shops.
    pub shops: Vec<Shop>,
    /// All products of all shops.
    pub products: Vec<Product>,
    /// All SKUs.
    pub skus: Vec<Sku>,
    /// All orders, sorted by create time.
    pub orders: Vec<Order>,
    /// All line items.
    pub items: Vec<LineItem>,
    /// Order id → index.
    pub order_index: HashMap<u64, u32>,
    /// Product id → index.
    pub product_index: HashMap<String, u32>,
    /// Shop cipher → index.
    pub cipher_index: HashMap<String, usize>,
    /// Category asset cipher → the first shop of its market (Affiliate Partner calls).
    pub asset_index: HashMap<String, usize>,
    /// LIVE sessions and videos, and which orders they drove.
    pub content: super::content::Content,
    /// Catalog changes switched on by [`super::realism::Realism`] (none by default; see
    /// [`super::realism::apply`]).
    pub lifecycle: super::realism::Lifecycle,
}

const HOUR_WEIGHTS: [f64; 24] = [
    0.30, 0.20, 0.15, 0.10, 0.10, 0.15, 0.30, 0.50, 0.70, 0.80, 0.90, 1.00, 1.10, 1.00, 0.90, 0.90,
    0.95, 1.00, 1.20, 1.50, 1.80, 1.90, 1.50, 0.80,
];

fn weekday_factor(d: Weekday) -> f64 {
    match d {
        Weekday::Mon => 0.90,
        Weekday::Tue => 0.95,
        Weekday::Wed => 1.00,
        Weekday::Thu => 1.00,
        Weekday::Fri => 1.10,
        Weekday::Sat => 1.30,
        Weekday::Sun => 1.25,
    }
}

/// Double-day and Black Friday campaigns lift sales the way they do on TikTok Shop.
fn campaign_factor(d: NaiveDate) -> f64 {
    let (m, day) = (d.month(), d.day());
    if m == day && (9..=12).contains(&m) {
        return 2.5; // 9.9, 10.10, 11.11, 12.12
    }
    if m == 11 && d.weekday() == Weekday::Fri && (23..=29).contains(&day) {
        return 3.0; // Black Friday
    }
    1.0
}

/// Local midnight of `date` in `region`'s zone, as unix seconds.
pub fn local_midnight(region: &Region, date: NaiveDate) -> i64 {
    let naive = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    region
        .tz
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp())
        // A zone that skips midnight (DST at 00:00): take 01:00.
        .unwrap_or_else(|| naive.and_utc().timestamp() + 3600)
}

/// Shop-local date of a unix time.
pub fn local_date(region: &Region, t: i64) -> NaiveDate {
    region
        .tz
        .timestamp_opt(t, 0)
        .single()
        .map(|d| d.date_naive())
        .unwrap_or_default()
}

fn local_hour(region: &Region, t: i64) -> u32 {
    region
        .tz
        .timestamp_opt(t, 0)
        .single()
        .map(|d| d.hour())
        .unwrap_or(0)
}

fn to_local_minor(usd_cents: i64, r: &Region) -> i64 {
    let raw = usd_cents as f64 / 100.0 * r.usd_rate * 10f64.powi(r.minor_digits as i32);
    let step = r.price_step.max(1);
    let mut v = ((raw / step as f64).round() as i64).max(1) * step;
    if r.minor_digits == 2 && step == 1 {
        v = (v / 100) * 100 + 99; // charm pricing: x.99
    }
    v
}

impl Dataset {
    /// Generates the world for `config`. Pure function of the config.
    pub fn generate(config: DataConfig) -> Dataset {
        let seed = config.seed;
        let shops = generate_shops(seed, config.shops.max(1));
        let clock = config.clock;
        let history_start = clock - config.days as i64 * 86_400;
        let (products, skus) = generate_catalog(seed, &shops, history_start, clock);
        let raw = OrderGen::new(&config, &shops, &products, &skus).generate(&config);
        let (orders, items, order_index) = number_orders(seed, raw);
        let product_index = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i as u32))
            .collect();
        let cipher_index = shops
            .iter()
            .enumerate()
            .map(|(i, s)| (s.cipher.clone(), i))
            .collect();
        let asset_index = asset_index(&shops, seed);
        let content = super::content::Content::generate(
            config.seed,
            &shops,
            &products,
            config.clock - (i64::from(config.days) + 1) * 86_400,
            config.clock + 86_400,
        );
        Dataset {
            content,
            lifecycle: super::realism::Lifecycle::default(),
            config,
            shops,
            products,
            skus,
            orders,
            items,
            order_index,
            product_index,
            cipher_index,
            asset_index,
        }
    }

    /// The return request on `o`, if the buyer makes one (delivered, not cancelled orders).
    pub fn return_of(&self, o: &Order) -> Option<ReturnPlan> {
        if o.ev.delivered == NEVER || o.ev.cancelled != NEVER {
            return None;
        }
        let mut r = Rng::new(self.config.seed ^ 0x5245_5455_524E, o.id);
        if !r.chance(0.06) {
            return None;
        }
        let request = o.ev.delivered + r.range(3_600, 6 * 86_400);
        let kind = if r.chance(0.3) {
            "REFUND_ONLY"
        } else {
            "RETURN_AND_REFUND"
        };
        let reason = RETURN_REASONS[r.range(0, RETURN_REASONS.len() as i64) as usize];
        let n = o.items.len() as i64;
        let items = r.range(1, n + 1) as u32;
        Some(ReturnPlan {
            request,
            kind,
            reason,
            items,
        })
    }

    /// Product `i`'s status and `update_time` as of `clock`: as generated, unless a
    /// switched-on change ([`super::realism::Lifecycle`]) happened by then (a SKU change
    /// moves `update_time` to its time; a deletion makes it `DELETED` at its time).
    pub fn product_state(&self, i: u32, clock: i64) -> (&'static str, i64) {
        let p = &self.products[i as usize];
        let mut state = (p.status, p.update_time);
        if let Some(c) = self.lifecycle.churn.get(&i).filter(|c| c.at <= clock) {
            state.1 = c.at;
        }
        if let Some(&t) = self.lifecycle.deleted.get(&i).filter(|t| **t <= clock) {
            state = ("DELETED", t);
        }
        state
    }

    /// Product `i`'s SKUs (indices into [`Dataset::skus`]) as of `clock`: its generated
    /// ones, or after its SKU change those without the lost one plus the gained one.
    pub fn skus_at(&self, i: u32, clock: i64) -> Vec<u32> {
        let mut v: Vec<u32> = self.products[i as usize].skus.clone().collect();
        if let Some(c) = self.lifecycle.churn.get(&i).filter(|c| c.at <= clock) {
            v.retain(|&k| k != c.lost);
            v.push(c.gained);
        }
        v
    }

    /// Line items of an order.
    pub fn items_of(&self, o: &Order) -> &[LineItem] {
        &self.items[o.items.start as usize..o.items.end as usize]
    }

    /// Σ sale price of an order's items (the payment `sub_total`).
    pub fn sub_total(&self, o: &Order) -> i64 {
        self.items_of(o).iter().map(LineItem::sale_price).sum()
    }

    /// Shop-local hour of an order's creation (for seasonality checks).
    pub fn local_hour(&self, o: &Order) -> u32 {
        local_hour(self.shops[o.shop as usize].region, o.ev.create)
    }
}

/// `n_shops` shops (random stream 1): regions cycle through [`REGIONS`], every fourth
/// shop sells cross-border.
fn generate_shops(seed: u64, n_shops: usize) -> Vec<Shop> {
    let mut shops = Vec::with_capacity(n_shops);
    let mut r = Rng::new(seed, 1);
    for i in 0..n_shops {
        let region = &REGIONS[i % REGIONS.len()];
        let id = format!("74940496{:011}", r.range(0, 99_999_999_999));
        let cross = i % 4 == 3;
        let cipher = format!(
            "{}_{}",
            if cross { "GCP" } else { "ROW" },
            base64_id(&mut r, 24)
        );
        shops.push(Shop {
            name: format!("Sandbox Shop {} {}", region.code, i + 1),
            code: format!("{}LC{:06}", region.code, r.range(0, 999_999)),
            seller_type: if cross { "CROSS_BORDER" } else { "LOCAL" },
            warehouse_id: format!("72866590{:011}", r.range(0, 99_999_999_999)),
            id,
            cipher,
            region,
        });
    }
    shops
}

/// What orders are drawn from: the shops, their catalog, and the weight tables for
/// picking a shop, a day, an hour and a product.
struct OrderGen<'a> {
    clock: i64,
    shops: &'a [Shop],
    products: &'a [Product],
    skus: &'a [Sku],
    /// Per shop: its product indices.
    shop_products: Vec<Vec<u32>>,
    /// Per shop: cumulative popularity weights of those products.
    product_cum: Vec<Vec<f64>>,
    /// Cumulative shop weights (shop `i` weighs 1/√(i+1)).
    shop_weights: Vec<f64>,
    /// Cumulative weights of the local hours of the day.
    hour_cum: Vec<f64>,
    /// Per shop: local midnights of the history's days and their cumulative weights.
    day_tables: Vec<(Vec<i64>, Vec<f64>)>,
    /// Per shop: the number of orders it is expected to get.
    shop_orders_est: Vec<f64>,
}

impl<'a> OrderGen<'a> {
    fn new(
        config: &DataConfig,
        shops: &'a [Shop],
        products: &'a [Product],
        skus: &'a [Sku],
    ) -> Self {
        let n_shops = shops.len();
        let clock = config.clock;
        // Per shop: cumulative product weights for picking.
        let mut shop_products: Vec<Vec<u32>> = vec![Vec::new(); n_shops];
        for (i, p) in products.iter().enumerate() {
            shop_products[p.shop].push(i as u32);
        }
        let product_cum: Vec<Vec<f64>> = shop_products
            .iter()
            .map(|ps| cumulative(ps.iter().map(|&p| products[p as usize].weight)))
            .collect();

        // Per shop: local days of history and their weights.
        let shop_weights = cumulative((0..n_shops).map(|i| 1.0 / ((i + 1) as f64).sqrt()));
        let day_tables = shops
            .iter()
            .map(|s| day_table(s.region, clock, config.days))
            .collect();
        let shop_orders_est: Vec<f64> = (0..n_shops)
            .map(|i| {
                let w = 1.0 / ((i + 1) as f64).sqrt();
                config.orders as f64 * w / shop_weights.last().copied().unwrap_or(1.0)
            })
            .collect();
        OrderGen {
            clock,
            shops,
            products,
            skus,
            shop_products,
            product_cum,
            shop_weights,
            hour_cum: cumulative(HOUR_WEIGHTS),
            day_tables,
            shop_orders_est,
        }
    }

    /// `config.orders` orders (random stream 2) with their line items, sorted by create
    /// time; ids and item ranges are assigned by [`number_orders`].
    fn generate(&self, config: &DataConfig) -> Vec<(Order, Vec<LineItem>)> {
        let mut r = Rng::new(config.seed, 2);
        let mut raw: Vec<(Order, Vec<LineItem>)> = Vec::with_capacity(config.orders);
        for _ in 0..config.orders {
            raw.push(self.draw_order(&mut r));
        }
        raw.sort_by_key(|(o, _)| o.ev.create);
        raw
    }

    /// One order: shop, time, line items, amounts, lifecycle, buyer, payment, carrier.
    fn draw_order(&self, r: &mut Rng) -> (Order, Vec<LineItem>) {
        let shop = r.pick_cumulative(&self.shop_weights);
        let s = &self.shops[shop];
        let (starts, day_cum) = &self.day_tables[shop];
        let day = r.pick_cumulative(day_cum);
        let hour = r.pick_cumulative(&self.hour_cum) as i64;
        let create = (starts[day] + hour * 3600 + r.range(0, 3600)).min(self.clock);

        let items = self.draw_items(r, shop);
        let sub_total: i64 = items.iter().map(LineItem::sale_price).sum();
        let original_shipping_fee = to_local_minor(499, s.region);
        let free_ship = sub_total >= to_local_minor(3500, s.region);
        let tax = if s.region.code == "US" {
            sub_total * 825 / 10_000
        } else {
            0
        };

        let (ev, initiator) = draw_lifecycle(r, create);
        let pool = (self.shop_orders_est[shop] / 2.5).max(10.0) as u64;
        let u = r.f64();
        let user_id =
            7_494_000_000_000_000_000 + shop as u64 * 10_000_000 + (pool as f64 * u * u) as u64;
        let order = Order {
            id: 0,
            shop: shop as u16,
            user_id,
            ev,
            initiator,
            items: 0..0,
            original_shipping_fee,
            shipping_fee_platform_discount: if free_ship { original_shipping_fee } else { 0 },
            tax,
            payment_method: r.range(0, PAYMENT_METHODS.len() as i64) as u8,
            provider: r.range(0, PROVIDERS.len() as i64) as u8,
        };
        (order, items)
    }

    /// 1 to 5 units of shop `shop`'s products, sharing the order's discounts; a unit
    /// after the first repeats the previous SKU about a third of the time.
    fn draw_items(&self, r: &mut Rng, shop: usize) -> Vec<LineItem> {
        let n_items = r.pick_cumulative(&[0.45, 0.70, 0.85, 0.95, 1.0]) + 1;
        let discount_pct = if r.chance(0.3) { r.range(5, 21) } else { 0 };
        let platform_pct = if r.chance(0.1) { 5 } else { 0 };
        let mut items = Vec::with_capacity(n_items);
        let mut sku = 0u32;
        for k in 0..n_items {
            if k == 0 || !r.chance(0.35) {
                let p = self.shop_products[shop][r.pick_cumulative(&self.product_cum[shop])];
                let range = self.products[p as usize].skus.clone();
                sku = range.start + r.range(0, (range.end - range.start) as i64) as u32;
            }
            let price = self.skus[sku as usize].price;
            let step = self.shops[shop].region.price_step.max(1);
            let round = |v: i64| (v / step) * step;
            items.push(LineItem {
                sku,
                original_price: price,
                seller_discount: round(price * discount_pct / 100),
                platform_discount: round(price * platform_pct / 100),
            });
        }
        items
    }
}

/// Shop-local midnights of the `days` days before `clock`'s local date and their
/// cumulative weights (weekday, a rising trend, campaign days).
fn day_table(region: &Region, clock: i64, days: u32) -> (Vec<i64>, Vec<f64>) {
    let last = local_date(region, clock);
    let days = days.max(1) as i64;
    let mut starts = Vec::with_capacity(days as usize);
    let mut weights = Vec::with_capacity(days as usize);
    for k in 0..days {
        let date = last - chrono::Duration::days(days - k);
        starts.push(local_midnight(region, date));
        let trend = 0.7 + 0.6 * k as f64 / days as f64;
        weights.push(weekday_factor(date.weekday()) * trend * campaign_factor(date));
    }
    (starts, cumulative(weights))
}

/// An order's lifecycle from `create`: about 4% never paid (system-cancelled), 5%
/// cancelled by the buyer, 1% by the seller, the rest shipped, delivered and completed.
fn draw_lifecycle(r: &mut Rng, create: i64) -> (Events, Initiator) {
    let mut ev = Events {
        create,
        paid: NEVER,
        rts: NEVER,
        shipped: NEVER,
        delivered: NEVER,
        completed: NEVER,
        cancelled: NEVER,
    };
    let mut initiator = Initiator::None;
    let roll = r.f64();
    if roll < 0.04 {
        ev.cancelled = create + 86_400;
        initiator = Initiator::System;
    } else {
        ev.paid = create + r.range(10, 1800);
        if roll < 0.09 {
            ev.cancelled = ev.paid + r.range(1800, 72_000);
            initiator = Initiator::Buyer;
        } else if roll < 0.10 {
            ev.cancelled = ev.paid + r.range(3600, 172_800);
            initiator = Initiator::Seller;
        } else {
            ev.rts = ev.paid + r.range(7200, 144_000);
            ev.shipped = ev.rts + r.range(7200, 86_400);
            ev.delivered = ev.shipped + r.range(86_400, 6 * 86_400);
            ev.completed = ev.delivered + r.range(7 * 86_400, 15 * 86_400);
        }
    }
    (ev, initiator)
}

/// Assigns order ids (random stream 3) in create-time order and lays the line items out
/// in one array: the orders, the items and the id → index map.
fn number_orders(
    seed: u64,
    raw: Vec<(Order, Vec<LineItem>)>,
) -> (Vec<Order>, Vec<LineItem>, HashMap<u64, u32>) {
    let mut r = Rng::new(seed, 3);
    let mut orders = Vec::with_capacity(raw.len());
    let mut items = Vec::with_capacity(raw.len() * 2);
    let mut order_index = HashMap::with_capacity(raw.len());
    for (i, (mut o, its)) in raw.into_iter().enumerate() {
        o.id = 576_460_000_000_000_000 + i as u64 * 1000 + r.range(0, 1000) as u64;
        let start = items.len() as u32;
        items.extend(its);
        o.items = start..items.len() as u32;
        order_index.insert(o.id, i as u32);
        orders.push(o);
    }
    (orders, items, order_index)
}

/// Category asset cipher → the first shop of its market.
fn asset_index(shops: &[Shop], seed: u64) -> HashMap<String, usize> {
    let mut asset_index = HashMap::new();
    for (i, s) in shops.iter().enumerate() {
        asset_index
            .entry(super::seller::asset_cipher(s.region.code, seed))
            .or_insert(i);
    }
    asset_index
}

fn base64_id(r: &mut Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[r.range(0, ALPHABET.len() as i64) as usize] as char)
        .collect()
}

fn generate_catalog(
    seed: u64,
    shops: &[Shop],
    history_start: i64,
    clock: i64,
) -> (Vec<Product>, Vec<Sku>) {
    let mut r = Rng::new(seed, 4);
    let mut products = Vec::new();
    let mut skus = Vec::new();
    for (si, shop) in shops.iter().enumerate() {
        let mut listings: Vec<(
            String,
            &'static str,
            &'static str,
            i64,
            &'static [&'static str],
        )> = Vec::new();
        for t in TEMPLATES {
            for &(model, usd) in t.models {
                let copies = if r.chance(0.3) { 2 } else { 1 };
                for _ in 0..copies {
                    let title = if t.brand.is_empty() {
                        let style =
                            LOOKALIKE_STYLES[r.range(0, LOOKALIKE_STYLES.len() as i64) as usize];
                        style.replace("{m}", model).replace("{v}", t.variants[0])
                    } else {
                        let style = TITLE_STYLES[r.range(0, TITLE_STYLES.len() as i64) as usize];
                        let mut brand = t.brand.to_string();
                        if let Some((_, aliases)) = ALIASES.iter().find(|(b, _)| *b == t.brand)
                            && r.chance(0.35)
                        {
                            brand = aliases[r.range(0, aliases.len() as i64) as usize].to_string();
                        }
                        style
                            .replace("{lb}", &brand.to_lowercase())
                            .replace("{ub}", &brand.to_uppercase())
                            .replace("{b}", &brand)
                            .replace("{m}", model)
                            .replace("{v}", t.variants[0])
                    };
                    // Sellers leave the brand field empty on ~15% of branded listings.
                    let brand = if r.chance(0.15) { "" } else { t.brand };
                    listings.push((title, brand, t.category, usd, t.variants));
                }
            }
        }
        // Shuffle so popularity is not tied to template order.
        for i in (1..listings.len()).rev() {
            let j = r.range(0, i as i64 + 1) as usize;
            listings.swap(i, j);
        }
        for (rank, (title, brand, category, usd, variants)) in listings.into_iter().enumerate() {
            let pidx = products.len() as u32;
            let create_time = history_start - r.range(0, 180 * 86_400);
            let update_time = r.range(create_time, clock);
            let n_skus = (r.range(1, 5) as usize).min(variants.len());
            let start = skus.len() as u32;
            for v in &variants[..n_skus] {
                let premium = 100 + r.range(0, 16);
                let price = to_local_minor(usd * premium / 100, shop.region);
                let list_price =
                    to_local_minor(usd * premium / 100 * r.range(100, 141) / 100, shop.region)
                        .max(price);
                skus.push(Sku {
                    id: format!("17293{:014}", r.range(0, 99_999_999_999_999)),
                    product: pidx,
                    seller_sku: format!(
                        "{}-{}-{}",
                        shop.region.code,
                        pidx,
                        v.to_uppercase().replace(' ', "")
                    ),
                    variant: v,
                    price,
                    list_price,
                    stock: if r.chance(0.08) { 0 } else { r.range(0, 800) },
                });
            }
            let status = if r.chance(0.05) {
                "SELLER_DEACTIVATED"
            } else {
                "ACTIVATE"
            };
            products.push(Product {
                id: format!("17294{:014}", r.range(0, 99_999_999_999_999)),
                shop: si,
                title,
                brand,
                category,
                status,
                create_time,
                update_time,
                skus: start..skus.len() as u32,
                weight: if status == "ACTIVATE" {
                    1.0 / ((rank + 1) as f64).powf(0.8)
                } else {
                    0.0
                },
            });
        }
    }
    (products, skus)
}

/// Per-clock indexes: which orders are visible and in which order, per shop.
#[derive(Debug)]
pub struct View {
    /// The data clock this view was computed at.
    pub clock: i64,
    /// One per shop.
    pub shops: Vec<ShopView>,
}

/// Indexes of one shop at the view's clock.
#[derive(Debug, Default)]
pub struct ShopView {
    /// Visible orders sorted by create time: (create_time, order index).
    pub by_create: Vec<(i64, u32)>,
    /// Visible orders sorted by update time at the clock: (update_time, order index).
    pub by_update: Vec<(i64, u32)>,
    /// Products sorted by update time at the clock: (update_time, product index).
    pub products_by_update: Vec<(i64, u32)>,
    /// Orders with a return requested by the clock, by the return's update time:
    /// (return update_time, order index).
    pub returns_by_update: Vec<(i64, u32)>,
    /// Orders packed by the clock (one package each), by the package's update time:
    /// (package update_time, order index).
    pub packages_by_update: Vec<(i64, u32)>,
    /// Orders settled by the clock, by statement time: (statement_time, order index).
    pub settled: Vec<(i64, u32)>,
}

impl View {
    /// Builds the indexes for `clock`.
    pub fn build(ds: &Dataset, clock: i64) -> View {
        let mut shops: Vec<ShopView> = (0..ds.shops.len()).map(|_| ShopView::default()).collect();
        for (i, o) in ds.orders.iter().enumerate() {
            if o.ev.create > clock {
                break; // orders are sorted by create time
            }
            let sv = &mut shops[o.shop as usize];
            sv.by_create.push((o.ev.create, i as u32));
            sv.by_update.push((o.state_at(clock).1, i as u32));
            if let Some((_, t)) = ds.return_of(o).and_then(|r| r.state_at(clock)) {
                sv.returns_by_update.push((t, i as u32));
            }
            if let Some((_, t)) = o.package_at(clock) {
                sv.packages_by_update.push((t, i as u32));
            }
            if let Some(t) = super::finance::settle_time(ds, o).filter(|t| *t <= clock) {
                sv.settled.push((t, i as u32));
            }
        }
        for sv in &mut shops {
            sv.settled.sort_unstable();
            sv.by_update.sort_unstable();
            sv.returns_by_update.sort_unstable();
            sv.packages_by_update.sort_unstable();
        }
        for (i, p) in ds.products.iter().enumerate() {
            if p.create_time <= clock {
                let updated = ds.product_state(i as u32, clock).1;
                shops[p.shop].products_by_update.push((updated, i as u32));
            }
        }
        for sv in &mut shops {
            sv.products_by_update.sort_unstable();
        }
        View { clock, shops }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64) -> DataConfig {
        DataConfig {
            seed,
            shops: 3,
            orders: 5000,
            days: 60,
            clock: 1_790_000_000,
        }
    }

    #[test]
    fn same_seed_same_data() {
        let a = Dataset::generate(cfg(42));
        let b = Dataset::generate(cfg(42));
        let c = Dataset::generate(cfg(43));
        let key = |d: &Dataset| {
            d.orders
                .iter()
                .map(|o| (o.id, o.ev.create, d.sub_total(o)))
                .collect::<Vec<_>>()
        };
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&c));
        assert_eq!(
            a.products.iter().map(|p| &p.title).collect::<Vec<_>>(),
            b.products.iter().map(|p| &p.title).collect::<Vec<_>>()
        );
    }

    #[test]
    fn realistic_shape() {
        let d = Dataset::generate(cfg(7));
        let clock = d.config.clock;
        assert_eq!(d.orders.len(), 5000);
        // unique ids above 2^53
        assert_eq!(d.order_index.len(), 5000);
        assert!(d.orders.iter().all(|o| o.id > (1u64 << 53)));
        // all created in the window and not after the clock
        assert!(
            d.orders
                .iter()
                .all(|o| o.ev.create <= clock && o.ev.create > clock - 61 * 86_400)
        );
        // status mix at the clock covers every status
        let mut seen = std::collections::HashSet::new();
        for o in &d.orders {
            seen.insert(o.state_at(clock).0);
        }
        for s in status::ALL {
            assert!(seen.contains(s), "missing status {s}");
        }
        // evening peak beats the small hours
        let mut by_hour = [0usize; 24];
        for o in &d.orders {
            by_hour[d.local_hour(o) as usize] += 1;
        }
        assert!(by_hour[20] > 3 * by_hour[3], "{by_hour:?}");
        // 1–5 units per order; different currencies per shop
        assert!(d.orders.iter().all(|o| (1..=5).contains(&o.items.len())));
        assert_ne!(d.shops[0].region.currency, d.shops[1].region.currency);
        // some products are messy or unbranded
        assert!(d.products.iter().any(|p| p.brand.is_empty()));
        assert!(
            d.products
                .iter()
                .any(|p| p.title.starts_with('【') || p.title.starts_with('['))
        );
    }

    #[test]
    fn orders_move_forward_in_time() {
        let d = Dataset::generate(cfg(9));
        let clock = d.config.clock;
        let later = clock + 10 * 86_400;
        let moved = d
            .orders
            .iter()
            .filter(|o| o.state_at(clock) != o.state_at(later))
            .count();
        assert!(moved > 0);
        for o in &d.orders {
            assert!(o.state_at(later).1 >= o.state_at(clock).1);
        }
        let v = View::build(&d, clock);
        assert_eq!(
            v.shops.iter().map(|s| s.by_create.len()).sum::<usize>(),
            5000
        );
        assert!(
            v.shops
                .iter()
                .all(|s| s.by_update.windows(2).all(|w| w[0] <= w[1]))
        );
    }
}
