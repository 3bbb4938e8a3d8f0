-- marts.partner_performance: what each affiliate partner (agency) campaign brought the
-- shop: its products, the creators promoting them and their content, the campaign
-- orders, GMV and the partner's fee, and how much of the products' sales the campaign
-- drove while it ran.
-- grain: one row per (shop_id, campaign_id)
-- materialized: table
-- unique_key: shop_id, campaign_id
-- tests: not_null(campaign_name), not_null(start_date), expression(products >= 1)
-- tests: expression(actual_partner_fee <= estimated_partner_fee), expression(campaign_gmv <= product_gmv_all_channels or product_gmv_all_channels is null)
-- tests: expression(creators_posted <= creators), relationships(campaign_id, raw.partner_campaigns.id)
--
-- Partner data covers the shop's whole market (every shop of a market lands the same
-- campaigns), so everything is restricted to the campaign products of this shop
-- (raw.partner_campaign_products.shop_id = _shop_id) and the TAP orders placed in it.
-- Cancelled orders are left out (their fee is 0).
-- columns:
--   shop_id, campaign_id, campaign_name, status   status as of the last snapshot
--   start_date, end_date    shop-local dates of the campaign's start and end instants
--   products                the shop's products enrolled
--   avg_commission_rate     mean creator commission over them (0.15 = 15%)
--   avg_partner_fee_rate    mean partner service fee over them
--   creators                distinct creators promoting the shop's products
--   creators_posted         of them, those who posted content
--   videos, lives           content posted for the shop's products
--   video_views             Σ views of those videos
--   samples_delivered       free samples delivered to creators
--   currency
--   orders, units           not-cancelled TAP orders and their campaign units
--   campaign_gmv            Σ sale price of those units
--   estimated_partner_fee   the partner's fee on them (Σ unit price × fee rate)
--   actual_partner_fee      fee settled (orders completed)
--   pending_partner_fee     estimated − actual
--   gmv_per_creator         campaign_gmv / creators
--   gmv_per_fee             campaign_gmv / estimated_partner_fee (GMV bought per unit of fee)
--   product_gmv_all_channels  Σ sale price of the enrolled products' not-cancelled units
--                           ordered while the campaign ran, from any channel
--   campaign_share          campaign_gmv / product_gmv_all_channels
with products as (
    select
        _shop_id as shop_id,
        campaign_id,
        product_id,
        commission_rate_bp,
        partner_commission_rate_bp
    from raw.partner_campaign_products
    where shop_id = _shop_id
),

campaigns as (
    select
        p.shop_id,
        p.campaign_id,
        max(c.name) as campaign_name,
        max(c.status) as status,
        max(c.start_time) as start_time,
        max(c.end_time) as end_time,
        max(c.start_date) as start_date,
        max(c.end_date) as end_date,
        count(*) as products,
        avg(cast(p.commission_rate_bp as double)) / 10000 as avg_commission_rate,
        avg(cast(p.partner_commission_rate_bp as double)) / 10000 as avg_partner_fee_rate
    from products p
    join raw.partner_campaigns c on c._shop_id = p.shop_id and c.id = p.campaign_id
    group by p.shop_id, p.campaign_id
),

creators as (
    select
        p.shop_id,
        p.campaign_id,
        count(distinct cc.creator_temp_id) as creators,
        count(distinct case when cc.fulfillment_status = 'CONTENT_POSTED' then cc.creator_temp_id end) as creators_posted,
        sum(cc.video_count) as videos,
        sum(cc.live_count) as lives
    from products p
    join raw.partner_campaign_creators cc
        on cc._shop_id = p.shop_id and cc.campaign_id = p.campaign_id and cc.product_id = p.product_id
    group by p.shop_id, p.campaign_id
),

views as (
    select p.shop_id, p.campaign_id, sum(v.views) as video_views
    from products p
    join raw.partner_creator_videos v
        on v._shop_id = p.shop_id and v.campaign_id = p.campaign_id and v.product_id = p.product_id
    group by p.shop_id, p.campaign_id
),

samples as (
    select p.shop_id, p.campaign_id, count(*) as samples_delivered
    from products p
    join raw.partner_sample_status s
        on s._shop_id = p.shop_id and s.campaign_id = p.campaign_id and s.product_id = p.product_id
    where s.status = 'DELIVERED'
    group by p.shop_id, p.campaign_id
),

orders as (
    select
        _shop_id as shop_id,
        campaign_id,
        max(currency) as currency,
        count(*) as orders,
        sum(units) as units,
        sum(gmv) as gmv,
        sum(estimated_partner_commission) as estimated_fee,
        sum(actual_partner_commission) as actual_fee
    from raw.partner_tap_orders
    where shop_id = _shop_id and commission_status <> 'CANCELLED'
    group by _shop_id, campaign_id
),

product_sales as (
    select c.shop_id, c.campaign_id, max(l.currency) as currency, sum(l.sale_price) as gmv
    from campaigns c
    join products p on p.shop_id = c.shop_id and p.campaign_id = c.campaign_id
    join staging.stg_order_lines l on l.shop_id = c.shop_id and l.product_id = p.product_id
    join staging.stg_orders o on o.shop_id = l.shop_id and o.order_id = l.order_id
    where not o.is_cancelled and o.created_at >= c.start_time and o.created_at < c.end_time
    group by c.shop_id, c.campaign_id
)

select
    c.shop_id,
    c.campaign_id,
    c.campaign_name,
    c.status,
    c.start_date,
    c.end_date,
    c.products,
    c.avg_commission_rate,
    c.avg_partner_fee_rate,
    coalesce(cr.creators, 0) as creators,
    coalesce(cr.creators_posted, 0) as creators_posted,
    coalesce(cr.videos, 0) as videos,
    coalesce(cr.lives, 0) as lives,
    coalesce(v.video_views, 0) as video_views,
    coalesce(s.samples_delivered, 0) as samples_delivered,
    coalesce(o.currency, ps.currency) as currency,
    coalesce(o.orders, 0) as orders,
    coalesce(o.units, 0) as units,
    cast(coalesce(o.gmv, 0) as decimal(38, 6)) as campaign_gmv,
    cast(coalesce(o.estimated_fee, 0) as decimal(38, 6)) as estimated_partner_fee,
    cast(coalesce(o.actual_fee, 0) as decimal(38, 6)) as actual_partner_fee,
    cast(coalesce(o.estimated_fee, 0) - coalesce(o.actual_fee, 0) as decimal(38, 6)) as pending_partner_fee,
    cast(o.gmv as double) / nullif(cast(cr.creators as double), 0) as gmv_per_creator,
    cast(o.gmv as double) / nullif(cast(o.estimated_fee as double), 0) as gmv_per_fee,
    cast(ps.gmv as decimal(38, 6)) as product_gmv_all_channels,
    cast(o.gmv as double) / nullif(cast(ps.gmv as double), 0) as campaign_share
from campaigns c
left join creators cr on cr.shop_id = c.shop_id and cr.campaign_id = c.campaign_id
left join views v on v.shop_id = c.shop_id and v.campaign_id = c.campaign_id
left join samples s on s.shop_id = c.shop_id and s.campaign_id = c.campaign_id
left join orders o on o.shop_id = c.shop_id and o.campaign_id = c.campaign_id
left join product_sales ps on ps.shop_id = c.shop_id and ps.campaign_id = c.campaign_id
