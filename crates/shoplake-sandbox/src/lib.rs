//! The sandbox: a faithful local TikTok Shop Partner API (axum), deterministic from a seed.
//!
//! Same paths and versions, the same signing, envelope, pagination, error codes and rate
//! limits as the real API, plus a few routes outside the API paths for tests and demos:
//! `GET /__sandbox/truth` (ground truth per shop-local day), `GET|POST /__sandbox/clock`
//! (the data clock), `GET /__sandbox/stats` (requests and handler CPU per endpoint),
//! `GET /healthz`, and the consent page `GET /oauth/authorize`.
#![warn(missing_docs)]

mod affiliate;
pub mod analytics;
mod catalog;
mod collab;
mod content;
pub mod data;
pub mod drift;
mod engagement;
mod events;
mod fbt;
pub mod finance;
mod fulfillment;
pub mod gate;
mod global;
mod listing;
mod logistics;
mod mart_truth;
mod media;
mod oauth;
mod order_price;
mod orders;
mod paging;
mod partner;
mod products;
mod promotion;
pub mod realism;
mod returns;
pub mod rng;
mod seller;
mod service;
mod truth;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, get, on, post};
use serde::Serialize;
use tokio::net::TcpListener;

pub use data::DataConfig;
use data::{Dataset, View};
use gate::{ApiFault, Fault, FaultInjector, GateConfig, Incoming, RateLimits, Scope, TokenMint};

/// Default app key the sandbox accepts (documented in the README).
pub const DEFAULT_APP_KEY: &str = shoplake_tiktok::SANDBOX_APP_KEY;
/// Default app secret the sandbox accepts (documented in the README).
pub const DEFAULT_APP_SECRET: &str = shoplake_tiktok::SANDBOX_APP_SECRET;
/// The fixed demo authorization code.
pub const DEFAULT_AUTH_CODE: &str = "SANDBOX_AUTH_CODE";
/// Default data clock: 2026-11-01T00:00:00Z. Fixed, so a seed always gives the same data.
pub const DEFAULT_CLOCK: i64 = 1_793_491_200;

/// Everything the sandbox is started with.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// What data to generate.
    pub data: DataConfig,
    /// Accepted app key.
    pub app_key: String,
    /// App secret requests must be signed with.
    pub app_secret: String,
    /// Authorization code `token/get` accepts.
    pub auth_code: String,
    /// Access token lifetime.
    pub token_ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_ttl: Duration,
    /// Requests per second per endpoint before HTTP 429 (0 = unlimited).
    pub rps: f64,
    /// Share of requests that get an injected fault (5xx, timeout, 429, cut-off body,
    /// overlapping page, revoked token).
    pub faults: f64,
    /// How long an injected timeout hangs before answering 504.
    pub fault_delay: Duration,
    /// Schema drift in Order Search answers (see [`drift`]).
    pub drift: Option<drift::Drift>,
    /// Real-world behaviour: index lag, list-less answers, catalog changes, a late field
    /// (see [`realism`]).
    pub realism: realism::Realism,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            data: DataConfig {
                seed: 42,
                shops: 3,
                orders: 100_000,
                days: 365,
                clock: DEFAULT_CLOCK,
            },
            app_key: DEFAULT_APP_KEY.into(),
            app_secret: DEFAULT_APP_SECRET.into(),
            auth_code: DEFAULT_AUTH_CODE.into(),
            token_ttl: Duration::from_secs(4 * 3600),
            refresh_ttl: Duration::from_secs(365 * 86_400),
            rps: 50.0,
            faults: 0.0,
            fault_delay: Duration::from_secs(3),
            drift: None,
            realism: realism::Realism::default(),
        }
    }
}

/// Per-endpoint counters (`GET /__sandbox/stats`).
#[derive(Debug, Default, Clone, Serialize)]
pub struct EndpointStats {
    /// Requests received.
    pub requests: u64,
    /// Answered with code 0.
    pub ok: u64,
    /// Answered 429 by the rate limiter.
    pub rate_limited: u64,
    /// Injected faults.
    pub faults: u64,
    /// Other errors (auth, params …).
    pub errors: u64,
    /// Thread CPU spent in the gate + handler + rendering, in nanoseconds.
    pub cpu_ns: u64,
    /// Response bytes of successful answers.
    pub bytes: u64,
}

/// The running sandbox's state.
pub struct Sandbox {
    /// Start-up configuration.
    pub config: SandboxConfig,
    /// The generated world.
    pub data: Dataset,
    view: RwLock<Arc<View>>,
    /// Held while the clock moves (views rebuilt and swapped as one step).
    clock_write: Mutex<()>,
    /// The search index's view: the data as of `clock − index_lag`.
    search_view: RwLock<Arc<View>>,
    realism: realism::RealismState,
    mint: TokenMint,
    limits: RateLimits,
    faults: FaultInjector,
    /// Access tokens revoked by the `Revoked` fault.
    revoked: Mutex<std::collections::HashSet<String>>,
    /// The app secret in force (starts as `config.app_secret`; see [`Sandbox::rotate_app_secret`]).
    app_secret: RwLock<Arc<str>>,
    counter: AtomicU64,
    stats: Mutex<HashMap<&'static str, EndpointStats>>,
}

/// A verified API request as handlers see it.
pub struct Ctx {
    /// Shop index (shop-scoped endpoints).
    pub shop: Option<usize>,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Raw body.
    pub body: Bytes,
    /// Path parameters (`{product_id}` …).
    pub params: HashMap<String, String>,
    /// The data as of the current clock.
    pub view: Arc<View>,
}

impl Ctx {
    /// A required comma-joined id list in the query (`ids=1,2,3`) of 1 to `max` ids.
    pub fn ids(&self, param: &str, max: usize) -> Result<Vec<&str>, ApiFault> {
        let ids: Vec<&str> = self
            .q(param)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiFault::param(format_args!("{param} is required")))?
            .split(',')
            .collect();
        if ids.len() > max {
            return Err(ApiFault::param(format_args!(
                "{param} accepts at most {max} ids, got {}",
                ids.len()
            )));
        }
        Ok(ids)
    }

    /// A query parameter.
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

type Handler = fn(&Sandbox, &Ctx) -> Result<Vec<u8>, ApiFault>;

/// How a route authenticates.
#[derive(Clone, Copy)]
enum Auth {
    /// Token host: app_key + app_secret in the query, unsigned.
    TokenHost,
    /// Signed API call.
    Api(Scope),
}

/// Every API route the sandbox serves: method, path template, auth, handler.
const ROUTES: &[(Method, &str, Auth, Handler)] = &[
    (
        Method::GET,
        "/api/v2/token/get",
        Auth::TokenHost,
        oauth::token_get,
    ),
    (
        Method::GET,
        "/api/v2/token/refresh",
        Auth::TokenHost,
        oauth::token_refresh,
    ),
    (
        Method::GET,
        "/authorization/202309/shops",
        Auth::Api(Scope::Seller),
        oauth::shops,
    ),
    (
        Method::POST,
        "/order/202309/orders/search",
        Auth::Api(Scope::Shop),
        orders::search,
    ),
    (
        Method::GET,
        "/order/202507/orders",
        Auth::Api(Scope::Shop),
        orders::detail,
    ),
    (
        Method::GET,
        "/order/202309/orders",
        Auth::Api(Scope::Shop),
        orders::detail,
    ),
    (
        Method::POST,
        "/product/202502/products/search",
        Auth::Api(Scope::Shop),
        products::search,
    ),
    (
        Method::POST,
        "/affiliate_seller/202410/orders/search",
        Auth::Api(Scope::Shop),
        affiliate::search_orders,
    ),
    (
        Method::POST,
        "/affiliate_seller/202508/marketplace_creators/search",
        Auth::Api(Scope::Shop),
        affiliate::search_creators,
    ),
    (
        Method::GET,
        "/affiliate_seller/202508/marketplace_creators/{creator_user_id}",
        Auth::Api(Scope::Shop),
        affiliate::get_creator,
    ),
    (
        Method::POST,
        "/affiliate_seller/202412/open_collaborations/search",
        Auth::Api(Scope::Shop),
        affiliate::search_open_collaborations,
    ),
    (
        Method::POST,
        "/promotion/202309/activities/search",
        Auth::Api(Scope::Shop),
        promotion::search_activities,
    ),
    (
        Method::GET,
        "/promotion/202309/activities/{activity_id}",
        Auth::Api(Scope::Shop),
        promotion::get_activity,
    ),
    (
        Method::POST,
        "/promotion/202406/coupons/search",
        Auth::Api(Scope::Shop),
        promotion::search_coupons,
    ),
    (
        Method::GET,
        "/promotion/202406/coupons/{coupon_id}",
        Auth::Api(Scope::Shop),
        promotion::get_coupon,
    ),
    (
        Method::GET,
        "/customer_service/202309/conversations",
        Auth::Api(Scope::Shop),
        service::list_conversations,
    ),
    (
        Method::GET,
        "/customer_service/202309/conversations/{conversation_id}/messages",
        Auth::Api(Scope::Shop),
        service::messages,
    ),
    (
        Method::GET,
        "/customer_service/202601/conversations/{conversation_id}",
        Auth::Api(Scope::Shop),
        service::get_conversation,
    ),
    (
        Method::GET,
        "/customer_service/202309/agents/settings",
        Auth::Api(Scope::Shop),
        service::agent_settings,
    ),
    (
        Method::GET,
        "/customer_service/202407/performance",
        Auth::Api(Scope::Shop),
        service::performance,
    ),
    (
        Method::POST,
        "/product/202309/products/search",
        Auth::Api(Scope::Shop),
        products::search,
    ),
    (
        Method::GET,
        "/product/202309/products/{product_id}",
        Auth::Api(Scope::Shop),
        products::detail,
    ),
    (
        Method::POST,
        "/fulfillment/202309/packages/search",
        Auth::Api(Scope::Shop),
        fulfillment::search_packages,
    ),
    (
        Method::GET,
        "/fulfillment/202309/packages/{package_id}",
        Auth::Api(Scope::Shop),
        fulfillment::package_detail,
    ),
    (
        Method::GET,
        "/fulfillment/202309/combinable_packages/search",
        Auth::Api(Scope::Shop),
        fulfillment::combinable_packages,
    ),
    (
        Method::GET,
        "/fulfillment/202309/orders/{order_id}/tracking",
        Auth::Api(Scope::Shop),
        fulfillment::tracking,
    ),
    (
        Method::GET,
        "/fulfillment/202309/orders/split_attributes",
        Auth::Api(Scope::Shop),
        fulfillment::split_attributes,
    ),
    (
        Method::GET,
        "/order/202407/orders/{order_id}/price_detail",
        Auth::Api(Scope::Shop),
        order_price::price_detail,
    ),
    (
        Method::GET,
        "/order/202406/orders/{order_id}/external_orders",
        Auth::Api(Scope::Shop),
        order_price::external_orders,
    ),
    (
        Method::GET,
        "/return_refund/202512/orders/{order_id}/aftersale_eligibility",
        Auth::Api(Scope::Shop),
        returns::aftersale_eligibility,
    ),
    (
        Method::GET,
        "/return_refund/202309/reject_reasons",
        Auth::Api(Scope::Shop),
        returns::reject_reasons,
    ),
    (
        Method::GET,
        "/affiliate_partner/202405/campaigns",
        Auth::Api(Scope::Partner),
        partner::list_campaigns,
    ),
    (
        Method::GET,
        "/affiliate_partner/202405/campaigns/{campaign_id}",
        Auth::Api(Scope::Partner),
        partner::campaign_detail,
    ),
    (
        Method::GET,
        "/affiliate_partner/202405/campaigns/{campaign_id}/products",
        Auth::Api(Scope::Partner),
        partner::campaign_products,
    ),
    (
        Method::GET,
        "/affiliate_partner/202501/campaigns/{campaign_id}/products/performance",
        Auth::Api(Scope::Partner),
        partner::campaign_product_stats,
    ),
    (
        Method::GET,
        "/affiliate_partner/202501/campaigns/{campaign_id}/products/{product_id}/performance",
        Auth::Api(Scope::Partner),
        partner::product_creators,
    ),
    (
        Method::GET,
        "/affiliate_partner/202508/campaigns/{campaign_id}/products/{product_id}/creator/{creator_temp_id}/content/statistics",
        Auth::Api(Scope::Partner),
        partner::content_statistics,
    ),
    (
        Method::GET,
        "/affiliate_partner/202508/campaigns/{campaign_id}/products/{product_id}/creator/{creator_temp_id}/content/statistics/sample/status",
        Auth::Api(Scope::Partner),
        partner::sample_status,
    ),
    (
        Method::POST,
        "/affiliate_partner/202411/orders/search",
        Auth::Api(Scope::Partner),
        partner::tap_orders,
    ),
    (
        Method::POST,
        "/affiliate_partner/202504/cap_order/search",
        Auth::Api(Scope::Partner),
        partner::cap_orders,
    ),
    (
        Method::GET,
        "/product/202309/categories",
        Auth::Api(Scope::Shop),
        listing::list_categories,
    ),
    (
        Method::GET,
        "/product/202309/categories/{category_id}/attributes",
        Auth::Api(Scope::Shop),
        listing::category_attributes,
    ),
    (
        Method::GET,
        "/product/202309/categories/{category_id}/rules",
        Auth::Api(Scope::Shop),
        listing::category_rules,
    ),
    (
        Method::GET,
        "/product/202407/listing_schemas",
        Auth::Api(Scope::Shop),
        listing::listing_schemas,
    ),
    (
        Method::GET,
        "/product/202309/brands",
        Auth::Api(Scope::Shop),
        listing::list_brands,
    ),
    (
        Method::GET,
        "/product/202312/prerequisites",
        Auth::Api(Scope::Shop),
        listing::prerequisites,
    ),
    (
        Method::POST,
        "/product/202309/inventory/search",
        Auth::Api(Scope::Shop),
        listing::inventory_search,
    ),
    (
        Method::POST,
        "/product/202407/sizecharts/search",
        Auth::Api(Scope::Shop),
        listing::size_charts,
    ),
    (
        Method::GET,
        "/product/202405/products/diagnoses",
        Auth::Api(Scope::Shop),
        listing::diagnoses,
    ),
    (
        Method::GET,
        "/product/202405/products/seo_words",
        Auth::Api(Scope::Shop),
        listing::products_seo_words,
    ),
    (
        Method::GET,
        "/product/202405/products/suggestions",
        Auth::Api(Scope::Shop),
        listing::suggestions,
    ),
    (
        Method::POST,
        "/product/202409/opportunities/search",
        Auth::Api(Scope::Shop),
        listing::search_opportunities,
    ),
    (
        Method::POST,
        "/product/202409/candidate_products/search",
        Auth::Api(Scope::Shop),
        listing::search_candidates,
    ),
    (
        Method::POST,
        "/product/202506/combined_listing_recommendations/search",
        Auth::Api(Scope::Shop),
        listing::combined_listing_recommendations,
    ),
    (
        Method::POST,
        "/product/202312/global_products/search",
        Auth::Api(Scope::Seller),
        global::search_global_products,
    ),
    (
        Method::GET,
        "/product/202309/global_products/{global_product_id}",
        Auth::Api(Scope::Seller),
        global::global_product,
    ),
    (
        Method::GET,
        "/product/202507/products/{product_id}/replicated_products",
        Auth::Api(Scope::Seller),
        global::replicated_products,
    ),
    (
        Method::GET,
        "/product/202309/global_categories",
        Auth::Api(Scope::Seller),
        global::global_categories,
    ),
    (
        Method::GET,
        "/product/202309/categories/{category_id}/global_attributes",
        Auth::Api(Scope::Seller),
        global::global_attributes,
    ),
    (
        Method::GET,
        "/product/202309/categories/{category_id}/global_rules",
        Auth::Api(Scope::Seller),
        global::global_rules,
    ),
    (
        Method::GET,
        "/product/202507/global_listing_rules",
        Auth::Api(Scope::Seller),
        global::global_listing_rules,
    ),
    (
        Method::POST,
        "/product/202501/compliance/manufacturers/search",
        Auth::Api(Scope::Seller),
        global::manufacturers,
    ),
    (
        Method::POST,
        "/product/202501/compliance/responsible_persons/search",
        Auth::Api(Scope::Seller),
        global::responsible_persons,
    ),
    (
        Method::GET,
        "/fbt/202408/warehouses",
        Auth::Api(Scope::Shop),
        fbt::list_warehouses,
    ),
    (
        Method::GET,
        "/fbt/202409/merchants/onboarded_regions",
        Auth::Api(Scope::Shop),
        fbt::onboarded_regions,
    ),
    (
        Method::GET,
        "/fbt/202601/merchants/mcf_status",
        Auth::Api(Scope::Shop),
        fbt::mcf_status,
    ),
    (
        Method::POST,
        "/fbt/202409/goods/search",
        Auth::Api(Scope::Shop),
        fbt::search_goods,
    ),
    (
        Method::POST,
        "/fbt/202408/inventory/search",
        Auth::Api(Scope::Shop),
        fbt::search_inventory,
    ),
    (
        Method::POST,
        "/fbt/202601/mcf/goods/inventory/search",
        Auth::Api(Scope::Shop),
        fbt::mcf_inventory,
    ),
    (
        Method::POST,
        "/fbt/202410/inventory_records/search",
        Auth::Api(Scope::Shop),
        fbt::search_records,
    ),
    (
        Method::GET,
        "/fbt/202409/inbound_orders",
        Auth::Api(Scope::Shop),
        fbt::inbound_orders,
    ),
    (
        Method::POST,
        "/affiliate_seller/202405/open_collaborations/products/search",
        Auth::Api(Scope::Shop),
        collab::open_collaboration_products,
    ),
    (
        Method::GET,
        "/affiliate_seller/202409/open_collaboration_settings",
        Auth::Api(Scope::Shop),
        collab::open_collaboration_settings,
    ),
    (
        Method::GET,
        "/affiliate_seller/202410/open_collaborations/sample_rules",
        Auth::Api(Scope::Shop),
        collab::sample_rules,
    ),
    (
        Method::POST,
        "/affiliate_seller/202508/target_collaborations/search",
        Auth::Api(Scope::Shop),
        collab::search_targets,
    ),
    (
        Method::GET,
        "/affiliate_seller/202508/target_collaborations/{target_collaboration_id}",
        Auth::Api(Scope::Shop),
        collab::target_detail,
    ),
    (
        Method::POST,
        "/affiliate_seller/202508/sample_applications/search",
        Auth::Api(Scope::Shop),
        collab::search_applications,
    ),
    (
        Method::POST,
        "/affiliate_seller/202409/sample_applications/{application_id}/fulfillments/search",
        Auth::Api(Scope::Shop),
        collab::application_fulfillments,
    ),
    (
        Method::GET,
        "/affiliate_seller/202508/open_collaborations/creator_content_details",
        Auth::Api(Scope::Shop),
        collab::creator_content,
    ),
    (
        Method::GET,
        "/affiliate_seller/202505/conversations",
        Auth::Api(Scope::Shop),
        collab::list_conversations,
    ),
    (
        Method::GET,
        "/affiliate_seller/202412/conversation/{conversation_id}/messages",
        Auth::Api(Scope::Shop),
        collab::conversation_messages,
    ),
    (
        Method::GET,
        "/affiliate_seller/202412/conversations/messages/list/newest",
        Auth::Api(Scope::Shop),
        collab::newest_unread,
    ),
    (
        Method::POST,
        "/affiliate_seller/202601/marketplace_creators/search/filter",
        Auth::Api(Scope::Shop),
        collab::marketplace_filters,
    ),
    (
        Method::POST,
        "/return_refund/202309/returns/search",
        Auth::Api(Scope::Shop),
        returns::search_returns,
    ),
    (
        Method::GET,
        "/logistics/202309/warehouses",
        Auth::Api(Scope::Shop),
        logistics::warehouses,
    ),
    (
        Method::GET,
        "/logistics/202309/warehouses/{warehouse_id}/delivery_options",
        Auth::Api(Scope::Shop),
        logistics::delivery_options,
    ),
    (
        Method::GET,
        "/return_refund/202309/returns/{return_id}/records",
        Auth::Api(Scope::Shop),
        returns::return_records,
    ),
    (
        Method::POST,
        "/return_refund/202309/cancellations/search",
        Auth::Api(Scope::Shop),
        returns::search_cancellations,
    ),
    (
        Method::GET,
        "/finance/202309/statements",
        Auth::Api(Scope::Shop),
        finance::get_statements,
    ),
    (
        Method::GET,
        "/finance/202501/statements/{statement_id}/statement_transactions",
        Auth::Api(Scope::Shop),
        finance::statement_transactions,
    ),
    (
        Method::GET,
        "/finance/202309/payments",
        Auth::Api(Scope::Shop),
        finance::get_payments,
    ),
    (
        Method::GET,
        "/finance/202309/withdrawals",
        Auth::Api(Scope::Shop),
        finance::get_withdrawals,
    ),
    (
        Method::GET,
        "/finance/202507/orders/unsettled",
        Auth::Api(Scope::Shop),
        finance::unsettled,
    ),
    (
        Method::GET,
        "/finance/202504/tax_information",
        Auth::Api(Scope::Shop),
        finance::tax_information,
    ),
    (
        Method::GET,
        "/analytics/202509/shop/performance",
        Auth::Api(Scope::Shop),
        analytics::shop_performance,
    ),
    (
        Method::GET,
        "/analytics/202509/shop_products/performance",
        Auth::Api(Scope::Shop),
        analytics::product_performance,
    ),
    (
        Method::GET,
        "/analytics/202509/shop_skus/performance",
        Auth::Api(Scope::Shop),
        analytics::sku_performance,
    ),
    (
        Method::GET,
        "/analytics/202510/shop/performance/{date}/performance_per_hour",
        Auth::Api(Scope::Shop),
        analytics::shop_performance_per_hour,
    ),
    (
        Method::GET,
        "/analytics/202509/shop_lives/performance",
        Auth::Api(Scope::Shop),
        media::live_list,
    ),
    (
        Method::GET,
        "/analytics/202510/shop_lives/{live_id}/performance_per_minutes",
        Auth::Api(Scope::Shop),
        media::live_minutes,
    ),
    (
        Method::GET,
        "/analytics/202512/shop/{live_id}/products_performance",
        Auth::Api(Scope::Shop),
        media::live_products,
    ),
    (
        Method::GET,
        "/analytics/202509/shop_videos/performance",
        Auth::Api(Scope::Shop),
        media::video_list,
    ),
    (
        Method::GET,
        "/analytics/202509/shop_videos/{video_id}/performance",
        Auth::Api(Scope::Shop),
        media::video_detail,
    ),
    (
        Method::GET,
        "/analytics/202509/shop_videos/{video_id}/products/performance",
        Auth::Api(Scope::Shop),
        media::video_products,
    ),
    (
        Method::GET,
        "/analytics/202509/shop_videos/overview_performance",
        Auth::Api(Scope::Shop),
        media::video_overview,
    ),
    (
        Method::GET,
        "/analytics/202509/shop_lives/overview_performance",
        Auth::Api(Scope::Shop),
        media::live_overview,
    ),
    (
        Method::GET,
        "/analytics/202509/shop_products/{product_id}/performance",
        Auth::Api(Scope::Shop),
        analytics::product_detail,
    ),
    (
        Method::GET,
        "/analytics/202509/shop_skus/{sku_id}/performance",
        Auth::Api(Scope::Shop),
        analytics::sku_detail,
    ),
    (
        Method::GET,
        "/customer_engagement/202412/message_templates",
        Auth::Api(Scope::Shop),
        engagement::message_templates,
    ),
    (
        Method::GET,
        "/customer_engagement/202502/permissions",
        Auth::Api(Scope::Shop),
        engagement::feature_permissions,
    ),
    (
        Method::GET,
        "/customer_engagement/202501/customer_tab/visibility",
        Auth::Api(Scope::Shop),
        engagement::customer_tab_visibility,
    ),
    (
        Method::GET,
        "/seller/202309/shops",
        Auth::Api(Scope::Seller),
        seller::active_shops,
    ),
    (
        Method::GET,
        "/seller/202309/permissions",
        Auth::Api(Scope::Seller),
        seller::permissions,
    ),
    (
        Method::GET,
        "/seller/202508/status",
        Auth::Api(Scope::Seller),
        seller::status,
    ),
    (
        Method::GET,
        "/authorization/202405/category_assets",
        Auth::Api(Scope::Seller),
        seller::category_assets,
    ),
    (
        Method::GET,
        "/seller/202407/shop_creators",
        Auth::Api(Scope::Shop),
        seller::shop_creators,
    ),
    (
        Method::GET,
        "/event/202309/webhooks",
        Auth::Api(Scope::Shop),
        events::webhooks,
    ),
    (
        Method::GET,
        "/logistics/202309/delivery_options/{delivery_option_id}/shipping_providers",
        Auth::Api(Scope::Shop),
        logistics::shipping_providers,
    ),
    (
        Method::GET,
        "/logistics/202309/global_warehouses",
        Auth::Api(Scope::Shop),
        logistics::global_warehouses,
    ),
    (
        Method::GET,
        "/logistics/202510/seller_templates",
        Auth::Api(Scope::Shop),
        logistics::seller_templates,
    ),
    (
        Method::POST,
        "/api/orders/search",
        Auth::Api(Scope::Shop),
        orders::legacy_search,
    ),
    (
        Method::POST,
        "/api/products/search",
        Auth::Api(Scope::Shop),
        products::legacy_search,
    ),
];

/// Current unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn path_params(template: &str, path: &str) -> HashMap<String, String> {
    template
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(t, p)| {
            t.strip_prefix('{')
                .and_then(|t| t.strip_suffix('}'))
                .map(|name| (name.to_string(), p.to_string()))
        })
        .collect()
}

impl Sandbox {
    /// Generates the data and prepares the sandbox.
    pub fn new(config: SandboxConfig) -> Sandbox {
        let mut data = Dataset::generate(config.data.clone());
        realism::apply(&mut data, &config.realism);
        let view = Arc::new(View::build(&data, config.data.clock));
        let search_view = match config.realism.index_lag {
            Some(lag) => Arc::new(View::build(&data, config.data.clock - lag.as_secs() as i64)),
            None => view.clone(),
        };
        Sandbox {
            realism: realism::RealismState::new(&config.realism),
            search_view: RwLock::new(search_view),
            mint: TokenMint::new(&config.app_key, config.data.seed),
            app_secret: RwLock::new(config.app_secret.as_str().into()),
            limits: RateLimits::new(config.rps),
            faults: FaultInjector::new(config.faults, config.data.seed),
            revoked: Mutex::new(Default::default()),
            counter: AtomicU64::new(0),
            clock_write: Mutex::new(()),
            stats: Mutex::new(HashMap::new()),
            view: RwLock::new(view),
            data,
            config,
        }
    }

    /// The app secret requests must be signed with now.
    pub fn app_secret(&self) -> Arc<str> {
        self.app_secret.read().expect("secret lock").clone()
    }

    /// Resets the app secret, as the Partner Center's "reset secret" does: from now on
    /// only the new one signs requests and obtains tokens; tokens already granted keep
    /// working until they expire or are refreshed.
    pub fn rotate_app_secret(&self, new: &str) {
        *self.app_secret.write().expect("secret lock") = new.into();
    }

    fn next_nonce(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    fn request_id(&self) -> String {
        let n = self.next_nonce();
        let now = chrono::Utc::now();
        format!(
            "{}{:06}{:014X}",
            now.format("%Y%m%d%H%M%S"),
            now.timestamp_subsec_micros(),
            n.wrapping_mul(0x9E37_79B9)
        )
    }

    /// The data as of the current clock.
    pub fn view(&self) -> Arc<View> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Moves the data clock (orders progress through their lifecycle); the search index
    /// follows `index_lag` behind.
    pub fn set_clock(&self, clock: i64) {
        let _one_at_a_time = self.clock_write.lock().unwrap_or_else(|e| e.into_inner());
        self.build_views(clock);
    }

    /// Moves the data clock on by `step` seconds from where it is (atomically with other
    /// clock moves: concurrent walks never lose a step or move it back).
    pub fn advance_clock(&self, step: i64) {
        let _one_at_a_time = self.clock_write.lock().unwrap_or_else(|e| e.into_inner());
        self.build_views(self.view().clock + step);
    }

    fn build_views(&self, clock: i64) {
        let v = Arc::new(View::build(&self.data, clock));
        let s = match self.config.realism.index_lag {
            Some(lag) => Arc::new(View::build(&self.data, clock - lag.as_secs() as i64)),
            None => v.clone(),
        };
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = v;
        *self.search_view.write().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// What `template` answers from: the search index (lagging) or the current data.
    fn view_for(&self, template: &str) -> Arc<View> {
        if self.config.realism.index_lag.is_some() && realism::is_search(template) {
            self.search_view
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        } else {
            self.view()
        }
    }

    /// The next successful answer of `template` comes back without its list field.
    pub fn omit_list_once(&self, template: &str) {
        self.realism.omit_next(template);
    }

    fn record(&self, endpoint: &'static str, f: impl FnOnce(&mut EndpointStats)) {
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        f(s.entry(endpoint).or_default());
    }

    /// A snapshot of the per-endpoint counters.
    pub fn stats(&self) -> HashMap<&'static str, EndpointStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Serves one API request: rate limit, revoked token, injected fault, then the gate
    /// and the handler, counted in the stats.
    async fn dispatch(self: Arc<Self>, route: Route, req: Request) -> Response {
        let template = route.template;
        let request_id = self.request_id();
        self.record(template, |s| s.requests += 1);
        if let Err(wait) = self.limits.take(template) {
            self.record(template, |s| s.rate_limited += 1);
            let retry_after = wait.as_secs_f64().ceil().max(1.0) as u64;
            return too_many_requests(retry_after).into_response_with(&request_id);
        }
        let token = req
            .headers
            .get("x-tts-access-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(t) = &token
            && self.is_revoked(t)
        {
            self.record(template, |s| s.errors += 1);
            return gate::expired_token().into_response_with(&request_id);
        }
        let injected = match self
            .inject_fault(template, &req.uri, token.as_deref())
            .await
        {
            Ok(injected) => injected,
            Err(f) => return f.into_response_with(&request_id),
        };
        let cpu0 = thread_cpu_ns();
        let result = self.answer(route, req, injected.overlap);
        let response = self.respond(template, &request_id, result, injected.truncate);
        let cpu = thread_cpu_ns().saturating_sub(cpu0);
        self.record(template, |s| s.cpu_ns += cpu);
        response
    }

    /// Whether `token` was revoked by the `Revoked` fault.
    fn is_revoked(&self, token: &str) -> bool {
        self.revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(token)
    }

    /// Draws the `--faults` fault for a request to `template`: `Err` when the request is
    /// answered with an error instead of being handled.
    async fn inject_fault(
        &self,
        template: &'static str,
        uri: &Uri,
        token: Option<&str>,
    ) -> Result<Injected, ApiFault> {
        let Some(fault) = self.faults.draw() else {
            return Ok(Injected::default());
        };
        self.record(template, |s| s.faults += 1);
        let has_page_token = uri.query().is_some_and(|q| q.contains("page_token="));
        let fault = match fault {
            Fault::Overlap if !has_page_token => Fault::ServerError,
            Fault::Revoked if token.is_none() => Fault::ServerError,
            f => f,
        };
        match fault {
            Fault::Truncated => Ok(Injected {
                truncate: true,
                overlap: false,
            }),
            Fault::Overlap => Ok(Injected {
                truncate: false,
                overlap: true,
            }),
            Fault::Revoked => {
                let t = token.expect("checked above").to_string();
                self.revoked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(t);
                Err(gate::expired_token())
            }
            Fault::ServerError => Err(internal_error()),
            Fault::Timeout => {
                tokio::time::sleep(self.config.fault_delay).await;
                Err(ApiFault::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    36009007,
                    "Request timeout. Please retry.",
                ))
            }
            Fault::RateLimited => Err(too_many_requests(1)),
        }
    }

    /// Verifies the request and runs the route's handler: the answer's `data` JSON.
    fn answer(&self, route: Route, req: Request, overlap: bool) -> Result<Vec<u8>, ApiFault> {
        let template = route.template;
        let mut query = query_pairs(&req.uri);
        let shop = self.authenticate(route.auth, &req, &query);
        if overlap {
            // Served from a few rows back (after the signature was checked): this page
            // repeats the previous page's tail.
            rewind_page_token(&mut query);
        }
        let offset_pages = self.shift_pages(template, &query);
        let result = shop.and_then(|shop| {
            let ctx = Ctx {
                shop,
                params: path_params(template, req.uri.path()),
                query,
                body: req.body,
                view: self.view_for(template),
            };
            realism::OFFSET_PAGES.with(|f| f.set(offset_pages));
            let r = (route.handler)(self, &ctx);
            realism::OFFSET_PAGES.with(|f| f.set(false));
            r
        });
        // An answer that succeeds without its list (see `realism`).
        let result = match result {
            Ok(_) if self.realism.take_omit(template) => Ok(b"{}".to_vec()),
            r => r,
        };
        match (&self.config.drift, result) {
            (Some(d), Ok(data)) if template == drift::DRIFTING_PATH => Ok(d.apply(&data)),
            (_, r) => r,
        }
    }

    /// The gate's checks for `auth`: the shop the request acts for.
    fn authenticate(
        &self,
        auth: Auth,
        req: &Request,
        query: &[(String, String)],
    ) -> Result<Option<usize>, ApiFault> {
        match auth {
            Auth::TokenHost => Ok(None),
            Auth::Api(scope) => {
                let secret = self.app_secret();
                let cfg = GateConfig {
                    app_key: &self.config.app_key,
                    app_secret: &secret,
                    mint: &self.mint,
                    ciphers: &self.data.cipher_index,
                    assets: &self.data.asset_index,
                };
                let incoming = Incoming {
                    path: req.uri.path(),
                    query,
                    headers: &req.headers,
                    body: &req.body,
                    has_body: req.method == Method::POST || req.method == Method::PUT,
                };
                gate::verify(&cfg, &incoming, scope, unix_now()).map(|v| v.shop)
            }
        }
    }

    /// Time passes while a client walks a search (see `realism`): with shifting pages on,
    /// a follow-up page of a search moves the data clock on, and pages are offsets into
    /// the list as it is now. Whether they are.
    fn shift_pages(&self, template: &str, query: &[(String, String)]) -> bool {
        let Some(step) = self
            .config
            .realism
            .shifting_pages
            .filter(|_| realism::is_search(template))
        else {
            return false;
        };
        if query
            .iter()
            .any(|(k, v)| k == "page_token" && !v.is_empty())
        {
            self.advance_clock(step.as_secs() as i64);
        }
        true
    }

    /// The HTTP answer to a handled request, counted in the stats.
    fn respond(
        &self,
        template: &'static str,
        request_id: &str,
        result: Result<Vec<u8>, ApiFault>,
        truncate: bool,
    ) -> Response {
        match result {
            Ok(data) if truncate => {
                // The envelope cut off halfway, as a dropped connection leaves it.
                let full = gate::ok_envelope_bytes(request_id, &data);
                self.record(template, |s| s.ok += 1);
                (
                    StatusCode::OK,
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    full[..full.len() / 2].to_vec(),
                )
                    .into_response()
            }
            Ok(data) => {
                let len = data.len() as u64;
                let r = gate::ok_envelope(request_id, &data);
                self.record(template, |s| {
                    s.ok += 1;
                    s.bytes += len;
                });
                r
            }
            Err(f) => {
                self.record(template, |s| s.errors += 1);
                f.into_response_with(request_id)
            }
        }
    }
}

/// A route as [`ROUTES`] lists it, without its method.
#[derive(Clone, Copy)]
struct Route {
    template: &'static str,
    auth: Auth,
    handler: Handler,
}

/// The parts of an incoming request [`Sandbox::dispatch`] reads.
struct Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// What an injected fault does to a request that is still handled.
#[derive(Clone, Copy, Default)]
struct Injected {
    /// The success envelope comes back cut off halfway.
    truncate: bool,
    /// The page is served from a few rows back.
    overlap: bool,
}

/// HTTP 429, 36009002, with Retry-After `retry_after` seconds.
fn too_many_requests(retry_after: u64) -> ApiFault {
    let mut f = ApiFault::new(
        StatusCode::TOO_MANY_REQUESTS,
        36009002,
        "Too many requests. Please retry later.",
    );
    f.retry_after = Some(retry_after);
    f
}

/// HTTP 500, 36009003.
fn internal_error() -> ApiFault {
    ApiFault::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        36009003,
        "Internal error. Please retry.",
    )
}

/// The decoded query pairs of `uri`.
fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// Moves a `page_token` a few rows back.
fn rewind_page_token(query: &mut [(String, String)]) {
    for (k, v) in query.iter_mut() {
        if k == "page_token"
            && let Some(t) = paging::rewind(v, 3)
        {
            *v = t;
        }
    }
}

/// Builds the axum router for a sandbox.
pub fn router(sb: Arc<Sandbox>) -> Router {
    let mut by_path: Vec<(&'static str, MethodRouter<Arc<Sandbox>>)> = Vec::new();
    for (method, template, auth, handler) in ROUTES {
        let route = Route {
            template,
            auth: *auth,
            handler: *handler,
        };
        let filter = MethodFilter::try_from(method.clone()).expect("standard method");
        let method_router = on(
            filter,
            move |State(sb): State<Arc<Sandbox>>,
                  method: Method,
                  uri: Uri,
                  headers: HeaderMap,
                  body: Bytes| {
                let req = Request {
                    method,
                    uri,
                    headers,
                    body,
                };
                sb.dispatch(route, req)
            },
        );
        match by_path.iter_mut().find(|(p, _)| *p == route.template) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(method_router),
            None => by_path.push((route.template, method_router)),
        }
    }
    let mut app = Router::new();
    for (path, route) in by_path {
        app = app.route(path, route);
    }
    app.route("/healthz", get(|| async { "ok" }))
        .route("/oauth/authorize", get(authorize))
        .route("/__sandbox/truth", get(truth::truth))
        .route("/__sandbox/clock", get(clock_get).post(clock_set))
        .route("/__sandbox/stats", get(stats))
        .route("/__sandbox/app-secret", post(app_secret_set))
        .fallback(|| async {
            ApiFault::new(
                StatusCode::NOT_FOUND,
                36009009,
                "Invalid path. The API path does not exist.",
            )
            .into_response_with("")
        })
        .method_not_allowed_fallback(|| async {
            ApiFault::new(
                StatusCode::METHOD_NOT_ALLOWED,
                36009010,
                "Invalid HTTP method for this API path.",
            )
            .into_response_with("")
        })
        .with_state(sb)
}

async fn authorize(State(sb): State<Arc<Sandbox>>, uri: Uri) -> Html<String> {
    let query: HashMap<String, String> = query_pairs(&uri).into_iter().collect();
    Html(oauth::authorize_page(
        query.get("app_key").map_or("", String::as_str),
        query.get("state").map_or("", String::as_str),
        &sb.config.auth_code,
    ))
}

#[derive(Serialize, serde::Deserialize, Default)]
struct ClockBody {
    #[serde(default)]
    clock: Option<i64>,
    #[serde(default)]
    advance_seconds: Option<i64>,
}

async fn clock_get(State(sb): State<Arc<Sandbox>>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "clock": sb.view().clock }))
}

async fn clock_set(State(sb): State<Arc<Sandbox>>, body: Bytes) -> Response {
    let parsed: Result<ClockBody, _> = serde_json::from_slice(&body);
    let Ok(b) = parsed else {
        return (
            StatusCode::BAD_REQUEST,
            "body must be {\"clock\": unix_seconds} or {\"advance_seconds\": n}",
        )
            .into_response();
    };
    let current = sb.view().clock;
    let next = b
        .clock
        .or(b.advance_seconds.map(|a| current + a))
        .unwrap_or(current);
    sb.set_clock(next);
    axum::Json(serde_json::json!({ "clock": next })).into_response()
}

/// `POST /__sandbox/app-secret {"app_secret": "…"}`: the seller's app secret was reset.
async fn app_secret_set(State(sb): State<Arc<Sandbox>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Body {
        app_secret: String,
    }
    match serde_json::from_slice::<Body>(&body) {
        Ok(b) if !b.app_secret.is_empty() => {
            sb.rotate_app_secret(&b.app_secret);
            tracing::info!("sandbox app secret reset");
            StatusCode::NO_CONTENT.into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            "body must be {\"app_secret\": \"<non-empty>\"}",
        )
            .into_response(),
    }
}

async fn stats(State(sb): State<Arc<Sandbox>>) -> axum::Json<HashMap<&'static str, EndpointStats>> {
    axum::Json(sb.stats())
}

/// A sandbox running in the background of this process (tests, `shoplake demo`).
pub struct RunningSandbox {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state (for reading stats or moving the clock directly).
    pub sandbox: Arc<Sandbox>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSandbox {
    /// `http://addr`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Generates the data, binds `addr` (port 0 for any) and serves in a background task.
pub async fn spawn(config: SandboxConfig, addr: SocketAddr) -> std::io::Result<RunningSandbox> {
    let sandbox = Arc::new(
        tokio::task::spawn_blocking(move || Sandbox::new(config))
            .await
            .map_err(std::io::Error::other)?,
    );
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(sandbox.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(RunningSandbox {
        addr,
        sandbox,
        shutdown: Some(tx),
        task,
    })
}

/// Serves until `shutdown` resolves (the `shoplake sandbox` command).
pub async fn serve(
    sandbox: Arc<Sandbox>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(sandbox))
        .with_graceful_shutdown(shutdown)
        .await
}
