-- marts.affiliate_commissions: the shop's affiliate sales and commissions per shop-local
-- day, and their share of all sales.
-- grain: one row per (shop_id, order_date)
-- materialized: table
-- unique_key: shop_id, order_date
-- tests: expression(settled_commission <= estimated_commission), expression(affiliate_share between 0 and 1 or affiliate_share is null)
-- tests: relationships(shop_id, marts.gmv_daily.shop_id)
--
-- Affiliate orders placed that day (not cancelled), from raw.affiliate_order_lines;
-- the shop's net GMV from marts.gmv_daily.
-- columns:
--   shop_id, order_date, currency
--   affiliate_orders, creators        orders creators brought, distinct creators
--   affiliate_gmv                     Σ their price
--   estimated_commission              owed on them
--   settled_commission                already settled (orders completed)
--   pending_commission                estimated − settled
--   commission_rate                   estimated_commission / affiliate_gmv
--   shop_net_gmv                      the shop's net GMV that day (gmv_daily)
--   affiliate_share                   affiliate_gmv / shop_net_gmv
with daily as (
    select
        _shop_id as shop_id,
        order_create_date as order_date,
        max(currency) as currency,
        count(distinct order_id) as affiliate_orders,
        count(distinct creator_user_id) as creators,
        sum(price) as affiliate_gmv,
        sum(estimated_commission) as estimated_commission,
        sum(actual_commission) as settled_commission
    from raw.affiliate_order_lines
    where commission_status <> 'CANCELLED'
    group by _shop_id, order_create_date
)

select
    d.shop_id,
    d.order_date,
    d.currency,
    d.affiliate_orders,
    d.creators,
    cast(d.affiliate_gmv as decimal(38, 6)) as affiliate_gmv,
    cast(d.estimated_commission as decimal(38, 6)) as estimated_commission,
    cast(d.settled_commission as decimal(38, 6)) as settled_commission,
    cast(d.estimated_commission - d.settled_commission as decimal(38, 6)) as pending_commission,
    cast(d.estimated_commission as double) / nullif(cast(d.affiliate_gmv as double), 0) as commission_rate,
    g.net_gmv as shop_net_gmv,
    cast(d.affiliate_gmv as double) / nullif(cast(g.net_gmv as double), 0) as affiliate_share
from daily d
left join marts.gmv_daily g on g.shop_id = d.shop_id and g.order_date = d.order_date
