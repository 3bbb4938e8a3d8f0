-- marts.gmv_daily: sales per shop and shop-local day.
-- grain: one row per (shop_id, order_date); order_date is the shop-local date the order
--        was placed (time zone from the shop's region), not the UTC date.
-- materialized: incremental
-- unique_key: shop_id, order_date
-- incremental_by: shop_id, order_date
-- tests: not_null(currency), expression(net_gmv <= gross_gmv), expression(cancelled_orders <= orders)
-- tests: expression(refunded_orders <= orders), expression(refund_rate between 0 and 1)
-- tests: relationships(shop_id, staging.stg_orders.shop_id)
--
-- Definitions (money in the shop's currency, decimal; never summed across currencies):
--   shop_id, order_date, currency   the key; every amount is in currency
--   GMV = Σ payment.sub_total: what items sold for after seller and platform discounts,
--         before shipping and tax.
--   orders            orders placed that day (any status)
--   cancelled_orders  of those, orders whose current status is CANCELLED
--   units             line items of those orders (the API has one line item per unit)
--   gross_gmv         GMV of all orders placed that day
--   net_gmv           GMV without cancelled orders
--   total_amount      Σ total_amount (items + shipping + tax, what buyers paid) without
--                     cancelled orders
--   aov               net_gmv / (orders − cancelled_orders); null when every order was
--                     cancelled
--   cancelled_share   cancelled_orders / orders (the cancellation rate)
--   refunded_orders   orders placed that day, not cancelled, with a completed return or refund
--   refunded_gmv      Σ refund_subtotal of those completed returns and refunds
--   refund_rate       refunded_orders / (orders − cancelled_orders); null without such orders
--   net_gmv_after_refunds  net_gmv − refunded_gmv
with orders as (
    select * from staging.stg_orders
),

units as (
    select shop_id, order_id, count(*) as units
    from staging.stg_order_lines
    group by shop_id, order_id
),

refunds as (
    select
        shop_id,
        order_id,
        sum(refund_subtotal) as refunded
    from staging.stg_returns
    where is_complete
    group by shop_id, order_id
),

daily as (
    select
        o.shop_id,
        o.order_date,
        o.currency,
        count(*) as orders,
        sum(case when o.is_cancelled then 1 else 0 end) as cancelled_orders,
        sum(coalesce(u.units, 0)) as units,
        sum(o.sub_total) as gross_gmv,
        coalesce(sum(case when o.is_cancelled then null else o.sub_total end), cast(0 as decimal(38, 6))) as net_gmv,
        coalesce(sum(case when o.is_cancelled then null else o.total_amount end), cast(0 as decimal(38, 6))) as total_amount,
        sum(case when r.order_id is not null and not o.is_cancelled then 1 else 0 end) as refunded_orders,
        coalesce(sum(case when o.is_cancelled then null else r.refunded end), cast(0 as decimal(38, 6))) as refunded_gmv
    from orders o
    left join units u
        on u.shop_id = o.shop_id and u.order_id = o.order_id
    left join refunds r
        on r.shop_id = o.shop_id and r.order_id = o.order_id
    group by o.shop_id, o.order_date, o.currency
),

final as (
    select
        shop_id,
        order_date,
        currency,
        orders,
        cancelled_orders,
        units,
        cast(gross_gmv as decimal(38, 6)) as gross_gmv,
        cast(net_gmv as decimal(38, 6)) as net_gmv,
        cast(total_amount as decimal(38, 6)) as total_amount,
        cast(net_gmv / nullif(orders - cancelled_orders, 0) as decimal(38, 6)) as aov,
        cast(cancelled_orders as double) / orders as cancelled_share,
        refunded_orders,
        cast(refunded_gmv as decimal(38, 6)) as refunded_gmv,
        cast(refunded_orders as double) / nullif(orders - cancelled_orders, 0) as refund_rate,
        cast(net_gmv - refunded_gmv as decimal(38, 6)) as net_gmv_after_refunds
    from daily
)

select * from final
