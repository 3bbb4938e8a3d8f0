-- marts.hourly_sales: orders and GMV per shop-local hour of each shop-local day.
-- grain: one row per (shop_id, order_date, local_hour); hours without orders have no row.
-- materialized: incremental
-- unique_key: shop_id, order_date, local_hour
-- incremental_by: shop_id, order_date
-- tests: expression(local_hour between 0 and 23), expression(net_gmv <= gross_gmv)
-- tests: expression(share_of_day_orders > 0 and share_of_day_orders <= 1)
--
-- columns:
--   shop_id, currency        key; amounts in this currency
--   order_date               shop-local date the orders were placed
--   local_hour               0–23, the shop's wall-clock hour (on a DST day one hour
--                            may be missing or hold two hours of orders)
--   orders, cancelled_orders
--   gross_gmv, net_gmv       Σ sub_total of all / of not-cancelled orders
--   share_of_day_orders      orders / orders of the whole day
with orders as (
    select
        shop_id,
        order_date,
        currency,
        cast(extract(hour from order_local_time) as int) as local_hour,
        is_cancelled,
        sub_total
    from staging.stg_orders
),

hourly as (
    select
        shop_id,
        order_date,
        local_hour,
        currency,
        count(*) as orders,
        sum(case when is_cancelled then 1 else 0 end) as cancelled_orders,
        sum(sub_total) as gross_gmv,
        coalesce(sum(case when is_cancelled then null else sub_total end), cast(0 as decimal(38, 6))) as net_gmv
    from orders
    group by shop_id, order_date, local_hour, currency
)

select
    shop_id,
    order_date,
    local_hour,
    currency,
    orders,
    cancelled_orders,
    cast(gross_gmv as decimal(38, 6)) as gross_gmv,
    cast(net_gmv as decimal(38, 6)) as net_gmv,
    cast(orders as double) / sum(orders) over (partition by shop_id, order_date) as share_of_day_orders
from hourly
