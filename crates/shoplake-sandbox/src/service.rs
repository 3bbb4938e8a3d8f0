//! Customer service: buyer conversations derived from the orders, and the shop's service
//! performance computed from them.
//!
//! About 3% of orders get a conversation, opened 1 hour to 3 days after the order. The
//! buyer writes first; the seller answers 5 minutes to 12 hours later (10% of
//! conversations are never answered); 2–8 messages alternate; a conversation answered
//! and quiet for a day is resolved.
//!
//! - `GET /customer_service/202309/conversations` (page_token, page_size ≤ 20) →
//!   `conversations`, newest first
//! - `GET /customer_service/202309/conversations/{conversation_id}/messages` (page_token,
//!   page_size ≤ 10) → `messages`
//! - `GET /customer_service/202601/conversations/{conversation_id}` → `conversation`
//! - `GET /customer_service/202309/agents/settings` → the agent settings object
//! - `GET /customer_service/202407/performance?support_date_ge&support_date_lt` →
//!   `performance` over the shop-local days asked

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::data::{Dataset, Order, local_date, local_midnight};
use super::gate::ApiFault;
use super::paging::{fingerprint, page_json, token_page};
use super::rng::Rng;
use super::seller::json_bytes;
use super::{Ctx, Sandbox};

/// One message: (time, from the buyer).
pub type Message = (i64, bool);

/// A conversation's messages (sorted), if the order has one.
pub fn conversation(ds: &Dataset, o: &Order) -> Option<Vec<Message>> {
    let mut r = Rng::new(ds.config.seed ^ 0x4353_4356, o.id);
    if !r.chance(0.03) {
        return None;
    }
    let mut t = o.ev.create + r.range(3_600, 3 * 86_400);
    let n = r.range(2, 9);
    let answered = r.chance(0.9);
    let mut out = vec![(t, true)];
    for i in 1..n {
        let buyer = i % 2 == 0;
        if !buyer && !answered {
            break;
        }
        t += if buyer {
            r.range(60, 6 * 3_600)
        } else {
            r.range(300, 12 * 3_600)
        };
        out.push((t, buyer));
    }
    Some(out)
}

fn conversation_id(o: &Order) -> String {
    format!("{}9", o.id)
}

/// The shop's conversations opened by `clock`: (order index, messages so far).
fn conversations(ds: &Dataset, view: &super::data::View, shop: usize) -> Vec<(u32, Vec<Message>)> {
    opened_between(ds, view, shop, i64::MIN, i64::MAX)
}

/// The shop's conversations opened in `[from, to)` by `clock`. A conversation opens at most
/// 3 days after its order, so only orders placed from 3 days before `from` are looked at.
fn opened_between(
    ds: &Dataset,
    view: &super::data::View,
    shop: usize,
    from: i64,
    to: i64,
) -> Vec<(u32, Vec<Message>)> {
    let idx = &view.shops[shop].by_create;
    let lo = idx.partition_point(|&(t, _)| t < from.saturating_sub(3 * 86_400));
    let hi = idx.partition_point(|&(t, _)| t < to);
    idx[lo..hi]
        .iter()
        .filter_map(|&(_, i)| {
            let mut m = conversation(ds, &ds.orders[i as usize])?;
            m.retain(|(t, _)| *t <= view.clock);
            (!m.is_empty() && m[0].0 >= from && m[0].0 < to).then_some((i, m))
        })
        .collect()
}

/// (first response seconds, resolved at) of a conversation as of `clock`.
fn outcome(m: &[Message], clock: i64) -> (Option<i64>, Option<i64>) {
    let first = m.iter().find(|(_, buyer)| !buyer).map(|(t, _)| t - m[0].0);
    let last = m.last().map(|(t, _)| *t).unwrap_or(0);
    let resolved = (first.is_some() && last + 86_400 <= clock).then_some(last + 86_400);
    (first, resolved)
}

fn conversation_json(ds: &Dataset, i: u32, m: &[Message], clock: i64) -> Value {
    let o = &ds.orders[i as usize];
    let (first, resolved) = outcome(m, clock);
    let (last_t, last_buyer) = *m.last().expect("a message");
    json!({
        "id": conversation_id(o),
        "order_id": o.id.to_string(),
        "buyer_user_id": o.user_id.to_string(),
        "participant_count": 2,
        "unread_count": u32::from(last_buyer),
        "can_send_message": resolved.is_none(),
        "status": if resolved.is_some() { "RESOLVED" } else { "OPEN" },
        "message_count": m.len(),
        "first_response_seconds": first,
        "latest_message": { "create_time": last_t, "sender_role": if last_buyer { "BUYER" } else { "SHOP" } },
        "create_time": m[0].0,
        "update_time": resolved.unwrap_or(last_t),
    })
}

/// `GET /customer_service/202309/conversations`.
pub fn list_conversations(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let size: usize = ctx
        .q("page_size")
        .ok_or_else(|| ApiFault::param("page_size is required"))?
        .parse()
        .ok()
        .filter(|n| (1..=20).contains(n))
        .ok_or_else(|| ApiFault::param("page_size must be 1-20"))?;
    let ds: &Dataset = &sb.data;
    let all = conversations(ds, &ctx.view, shop);
    let idx: Vec<u32> = (0..all.len() as u32).rev().collect();
    let fp = fingerprint(&[&shop.to_le_bytes(), b"conversations"]);
    let (page, next, total) = token_page(ctx.q("page_token"), fp, &idx, false, size, |_| true)?;
    let list: Vec<Value> = page
        .iter()
        .map(|&k| {
            let (i, m) = &all[k as usize];
            conversation_json(ds, *i, m, ctx.view.clock)
        })
        .collect();
    Ok(page_json("conversations", next, total, &list))
}

fn find(ds: &Dataset, ctx: &Ctx, shop: usize) -> Result<(u32, Vec<Message>), ApiFault> {
    let id = ctx.params.get("conversation_id").map_or("", String::as_str);
    conversations(ds, &ctx.view, shop)
        .into_iter()
        .find(|(i, _)| conversation_id(&ds.orders[*i as usize]) == id)
        .ok_or_else(|| ApiFault::param(format_args!("conversation_id {id:?} not found")))
}

/// `GET /customer_service/202601/conversations/{conversation_id}`.
pub fn get_conversation(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let (i, m) = find(&sb.data, ctx, ctx.shop.unwrap_or(0))?;
    json_bytes(json!({ "conversation": conversation_json(&sb.data, i, &m, ctx.view.clock) }))
}

/// `GET /customer_service/202309/conversations/{conversation_id}/messages`.
pub fn messages(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let size: usize = ctx
        .q("page_size")
        .ok_or_else(|| ApiFault::param("page_size is required"))?
        .parse()
        .ok()
        .filter(|n| (1..=10).contains(n))
        .ok_or_else(|| ApiFault::param("page_size must be 1-10"))?;
    let (i, m) = find(&sb.data, ctx, shop)?;
    let o = &sb.data.orders[i as usize];
    let idx: Vec<u32> = (0..m.len() as u32).collect();
    let fp = fingerprint(&[
        &shop.to_le_bytes(),
        b"messages",
        conversation_id(o).as_bytes(),
    ]);
    let (page, next, total) = token_page(ctx.q("page_token"), fp, &idx, false, size, |_| true)?;
    let list: Vec<Value> = page
        .iter()
        .map(|&k| {
            let (t, buyer) = m[k as usize];
            json!({
                "id": format!("{}{k:02}", conversation_id(o)),
                "index": k,
                "type": "TEXT",
                "sender": { "role": if buyer { "BUYER" } else { "SHOP" } },
                "content": if buyer { "{\"content\":\"Where is my order?\"}" } else { "{\"content\":\"It is on its way.\"}" },
                "create_time": t,
            })
        })
        .collect();
    Ok(page_json("messages", next, total, &list))
}

/// `GET /customer_service/202309/agents/settings`.
pub fn agent_settings(_sb: &Sandbox, _ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    json_bytes(json!({
        "can_accept_chat": true,
        "auto_reply_enabled": true,
        "working_hours": { "start": "09:00", "end": "21:00" },
    }))
}

/// (conversations, answered, Σ first response seconds, resolved) over conversations opened
/// on shop-local days `[start, end)`.
fn day_stats(
    ds: &Dataset,
    view: &super::data::View,
    shop: usize,
    start: NaiveDate,
    end: NaiveDate,
) -> (u64, u64, i64, u64) {
    let region = ds.shops[shop].region;
    let (from, to) = (local_midnight(region, start), local_midnight(region, end));
    let mut s = (0, 0, 0, 0);
    for (_, m) in opened_between(ds, view, shop, from, to) {
        let (first, resolved) = outcome(&m, view.clock);
        s.0 += 1;
        if let Some(f) = first {
            s.1 += 1;
            s.2 += f;
        }
        s.3 += u64::from(resolved.is_some());
    }
    s
}

/// `GET /customer_service/202407/performance`.
pub fn performance(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let shop = ctx.shop.unwrap_or(0);
    let parse = |name: &str| -> Result<NaiveDate, ApiFault> {
        let v = ctx
            .q(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiFault::param(format_args!("{name} is required")))?;
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| ApiFault::param(format_args!("{name} must be YYYY-MM-DD, got {v:?}")))
    };
    let (start, end) = (parse("support_date_ge")?, parse("support_date_lt")?);
    if start >= end {
        return Err(ApiFault::param(
            "support_date_ge must be before support_date_lt",
        ));
    }
    let (n, answered, first, resolved) = day_stats(&sb.data, &ctx.view, shop, start, end);
    json_bytes(json!({
        "performance": {
            "conversations": n,
            "answered_conversations": answered,
            "response_rate": if n == 0 { 0.0 } else { (answered as f64 / n as f64 * 10_000.0).round() / 10_000.0 },
            "avg_first_response_seconds": if answered == 0 { 0 } else { first / answered as i64 },
            "resolved_conversations": resolved,
        }
    }))
}

/// Rows a backfill of the whole history lands per service table for shop `shop`.
pub fn truth(ds: &Dataset, view: &super::data::View, shop: usize) -> [(&'static str, u64); 3] {
    let region = ds.shops[shop].region;
    let today = local_date(region, view.clock);
    let opened = local_date(region, ds.config.clock - i64::from(ds.config.days) * 86_400);
    [
        (
            "cs_conversations",
            conversations(ds, view, shop).len() as u64,
        ),
        ("cs_agent_settings", 1),
        // One performance row per whole local day of the history.
        ("cs_performance", (today - opened).num_days().max(0) as u64),
    ]
}

/// Σ conversations (all opened by the clock), answered ones and their first-response
/// seconds: what marts.customer_service sums.
pub fn totals(ds: &Dataset, view: &super::data::View, shop: usize) -> (u64, u64, i64) {
    let mut t = (0, 0, 0);
    for (_, m) in conversations(ds, view, shop) {
        t.0 += 1;
        if let (Some(f), _) = outcome(&m, view.clock) {
            t.1 += 1;
            t.2 += f;
        }
    }
    t
}
