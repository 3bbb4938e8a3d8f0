//! Return & Refund endpoints. `POST /return_refund/202309/cancellations/search`: one
//! cancellation per cancelled order of the seed (same order ids, reasons and initiators
//! as order search shows), filtered by update/create time and status, page_token paged.
//! `POST /return_refund/202309/returns/search`: the buyers' return and refund requests
//! on delivered orders (see [`super::data::ReturnPlan`]), with their line items and
//! refund amounts, by update time. `GET …/returns/{return_id}/records`: each return's
//! status history. `GET …/orders/{order_id}/aftersale_eligibility`: what the buyer may
//! still ask per line item. `GET …/reject_reasons`: the reasons a request may be rejected
//! with.

use serde::{Deserialize, Serialize};

use super::data::{Dataset, Initiator, Order};
use super::gate::ApiFault;
use super::orders::{Prefixed, line_item_id, parse_body};
use super::paging::{fingerprint, page_json, page_size, time_range, token_page};
use super::{Ctx, Sandbox};
use shoplake_tiktok::region::Minor;

/// Body filters of cancellation search.
#[derive(Debug, Default, Deserialize)]
struct CancelFilter {
    update_time_ge: Option<i64>,
    update_time_lt: Option<i64>,
    create_time_ge: Option<i64>,
    create_time_lt: Option<i64>,
    cancel_status: Option<Vec<String>>,
    order_ids: Option<Vec<String>>,
}

/// The one status a completed cancellation has in the sandbox.
const COMPLETE: &str = "CANCELLATION_REQUEST_COMPLETE";

#[derive(Serialize)]
struct RefundJson {
    currency: &'static str,
    refund_total: Minor,
    refund_subtotal: Minor,
    shipping_fee: Minor,
    tax: Minor,
}

#[derive(Serialize)]
struct CancellationJson<'a> {
    cancel_id: String,
    order_id: String,
    cancel_type: &'static str,
    cancel_status: &'static str,
    role: &'static str,
    cancel_reason_text: &'static str,
    create_time: i64,
    update_time: i64,
    refund_amount: RefundJson,
    shop_id: &'a str,
}

/// The cancellation of `o` (which must be cancelled): id, reason and initiator match
/// what order search shows; paid orders are refunded in full, unpaid ones refund 0.
fn render<'a>(ds: &'a Dataset, o: &Order) -> CancellationJson<'a> {
    let shop = &ds.shops[o.shop as usize];
    let digits = shop.region.minor_digits;
    let m = |v: i64| Minor { minor: v, digits };
    let paid = o.ev.paid <= o.ev.cancelled;
    let sub = if paid { ds.sub_total(o) } else { 0 };
    let ship = if paid {
        o.original_shipping_fee - o.shipping_fee_platform_discount
    } else {
        0
    };
    let tax = if paid { o.tax } else { 0 };
    let (role, reason) = match o.initiator {
        Initiator::Buyer => ("BUYER", "No longer needed"),
        Initiator::Seller => ("SELLER", "Out of stock"),
        Initiator::System | Initiator::None => ("SYSTEM", "Pay time out"),
    };
    CancellationJson {
        // The order id with a suffix digit: unique, numeric, stable.
        cancel_id: format!("{}7", o.id),
        order_id: o.id.to_string(),
        cancel_type: "CANCEL",
        cancel_status: COMPLETE,
        role,
        cancel_reason_text: reason,
        create_time: o.ev.cancelled,
        update_time: o.ev.cancelled,
        refund_amount: RefundJson {
            currency: shop.region.currency,
            refund_total: m(sub + ship + tax),
            refund_subtotal: m(sub),
            shipping_fee: m(ship),
            tax: m(tax),
        },
        shop_id: &shop.id,
    }
}

/// `POST /return_refund/202309/cancellations/search` (page_size 1–50 in the query).
pub fn search_cancellations(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let size = page_size(ctx.q("page_size"), 50)?;
    let f: CancelFilter = parse_body(ctx)?;
    if let Some(bad) = f.cancel_status.iter().flatten().find(|s| {
        !matches!(
            s.as_str(),
            COMPLETE
                | "CANCELLATION_REQUEST_PENDING"
                | "CANCELLATION_REQUEST_SUCCESS"
                | "CANCELLATION_REQUEST_CANCEL"
        )
    }) {
        return Err(ApiFault::param(format_args!(
            "cancel_status {bad:?} is not a valid status"
        )));
    }
    let shop = ctx.shop.unwrap_or(0);
    let sv = &ctx.view.shops[shop];
    let clock = ctx.view.clock;
    let ds: &Dataset = &sb.data;
    // A cancelled order's update time is its cancel time: the update index is the
    // cancellation index too.
    let idx = &sv.by_update;
    let range = time_range(idx, f.update_time_ge, f.update_time_lt);
    let keep = |(_, i): (i64, u32)| {
        let o = &ds.orders[i as usize];
        o.ev.cancelled <= clock
            && f.create_time_ge.is_none_or(|g| o.ev.cancelled >= g)
            && f.create_time_lt.is_none_or(|l| o.ev.cancelled < l)
            && f.cancel_status
                .as_ref()
                .is_none_or(|s| s.iter().any(|x| x == COMPLETE))
            && f.order_ids
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|x| *x == o.id.to_string()))
    };
    let shop_key = shop.to_le_bytes();
    let fp = fingerprint(&[&shop_key, b"cancellations", &ctx.body]);
    let (rows, next_page_token, total) =
        token_page(ctx.q("page_token"), fp, range, false, size, keep)?;
    let cancellations: Vec<_> = rows
        .iter()
        .map(|&(_, i)| render(ds, &ds.orders[i as usize]))
        .collect();
    Ok(page_json(
        "cancellations",
        next_page_token,
        total,
        &cancellations,
    ))
}

/// Body filters of return search.
#[derive(Debug, Default, Deserialize)]
struct ReturnFilter {
    update_time_ge: Option<i64>,
    update_time_lt: Option<i64>,
    create_time_ge: Option<i64>,
    create_time_lt: Option<i64>,
    return_status: Option<Vec<String>>,
    order_ids: Option<Vec<String>>,
}

#[derive(Serialize)]
struct ReturnLineItemJson<'a> {
    return_line_item_id: String,
    order_line_item_id: Prefixed,
    sku_id: &'a str,
    product_id: &'a str,
    product_name: &'a str,
    sku_name: &'static str,
    seller_sku: &'a str,
    refund_amount: RefundJson,
}

#[derive(Serialize)]
struct ReturnJson<'a> {
    return_id: String,
    order_id: String,
    return_type: &'static str,
    return_status: &'static str,
    return_reason_text: &'static str,
    role: &'static str,
    create_time: i64,
    update_time: i64,
    refund_amount: RefundJson,
    return_line_items: Vec<ReturnLineItemJson<'a>>,
    shop_id: &'a str,
}

fn render_return<'a>(ds: &'a Dataset, o: &Order, clock: i64) -> Option<ReturnJson<'a>> {
    let plan = ds.return_of(o)?;
    let (status, update) = plan.state_at(clock)?;
    let shop = &ds.shops[o.shop as usize];
    let digits = shop.region.minor_digits;
    let m = |v: i64| Minor { minor: v, digits };
    let items = &ds.items_of(o)[..plan.items as usize];
    let lines: Vec<_> = items
        .iter()
        .enumerate()
        .map(|(k, li)| {
            let sku = &ds.skus[li.sku as usize];
            let p = &ds.products[sku.product as usize];
            ReturnLineItemJson {
                return_line_item_id: format!("{}{k}", o.id),
                order_line_item_id: line_item_id(o, k),
                sku_id: &sku.id,
                product_id: &p.id,
                product_name: &p.title,
                sku_name: sku.variant,
                seller_sku: &sku.seller_sku,
                refund_amount: RefundJson {
                    currency: shop.region.currency,
                    refund_total: m(li.sale_price()),
                    refund_subtotal: m(li.sale_price()),
                    shipping_fee: m(0),
                    tax: m(0),
                },
            }
        })
        .collect();
    let sub: i64 = items.iter().map(|li| li.sale_price()).sum();
    Some(ReturnJson {
        // The order id with a suffix digit: unique, numeric, stable.
        return_id: format!("{}4", o.id),
        order_id: o.id.to_string(),
        return_type: plan.kind,
        return_status: status,
        return_reason_text: plan.reason,
        role: "BUYER",
        create_time: plan.request,
        update_time: update,
        refund_amount: RefundJson {
            currency: shop.region.currency,
            refund_total: m(sub),
            refund_subtotal: m(sub),
            shipping_fee: m(0),
            tax: m(0),
        },
        return_line_items: lines,
        shop_id: &shop.id,
    })
}

/// `POST /return_refund/202309/returns/search` (page_size 10–50 in the query).
pub fn search_returns(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let size = page_size(ctx.q("page_size"), 50)?;
    let f: ReturnFilter = parse_body(ctx)?;
    let shop = ctx.shop.unwrap_or(0);
    let sv = &ctx.view.shops[shop];
    let clock = ctx.view.clock;
    let ds: &Dataset = &sb.data;
    let idx = &sv.returns_by_update;
    let range = time_range(idx, f.update_time_ge, f.update_time_lt);
    let keep = |(_, i): (i64, u32)| {
        let o = &ds.orders[i as usize];
        let Some(plan) = ds.return_of(o) else {
            return false;
        };
        let st = plan.state_at(clock).map(|s| s.0).unwrap_or_default();
        f.create_time_ge.is_none_or(|g| plan.request >= g)
            && f.create_time_lt.is_none_or(|l| plan.request < l)
            && f.return_status
                .as_ref()
                .is_none_or(|s| s.iter().any(|x| x == st))
            && f.order_ids
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|x| *x == o.id.to_string()))
    };
    let shop_key = shop.to_le_bytes();
    let fp = fingerprint(&[&shop_key, b"returns", &ctx.body]);
    let (rows, next_page_token, total) =
        token_page(ctx.q("page_token"), fp, range, false, size, keep)?;
    let return_orders: Vec<_> = rows
        .iter()
        .filter_map(|&(_, i)| render_return(ds, &ds.orders[i as usize], clock))
        .collect();
    Ok(page_json(
        "return_orders",
        next_page_token,
        total,
        &return_orders,
    ))
}

/// `GET /return_refund/202309/returns/{return_id}/records`: the return's history, one
/// record per status it reached by the clock. An unknown id (or another shop's) is an
/// error, as on the real API.
pub fn return_records(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let clock = ctx.view.clock;
    let shop = ctx.shop.unwrap_or(0);
    let rid = ctx
        .params
        .get("return_id")
        .map(String::as_str)
        .unwrap_or("");
    let unknown = || ApiFault::param(format_args!("return_id {rid:?} not found in this shop"));
    let order = rid
        .strip_suffix('4')
        .and_then(|n| n.parse::<u64>().ok())
        .and_then(|n| ds.order_index.get(&n))
        .map(|&i| &ds.orders[i as usize])
        .filter(|o| o.shop as usize == shop)
        .ok_or_else(unknown)?;
    let plan = ds
        .return_of(order)
        .filter(|p| p.request <= clock)
        .ok_or_else(unknown)?;
    #[derive(Serialize)]
    struct Record {
        event: &'static str,
        description: String,
        role: &'static str,
        create_time: i64,
    }
    let records: Vec<Record> = plan
        .steps()
        .into_iter()
        .filter(|(t, _)| *t <= clock)
        .map(|(t, event)| Record {
            event,
            description: format!("Return {rid}: {}", event.to_lowercase().replace('_', " ")),
            role: if event == "BUYER_SHIPPED_ITEM" || event == "RETURN_OR_REFUND_REQUEST_PENDING" {
                "BUYER"
            } else {
                "SELLER"
            },
            create_time: t,
        })
        .collect();
    #[derive(Serialize)]
    struct Out {
        records: Vec<Record>,
    }
    Ok(serde_json::to_vec(&Out { records }).expect("serializable"))
}

/// What a buyer may still ask for each line item of `o` at `clock`: (line item index,
/// request types allowed, the code of why not when none is). Unshipped orders can be
/// cancelled; delivered ones refunded or returned until they complete, except the items
/// already in a return.
pub(super) fn eligibility(
    ds: &Dataset,
    o: &Order,
    clock: i64,
) -> Vec<(usize, &'static [&'static str], Option<&'static str>)> {
    let e = &o.ev;
    let returned = ds
        .return_of(o)
        .filter(|p| p.request <= clock)
        .map_or(0, |p| p.items as usize);
    (0..o.items.len())
        .map(|k| {
            let (types, why): (&'static [&'static str], _) = if e.cancelled <= clock {
                (&[], Some("ORDER_CANCELLED"))
            } else if e.completed <= clock {
                (&[], Some("AFTERSALE_WINDOW_CLOSED"))
            } else if e.delivered <= clock {
                if k < returned {
                    (&[], Some("REQUEST_ALREADY_EXISTS"))
                } else {
                    (&["REFUND_ONLY", "RETURN_AND_REFUND"], None)
                }
            } else if e.shipped <= clock {
                (&[], Some("PACKAGE_IN_TRANSIT"))
            } else {
                (&["CANCEL"], None)
            };
            (k, types, why)
        })
        .collect()
}

/// `GET /return_refund/202512/orders/{order_id}/aftersale_eligibility`: one entry per
/// line item (see [`eligibility`]).
pub fn aftersale_eligibility(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let o = super::orders::path_order(ds, ctx)?;
    #[derive(Serialize)]
    struct Sku<'a> {
        sku_id: &'a str,
        order_line_item_id: Prefixed,
        is_eligible: bool,
        eligible_request_types: &'static [&'static str],
        ineligible_code: Option<&'static str>,
    }
    let items = ds.items_of(o);
    let list: Vec<Sku> = eligibility(ds, o, ctx.view.clock)
        .into_iter()
        .map(|(k, types, why)| Sku {
            sku_id: &ds.skus[items[k].sku as usize].id,
            order_line_item_id: line_item_id(o, k),
            is_eligible: !types.is_empty(),
            eligible_request_types: types,
            ineligible_code: why,
        })
        .collect();
    #[derive(Serialize)]
    struct Out<'a> {
        sku_eligibility: Vec<Sku<'a>>,
    }
    Ok(serde_json::to_vec(&Out {
        sku_eligibility: list,
    })
    .expect("serializable"))
}

/// Reasons a seller may give to reject a return and refund, a refund only, or a
/// cancellation request.
pub(super) fn reject_reasons_for(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "RETURN_AND_REFUND" => &[
            (
                "reverse_reject_request_reason_1",
                "Buyer did not return the item",
            ),
            (
                "reverse_reject_request_reason_2",
                "Returned item is damaged or used",
            ),
            ("reverse_reject_request_reason_3", "Wrong item returned"),
            (
                "reverse_reject_request_reason_4",
                "Request made after the return window",
            ),
        ],
        "REFUND_ONLY" => &[
            (
                "reverse_reject_request_reason_5",
                "Item was delivered as described",
            ),
            (
                "reverse_reject_request_reason_6",
                "Buyer agreed to keep the item",
            ),
            (
                "reverse_reject_request_reason_4",
                "Request made after the return window",
            ),
        ],
        _ => &[
            (
                "reverse_reject_cancel_reason_1",
                "Package has already shipped",
            ),
            (
                "reverse_reject_cancel_reason_2",
                "Buyer agreed to keep the order",
            ),
        ],
    }
}

/// `GET /return_refund/202309/reject_reasons?return_or_cancel_id=…`: the reasons the
/// seller may reject that request with (by its kind); an unknown id is an error.
pub fn reject_reasons(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let id = ctx
        .q("return_or_cancel_id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiFault::param("return_or_cancel_id is required"))?;
    let (shop, clock) = (ctx.shop.unwrap_or(0), ctx.view.clock);
    let unknown = || ApiFault::param(format_args!("return_or_cancel_id {id:?} not found"));
    let order = |suffix: char| {
        id.strip_suffix(suffix)
            .and_then(|n| super::orders::find_order(ds, shop, clock, n))
    };
    let kind = if let Some(plan) = order('4').and_then(|o| ds.return_of(o)) {
        if plan.request > clock {
            return Err(unknown());
        }
        plan.kind
    } else if order('7').is_some_and(|o| o.ev.cancelled <= clock) {
        "CANCEL"
    } else {
        return Err(unknown());
    };
    #[derive(Serialize)]
    struct Reason {
        name: &'static str,
        text: &'static str,
    }
    let reasons: Vec<Reason> = reject_reasons_for(kind)
        .iter()
        .map(|&(name, text)| Reason { name, text })
        .collect();
    #[derive(Serialize)]
    struct Out {
        reasons: Vec<Reason>,
    }
    Ok(serde_json::to_vec(&Out { reasons }).expect("serializable"))
}
