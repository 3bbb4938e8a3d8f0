//! Requests and answers: the calls a window makes (window params, scope credentials,
//! fixed body), how a stream pages, and reading records out of an answer.

use chrono_tz::Tz;
use serde_json::Value;

use super::{Extractor, Shop, Window, windows};
use crate::api::ApiRequest;
use crate::api::client::Credential;
use crate::api::paginate::{self, PageSpec, PageStyle};
use crate::pipeline::convert::StreamConverter;
use crate::pipeline::schema::TableSchema;
use crate::pipeline::spec::{
    Method, Pagination, ParamsIn, Scope, StreamSpec, WindowFormat, WindowSpec,
};
use crate::pipeline::{PipelineError, Result};

/// The (start, end) params of each call a window makes: one call for the whole window, or
/// one per `window.per_call` (reports answer one aggregate per call, so a daily report is
/// one call per day; every call of a window still lands in one commit). Local-date windows
/// step through whole shop-local days; a window shorter than one makes no call.
pub(super) fn call_ranges(w: Option<&WindowSpec>, window: Window, tz: Tz) -> Vec<(Value, Value)> {
    let Some(w) = w else {
        return vec![(Value::Null, Value::Null)];
    };
    let step = w.per_call.map(|d| d.as_secs() as i64);
    match w.format {
        WindowFormat::Unix => {
            let parts = match step {
                Some(step) => windows(window.from, window.to, step),
                None => vec![window],
            };
            parts
                .into_iter()
                .map(|p| {
                    let end = if w.end_inclusive { p.to - 1 } else { p.to };
                    (p.from.into(), end.into())
                })
                .collect()
        }
        WindowFormat::LocalDate => {
            let day = |t: i64| {
                use chrono::TimeZone;
                tz.timestamp_opt(t, 0)
                    .single()
                    .map(|d| d.date_naive())
                    .unwrap_or_default()
            };
            let (s, e) = (day(window.from), day(window.to));
            let days = step.map_or(i64::MAX, |st| (st / 86_400).max(1));
            let mut out = Vec::new();
            let mut d = s;
            while d < e {
                let next = (d + chrono::Duration::days(days.min((e - d).num_days()))).min(e);
                out.push((d.to_string().into(), next.to_string().into()));
                d = next;
            }
            out
        }
    }
}

pub(super) fn record_id(v: &Value, field: &str) -> Option<String> {
    match v.get(field)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The stream's fixed JSON body fields (`body = { … }` in its pipeline file).
pub(super) fn fixed_body(stream: &StreamSpec) -> serde_json::Map<String, Value> {
    stream
        .body
        .iter()
        .map(|(k, v)| (k.clone(), toml_to_json(v)))
        .collect()
}

fn toml_to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl Extractor {
    pub(super) fn converter(&self, stream: &StreamSpec) -> StreamConverter {
        let main = self.schemas[&stream.tables[0]].clone();
        let children = stream.tables[1..]
            .iter()
            .map(|t| self.schemas[t].clone())
            .collect();
        StreamConverter::new(main, children)
    }

    pub(super) fn base_request(
        &self,
        stream: &StreamSpec,
        shop: &Shop,
        body: serde_json::Map<String, Value>,
    ) -> ApiRequest {
        let mut req = if stream.method == Method::Post {
            ApiRequest::post(&stream.path, &Value::Object(body))
        } else {
            ApiRequest::get(&stream.path)
        };
        for (k, v) in &stream.query {
            req = req.query(k, v);
        }
        req = match stream.scope {
            Scope::Shop => req.shop(&shop.cipher),
            Scope::Seller => req.credential(Credential::Seller(shop.cipher.clone())),
            Scope::Partner => {
                // Resolved before the window's first call (`partner_asset`); an empty
                // cipher is refused by the API with its own error.
                let asset = self
                    .assets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&shop.id)
                    .cloned()
                    .unwrap_or_default();
                req.credential(Credential::Partner {
                    shop: shop.cipher.clone(),
                    asset,
                })
            }
        };
        req.family(stream.family().to_string())
    }

    /// The request of one list call of a window: the window params `(start, end)` in the
    /// query or body as the stream says, the fields to stamp into each record, and the
    /// params as query text (for detail streams asking about the same days).
    pub(super) fn list_call(
        &self,
        stream: &StreamSpec,
        shop: &Shop,
        (start, end): &(Value, Value),
    ) -> ListCall {
        let mut body = fixed_body(stream);
        let mut query = Vec::new();
        let mut stamp = serde_json::Map::new();
        let mut params = Vec::new();
        if let Some(w) = stream.window() {
            if w.stamp {
                stamp.insert(w.start_param.clone(), start.clone());
                stamp.insert(w.end_param.clone(), end.clone());
            }
            params.push((w.start_param.clone(), text(start)));
            params.push((w.end_param.clone(), text(end)));
            match w.params_in {
                ParamsIn::Body => {
                    body.insert(w.start_param.clone(), start.clone());
                    body.insert(w.end_param.clone(), end.clone());
                }
                ParamsIn::Query => query.extend(params.iter().cloned()),
            }
        }
        let mut request = self.base_request(stream, shop, body);
        for (k, v) in query {
            request = request.query(k, v);
        }
        ListCall {
            request,
            stamp,
            params,
        }
    }

    /// The `category_asset_cipher` Affiliate Partner calls for `shop` send: the seller's
    /// category asset for the shop's market, found as the pipelines' `[partner_asset]`
    /// says (looked up once per shop).
    pub(super) async fn partner_asset(&self, shop: &Shop) -> Result<String> {
        if let Some(a) = self
            .assets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&shop.id)
        {
            return Ok(a.clone());
        }
        let Some(lookup) = &self.pipelines.partner_asset else {
            return Err(PipelineError::Invalid(
                "no [partner_asset] in the pipeline files: partner-scoped streams cannot run"
                    .into(),
            ));
        };
        let req = ApiRequest::get(&lookup.path)
            .credential(Credential::Seller(shop.cipher.clone()))
            .family(lookup.path.clone());
        let resp = self.client.send(&req).await?;
        let assets = records_of(resp.data, &lookup.records, &lookup.path, &resp.request_id)?;
        let asset = assets
            .iter()
            .find(|a| {
                a.get(&lookup.market_field).and_then(Value::as_str) == Some(shop.region.as_str())
            })
            .and_then(|a| record_id(a, &lookup.cipher_field))
            .ok_or_else(|| {
                PipelineError::Invalid(format!(
                    "shop {} ({}): the seller has no category asset for market {} ({} assets from {}); Affiliate Partner streams need the partner's authorization for it",
                    shop.id,
                    shop.name,
                    shop.region,
                    assets.len(),
                    lookup.path
                ))
            })?;
        self.assets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(shop.id.clone(), asset.clone());
        Ok(asset)
    }
}

/// One list call of a window (see [`Extractor::list_call`]).
pub(super) struct ListCall {
    /// The request, window params included.
    pub request: ApiRequest,
    /// Fields copied into every record (`stamp = true` windows).
    pub stamp: serde_json::Map<String, Value>,
    /// The window params as query text.
    pub params: Vec<(String, String)>,
}

/// A JSON value as query text (strings without their quotes).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Puts the parent id a detail call was made for into each record (as `field`), unless the
/// API already sends it.
pub(super) fn inject_id(records: &mut [Value], field: &str, id: &str) {
    for r in records {
        if let Some(o) = r.as_object_mut() {
            o.entry(field.to_string())
                .or_insert_with(|| Value::String(id.to_string()));
        }
    }
}

/// Where the primary key of `schema`'s records is (JSON paths).
pub(super) fn key_paths(schema: &TableSchema) -> Vec<&str> {
    schema
        .primary_key
        .iter()
        .filter_map(|k| schema.columns.iter().find(|c| &c.name == k))
        .map(|c| c.path())
        .collect()
}

/// The identity of `record`: the values at `paths`, joined.
pub(super) fn record_key(record: &Value, paths: &[&str]) -> String {
    paths
        .iter()
        .map(|p| {
            p.split('.')
                .try_fold(record, |v, k| v.get(k))
                .map_or_else(String::new, |v| v.to_string())
        })
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// The record field a shifted walk of `stream` can go on from, and the window parameter
/// that takes it: the list is sorted ascending (`sort_order = "ASC"`) by `sort_field`, and
/// the window's start parameter is `<sort_field>_ge`.
pub(super) fn seek_field(stream: &StreamSpec) -> Option<(&str, &str)> {
    let w = stream.window()?;
    let field = stream.query.get("sort_field")?;
    (stream.query.get("sort_order").map(String::as_str) == Some("ASC")
        && w.start_param == format!("{field}_ge"))
    .then_some((field.as_str(), w.start_param.as_str()))
}

/// How `stream` pages, for the one paginator.
pub(super) fn page_spec(stream: &StreamSpec, request: ApiRequest) -> PageSpec {
    PageSpec {
        request,
        style: if stream.pagination == Pagination::PageToken {
            PageStyle::Token
        } else {
            PageStyle::Number
        },
        page_size: stream.page_size,
        params_in: match stream.page_params_in {
            ParamsIn::Query => paginate::ParamsIn::Query,
            ParamsIn::Body => paginate::ParamsIn::Body,
        },
        records: stream.records.clone(),
    }
}

/// The records at `path` under `data`. A missing field is an error, as in the paginator:
/// an answer without its list is not an answer of "none" (a snapshot would otherwise
/// delete every row of the shop). `null` reads as no records, like the paginator.
pub(super) fn records_of(
    mut data: Value,
    path: &str,
    request: &str,
    request_id: &str,
) -> Result<Vec<Value>> {
    let mut cur = &mut data;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        match cur.get_mut(part) {
            Some(v) => cur = v,
            None => {
                return Err(PipelineError::Api(crate::api::ApiError::Decode {
                    ctx: crate::api::error::RequestContext {
                        path: request.to_string(),
                        shop: None,
                    },
                    status: 200,
                    detail: format!(
                        "data.{path} is missing (request {request_id}); the answer is incomplete, nothing of the window is written"
                    ),
                }));
            }
        }
    }
    Ok(match cur.take() {
        Value::Array(v) => v,
        Value::Null => Vec::new(),
        other => vec![other],
    })
}
