//! Finance endpoints, derived from the seed's orders so money adds up across categories.
//!
//! - An order settles in its shop's daily statement at the first shop-local midnight after
//!   it completed (delivered + return window); cancelled or never-completed orders do not
//!   settle. Its statement transaction: `revenue_amount` = items after seller discounts
//!   (the order's `sub_total` + `platform_discount`: the platform pays back its own
//!   discounts), `fee_amount` = −7% of revenue (5% commission + 2% payment fee, rounded to
//!   the minor unit), `settlement_amount` = revenue + fee.
//! - About one statement in ten also carries an `ADJUSTMENT` transaction (no order).
//! - `GET /finance/202309/statements`: one per shop and day with settlements, by
//!   `statement_time`; sums of its transactions. `…/statements/{id}/statement_transactions`
//!   lists them (page_token, `sort_field=order_create_time` required).
//! - `GET /finance/202309/payments`: each statement is paid out 6 h after its statement
//!   time (status PAID from then, PROCESSING before); `GET /finance/202309/withdrawals`:
//!   the payout as a `SETTLE` record (`types` required).
//! - `GET /finance/202507/orders/unsettled`: paid, not cancelled orders whose statement
//!   is still ahead at the clock, with the settlement they are expected to bring.
//! - `GET /finance/202504/tax_information`: the shop's tax registration (one object).

use serde::Serialize;

use super::data::{Dataset, NEVER, Order, local_date, local_midnight};
use super::gate::ApiFault;
use super::paging::{fingerprint, page_json, page_size, time_range, token_page};
use super::rng::Rng;
use super::{Ctx, Sandbox};
use shoplake_tiktok::region::Minor;

/// Statement payout delay after the statement time.
pub const PAYOUT_DELAY: i64 = 6 * 3600;

/// When `o` settles (its statement time), if it does.
pub fn settle_time(ds: &Dataset, o: &Order) -> Option<i64> {
    if o.ev.completed == NEVER || o.ev.cancelled != NEVER {
        return None;
    }
    let region = ds.shops[o.shop as usize].region;
    let next_day = local_date(region, o.ev.completed).succ_opt()?;
    Some(local_midnight(region, next_day))
}

/// (revenue, fee) of an order's settlement, in minor units.
pub fn order_settlement(ds: &Dataset, o: &Order) -> (i64, i64) {
    let revenue: i64 = ds
        .items_of(o)
        .iter()
        .map(|i| i.original_price - i.seller_discount)
        .sum();
    let fee = -((revenue * 7 + 50) / 100);
    (revenue, fee)
}

/// The adjustment on a shop's statement at `time`, if any: (amount, reason).
fn adjustment(ds: &Dataset, shop: usize, time: i64) -> Option<(i64, &'static str)> {
    let mut r = Rng::new(
        ds.config.seed ^ 0x4144_4a55_5354,
        (shop as u64) << 40 ^ time as u64,
    );
    if !r.chance(0.1) {
        return None;
    }
    const REASONS: [&str; 3] = [
        "LOGISTICS_REIMBURSEMENT",
        "PLATFORM_COMPENSATION",
        "CHARGE_BACK",
    ];
    let reason = REASONS[r.range(0, 3) as usize];
    let amount = r.range(100, 2_000);
    Some((
        if reason == "CHARGE_BACK" {
            -amount
        } else {
            amount
        },
        reason,
    ))
}

/// Ids: numeric strings, stable per shop and statement day.
fn statement_id(shop: usize, time: i64) -> String {
    format!("7{:02}{}", shop, time.div_euclid(3600))
}

fn payment_id(shop: usize, time: i64) -> String {
    format!("8{:02}{}", shop, time.div_euclid(3600))
}

/// One statement of a shop: its time and its orders (indexes into `Dataset::orders`).
struct Statement<'a> {
    time: i64,
    orders: &'a [(i64, u32)],
}

/// The statements of a shop's settled orders (a view's `settled`, by statement time),
/// oldest first.
fn statements(settled: &[(i64, u32)]) -> Vec<Statement<'_>> {
    settled
        .chunk_by(|a, b| a.0 == b.0)
        .map(|orders| Statement {
            time: orders[0].0,
            orders,
        })
        .collect()
}

#[derive(Serialize)]
struct StatementJson {
    id: String,
    statement_time: i64,
    currency: &'static str,
    revenue_amount: Minor,
    fee_amount: Minor,
    adjustment_amount: Minor,
    settlement_amount: Minor,
    payment_status: &'static str,
    payment_id: String,
}

fn totals(ds: &Dataset, shop: usize, st: &Statement<'_>) -> (i64, i64, i64) {
    let (mut rev, mut fee) = (0, 0);
    for &(_, i) in st.orders {
        let (r, f) = order_settlement(ds, &ds.orders[i as usize]);
        rev += r;
        fee += f;
    }
    let adj = adjustment(ds, shop, st.time).map_or(0, |a| a.0);
    (rev, fee, adj)
}

fn required(ctx: &Ctx, name: &str, allowed: &[&str]) -> Result<(), ApiFault> {
    match ctx.q(name) {
        None | Some("") => Err(ApiFault::param(format_args!("{name} is required"))),
        Some(v) if !allowed.contains(&v) => Err(ApiFault::param(format_args!(
            "{name} {v:?} is not one of {allowed:?}"
        ))),
        Some(_) => Ok(()),
    }
}

fn time_q(ctx: &Ctx, name: &str) -> Result<Option<i64>, ApiFault> {
    ctx.q(name)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ApiFault::param(format_args!("{name} must be unix seconds")))
        })
        .transpose()
}

/// What every finance list call takes: page size, the time filter `<field>_ge/_lt`, the
/// order, and the shop.
struct ListArgs {
    size: usize,
    ge: Option<i64>,
    lt: Option<i64>,
    desc: bool,
    shop: usize,
}

fn list_args(ctx: &Ctx, time_field: &str) -> Result<ListArgs, ApiFault> {
    Ok(ListArgs {
        size: page_size(ctx.q("page_size"), 100)?,
        ge: time_q(ctx, &format!("{time_field}_ge"))?,
        lt: time_q(ctx, &format!("{time_field}_lt"))?,
        desc: ctx.q("sort_order") == Some("DESC"),
        shop: ctx.shop.unwrap_or(0),
    })
}

/// `GET /finance/202309/statements?sort_field=statement_time&statement_time_ge&_lt`.
pub fn get_statements(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    required(ctx, "sort_field", &["statement_time"])?;
    let ListArgs {
        size,
        ge,
        lt,
        desc,
        shop,
    } = list_args(ctx, "statement_time")?;
    let ds: &Dataset = &sb.data;
    let all = statements(&ctx.view.shops[shop].settled);
    let index = by_time(&all);
    let range = time_range(&index, ge, lt);
    let status = ctx.q("payment_status").filter(|s| !s.is_empty());
    let clock = ctx.view.clock;
    let paid = |t: i64| t + PAYOUT_DELAY <= clock;
    let keep = |(t, _): (i64, u32)| {
        status.is_none_or(|s| s == if paid(t) { "PAID" } else { "PROCESSING" })
    };
    let fp = fingerprint(&[
        &shop.to_le_bytes(),
        b"statements",
        ctx.q("statement_time_ge").unwrap_or("").as_bytes(),
        ctx.q("statement_time_lt").unwrap_or("").as_bytes(),
        status.unwrap_or("").as_bytes(),
    ]);
    let (rows, next, total) = token_page(ctx.q("page_token"), fp, range, desc, size, keep)?;
    let region = ds.shops[shop].region;
    let m = |v: i64| Minor {
        minor: v,
        digits: region.minor_digits,
    };
    let out: Vec<StatementJson> = rows
        .iter()
        .map(|&(t, k)| {
            let (rev, fee, adj) = totals(ds, shop, &all[k as usize]);
            StatementJson {
                id: statement_id(shop, t),
                statement_time: t,
                currency: region.currency,
                revenue_amount: m(rev),
                fee_amount: m(fee),
                adjustment_amount: m(adj),
                settlement_amount: m(rev + fee + adj),
                payment_status: if paid(t) { "PAID" } else { "PROCESSING" },
                payment_id: payment_id(shop, t),
            }
        })
        .collect();
    Ok(page_json("statements", next, total, &out))
}

#[derive(Serialize)]
struct TransactionJson {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    order_id: Option<String>,
    order_create_time: Option<i64>,
    adjustment_reason: Option<&'static str>,
    currency: &'static str,
    revenue_amount: Minor,
    fee_amount: Minor,
    adjustment_amount: Minor,
    settlement_amount: Minor,
}

/// `GET /finance/202501/statements/{statement_id}/statement_transactions?sort_field=order_create_time`.
pub fn statement_transactions(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    required(ctx, "sort_field", &["order_create_time"])?;
    let size = page_size(ctx.q("page_size"), 100)?;
    let shop = ctx.shop.unwrap_or(0);
    let ds: &Dataset = &sb.data;
    let id = ctx.params.get("statement_id").map_or("", String::as_str);
    let all = statements(&ctx.view.shops[shop].settled);
    let Some(st) = all.iter().find(|s| statement_id(shop, s.time) == id) else {
        return Err(ApiFault::new(
            axum::http::StatusCode::OK,
            23008001,
            "The statement does not exist.",
        ));
    };
    let region = ds.shops[shop].region;
    let m = |v: i64| Minor {
        minor: v,
        digits: region.minor_digits,
    };
    // Orders by create time, then the adjustment (index u32::MAX) last.
    let mut index: Vec<(i64, u32)> = st
        .orders
        .iter()
        .map(|&(_, i)| (ds.orders[i as usize].ev.create, i))
        .collect();
    index.sort_unstable();
    let adj = adjustment(ds, shop, st.time);
    if adj.is_some() {
        index.push((i64::MAX, u32::MAX));
    }
    let desc = ctx.q("sort_order") == Some("DESC");
    let fp = fingerprint(&[
        &shop.to_le_bytes(),
        b"statement_transactions",
        id.as_bytes(),
    ]);
    let (rows, next, total) = token_page(ctx.q("page_token"), fp, &index, desc, size, |_| true)?;
    let out: Vec<TransactionJson> = rows
        .iter()
        .map(|&(_, i)| match (i, adj) {
            (u32::MAX, Some((amount, reason))) => TransactionJson {
                id: format!("{id}2"),
                kind: "ADJUSTMENT",
                order_id: None,
                order_create_time: None,
                adjustment_reason: Some(reason),
                currency: region.currency,
                revenue_amount: m(0),
                fee_amount: m(0),
                adjustment_amount: m(amount),
                settlement_amount: m(amount),
            },
            _ => {
                let o = &ds.orders[i as usize];
                let (rev, fee) = order_settlement(ds, o);
                TransactionJson {
                    id: format!("{}1", o.id),
                    kind: "ORDER",
                    order_id: Some(o.id.to_string()),
                    order_create_time: Some(o.ev.create),
                    adjustment_reason: None,
                    currency: region.currency,
                    revenue_amount: m(rev),
                    fee_amount: m(fee),
                    adjustment_amount: m(0),
                    settlement_amount: m(rev + fee),
                }
            }
        })
        .collect();
    Ok(page_json("transactions", next, total, &out))
}

#[derive(Serialize)]
struct Amount {
    value: Minor,
    currency: &'static str,
}

#[derive(Serialize)]
struct PaymentJson {
    id: String,
    create_time: i64,
    status: &'static str,
    amount: Amount,
    settlement_amount: Amount,
    reserve_amount: Amount,
    paid_time: Option<i64>,
    bank_account: &'static str,
}

/// The time index of statements (also of their payouts, created at the statement time):
/// (statement time, statement index).
fn by_time(all: &[Statement<'_>]) -> Vec<(i64, u32)> {
    all.iter()
        .enumerate()
        .map(|(k, s)| (s.time, k as u32))
        .collect()
}

/// `GET /finance/202309/payments?sort_field=create_time&create_time_ge&create_time_lt`.
pub fn get_payments(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    required(ctx, "sort_field", &["create_time"])?;
    let ListArgs {
        size,
        ge,
        lt,
        desc,
        shop,
    } = list_args(ctx, "create_time")?;
    let ds: &Dataset = &sb.data;
    let all = statements(&ctx.view.shops[shop].settled);
    let index = by_time(&all);
    let range = time_range(&index, ge, lt);
    let clock = ctx.view.clock;
    let region = ds.shops[shop].region;
    let amount = |v: i64| Amount {
        value: Minor {
            minor: v,
            digits: region.minor_digits,
        },
        currency: region.currency,
    };
    let fp = fingerprint(&[
        &shop.to_le_bytes(),
        b"payments",
        ctx.q("create_time_ge").unwrap_or("").as_bytes(),
        ctx.q("create_time_lt").unwrap_or("").as_bytes(),
    ]);
    let (rows, next, total) = token_page(ctx.q("page_token"), fp, range, desc, size, |_| true)?;
    let out: Vec<PaymentJson> = rows
        .iter()
        .map(|&(t, k)| {
            let (rev, fee, adj) = totals(ds, shop, &all[k as usize]);
            let paid = t + PAYOUT_DELAY <= clock;
            PaymentJson {
                id: payment_id(shop, t),
                create_time: t,
                status: if paid { "PAID" } else { "PROCESSING" },
                amount: amount(rev + fee + adj),
                settlement_amount: amount(rev + fee + adj),
                reserve_amount: amount(0),
                paid_time: paid.then_some(t + PAYOUT_DELAY),
                bank_account: "****6789",
            }
        })
        .collect();
    Ok(page_json("payments", next, total, &out))
}

#[derive(Serialize)]
struct WithdrawalJson {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    status: &'static str,
    amount: Minor,
    currency: &'static str,
    create_time: i64,
}

/// `GET /finance/202309/withdrawals?types=…&create_time_ge&create_time_lt`: each paid
/// statement's payout as a SETTLE record, created when it is paid.
pub fn get_withdrawals(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let types = ctx.q("types").unwrap_or("");
    if types.is_empty() {
        return Err(ApiFault::param("types is required"));
    }
    for t in types.split(',') {
        if !matches!(t, "WITHDRAW" | "SETTLE" | "TRANSFER" | "REVERSE") {
            return Err(ApiFault::param(format_args!(
                "types: {t:?} is not WITHDRAW, SETTLE, TRANSFER or REVERSE"
            )));
        }
    }
    let ListArgs {
        size, ge, lt, shop, ..
    } = list_args(ctx, "create_time")?;
    let ds: &Dataset = &sb.data;
    let all = statements(&ctx.view.shops[shop].settled);
    let clock = ctx.view.clock;
    let settle = types.split(',').any(|t| t == "SETTLE");
    let index: Vec<(i64, u32)> = by_time(&all)
        .into_iter()
        .map(|(t, k)| (t + PAYOUT_DELAY, k))
        .filter(|&(t, _)| settle && t <= clock)
        .collect();
    let range = time_range(&index, ge, lt);
    let region = ds.shops[shop].region;
    let fp = fingerprint(&[
        &shop.to_le_bytes(),
        b"withdrawals",
        types.as_bytes(),
        ctx.q("create_time_ge").unwrap_or("").as_bytes(),
        ctx.q("create_time_lt").unwrap_or("").as_bytes(),
    ]);
    let (rows, next, total) = token_page(ctx.q("page_token"), fp, range, false, size, |_| true)?;
    let out: Vec<WithdrawalJson> = rows
        .iter()
        .map(|&(t, k)| {
            let s = &all[k as usize];
            let (rev, fee, adj) = totals(ds, shop, s);
            WithdrawalJson {
                id: format!("9{:02}{}", shop, s.time.div_euclid(3600)),
                kind: "SETTLE",
                // A guess, harsher than a record fixed at creation: a payout is
                // PROCESSING for its first day, then SUCCESS, so a client must re-read
                // withdrawals after their create time.
                status: if clock < t + 86_400 {
                    "PROCESSING"
                } else {
                    "SUCCESS"
                },
                amount: Minor {
                    minor: rev + fee + adj,
                    digits: region.minor_digits,
                },
                currency: region.currency,
                create_time: t,
            }
        })
        .collect();
    Ok(page_json("withdrawals", next, total, &out))
}

#[derive(Serialize)]
struct UnsettledJson {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    order_id: String,
    order_create_time: i64,
    status: &'static str,
    currency: &'static str,
    estimated_revenue_amount: Minor,
    estimated_fee_amount: Minor,
    estimated_settlement_amount: Minor,
    estimated_settle_time: Option<i64>,
}

/// `GET /finance/202507/orders/unsettled?sort_field=order_create_time[&search_time_ge&_lt]`:
/// orders paid and not cancelled whose statement has not been issued at the clock.
pub fn unsettled(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    required(ctx, "sort_field", &["order_create_time"])?;
    let ListArgs {
        size, ge, lt, shop, ..
    } = list_args(ctx, "search_time")?;
    let ds: &Dataset = &sb.data;
    let clock = ctx.view.clock;
    let range = time_range(&ctx.view.shops[shop].by_create, ge, lt);
    let keep = |(_, i): (i64, u32)| is_unsettled(ds, &ds.orders[i as usize], clock);
    let fp = fingerprint(&[
        &shop.to_le_bytes(),
        b"unsettled",
        ctx.q("search_time_ge").unwrap_or("").as_bytes(),
        ctx.q("search_time_lt").unwrap_or("").as_bytes(),
    ]);
    let (rows, next, total) = token_page(ctx.q("page_token"), fp, range, false, size, keep)?;
    let region = ds.shops[shop].region;
    let m = |v: i64| Minor {
        minor: v,
        digits: region.minor_digits,
    };
    let out: Vec<UnsettledJson> = rows
        .iter()
        .map(|&(_, i)| {
            let o = &ds.orders[i as usize];
            let (rev, fee) = order_settlement(ds, o);
            // Known once the order completed; before that the settlement date is open.
            let eta = settle_time(ds, o).filter(|_| o.ev.completed <= clock);
            UnsettledJson {
                id: format!("{}3", o.id),
                kind: "ORDER",
                order_id: o.id.to_string(),
                order_create_time: o.ev.create,
                status: "UNSETTLED",
                currency: region.currency,
                estimated_revenue_amount: m(rev),
                estimated_fee_amount: m(fee),
                estimated_settlement_amount: m(rev + fee),
                estimated_settle_time: eta,
            }
        })
        .collect();
    Ok(page_json("transactions", next, total, &out))
}

/// Paid and not cancelled as of `clock`, its statement not issued yet.
pub fn is_unsettled(ds: &Dataset, o: &Order, clock: i64) -> bool {
    o.ev.paid <= clock && o.ev.cancelled > clock && settle_time(ds, o).is_none_or(|t| t > clock)
}

/// `GET /finance/202504/tax_information`: one object per shop.
pub fn tax_information(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let s = &sb.data.shops[shop];
    let body = serde_json::json!({
        "tax_information": {
            "shop_id": s.id,
            "tax_region": s.region.code,
            "tax_id": format!("TX{}{}", s.region.code, &s.id[s.id.len().saturating_sub(8)..]),
            "tax_name": s.name,
            "vat_registered": s.region.code != "US",
            "tax_rate": if s.region.code == "US" { "0.0000" } else { "0.1000" },
        }
    });
    Ok(serde_json::to_vec(&body).expect("serializable"))
}

/// What the finance endpoints hold for one shop at the clock (`/__sandbox/truth`).
#[derive(Debug, Serialize)]
pub struct FinanceTruth {
    /// Statements issued.
    pub statements: u64,
    /// Their transactions (settled orders + adjustments).
    pub statement_transactions: u64,
    /// Orders settled.
    pub settled_orders: u64,
    /// Payouts (one per statement, PAID or PROCESSING).
    pub payments: u64,
    /// SETTLE withdrawals (paid payouts).
    pub withdrawals: u64,
    /// Orders paid and not yet settled.
    pub unsettled_transactions: u64,
    /// Σ settlement amount of every statement (decimal string).
    pub settlement_amount: String,
}

/// The finance truth of shop `shop` in `view`.
pub fn truth(ds: &Dataset, view: &super::data::View, shop: usize) -> FinanceTruth {
    let sv = &view.shops[shop];
    let clock = view.clock;
    let all = statements(&sv.settled);
    let mut adjustments = 0;
    let mut paid = 0;
    let mut sum = 0;
    for st in &all {
        let (r, f, a) = totals(ds, shop, st);
        sum += r + f + a;
        adjustments += u64::from(adjustment(ds, shop, st.time).is_some());
        paid += u64::from(st.time + PAYOUT_DELAY <= clock);
    }
    let statements = all.len() as u64;
    FinanceTruth {
        statements,
        statement_transactions: sv.settled.len() as u64 + adjustments,
        settled_orders: sv.settled.len() as u64,
        payments: statements,
        withdrawals: paid,
        unsettled_transactions: sv
            .by_create
            .iter()
            .filter(|&&(_, i)| is_unsettled(ds, &ds.orders[i as usize], clock))
            .count() as u64,
        settlement_amount: shoplake_tiktok::region::format_minor(
            sum,
            ds.shops[shop].region.minor_digits,
        ),
    }
}
