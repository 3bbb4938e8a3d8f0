//! Steps 1–2 of a window: its list calls, every page of each, converted into the stream's
//! tables as they arrive, with the ids its detail streams are to be asked about.

use std::collections::{BTreeMap, HashSet};

use arrow::array::RecordBatch;
use futures::TryStreamExt;
use serde_json::Value;
use tracing::debug;

use super::detail::DetailId;
use super::request::{
    ListCall, call_ranges, key_paths, page_spec, record_key, records_of, seek_field,
};
use super::{Extractor, SEEK_RESTARTS, Shop, Window};
use crate::api::error::RequestContext;
use crate::api::paginate;
use crate::api::{ApiError, ApiRequest};
use crate::pipeline::convert::{RowContext, StreamConverter};
use crate::pipeline::spec::{DetailSpec, Pagination, ParamsIn, StreamSpec};
use crate::pipeline::{PipelineError, Result};

/// What a window's list calls gave.
pub(super) struct Listed<'s> {
    /// The stream's tables (its own first, then child tables).
    pub tables: BTreeMap<String, RecordBatch>,
    /// Pages fetched.
    pub pages: u32,
    /// Each detail stream with the ids listed for it and the call (index into
    /// `call_params`) that listed each.
    pub details: Vec<(&'s StreamSpec, Vec<(usize, DetailId)>)>,
    /// Per call: its window params as query text.
    pub call_params: Vec<Vec<(String, String)>>,
}

/// Where the records of one list call go: the converter, and the detail ids they carry.
struct PageSink<'a, 's> {
    conv: &'a mut StreamConverter,
    ctx: &'a RowContext,
    stamp: &'a serde_json::Map<String, Value>,
    id_specs: &'a [&'s DetailSpec],
    ids: &'a mut [Vec<(usize, DetailId)>],
    call: usize,
}

impl PageSink<'_, '_> {
    fn push(&mut self, records: &[Value], page: u32, request_id: &str) -> Result<()> {
        let stamped: Vec<Value>;
        let records = if self.stamp.is_empty() {
            records
        } else {
            stamped = records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    if let Some(o) = r.as_object_mut() {
                        o.extend(self.stamp.clone());
                    }
                    r
                })
                .collect();
            &stamped
        };
        self.conv
            .push_page(records, self.ctx, request_id)
            .map_err(|source| PipelineError::Convert {
                page,
                request_id: request_id.to_string(),
                source,
            })?;
        for (i, spec) in self.id_specs.iter().enumerate() {
            self.ids[i].extend(
                records
                    .iter()
                    .filter_map(|r| DetailId::of(r, spec))
                    .map(|id| (self.call, id)),
            );
        }
        Ok(())
    }
}

/// One pass of a paged walk: how it ended, the last record's sort value and, for sorted
/// lists, the distinct keys read against the total the list reported.
struct Pass {
    result: Result<()>,
    last: Option<Value>,
    keys: usize,
    total: Option<u64>,
}

impl Extractor {
    /// Every list call of `window` (one, or one per `per_call` range), every page of each.
    pub(super) async fn fetch_list<'s>(
        &'s self,
        shop: &Shop,
        stream: &'s StreamSpec,
        window: Window,
        ctx: &RowContext,
    ) -> Result<Listed<'s>> {
        let mut conv = self.converter(stream);
        let detail_streams: Vec<&StreamSpec> = self.pipelines.children(&stream.name).collect();
        let id_specs: Vec<&DetailSpec> = detail_streams.iter().filter_map(|d| d.detail()).collect();
        let mut ids: Vec<Vec<(usize, DetailId)>> = vec![Vec::new(); detail_streams.len()];
        let calls = call_ranges(stream.window(), window, ctx.tz);
        let mut pages = 0u32;
        let mut call_params = Vec::new();
        for (call, range) in calls.iter().enumerate() {
            let ListCall {
                request,
                stamp,
                params,
            } = self.list_call(stream, shop, range);
            call_params.push(params);
            let mut sink = PageSink {
                conv: &mut conv,
                ctx,
                stamp: &stamp,
                id_specs: &id_specs,
                ids: &mut ids,
                call,
            };
            match stream.pagination {
                Pagination::None => {
                    let resp = self.client.send(&request).await?;
                    let records =
                        records_of(resp.data, &stream.records, &stream.path, &resp.request_id)?;
                    sink.push(&records, pages, &resp.request_id)?;
                    pages += 1;
                }
                _ => {
                    self.walk(shop, stream, window, request, &mut sink, &mut pages)
                        .await?
                }
            }
        }
        debug!(pages, calls = calls.len(), "list pages fetched");
        Ok(Listed {
            tables: conv.finish(),
            pages,
            details: detail_streams.into_iter().zip(ids).collect(),
            call_params,
        })
    }

    /// Walks a paged list call. A walk the list shifted under (`ApiError::Shifted`) goes on
    /// from the last record's sort value when the list is sorted ascending by its window
    /// field: records at that value are read twice (idempotent), none is skipped.
    /// Otherwise the error reaches `run_window`, which reads the window again whole.
    async fn walk(
        &self,
        shop: &Shop,
        stream: &StreamSpec,
        window: Window,
        mut req: ApiRequest,
        sink: &mut PageSink<'_, '_>,
        pages: &mut u32,
    ) -> Result<()> {
        let seek = seek_field(stream);
        // A record that moves inside the window (the index catching up with an update)
        // leaves the total as it was but still shifts the offsets: a walk of such a list
        // also counts the distinct keys it read, and one that read fewer than the total
        // fails as shifted.
        let key_paths = match seek {
            Some(_) => key_paths(&self.schemas[stream.main_table()]),
            None => Vec::new(),
        };
        let mut restarts = 0u32;
        let mut from: Option<Value> = None;
        loop {
            let first = restarts == 0;
            let pass = self
                .walk_once(stream, window, req.clone(), sink, pages, &key_paths, first)
                .await;
            if pass.result.is_ok() && pass.total.is_some_and(|t| (pass.keys as u64) < t) {
                return Err(PipelineError::Api(ApiError::Shifted {
                    ctx: RequestContext {
                        path: stream.path.clone(),
                        shop: Some(shop.id.clone()),
                    },
                    first: pass.total.unwrap_or_default(),
                    now: pass.keys as u64,
                    page: *pages,
                }));
            }
            match (pass.result, seek, pass.last) {
                // Goes on only when it moved: a page of records all at the value it
                // started from would restart in place.
                (
                    Err(PipelineError::Api(e @ ApiError::Shifted { .. })),
                    Some((_, start)),
                    Some(v),
                ) if restarts < SEEK_RESTARTS && from.as_ref() != Some(&v) => {
                    debug!(error = %e, from = %v, "list shifted; walking on from the last record");
                    let params_in = match stream.window().map(|w| w.params_in) {
                        Some(ParamsIn::Body) => paginate::ParamsIn::Body,
                        _ => paginate::ParamsIn::Query,
                    };
                    paginate::set_param(&mut req, params_in, start, v.clone())?;
                    from = Some(v);
                    restarts += 1;
                }
                (r, _, _) => return r,
            }
        }
    }

    /// One pass of the paginator over `req`. Only the first pass of a window may find it
    /// too large (more records than `max_records`): the caller then splits it.
    #[allow(clippy::too_many_arguments)]
    async fn walk_once(
        &self,
        stream: &StreamSpec,
        window: Window,
        req: ApiRequest,
        sink: &mut PageSink<'_, '_>,
        pages: &mut u32,
        key_paths: &[&str],
        first: bool,
    ) -> Pass {
        let seek = seek_field(stream).map(|(field, _)| field);
        let max = stream.window().and_then(|w| w.max_records);
        let mut s = std::pin::pin!(paginate::pages(self.client.clone(), page_spec(stream, req)));
        let mut last: Option<Value> = None;
        let mut keys: HashSet<String> = HashSet::new();
        let mut total: Option<u64> = None;
        let result: Result<()> = async {
            while let Some(page) = s.try_next().await? {
                if !key_paths.is_empty() {
                    total = page.total.or(total);
                    keys.extend(page.records.iter().map(|r| record_key(r, key_paths)));
                }
                if let (true, 0, Some(total), Some(max)) = (first, page.index, page.total, max) {
                    // Split windows longer than one second; a single busier second lands whole.
                    if total > max && window.to - window.from > 1 {
                        return Err(PipelineError::WindowTooLarge { total, max });
                    }
                }
                self.check_stop()?;
                sink.push(&page.records, page.index, &page.request_id)?;
                *pages += 1;
                if let Some(v) = seek.and_then(|f| page.records.last()?.get(f)) {
                    last = Some(v.clone());
                }
            }
            Ok(())
        }
        .await;
        Pass {
            result,
            last,
            keys: keys.len(),
            total,
        }
    }
}
