-- marts.brand_summary: each brand's standing in its shop: all-time and last-30-day GMV
-- and orders, ranks, share, and growth against the 30 days before.
-- grain: one row per (shop_id, brand)
-- materialized: table
-- unique_key: shop_id, brand
-- tests: not_null(currency), expression(rank_by_gmv >= 1), expression(share_of_shop_gmv between 0 and 1)
--
-- Orders are summed from marts.brand_daily (an order with two brands counts for both).
-- as_of is the shop's latest day in brand_daily.
-- columns:
--   shop_id, brand, currency
--   net_gmv, orders, units        all history, not-cancelled GMV
--   net_gmv_30d, orders_30d        the 30 local days up to as_of
--   net_gmv_prev_30d               the 30 days before those
--   growth_30d                     net_gmv_30d / net_gmv_prev_30d − 1 (null without a previous period)
--   share_of_shop_gmv              net_gmv / the shop's net GMV (all brands)
--   rank_by_gmv, rank_by_orders    all history, 1 = first
--   rank_by_gmv_30d                last 30 days
--   first_order_date, last_order_date, as_of
with daily as (
    select d.*, max(d.order_date) over (partition by d.shop_id) as as_of
    from marts.brand_daily d
),

brands as (
    select
        shop_id,
        brand,
        currency,
        sum(net_gmv) as net_gmv,
        sum(orders) as orders,
        sum(units) as units,
        sum(case when order_date > as_of - interval '30' day then net_gmv else 0 end) as net_gmv_30d,
        sum(case when order_date > as_of - interval '30' day then orders else 0 end) as orders_30d,
        sum(case when order_date > as_of - interval '60' day and order_date <= as_of - interval '30' day then net_gmv else 0 end) as net_gmv_prev_30d,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        max(as_of) as as_of
    from daily
    group by shop_id, brand, currency
)

select
    shop_id,
    brand,
    currency,
    cast(net_gmv as decimal(38, 6)) as net_gmv,
    orders,
    units,
    cast(net_gmv_30d as decimal(38, 6)) as net_gmv_30d,
    orders_30d,
    cast(net_gmv_prev_30d as decimal(38, 6)) as net_gmv_prev_30d,
    cast(net_gmv_30d as double) / nullif(cast(net_gmv_prev_30d as double), 0) - 1 as growth_30d,
    cast(net_gmv as double) / nullif(cast(sum(net_gmv) over (partition by shop_id) as double), 0) as share_of_shop_gmv,
    rank() over (partition by shop_id order by net_gmv desc) as rank_by_gmv,
    rank() over (partition by shop_id order by orders desc) as rank_by_orders,
    rank() over (partition by shop_id order by net_gmv_30d desc) as rank_by_gmv_30d,
    first_order_date,
    last_order_date,
    as_of
from brands
