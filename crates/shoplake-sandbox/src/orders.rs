//! Order endpoints: search (page_token, 202309), detail (batch of ids, 202507 and 202309),
//! and the legacy page_number search (`/api/orders/search`, pre-202309 shape).

use serde::{Deserialize, Serialize};

use super::data::{Dataset, Initiator, LineItem, Order, PAYMENT_METHODS, PROVIDERS, status};
use super::gate::ApiFault;
use super::paging::{fingerprint, number_page, page_size, time_range, token_page};
use super::{Ctx, Sandbox};
use shoplake_tiktok::region::Minor;

/// Body filters of `POST /order/202309/orders/search`.
#[derive(Debug, Default, Deserialize)]
struct SearchFilter {
    order_status: Option<String>,
    create_time_ge: Option<i64>,
    create_time_lt: Option<i64>,
    update_time_ge: Option<i64>,
    update_time_lt: Option<i64>,
    buyer_user_id: Option<String>,
    shipping_type: Option<String>,
}

/// Parses a JSON body into `T` (an empty body is `T::default()`).
pub fn parse_body<T: for<'de> Deserialize<'de> + Default>(ctx: &Ctx) -> Result<T, ApiFault> {
    if ctx.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&ctx.body)
        .map_err(|e| ApiFault::param(format_args!("request body: {e}")))
}

/// A filtered, sorted candidate range of one shop's orders.
struct Selection<'a> {
    range: &'a [(i64, u32)],
    descending: bool,
    keep: Box<dyn Fn((i64, u32)) -> bool + 'a>,
}

fn select<'a>(
    sb: &'a Sandbox,
    ctx: &'a Ctx,
    f: &'a SearchFilter,
    by_update: bool,
    descending: bool,
) -> Result<Selection<'a>, ApiFault> {
    if let Some(s) = &f.order_status
        && !status::ALL.contains(&s.as_str())
        && !matches!(s.as_str(), "ON_HOLD" | "PARTIALLY_SHIPPING")
    {
        return Err(ApiFault::param(format_args!(
            "order_status {s:?} is not a valid status"
        )));
    }
    let shop = ctx.shop.unwrap_or(0);
    let sv = &ctx.view.shops[shop];
    let clock = ctx.view.clock;
    let ds: &Dataset = &sb.data;
    let range = if by_update {
        time_range(&sv.by_update, f.update_time_ge, f.update_time_lt)
    } else {
        time_range(&sv.by_create, f.create_time_ge, f.create_time_lt)
    };
    let keep = move |(_, i): (i64, u32)| {
        let o = &ds.orders[i as usize];
        let (st, upd) = o.state_at(clock);
        let c = o.ev.create;
        f.order_status.as_deref().is_none_or(|s| s == st)
            && f.create_time_ge.is_none_or(|g| c >= g)
            && f.create_time_lt.is_none_or(|l| c < l)
            && f.update_time_ge.is_none_or(|g| upd >= g)
            && f.update_time_lt.is_none_or(|l| upd < l)
            && f.buyer_user_id
                .as_deref()
                .is_none_or(|u| u == o.user_id.to_string())
            && f.shipping_type.as_deref().is_none_or(|s| s == "TIKTOK")
    };
    Ok(Selection {
        range,
        descending,
        keep: Box::new(keep),
    })
}

/// `POST /order/202309/orders/search`.
pub fn search(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let size = page_size(ctx.q("page_size"), 100)?;
    let by_update = match ctx.q("sort_field").unwrap_or("create_time") {
        "create_time" => false,
        "update_time" => true,
        other => {
            return Err(ApiFault::param(format_args!(
                "sort_field {other:?} must be create_time or update_time"
            )));
        }
    };
    let descending = match ctx.q("sort_order").unwrap_or("DESC") {
        "DESC" => true,
        "ASC" => false,
        other => {
            return Err(ApiFault::param(format_args!(
                "sort_order {other:?} must be ASC or DESC"
            )));
        }
    };
    let filter: SearchFilter = parse_body(ctx)?;
    let shop_key = ctx.shop.unwrap_or(0).to_le_bytes();
    let fp = fingerprint(&[&shop_key, &ctx.body, &[by_update as u8, descending as u8]]);
    let sel = select(sb, ctx, &filter, by_update, descending)?;
    let (rows, next_page_token, total) = token_page(
        ctx.q("page_token"),
        fp,
        sel.range,
        sel.descending,
        size,
        &sel.keep,
    )?;
    let orders = Rendered {
        ds: &sb.data,
        clock: ctx.view.clock,
        rows: &rows,
        late: late_field_on(sb, ctx.view.clock),
    };
    #[derive(Serialize)]
    struct Out<'a> {
        next_page_token: String,
        total_count: u32,
        orders: Rendered<'a>,
    }
    let mut out = Vec::with_capacity(rows.len() * 3072 + 256);
    serde_json::to_writer(
        &mut out,
        &Out {
            next_page_token,
            total_count: total,
            orders,
        },
    )
    .expect("serializable");
    Ok(out)
}

/// Orders rendered one at a time while serializing: no page-sized vector of structs.
struct Rendered<'a> {
    ds: &'a Dataset,
    clock: i64,
    rows: &'a [(i64, u32)],
    /// Whether orders carry [`super::realism::LATE_FIELD`].
    late: bool,
}

impl Serialize for Rendered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.rows.iter().map(|&(_, i)| {
            let o = &self.ds.orders[i as usize];
            with_late_field(render(self.ds, o, self.clock), o, self.late)
        }))
    }
}

/// `GET /order/202507/orders?ids=a,b,c` (max 50 ids).
pub fn detail(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ids = ctx.ids("ids", 50)?;
    let shop = ctx.shop.unwrap_or(0);
    let clock = ctx.view.clock;
    let late = late_field_on(sb, clock);
    let mut orders = Vec::with_capacity(ids.len());
    for id in ids {
        let o = find_order(&sb.data, shop, clock, id).ok_or_else(|| not_the_sellers(id))?;
        orders.push(with_late_field(
            with_detail(render(&sb.data, o, clock), o),
            o,
            late,
        ));
    }
    #[derive(Serialize)]
    struct Out<'a> {
        orders: Vec<OrderJson<'a>>,
    }
    Ok(serde_json::to_vec(&Out { orders }).expect("serializable"))
}

/// Order `id` of shop `shop`, if it exists by `clock` (ids of other shops do not).
pub(super) fn find_order<'a>(
    ds: &'a Dataset,
    shop: usize,
    clock: i64,
    id: &str,
) -> Option<&'a Order> {
    id.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| ds.order_index.get(&n))
        .map(|&i| &ds.orders[i as usize])
        .filter(|o| o.shop as usize == shop && o.ev.create <= clock)
}

/// The order named by the path parameter `order_id`, or the error the real API gives for
/// an order the seller does not have.
pub(super) fn path_order<'a>(ds: &'a Dataset, ctx: &Ctx) -> Result<&'a Order, ApiFault> {
    let id = ctx.params.get("order_id").map(String::as_str).unwrap_or("");
    find_order(ds, ctx.shop.unwrap_or(0), ctx.view.clock, id).ok_or_else(|| not_the_sellers(id))
}

/// 21008111: the order or package does not belong to this seller.
pub(super) fn not_the_sellers(id: &str) -> ApiFault {
    ApiFault::new(
        axum::http::StatusCode::OK,
        21008111,
        format!("Order or package does not belong to this seller: {id}"),
    )
}

/// Body of the legacy `POST /api/orders/search`: page_number style, `*_from`/`*_to` filters.
#[derive(Debug, Default, Deserialize)]
struct LegacyFilter {
    page_number: Option<u32>,
    page_size: Option<u32>,
    create_time_from: Option<i64>,
    create_time_to: Option<i64>,
    update_time_from: Option<i64>,
    update_time_to: Option<i64>,
    order_status: Option<String>,
}

/// Legacy `POST /api/orders/search`: `page_number` (1-based) + `page_size` in the body;
/// `data.order_list` of `{order_id, order_status, update_time}`, `data.total`, `data.more`.
/// Sorted by create time ascending; `*_to` bounds are inclusive as in the old API.
pub fn legacy_search(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let f: LegacyFilter = parse_body(ctx)?;
    let size = page_size(f.page_size.map(|n| n.to_string()).as_deref(), 100)?;
    let modern = SearchFilter {
        order_status: f.order_status.clone(),
        create_time_ge: f.create_time_from,
        create_time_lt: f.create_time_to.map(|t| t + 1),
        update_time_ge: f.update_time_from,
        update_time_lt: f.update_time_to.map(|t| t + 1),
        ..SearchFilter::default()
    };
    let sel = select(sb, ctx, &modern, false, false)?;
    let matching: Vec<(i64, u32)> = sel
        .range
        .iter()
        .copied()
        .filter(|&t| (sel.keep)(t))
        .collect();
    let page = number_page(matching.len(), f.page_number, size)?;
    let end = page.end;
    #[derive(Serialize)]
    struct Row {
        order_id: String,
        order_status: &'static str,
        update_time: i64,
    }
    #[derive(Serialize)]
    struct Out {
        order_list: Vec<Row>,
        total: usize,
        more: bool,
    }
    let clock = ctx.view.clock;
    let order_list = matching[page]
        .iter()
        .map(|&(_, i)| {
            let o = &sb.data.orders[i as usize];
            let (st, upd) = o.state_at(clock);
            Row {
                order_id: o.id.to_string(),
                order_status: st,
                update_time: upd,
            }
        })
        .collect();
    Ok(serde_json::to_vec(&Out {
        order_list,
        total: matching.len(),
        more: end < matching.len(),
    })
    .expect("serializable"))
}

#[derive(Serialize)]
struct Payment {
    currency: &'static str,
    original_total_product_price: Minor,
    sub_total: Minor,
    seller_discount: Minor,
    platform_discount: Minor,
    original_shipping_fee: Minor,
    shipping_fee: Minor,
    shipping_fee_platform_discount: Minor,
    shipping_fee_seller_discount: Minor,
    tax: Minor,
    product_tax: Minor,
    shipping_fee_tax: Minor,
    total_amount: Minor,
}

#[derive(Serialize)]
struct PackageRef {
    id: Prefixed,
}

/// A number written as a JSON string (`prefix` + zero-padded `n` + `suffix`) without
/// allocating: ids exceed 2^53 and must stay strings.
#[derive(Clone, Copy)]
pub(super) struct Prefixed {
    prefix: &'static str,
    n: u64,
    width: usize,
    suffix: &'static str,
}

impl Prefixed {
    fn id(n: u64) -> Self {
        Prefixed {
            prefix: "",
            n,
            width: 0,
            suffix: "",
        }
    }
}

impl std::fmt::Display for Prefixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{:0w$}{}",
            self.prefix,
            self.n,
            self.suffix,
            w = self.width
        )
    }
}

impl Serialize for Prefixed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Hot path (every id of every page): format by hand instead of through `fmt`.
        let mut buf = [0u8; 64];
        let mut digits = [0u8; 20];
        let (mut n, mut k) = (self.n, 0);
        while n > 0 || k == 0 {
            digits[k] = b'0' + (n % 10) as u8;
            n /= 10;
            k += 1;
        }
        let pad = self.width.saturating_sub(k);
        let total = self.prefix.len() + pad + k + self.suffix.len();
        if total > buf.len() {
            return s.collect_str(self);
        }
        let mut len = self.prefix.len();
        buf[..len].copy_from_slice(self.prefix.as_bytes());
        buf[len..len + pad].fill(b'0');
        len += pad;
        for i in (0..k).rev() {
            buf[len] = digits[i];
            len += 1;
        }
        buf[len..len + self.suffix.len()].copy_from_slice(self.suffix.as_bytes());
        len += self.suffix.len();
        s.serialize_str(std::str::from_utf8(&buf[..len]).unwrap_or_default())
    }
}

#[derive(Serialize)]
struct Address {
    region_code: &'static str,
    postal_code: Prefixed,
    full_address: &'static str,
    phone_number: &'static str,
    name: &'static str,
    address_detail: &'static str,
}

#[derive(Serialize)]
struct LineItemJson<'a> {
    id: Prefixed,
    sku_id: &'a str,
    product_id: &'a str,
    product_name: &'a str,
    sku_name: &'a str,
    seller_sku: &'a str,
    sku_type: &'static str,
    display_status: &'static str,
    currency: &'static str,
    original_price: Minor,
    sale_price: Minor,
    seller_discount: Minor,
    platform_discount: Minor,
    package_id: Option<Prefixed>,
    package_status: Option<&'static str>,
    shipping_provider_id: Option<&'static str>,
    shipping_provider_name: Option<&'static str>,
    tracking_number: Option<Prefixed>,
    rts_time: Option<i64>,
    cancel_user: Option<&'static str>,
    is_gift: bool,
    /// The LIVE session the order came from.
    room_id: Option<&'a str>,
}

/// The order shape of search and detail (a faithful subset of the official sample).
#[derive(Serialize)]
pub struct OrderJson<'a> {
    id: Prefixed,
    status: &'static str,
    user_id: Prefixed,
    create_time: i64,
    update_time: i64,
    paid_time: Option<i64>,
    rts_time: Option<i64>,
    rts_sla_time: i64,
    collection_time: Option<i64>,
    delivery_time: Option<i64>,
    cancel_time: Option<i64>,
    cancel_reason: Option<&'static str>,
    cancellation_initiator: Option<&'static str>,
    buyer_message: &'static str,
    seller_note: &'static str,
    fulfillment_type: &'static str,
    shipping_type: &'static str,
    delivery_type: &'static str,
    warehouse_id: &'a str,
    shipping_provider: Option<&'static str>,
    shipping_provider_id: Option<&'static str>,
    tracking_number: Option<Prefixed>,
    payment_method_name: &'static str,
    is_cod: bool,
    is_sample_order: bool,
    is_on_hold_order: bool,
    is_replacement_order: bool,
    has_updated_recipient_address: bool,
    commerce_platform: &'static str,
    order_type: &'static str,
    buyer_email: Prefixed,
    packages: Vec<PackageRef>,
    payment: Payment,
    recipient_address: Address,
    line_items: Vec<LineItemJson<'a>>,
    // Get Order Detail only.
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_method_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_card_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_auth_code: Option<Prefixed>,
    /// [`super::realism::LATE_FIELD`]: sent only from [`super::realism::Realism::late_field`]
    /// on.
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_option_tier: Option<&'static str>,
}

/// Id of the `k`-th line item of `o` (order search, detail and returns agree on it).
pub(super) fn line_item_id(o: &Order, k: usize) -> Prefixed {
    Prefixed {
        prefix: "5770",
        n: (o.items.start as u64 + k as u64) * 7 + 1,
        width: 15,
        suffix: "",
    }
}

/// Tracking number of `o`'s package (order search and package search agree on it).
pub(super) fn tracking_number(o: &Order) -> Prefixed {
    Prefixed {
        prefix: "TT",
        n: o.id % 1_000_000_000_000,
        width: 12,
        suffix: "",
    }
}

/// Package id of `o` (one package per order).
pub(super) fn package_id(o: &Order) -> Prefixed {
    Prefixed {
        prefix: "1153",
        n: o.id % 1_000_000_000_000_000,
        width: 15,
        suffix: "",
    }
}

/// Renders an order as of `clock`.
pub fn render<'a>(ds: &'a Dataset, o: &Order, clock: i64) -> OrderJson<'a> {
    let shop = &ds.shops[o.shop as usize];
    let (st, upd) = o.state_at(clock);
    let seen = |t: i64| Order::seen(t, clock);
    let ship = Shipment::at(o, clock);
    let cancelled = o.ev.cancelled <= clock;
    let (cancel_reason, initiator) = cancellation(o, cancelled);
    let method = PAYMENT_METHODS[o.payment_method as usize];
    OrderJson {
        id: Prefixed::id(o.id),
        status: st,
        user_id: Prefixed::id(o.user_id),
        create_time: o.ev.create,
        update_time: upd,
        paid_time: seen(o.ev.paid),
        rts_time: seen(o.ev.rts),
        rts_sla_time: o.ev.create + 3 * 86_400,
        collection_time: seen(o.ev.shipped),
        delivery_time: seen(o.ev.delivered),
        cancel_time: if cancelled {
            Some(o.ev.cancelled)
        } else {
            None
        },
        cancel_reason,
        cancellation_initiator: initiator,
        buyer_message: "",
        seller_note: "",
        fulfillment_type: "FULFILLMENT_BY_SELLER",
        shipping_type: "TIKTOK",
        delivery_type: "HOME_DELIVERY",
        warehouse_id: &shop.warehouse_id,
        shipping_provider: ship.packed.then_some(ship.provider_name),
        shipping_provider_id: ship.packed.then_some(ship.provider_id),
        tracking_number: ship.tracking,
        payment_method_name: method,
        is_cod: method == "Cash on delivery",
        is_sample_order: false,
        is_on_hold_order: false,
        is_replacement_order: false,
        has_updated_recipient_address: false,
        commerce_platform: "TIKTOK_SHOP",
        order_type: "NORMAL",
        buyer_email: Prefixed {
            prefix: "v2",
            n: o.user_id % 1_000_000_000,
            width: 9,
            suffix: "@scs2.tiktok.com",
        },
        packages: if ship.packed {
            vec![PackageRef { id: package_id(o) }]
        } else {
            Vec::new()
        },
        payment: payment(ds, o),
        recipient_address: recipient_address(o, shop.region.code),
        line_items: line_items(ds, o, clock, st, &ship, initiator),
        payment_method_code: None,
        payment_card_type: None,
        payment_auth_code: None,
        delivery_option_tier: None,
    }
}

/// An order's package at a clock, as the order and its line items show it.
struct Shipment {
    /// Marked ready to ship: the order has its package.
    packed: bool,
    provider_id: &'static str,
    provider_name: &'static str,
    /// Once shipped.
    tracking: Option<Prefixed>,
    /// `TO_FULFILL`, `IN_TRANSIT` or `DELIVERED` once packed.
    package_status: Option<&'static str>,
}

impl Shipment {
    fn at(o: &Order, clock: i64) -> Shipment {
        let shipped = o.ev.shipped <= clock;
        let packed = o.ev.rts <= clock;
        let (provider_id, provider_name) = PROVIDERS[o.provider as usize];
        let package_status = if o.ev.delivered <= clock {
            Some("DELIVERED")
        } else if shipped {
            Some("IN_TRANSIT")
        } else if packed {
            Some("TO_FULFILL")
        } else {
            None
        };
        Shipment {
            packed,
            provider_id,
            provider_name,
            tracking: shipped.then(|| tracking_number(o)),
            package_status,
        }
    }
}

/// Reason and initiator of `o`'s cancellation when it is `cancelled` by the clock.
fn cancellation(o: &Order, cancelled: bool) -> (Option<&'static str>, Option<&'static str>) {
    match (cancelled, o.initiator) {
        (true, Initiator::Buyer) => (Some("No longer needed"), Some("BUYER")),
        (true, Initiator::Seller) => (Some("Out of stock"), Some("SELLER")),
        (true, Initiator::System) => (Some("Pay time out"), Some("SYSTEM")),
        _ => (None, None),
    }
}

/// `o`'s line items as of `clock`: order status `st`, cancelled by `cancel_user`.
fn line_items<'a>(
    ds: &'a Dataset,
    o: &Order,
    clock: i64,
    st: &'static str,
    ship: &Shipment,
    cancel_user: Option<&'static str>,
) -> Vec<LineItemJson<'a>> {
    let region = ds.shops[o.shop as usize].region;
    let m = |v: i64| Minor {
        minor: v,
        digits: region.minor_digits,
    };
    let room = ds.content.live_of(ds.config.seed, o).map(|s| s.id.as_str());
    ds.items_of(o)
        .iter()
        .enumerate()
        .map(|(k, li)| {
            let sku = &ds.skus[li.sku as usize];
            let p = &ds.products[sku.product as usize];
            LineItemJson {
                id: line_item_id(o, k),
                sku_id: &sku.id,
                product_id: &p.id,
                product_name: &p.title,
                sku_name: sku.variant,
                seller_sku: &sku.seller_sku,
                sku_type: "NORMAL",
                display_status: st,
                currency: region.currency,
                original_price: m(li.original_price),
                sale_price: m(li.sale_price()),
                seller_discount: m(li.seller_discount),
                platform_discount: m(li.platform_discount),
                package_id: ship.packed.then(|| package_id(o)),
                package_status: ship.package_status,
                shipping_provider_id: ship.packed.then_some(ship.provider_id),
                shipping_provider_name: ship.packed.then_some(ship.provider_name),
                tracking_number: ship.tracking,
                rts_time: Order::seen(o.ev.rts, clock),
                cancel_user,
                is_gift: false,
                room_id: room,
            }
        })
        .collect()
}

/// An order's price build-up in its shop's currency: the amounts order search's `payment`
/// and the price detail show.
pub(super) struct OrderAmounts {
    /// The shop's currency.
    pub(super) currency: &'static str,
    /// Its digits after the decimal point.
    digits: u32,
    /// Σ original prices of the line items.
    pub(super) list: i64,
    /// Σ sale prices of the line items (the `sub_total`).
    pub(super) sale: i64,
    /// Σ seller discounts.
    pub(super) seller_discount: i64,
    /// Σ platform discounts.
    pub(super) platform_discount: i64,
    /// Shipping fee after the platform's shipping discount.
    pub(super) shipping: i64,
    /// Product tax.
    pub(super) tax: i64,
}

impl OrderAmounts {
    /// The amounts of `o`.
    pub(super) fn of(ds: &Dataset, o: &Order) -> OrderAmounts {
        let region = ds.shops[o.shop as usize].region;
        let items = ds.items_of(o);
        let sum = |f: fn(&LineItem) -> i64| items.iter().map(f).sum::<i64>();
        OrderAmounts {
            currency: region.currency,
            digits: region.minor_digits,
            list: sum(|l| l.original_price),
            sale: sum(LineItem::sale_price),
            seller_discount: sum(|l| l.seller_discount),
            platform_discount: sum(|l| l.platform_discount),
            shipping: o.original_shipping_fee - o.shipping_fee_platform_discount,
            tax: o.tax,
        }
    }

    /// What the buyer pays: items, shipping and tax.
    pub(super) fn total(&self) -> i64 {
        self.sale + self.shipping + self.tax
    }

    /// `v` minor units of the currency.
    pub(super) fn minor(&self, v: i64) -> Minor {
        Minor {
            minor: v,
            digits: self.digits,
        }
    }
}

/// `o`'s payment amounts in its shop's currency.
fn payment(ds: &Dataset, o: &Order) -> Payment {
    let a = OrderAmounts::of(ds, o);
    let m = |v: i64| a.minor(v);
    Payment {
        currency: a.currency,
        original_total_product_price: m(a.list),
        sub_total: m(a.sale),
        seller_discount: m(a.seller_discount),
        platform_discount: m(a.platform_discount),
        original_shipping_fee: m(o.original_shipping_fee),
        shipping_fee: m(a.shipping),
        shipping_fee_platform_discount: m(o.shipping_fee_platform_discount),
        shipping_fee_seller_discount: m(0),
        tax: m(a.tax),
        product_tax: m(a.tax),
        shipping_fee_tax: m(0),
        total_amount: m(a.total()),
    }
}

/// `o`'s masked recipient address.
fn recipient_address(o: &Order, region_code: &'static str) -> Address {
    Address {
        region_code,
        postal_code: Prefixed {
            prefix: "",
            n: o.user_id % 100_000,
            width: 5,
            suffix: "",
        },
        full_address: "******",
        phone_number: "(+1)******",
        name: "S***",
        address_detail: "******",
    }
}

/// Whether orders answered at `clock` carry [`super::realism::LATE_FIELD`].
fn late_field_on(sb: &Sandbox, clock: i64) -> bool {
    sb.config.realism.late_field.is_some_and(|t| clock >= t)
}

/// `j` with [`super::realism::LATE_FIELD`] when `on`.
fn with_late_field<'a>(mut j: OrderJson<'a>, o: &Order, on: bool) -> OrderJson<'a> {
    if on {
        j.delivery_option_tier = Some(super::realism::delivery_option_tier(&o.id.to_string()));
    }
    j
}

/// The detail-only fields of Get Order Detail.
fn with_detail<'a>(mut j: OrderJson<'a>, o: &Order) -> OrderJson<'a> {
    let method = PAYMENT_METHODS[o.payment_method as usize];
    j.payment_method_code = Some(match method {
        "Cash on delivery" => "COD",
        m if m.contains("card") || m.contains("Card") => "CARD",
        _ => "WALLET",
    });
    j.payment_card_type =
        (j.payment_method_code == Some("CARD")).then_some(if o.user_id.is_multiple_of(3) {
            "MASTERCARD"
        } else {
            "VISA"
        });
    j.payment_auth_code = j.paid_time.map(|_| Prefixed {
        prefix: "AUTH",
        n: o.id % 1_000_000,
        width: 6,
        suffix: "",
    });
    j
}

#[cfg(test)]
mod tests {
    use super::super::data::DataConfig;
    use super::super::realism::{LATE_FIELD, delivery_option_tier};
    use super::*;

    #[test]
    fn late_field_only_when_on() {
        let ds = Dataset::generate(DataConfig {
            seed: 3,
            shops: 1,
            orders: 50,
            days: 10,
            clock: 1_790_000_000,
        });
        let o = &ds.orders[0];
        let clock = ds.config.clock;
        let json = |on: bool| {
            serde_json::to_value(with_late_field(render(&ds, o, clock), o, on)).expect("json")
        };
        assert!(json(false).get(LATE_FIELD).is_none());
        assert_eq!(
            json(true)[LATE_FIELD],
            delivery_option_tier(&o.id.to_string())
        );
    }
}
