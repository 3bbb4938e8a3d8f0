-- marts.order_status_daily: where the orders placed each day are now.
-- grain: one row per (shop_id, order_date, status); order_date is shop-local.
-- materialized: incremental
-- unique_key: shop_id, order_date, status
-- incremental_by: shop_id, order_date
-- tests: not_null(status)
--
-- columns:
--   shop_id, order_date, status   keys
--   currency                      the shop's currency
--   orders                        orders placed that day now in this status
--   share                         orders / all orders placed that day
--   gmv                           Σ sub_total of those orders (see marts.gmv_daily)
with orders as (
    select * from staging.stg_orders
),

by_status as (
    select
        shop_id,
        order_date,
        status,
        currency,
        count(*) as orders,
        sum(sub_total) as gmv
    from orders
    group by shop_id, order_date, status, currency
),

final as (
    select
        shop_id,
        order_date,
        status,
        currency,
        orders,
        cast(orders as double) / sum(orders) over (partition by shop_id, order_date) as share,
        cast(gmv as decimal(38, 6)) as gmv
    from by_status
)

select * from final
