//! Real-world behaviour the sandbox can switch on (all off by default), so tests see the
//! API the way production does over months rather than the way the client expects it.
//!
//! - **Index lag** ([`Realism::index_lag`]): search endpoints (`…/search`) answer from an
//!   index that trails writes. A record changed less than the lag ago is listed as it was
//!   before (or not at all, when it is newer than the lag); detail endpoints read the
//!   primary store and are current. TikTok documents Order Search as a search API and
//!   sellers report updates showing up late in it; the size of the lag is a guess, and
//!   the sandbox applies it to every `…/search` endpoint, which is harsher than the
//!   evidence.
//! - **Omitted list** ([`Realism::omit_list_once`]): the next answer of the listed path
//!   templates comes back `{"code":0,"data":{}}` — success, but without its list field.
//!   Seen in practice from gateways that time out internally; how often is a guess.
//! - **A new market** ([`Realism::unknown_region_shop`]): that shop's region is reported as
//!   `JP`, a market TikTok Shop opened after the client's region table was written.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

/// The switches. `Default` is all off: the sandbox answers as a perfect API would.
#[derive(Debug, Clone, Default)]
pub struct Realism {
    /// Search endpoints lag writes by this much.
    pub index_lag: Option<Duration>,
    /// Path templates (as routed, e.g. `/logistics/202309/warehouses`) whose next
    /// successful answer omits its list field, once each.
    pub omit_list_once: Vec<String>,
    /// Index of a shop whose region `/authorization/202309/shops` reports as `JP`.
    pub unknown_region_shop: Option<usize>,
}

/// The region [`Realism::unknown_region_shop`] reports.
pub const NEW_MARKET: &str = "JP";

/// What a running sandbox still has to do of [`Realism`].
#[derive(Debug, Default)]
pub(crate) struct RealismState {
    omit_pending: Mutex<BTreeSet<String>>,
}

impl RealismState {
    pub(crate) fn new(r: &Realism) -> RealismState {
        RealismState {
            omit_pending: Mutex::new(r.omit_list_once.iter().cloned().collect()),
        }
    }

    /// Queues one more list-less answer of `template`.
    pub(crate) fn omit_next(&self, template: &str) {
        self.omit_pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(template.to_string());
    }

    /// Whether this answer of `template` drops its list (at most once per arming).
    pub(crate) fn take_omit(&self, template: &str) -> bool {
        self.omit_pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(template)
    }
}

/// Whether `template` answers from the lagging search index.
pub(crate) fn is_search(template: &str) -> bool {
    template.ends_with("/search")
}
