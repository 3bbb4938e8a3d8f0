-- marts.shop_performance_hourly: the shop's traffic and sales per shop-local hour, from the
-- analytics API's per-hour breakdown of each landed day.
-- grain: one row per (shop_id, hour_start); hour_start is UTC, local_hour the shop's hour
-- materialized: table
-- unique_key: shop_id, hour_start
-- tests: not_null(date), expression(local_hour between 0 and 23), expression(orders <= visitors or visitors = 0)
--
-- columns:
--   shop_id, currency          key; gmv in this currency
--   date                       shop-local day the hour belongs to
--   hour_start, hour_end       UTC bounds of the hour
--   local_hour                 0–23 on the shop's clock (a DST day has 23 or 25 rows)
--   gmv, orders, units_sold, visitors, page_views
--   conversion_rate            orders / visitors
--   share_of_day_gmv           gmv / the day's gmv over its hours
with hours as (
    select * from raw.shop_performance_hourly
)

select
    _shop_id as shop_id,
    date,
    hour_start,
    hour_end,
    cast(extract(hour from hour_local) as int) as local_hour,
    currency,
    cast(gmv as decimal(38, 6)) as gmv,
    orders_count as orders,
    items_sold as units_sold,
    visitors,
    page_views,
    cast(orders_count as double) / nullif(visitors, 0) as conversion_rate,
    cast(gmv as double) / nullif(cast(sum(gmv) over (partition by _shop_id, date) as double), 0) as share_of_day_gmv
from hours
