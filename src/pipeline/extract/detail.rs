//! Step 3 of a window: the detail streams, called for the ids the list (or a detail
//! stream above them) returned, breadth first.

use std::collections::{BTreeMap, VecDeque};

use arrow::array::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use super::request::{fixed_body, inject_id, page_spec, record_id, records_of};
use super::{Extractor, Shop};
use crate::api::ApiRequest;
use crate::api::paginate;
use crate::pipeline::convert::{RowContext, StreamConverter};
use crate::pipeline::spec::{DetailSpec, Pagination, ParamsIn, StreamSpec};
use crate::pipeline::{PipelineError, Result};

/// A detail stream's next call group: the stream, its ids, the window params it sends.
type PendingDetail<'s> = (&'s StreamSpec, Vec<DetailId>, Vec<(String, String)>);

/// A parent record's id for a detail call, with the parent fields the detail stream
/// `carry`s into its records (sorted and deduplicated by id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct DetailId {
    pub id: String,
    carried: Vec<(String, String)>,
}

impl DetailId {
    /// The id (and carried fields) `detail` takes from parent record `v`.
    pub(super) fn of(v: &Value, detail: &DetailSpec) -> Option<DetailId> {
        let id = record_id(v, &detail.id_field)?;
        let carried = detail
            .carry
            .iter()
            .filter_map(|(from, to)| Some((to.clone(), v.get(from).map(Value::to_string)?)))
            .collect();
        Some(DetailId { id, carried })
    }

    /// `template` with `{id}` and each `{carried field}` replaced by its value: a path
    /// such as `/campaigns/{campaign_id}/products/{id}/performance`.
    fn fill(&self, template: &str) -> String {
        let mut out = template.replace("{id}", &self.id);
        for (k, json) in &self.carried {
            let v = match serde_json::from_str::<Value>(json) {
                Ok(Value::String(s)) => s,
                _ => json.clone(),
            };
            out = out.replace(&format!("{{{k}}}"), &v);
        }
        out
    }

    /// Writes the carried fields into `records` (fields the API sends win).
    fn stamp(&self, records: &mut [Value]) {
        for r in records {
            if let Some(o) = r.as_object_mut() {
                for (k, json) in &self.carried {
                    let v = serde_json::from_str(json).unwrap_or(Value::Null);
                    o.entry(k.clone()).or_insert(v);
                }
            }
        }
    }
}

/// What the detail streams of a window fetched.
#[derive(Default)]
pub(super) struct Details<'s> {
    /// Batches per (detail stream, table).
    pub batches: BTreeMap<(String, String), Vec<RecordBatch>>,
    /// Detail streams in the order they were first called (their commit order).
    pub order: Vec<&'s StreamSpec>,
    /// Pages fetched.
    pub pages: u32,
}

/// One detail stream's calls: their tables, and the ids they give its own detail streams.
struct Fetched<'s> {
    tables: BTreeMap<String, RecordBatch>,
    pages: u32,
    deeper: Vec<(&'s StreamSpec, Vec<DetailId>)>,
}

/// The ids one detail stream's records give its own detail streams.
struct Deeper<'s>(Vec<(&'s StreamSpec, Vec<DetailId>)>);

impl Deeper<'_> {
    fn collect(&mut self, records: &[Value]) {
        for (k, ids) in &mut self.0 {
            if let Some(spec) = k.detail() {
                ids.extend(records.iter().filter_map(|r| DetailId::of(r, spec)));
            }
        }
    }
}

/// A converter for one detail stream's answers, counting pages.
struct Sink<'a> {
    conv: StreamConverter,
    ctx: &'a RowContext,
    pages: u32,
}

impl Sink<'_> {
    fn push(&mut self, records: &[Value], request_id: &str) -> Result<()> {
        self.conv
            .push_page(records, self.ctx, request_id)
            .map_err(|source| PipelineError::Convert {
                page: self.pages,
                request_id: request_id.to_string(),
                source,
            })?;
        self.pages += 1;
        Ok(())
    }
}

impl Extractor {
    /// The detail streams for the ids a window listed, then their own detail streams for
    /// the ids those calls returned (a delivery option's shipping providers), breadth
    /// first. A detail stream that asks for its parent's window gets the ids of each call
    /// with that call's dates; the others get all ids once.
    pub(super) async fn fetch_detail_tree<'s>(
        &'s self,
        shop: &Shop,
        ctx: &RowContext,
        listed: Vec<(&'s StreamSpec, Vec<(usize, DetailId)>)>,
        call_params: &[Vec<(String, String)>],
    ) -> Result<Details<'s>> {
        let mut pending: VecDeque<PendingDetail<'s>> = VecDeque::new();
        for (d, listed) in listed {
            if d.detail().is_some_and(|x| x.window) {
                let mut by_call: BTreeMap<usize, Vec<DetailId>> = BTreeMap::new();
                for (call, id) in listed {
                    by_call.entry(call).or_default().push(id);
                }
                for (call, ids) in by_call {
                    pending.push_back((d, ids, call_params[call].clone()));
                }
            } else {
                let all = listed.into_iter().map(|(_, id)| id).collect();
                pending.push_back((d, all, Vec::new()));
            }
        }
        let mut out = Details::default();
        while let Some((d, mut ids, params)) = pending.pop_front() {
            // One call per id and carried values: a creator promoting two products of a
            // campaign is asked about each.
            ids.sort();
            ids.dedup();
            self.check_stop()?;
            let f = self.fetch_details(shop, d, &ids, ctx, &params).await?;
            out.pages += f.pages;
            if !out.order.iter().any(|x| x.name == d.name) {
                out.order.push(d);
            }
            for (t, b) in f.tables {
                out.batches.entry((d.name.clone(), t)).or_default().push(b);
            }
            pending.extend(
                f.deeper
                    .into_iter()
                    .map(|(k, ids)| (k, ids, params.clone())),
            );
        }
        Ok(out)
    }

    /// One detail stream's calls for `ids`.
    async fn fetch_details<'s>(
        &'s self,
        shop: &Shop,
        d: &'s StreamSpec,
        ids: &[DetailId],
        ctx: &RowContext,
        window: &[(String, String)],
    ) -> Result<Fetched<'s>> {
        let Some(detail) = d.detail() else {
            return Err(PipelineError::Invalid(format!(
                "stream `{}` is not a detail stream",
                d.name
            )));
        };
        let mut deeper = Deeper(
            self.pipelines
                .children(&d.name)
                .map(|k| (k, Vec::new()))
                .collect(),
        );
        let requests = self.detail_requests(shop, d, detail, ids, window);
        let mut sink = Sink {
            conv: self.converter(d),
            ctx,
            pages: 0,
        };
        // Paged per-id calls (the transactions of a statement): each id's pages through the
        // one paginator, ids one after another.
        if d.pagination != Pagination::None && detail.ids_param.is_none() {
            for (req, id) in requests.into_iter().zip(ids) {
                let mut s = std::pin::pin!(paginate::pages(self.client.clone(), page_spec(d, req)));
                while let Some(mut page) = s.try_next().await? {
                    self.check_stop()?;
                    if let Some(field) = detail.id_as.as_deref() {
                        inject_id(&mut page.records, field, &id.id);
                    }
                    id.stamp(&mut page.records);
                    stamp_window(detail, window, &mut page.records);
                    deeper.collect(&page.records);
                    sink.push(&page.records, &page.request_id)?;
                }
            }
        } else {
            self.fetch_by_call(d, detail, requests, ids, window, &mut sink, &mut deeper)
                .await?;
        }
        Ok(Fetched {
            tables: sink.conv.finish(),
            pages: sink.pages,
            deeper: deeper.0,
        })
    }

    /// One call per id (the id in the path or a query param) or per batch of ids.
    fn detail_requests(
        &self,
        shop: &Shop,
        d: &StreamSpec,
        detail: &DetailSpec,
        ids: &[DetailId],
        window: &[(String, String)],
    ) -> Vec<ApiRequest> {
        let with_window = |mut r: ApiRequest| {
            if detail.window {
                for (k, v) in window {
                    r = r.query(k.clone(), v.clone());
                }
            }
            r
        };
        match &detail.ids_param {
            Some(param) => ids
                .chunks(detail.batch.max(1))
                .map(|chunk| {
                    let chunk: Vec<&str> = chunk.iter().map(|x| x.id.as_str()).collect();
                    if detail.ids_in == ParamsIn::Body {
                        let mut body = fixed_body(d);
                        body.insert(param.clone(), Value::from(chunk));
                        with_window(self.base_request(d, shop, body))
                    } else {
                        with_window(self.base_request(d, shop, Default::default()))
                            .query(param, chunk.join(","))
                    }
                })
                .collect(),
            None => ids
                .iter()
                .map(|id| {
                    let mut spec = d.clone();
                    spec.path = id.fill(&d.path);
                    for v in spec.query.values_mut() {
                        *v = id.fill(v);
                    }
                    with_window(self.base_request(&spec, shop, fixed_body(d)))
                        .family(d.family().to_string())
                })
                .collect(),
        }
    }

    /// Unpaged detail calls, four at a time, answers in request order.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_by_call(
        &self,
        d: &StreamSpec,
        detail: &DetailSpec,
        requests: Vec<ApiRequest>,
        ids: &[DetailId],
        window: &[(String, String)],
        sink: &mut Sink<'_>,
        deeper: &mut Deeper<'_>,
    ) -> Result<()> {
        let client = &self.client;
        let mut responses = futures::stream::iter(requests)
            .map(|r| async move { client.send(&r).await })
            .buffered(4);
        // Per-id calls (a path id, or one id per call in a query param) answer in request
        // order: response `n` belongs to `ids[n]`.
        let per_id = detail.ids_param.is_none() || detail.batch <= 1;
        let inject = detail.id_as.as_deref().filter(|_| per_id);
        let mut n = 0usize;
        while let Some(resp) = responses.next().await {
            self.check_stop()?;
            let resp = resp?;
            let mut records = records_of(resp.data, &d.records, &d.path, &resp.request_id)?;
            if let (Some(field), Some(id)) = (inject, ids.get(n)) {
                inject_id(&mut records, field, &id.id);
            }
            if per_id {
                if let Some(id) = ids.get(n) {
                    id.stamp(&mut records);
                }
            } else if let Some(field) = detail.id_as.as_deref().filter(|_| !detail.carry.is_empty())
            {
                // Batched calls: each record names its parent under `id_as`.
                for r in &mut records {
                    let parent = record_id(r, field)
                        .and_then(|k| ids.binary_search_by(|x| x.id.as_str().cmp(&k)).ok());
                    if let Some(i) = parent {
                        ids[i].stamp(std::slice::from_mut(r));
                    }
                }
            }
            stamp_window(detail, window, &mut records);
            deeper.collect(&records);
            sink.push(&records, &resp.request_id)?;
            n += 1;
        }
        Ok(())
    }
}

/// Writes the parent's window params into records lacking them (`window = true` details).
fn stamp_window(detail: &DetailSpec, window: &[(String, String)], records: &mut [Value]) {
    if detail.window {
        for (k, v) in window {
            inject_id(records, k, v);
        }
    }
}
