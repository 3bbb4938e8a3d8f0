-- marts.gmv_monthly: sales per shop and shop-local calendar month.
-- grain: one row per (shop_id, month_start)
-- materialized: table
-- unique_key: shop_id, month_start
-- tests: not_null(currency), expression(net_gmv <= gross_gmv), expression(days between 1 and 31)
-- tests: expression(extract(day from month_start) = 1)
--
-- Sums of marts.gmv_daily over the month; ratios are recomputed from the sums (never
-- averaged from daily ratios).
-- columns:
--   shop_id, currency         key; every amount is in this currency
--   month_start                first day of the shop-local month
--   days                      days of the month with at least one order
--   orders, cancelled_orders, refunded_orders, units
--   gross_gmv, net_gmv, refunded_gmv, net_gmv_after_refunds   as in gmv_daily
--   aov                       net_gmv / (orders − cancelled_orders)
--   cancellation_rate         cancelled_orders / orders
--   refund_rate               refunded_orders / (orders − cancelled_orders)
with daily as (
    select *, cast(date_trunc('month', order_date) as date) as month_start
    from marts.gmv_daily
),

monthly as (
    select
        shop_id,
        month_start,
        currency,
        count(*) as days,
        sum(orders) as orders,
        sum(cancelled_orders) as cancelled_orders,
        sum(refunded_orders) as refunded_orders,
        sum(units) as units,
        sum(gross_gmv) as gross_gmv,
        sum(net_gmv) as net_gmv,
        sum(refunded_gmv) as refunded_gmv
    from daily
    group by shop_id, month_start, currency
)

select
    shop_id,
    month_start,
    currency,
    days,
    orders,
    cancelled_orders,
    refunded_orders,
    units,
    cast(gross_gmv as decimal(38, 6)) as gross_gmv,
    cast(net_gmv as decimal(38, 6)) as net_gmv,
    cast(refunded_gmv as decimal(38, 6)) as refunded_gmv,
    cast(net_gmv - refunded_gmv as decimal(38, 6)) as net_gmv_after_refunds,
    cast(net_gmv / nullif(orders - cancelled_orders, 0) as decimal(38, 6)) as aov,
    cast(cancelled_orders as double) / orders as cancellation_rate,
    cast(refunded_orders as double) / nullif(orders - cancelled_orders, 0) as refund_rate
from monthly
