//! The one paginator: walks a list endpoint page by page and yields pages as a stream.
//!
//! - `page_token` (every 202309+ list endpoint): send `page_size` and `page_token` (empty on
//!   the first page); stop when `next_page_token` is empty or absent.
//! - `page_number` (older API versions): send 1-based `page_number` and `page_size`; stop on
//!   a short page or when `total` is reached.
//!
//! A walk is only as good as the list holding still while it is read: tokens are offsets
//! (the sample brands token is base64 of `offset=0`), so a record that leaves the query
//! mid-walk shifts every later record one place back and the next page skips one. Each
//! page's `total_count` is compared with the first page's; a change ends the walk with
//! [`ApiError::Shifted`] and the caller reads the window again.
//!
//! Page params go in the query (the API's rule even for POST searches) or, where an
//! endpoint wants them there, in the JSON body.

use futures::Stream;
use serde_json::{Map, Value};

use super::client::{ApiClient, ApiRequest};
use super::error::{ApiError, RequestContext, Result};

/// Pagination style of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageStyle {
    /// `page_token` / `next_page_token`.
    Token,
    /// `page_number` (1-based) / `total`.
    Number,
}

/// Where page params are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamsIn {
    /// Query string.
    Query,
    /// JSON body.
    Body,
}

/// What to paginate and how.
#[derive(Debug, Clone)]
pub struct PageSpec {
    /// The first page's request (filters in query/body, credential, family).
    pub request: ApiRequest,
    /// Style.
    pub style: PageStyle,
    /// Page size to ask for.
    pub page_size: u32,
    /// Where page params go.
    pub params_in: ParamsIn,
    /// Dotted path of the records array under `data` (e.g. `orders`).
    pub records: String,
}

/// One page of records.
#[derive(Debug)]
pub struct Page {
    /// 0-based page index in this walk.
    pub index: u32,
    /// Records on this page.
    pub records: Vec<Value>,
    /// Envelope request id.
    pub request_id: String,
    /// `total_count` / `total` when the endpoint reports it.
    pub total: Option<u64>,
    /// Token that fetches the next page (token style), for checkpoints.
    pub next_token: Option<String>,
}

enum Next {
    Token(Option<String>),
    Number(u32),
    Done,
}

struct State {
    client: ApiClient,
    spec: PageSpec,
    next: Next,
    index: u32,
    seen: u64,
    seen_tokens: std::collections::HashSet<String>,
    /// `total_count` of the walk's first page.
    first_total: Option<u64>,
}

/// Sets `key` to `value` in the query or the JSON body of `req`.
pub fn set_param(req: &mut ApiRequest, params_in: ParamsIn, key: &str, value: Value) -> Result<()> {
    match params_in {
        ParamsIn::Query => {
            let v = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            req.query.retain(|(k, _)| k != key);
            req.query.push((key.to_string(), v));
        }
        ParamsIn::Body => {
            let mut obj: Map<String, Value> = match &req.body {
                Some(b) if !b.is_empty() => serde_json::from_slice(b).map_err(|e| {
                    ApiError::Config(format!("{}: body is not a JSON object: {e}", req.path))
                })?,
                _ => Map::new(),
            };
            obj.insert(key.to_string(), value);
            req.body = Some(serde_json::to_vec(&obj).expect("json serializes").into());
        }
    }
    Ok(())
}

fn records_at(data: &mut Value, path: &str) -> Option<Vec<Value>> {
    let mut cur = data;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        cur = cur.get_mut(part)?;
    }
    match cur.take() {
        Value::Array(v) => Some(v),
        Value::Null => Some(Vec::new()),
        _ => None,
    }
}

async fn fetch(mut st: State) -> Result<Option<(Page, State)>> {
    let mut req = st.spec.request.clone();
    let size = Value::from(st.spec.page_size);
    let number = match &st.next {
        Next::Done => return Ok(None),
        Next::Token(tok) => {
            set_param(&mut req, st.spec.params_in, "page_size", size)?;
            if let Some(t) = tok {
                set_param(
                    &mut req,
                    st.spec.params_in,
                    "page_token",
                    Value::String(t.clone()),
                )?;
            }
            None
        }
        Next::Number(n) => {
            set_param(&mut req, st.spec.params_in, "page_size", size)?;
            set_param(&mut req, st.spec.params_in, "page_number", Value::from(*n))?;
            Some(*n)
        }
    };
    let mut resp = st.client.send(&req).await?;
    let ctx = || RequestContext {
        path: req.path.clone(),
        shop: None,
    };
    let records = records_at(&mut resp.data, &st.spec.records).ok_or_else(|| ApiError::Decode {
        ctx: ctx(),
        status: 200,
        detail: format!("data.{} is not an array", st.spec.records),
    })?;
    let total = resp
        .data
        .get("total_count")
        .or_else(|| resp.data.get("total"))
        .and_then(Value::as_u64);
    match (st.index, st.first_total, total) {
        (0, _, t) => st.first_total = t,
        (page, Some(first), Some(now)) if now != first => {
            return Err(ApiError::Shifted {
                ctx: ctx(),
                first,
                now,
                page,
            });
        }
        _ => {}
    }
    st.seen += records.len() as u64;
    let mut next_token = None;
    st.next = match number {
        None => match resp.data.get("next_page_token").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => {
                if !st.seen_tokens.insert(t.to_string()) {
                    return Err(ApiError::Decode {
                        ctx: ctx(),
                        status: 200,
                        detail: format!("next_page_token repeated ({t}); pagination would loop"),
                    });
                }
                next_token = Some(t.to_string());
                Next::Token(Some(t.to_string()))
            }
            _ => Next::Done,
        },
        Some(n) => {
            let short = (records.len() as u32) < st.spec.page_size;
            if short || records.is_empty() || total.is_some_and(|t| st.seen >= t) {
                Next::Done
            } else {
                Next::Number(n + 1)
            }
        }
    };
    let page = Page {
        index: st.index,
        records,
        request_id: resp.request_id,
        total,
        next_token,
    };
    st.index += 1;
    Ok(Some((page, st)))
}

/// Walks every page of `spec`, in order, as a stream. An error ends the stream.
pub fn pages(client: ApiClient, spec: PageSpec) -> impl Stream<Item = Result<Page>> {
    let next = match spec.style {
        PageStyle::Token => Next::Token(None),
        PageStyle::Number => Next::Number(1),
    };
    let st = State {
        client,
        spec,
        next,
        index: 0,
        seen: 0,
        seen_tokens: Default::default(),
        first_total: None,
    };
    futures::stream::try_unfold(st, fetch)
}

/// Resumes a token-style walk from a checkpointed `next_token`.
pub fn pages_from(
    client: ApiClient,
    spec: PageSpec,
    token: String,
) -> impl Stream<Item = Result<Page>> {
    let st = State {
        client,
        spec,
        next: Next::Token(Some(token)),
        index: 0,
        seen: 0,
        seen_tokens: Default::default(),
        first_total: None,
    };
    futures::stream::try_unfold(st, fetch)
}
