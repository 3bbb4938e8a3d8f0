-- marts.shop_performance_daily: the shop's traffic and sales per shop-local day, as the
-- analytics API reports them (shop performance, granularity 1D, currency LOCAL).
-- grain: one row per (shop_id, date)
-- materialized: table
-- unique_key: shop_id, date
-- tests: not_null(currency), expression(visitors >= 0), expression(orders <= visitors or visitors = 0)
-- tests: relationships(shop_id, staging.stg_orders.shop_id)
--
-- The API's numbers, not recomputed from orders (marts.gmv_daily is that): the two agree
-- on paid orders per local day. Traffic sources are not in the extracted endpoints.
-- columns:
--   shop_id, currency         key; gmv in this currency
--   date                      shop-local day
--   gmv                       paid GMV the API reports for the day
--   orders, sku_orders, units_sold
--   visitors, page_views      unique visitors and product page views
--   conversion_rate           orders / visitors (null without visitors)
--   aov                       gmv / orders
--   views_per_visitor         page_views / visitors
--   api_conversion_rate       the conversion rate as the API states it
with perf as (
    select * from raw.shop_performance
)

select
    _shop_id as shop_id,
    date,
    currency,
    cast(gmv as decimal(38, 6)) as gmv,
    orders_count as orders,
    sku_orders_count as sku_orders,
    items_sold as units_sold,
    visitors,
    page_views,
    cast(orders_count as double) / nullif(visitors, 0) as conversion_rate,
    cast(gmv / nullif(orders_count, 0) as decimal(38, 6)) as aov,
    cast(page_views as double) / nullif(visitors, 0) as views_per_visitor,
    conversion_rate as api_conversion_rate
from perf
