//! Affiliate (seller side), collaboration tools around the shop's creators
//! ([`super::affiliate::creators`]) and open collaborations (one per product):
//! - open collaboration products (with the units affiliates sold of each), settings and
//!   per-product sample rules (samples for products over 15 in local currency units);
//! - target collaborations: an exclusive plan for every fourth creator (index 1 and 5) on
//!   the shop's three most popular products at its rate + 5 points;
//! - sample applications: each creator asks for a sample of one product every 30 days
//!   (from day 3 of the history); approved a day later, delivered 4 days after, and 3 of 4
//!   post a video 3 days after delivery (the application's fulfilment and the product's
//!   creator content);
//! - conversations: one per creator, 3–12 messages alternating creator and seller every
//!   few hours from the creator's first sample application; the creator's last message is
//!   unread when it is the latest.
//! - the marketplace search's advanced filters (reference data).

use serde_json::{Value, json};

use super::affiliate::{Creator, creators};
use super::data::Dataset;
use super::gate::ApiFault;
use super::paging::{list_page, page_json};
use super::rng::Rng;
use super::seller::json_bytes;
use super::{Ctx, Sandbox};

const DAY: i64 = 86_400;

fn history_start(ds: &Dataset) -> i64 {
    ds.config.clock - i64::from(ds.config.days) * DAY
}

/// The shop's products listed by `clock`, most popular first.
fn popular(ds: &Dataset, shop: usize, clock: i64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..ds.products.len() as u32)
        .filter(|&i| {
            ds.products[i as usize].shop == shop && ds.products[i as usize].create_time <= clock
        })
        .collect();
    v.sort_by(|a, b| {
        ds.products[*b as usize]
            .weight
            .total_cmp(&ds.products[*a as usize].weight)
            .then(a.cmp(b))
    });
    v
}

/// Whether products of this price (minor units of its shop's currency) get free samples.
fn offers_samples(ds: &Dataset, product: u32) -> bool {
    let p = &ds.products[product as usize];
    let digits = ds.shops[p.shop].region.minor_digits;
    let price = ds.skus[p.skus.start as usize].price;
    price >= 15 * 10i64.pow(digits)
}

/// `POST /affiliate_seller/202405/open_collaborations/products/search` (page_size ≤ 20).
pub fn open_collaboration_products(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let shop = ctx.shop.unwrap_or(0);
    let list = popular(ds, shop, ctx.view.clock);
    let (rows, next, total) = list_page(ctx, b"oc_products", 20, &list)?;
    let out: Vec<Value> = rows
        .iter()
        .map(|&i| {
            let p = &ds.products[i as usize];
            json!({
                "product_id": p.id,
                "title": p.title,
                "category_name": p.category,
                "commission_rate": "1000",
                "has_free_sample": offers_samples(ds, i),
                "open_collaboration_id": format!("{}8", p.id),
            })
        })
        .collect();
    Ok(page_json("products", next, total, &out))
}

/// `GET /affiliate_seller/202409/open_collaboration_settings`.
pub fn open_collaboration_settings(_sb: &Sandbox, _ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    json_bytes(json!({ "open_collaboration_settings": {
        "default_commission_rate": "1000",
        "auto_approve_sample_requests": true,
        "sample_quota_per_creator": 2,
        "min_follower_count": 1000,
    }}))
}

/// `GET /affiliate_seller/202410/open_collaborations/sample_rules?product_ids=…` (≤ 50).
pub fn sample_rules(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let shop = ctx.shop.unwrap_or(0);
    let mut out = Vec::new();
    for id in ctx.ids("product_ids", 50)? {
        let i = *ds
            .product_index
            .get(id)
            .filter(|&&i| ds.products[i as usize].shop == shop)
            .ok_or_else(|| ApiFault::param(format_args!("product {id} not found in this shop")))?;
        let offered = offers_samples(ds, i);
        out.push(json!({
            "product_id": id,
            "is_sample_offered": offered,
            "max_samples_per_creator": if offered { 2 } else { 0 },
            "min_follower_count": 1000,
        }));
    }
    json_bytes(json!({ "sample_rules": out }))
}

/// A target collaboration: (id, creator index, creator, product indices, rate bp, start, end).
pub type Target = (String, usize, Creator, Vec<u32>, i64, i64, i64);

/// The shop's target collaborations started by `clock`.
pub fn targets(ds: &Dataset, shop: usize, clock: i64) -> Vec<Target> {
    let start = history_start(ds) + 10 * DAY;
    if start > clock {
        return Vec::new();
    }
    let top: Vec<u32> = popular(ds, shop, start).into_iter().take(3).collect();
    creators(ds, shop)
        .into_iter()
        .enumerate()
        .filter(|(k, _)| k % 4 == 1)
        .map(|(k, c)| {
            let rate = c.rate_bp + 500;
            (
                format!("{}{k}5", &c.id[..12]),
                k,
                c,
                top.clone(),
                rate,
                start,
                start + 60 * DAY,
            )
        })
        .collect()
}

fn target_json(ds: &Dataset, t: &Target, clock: i64, detail: bool) -> Value {
    let (id, _, c, products, rate, start, end) = t;
    let mut v = json!({
        "id": id,
        "name": format!("Exclusive plan for {}", c.username),
        "status": if *end <= clock { "ENDED" } else { "ONGOING" },
        "creator_user_ids": [c.id],
        "product_count": products.len(),
        "commission_rate": rate.to_string(),
        "start_time": start,
        "end_time": end,
    });
    if detail {
        v["products"] = json!(
            products
                .iter()
                .map(|&p| json!({ "product_id": ds.products[p as usize].id, "commission_rate": rate.to_string() }))
                .collect::<Vec<_>>()
        );
        v["message"] = json!(format!(
            "Hi {}, here is an exclusive rate for you.",
            c.username
        ));
    }
    v
}

/// `POST /affiliate_seller/202508/target_collaborations/search` (page_size 20, 50 or 100).
pub fn search_targets(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    if !matches!(ctx.q("page_size"), Some("20" | "50" | "100")) {
        return Err(ApiFault::param("page_size must be 20, 50 or 100"));
    }
    let ds: &Dataset = &sb.data;
    let t = targets(ds, ctx.shop.unwrap_or(0), ctx.view.clock);
    let idx: Vec<u32> = (0..t.len() as u32).collect();
    let (rows, next, total) = list_page(ctx, b"targets", 100, &idx)?;
    let out: Vec<Value> = rows
        .iter()
        .map(|&i| target_json(ds, &t[i as usize], ctx.view.clock, false))
        .collect();
    Ok(page_json("target_collaborations", next, total, &out))
}

/// `GET /affiliate_seller/202508/target_collaborations/{target_collaboration_id}`.
pub fn target_detail(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let id = ctx
        .params
        .get("target_collaboration_id")
        .map_or("", String::as_str);
    let t = targets(ds, ctx.shop.unwrap_or(0), ctx.view.clock)
        .into_iter()
        .find(|t| t.0 == id)
        .ok_or_else(|| ApiFault::param(format_args!("target_collaboration_id {id:?} not found")))?;
    json_bytes(json!({ "target_collaboration": target_json(ds, &t, ctx.view.clock, true) }))
}

/// A sample application: creator index, product index, applied at, and whether the
/// creator posts a video.
#[derive(Debug, Clone)]
pub struct Application {
    /// Application id.
    pub id: String,
    /// Creator index in the shop.
    pub creator: usize,
    /// Product index.
    pub product: u32,
    /// Applied.
    pub applied: i64,
    /// Posts a video after delivery.
    pub posts: bool,
}

impl Application {
    /// (status, the times of approval, delivery and the video) as of `clock`.
    pub fn status(&self, clock: i64) -> &'static str {
        let (approve, deliver, post) = self.times();
        if self.posts && post <= clock {
            "CONTENT_POSTED"
        } else if deliver <= clock {
            "DELIVERED"
        } else if approve + DAY <= clock {
            "SHIPPED"
        } else if approve <= clock {
            "APPROVED"
        } else {
            "PENDING"
        }
    }
    /// Approval, delivery and video times.
    pub fn times(&self) -> (i64, i64, i64) {
        let approve = self.applied + DAY;
        let deliver = approve + 4 * DAY;
        (approve, deliver, deliver + 3 * DAY)
    }
    /// The video's id.
    pub fn content_id(&self) -> String {
        format!("{}0", self.id)
    }
}

/// Every sample application of the shop made by `clock`, in time order.
pub fn applications(ds: &Dataset, shop: usize, clock: i64) -> Vec<Application> {
    let cs = creators(ds, shop);
    let mut out = Vec::new();
    let first = history_start(ds) + 3 * DAY;
    for (k, c) in cs.iter().enumerate() {
        for m in 0.. {
            let mut r = Rng::new(
                ds.config.seed ^ 0x5341_4D50,
                shop as u64 * 10_000 + k as u64 * 100 + m,
            );
            let applied = first + m as i64 * 30 * DAY + r.range(0, 20 * DAY);
            if applied > clock {
                break;
            }
            let list: Vec<u32> = popular(ds, shop, applied)
                .into_iter()
                .filter(|&p| offers_samples(ds, p))
                .collect();
            if list.is_empty() {
                continue;
            }
            let product = list[r.range(0, list.len().min(10) as i64) as usize];
            out.push(Application {
                id: format!("{}{m:03}", &c.id[..14]),
                creator: k,
                product,
                applied,
                posts: r.chance(0.75),
            });
        }
    }
    out.sort_by_key(|a| (a.applied, a.id.clone()));
    out
}

fn video_stats(ds: &Dataset, a: &Application) -> (i64, i64) {
    let mut r = Rng::new(
        ds.config.seed ^ 0x5649_4445,
        a.id.len() as u64 * 31 + a.applied as u64,
    );
    (r.range(1_000, 200_000), r.range(0, 40))
}

/// `POST /affiliate_seller/202508/sample_applications/search` (page_size 1–50).
pub fn search_applications(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let shop = ctx.shop.unwrap_or(0);
    let clock = ctx.view.clock;
    let apps = applications(ds, shop, clock);
    let cs = creators(ds, shop);
    let idx: Vec<u32> = (0..apps.len() as u32).collect();
    let (rows, next, total) = list_page(ctx, b"applications", 50, &idx)?;
    let out: Vec<Value> = rows
        .iter()
        .map(|&i| {
            let a = &apps[i as usize];
            json!({
                "id": a.id,
                "creator_user_id": cs[a.creator].id,
                "creator_username": cs[a.creator].username,
                "product_id": ds.products[a.product as usize].id,
                "status": a.status(clock),
                "apply_time": a.applied,
            })
        })
        .collect();
    Ok(page_json("sample_applications", next, total, &out))
}

fn find_application(ds: &Dataset, ctx: &Ctx) -> Result<Application, ApiFault> {
    let id = ctx.params.get("application_id").map_or("", String::as_str);
    applications(ds, ctx.shop.unwrap_or(0), ctx.view.clock)
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| ApiFault::param(format_args!("application_id {id:?} not found")))
}

/// `POST /affiliate_seller/202409/sample_applications/{application_id}/fulfillments/search`
/// (body `content_format`: VIDEO or LIVE): the content the creator posted for the sample.
pub fn application_fulfillments(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    #[derive(serde::Deserialize, Default)]
    struct Body {
        content_format: Option<String>,
    }
    let ds: &Dataset = &sb.data;
    let b: Body = super::orders::parse_body(ctx)?;
    let format = b.content_format.unwrap_or_default();
    if !matches!(format.as_str(), "VIDEO" | "LIVE") {
        return Err(ApiFault::param("content_format must be VIDEO or LIVE"));
    }
    let a = find_application(ds, ctx)?;
    let clock = ctx.view.clock;
    let list: Vec<Value> = if format == "VIDEO" && a.status(clock) == "CONTENT_POSTED" {
        let (views, orders) = video_stats(ds, &a);
        vec![json!({
            "content_id": a.content_id(),
            "content_format": "VIDEO",
            "publish_time": a.times().2,
            "views": views,
            "orders": orders,
        })]
    } else {
        Vec::new()
    };
    json_bytes(json!({ "fulfillments": list }))
}

/// `GET /affiliate_seller/202508/open_collaborations/creator_content_details?product_id=…`
/// (page_size 1–100): the creators' videos for one product.
pub fn creator_content(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let ds: &Dataset = &sb.data;
    let shop = ctx.shop.unwrap_or(0);
    let clock = ctx.view.clock;
    let pid = ctx
        .q("product_id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiFault::param("product_id is required"))?;
    let apps: Vec<Application> = applications(ds, shop, clock)
        .into_iter()
        .filter(|a| {
            ds.products[a.product as usize].id == pid && a.status(clock) == "CONTENT_POSTED"
        })
        .collect();
    let cs = creators(ds, shop);
    let idx: Vec<u32> = (0..apps.len() as u32).collect();
    let (rows, next, total) = list_page(ctx, b"creator_content", 100, &idx)?;
    let out: Vec<Value> = rows
        .iter()
        .map(|&i| {
            let a = &apps[i as usize];
            let (views, orders) = video_stats(ds, a);
            json!({
                "content_id": a.content_id(),
                "creator_user_id": cs[a.creator].id,
                "creator_username": cs[a.creator].username,
                "content_type": "VIDEO",
                "publish_time": a.times().2,
                "views": views,
                "orders": orders,
            })
        })
        .collect();
    Ok(page_json("creator_content_details", next, total, &out))
}

/// A conversation's messages: (id, from the creator, text, time).
pub fn messages(
    ds: &Dataset,
    shop: usize,
    k: usize,
    clock: i64,
) -> Vec<(String, bool, String, i64)> {
    let first = applications(ds, shop, clock)
        .into_iter()
        .find(|a| a.creator == k)
        .map(|a| a.applied);
    let Some(first) = first else {
        return Vec::new();
    };
    let mut r = Rng::new(ds.config.seed ^ 0x4D53_4753, shop as u64 * 100 + k as u64);
    let n = r.range(3, 13);
    let mut t = first;
    let mut out = Vec::new();
    for j in 0..n {
        if t > clock {
            break;
        }
        let creator = j % 2 == 0;
        out.push((
            format!("{shop}{k:02}{j:03}{}", t % 100_000),
            creator,
            if creator {
                format!("Message {j} from the creator")
            } else {
                format!("Reply {j} from the seller")
            },
            t,
        ));
        t += r.range(3_600, 20 * 3_600);
    }
    out
}

fn conversation_id(c: &Creator) -> String {
    format!("C{}", c.id)
}

/// Conversations with messages by `clock`: (creator index, creator, messages).
#[allow(clippy::type_complexity)]
pub fn conversations(
    ds: &Dataset,
    shop: usize,
    clock: i64,
) -> Vec<(usize, Creator, Vec<(String, bool, String, i64)>)> {
    creators(ds, shop)
        .into_iter()
        .enumerate()
        .map(|(k, c)| {
            let m = messages(ds, shop, k, clock);
            (k, c, m)
        })
        .filter(|(_, _, m)| !m.is_empty())
        .collect()
}

/// `GET /affiliate_seller/202505/conversations` (page_size ≤ 50).
pub fn list_conversations(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let convs = conversations(&sb.data, ctx.shop.unwrap_or(0), ctx.view.clock);
    let idx: Vec<u32> = (0..convs.len() as u32).collect();
    let (rows, next, total) = list_page(ctx, b"conversations", 50, &idx)?;
    let out: Vec<Value> = rows
        .iter()
        .map(|&i| {
            let (_, c, m) = &convs[i as usize];
            let last = m.last().expect("non-empty");
            json!({
                "id": conversation_id(c),
                "creator_user_id": c.id,
                "creator_username": c.username,
                "message_count": m.len(),
                "latest_message_time": last.3,
                "unread_count": u32::from(last.1),
            })
        })
        .collect();
    let mut body: Value =
        serde_json::from_slice(&page_json("conversations", next.clone(), total, &out))
            .expect("page json");
    body["has_more"] = json!(!next.is_empty());
    json_bytes(body)
}

/// `GET /affiliate_seller/202412/conversation/{conversation_id}/messages` (page_size ≤ 20).
pub fn conversation_messages(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let id = ctx.params.get("conversation_id").map_or("", String::as_str);
    let (_, c, m) = conversations(&sb.data, ctx.shop.unwrap_or(0), ctx.view.clock)
        .into_iter()
        .find(|(_, c, _)| conversation_id(c) == id)
        .ok_or_else(|| ApiFault::param(format_args!("conversation_id {id:?} not found")))?;
    let idx: Vec<u32> = (0..m.len() as u32).collect();
    let (rows, next, total) = list_page(ctx, b"messages", 20, &idx)?;
    let out: Vec<Value> = rows
        .iter()
        .map(|&i| {
            let (mid, creator, text, t) = &m[i as usize];
            json!({
                "id": mid,
                "sender_role": if *creator { "CREATOR" } else { "SELLER" },
                "sender_id": if *creator { c.id.clone() } else { String::new() },
                "content": text,
                "create_time": t,
            })
        })
        .collect();
    let mut body: Value = serde_json::from_slice(&page_json("messages", next.clone(), total, &out))
        .expect("page json");
    body["has_more"] = json!(!next.is_empty());
    json_bytes(body)
}

/// `GET /affiliate_seller/202412/conversations/messages/list/newest`: the creator's
/// latest message of every conversation where it is unread.
pub fn newest_unread(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    let out: Vec<Value> = conversations(&sb.data, ctx.shop.unwrap_or(0), ctx.view.clock)
        .into_iter()
        .filter_map(|(_, c, m)| {
            let last = m.last()?;
            last.1.then(|| {
                json!({
                    "conversation_id": conversation_id(&c),
                    "message_id": last.0,
                    "creator_user_id": c.id,
                    "content": last.2,
                    "create_time": last.3,
                })
            })
        })
        .collect();
    json_bytes(json!({ "newest_message_list": out }))
}

/// `POST /affiliate_seller/202601/marketplace_creators/search/filter`: the filters the
/// creator marketplace search offers.
pub fn marketplace_filters(_sb: &Sandbox, _ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    json_bytes(json!({ "advanced_filters": {
        "follower_count_ranges": ["1K-10K", "10K-100K", "100K-1M", "1M+"],
        "gmv_ranges": ["0-1K", "1K-10K", "10K+"],
        "content_types": ["VIDEO", "LIVE"],
        "categories": super::listing::categories(),
    }}))
}

/// Rows a backfill lands per collaboration table for shop `shop`.
pub fn truth(ds: &Dataset, view: &super::data::View, shop: usize) -> Vec<(&'static str, u64)> {
    let clock = view.clock;
    let products = popular(ds, shop, clock);
    let apps = applications(ds, shop, clock);
    let posted = apps
        .iter()
        .filter(|a| a.status(clock) == "CONTENT_POSTED")
        .count() as u64;
    let convs = conversations(ds, shop, clock);
    let t = targets(ds, shop, clock).len() as u64;
    vec![
        ("open_collaboration_products", products.len() as u64),
        ("open_collaboration_settings", 1),
        ("open_collaboration_sample_rules", products.len() as u64),
        ("target_collaborations", t),
        ("target_collaboration_details", t),
        ("sample_applications", apps.len() as u64),
        ("sample_application_fulfillments", posted),
        ("creator_content_details", posted),
        ("affiliate_conversations", convs.len() as u64),
        (
            "affiliate_messages",
            convs.iter().map(|c| c.2.len() as u64).sum(),
        ),
        (
            "affiliate_unread_messages",
            convs
                .iter()
                .filter(|c| c.2.last().is_some_and(|m| m.1))
                .count() as u64,
        ),
        ("marketplace_filters", 1),
    ]
}
