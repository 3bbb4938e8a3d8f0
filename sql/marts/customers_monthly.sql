-- marts.customers_monthly: new and returning buyers per shop-local month, and how many
-- bought more than once.
-- grain: one row per (shop_id, month)
-- materialized: table
-- unique_key: shop_id, month
-- tests: expression(new_buyers + returning_buyers = buyers), expression(repeat_buyers <= buyers)
-- tests: expression(repeat_rate between 0 and 1)
--
-- Orders count when not cancelled. A buyer is new in the month of their first order
-- with the shop (in the extracted history), returning in any later month.
-- columns:
--   shop_id, month                first day of the shop-local month
--   buyers                        distinct buyers with an order that month
--   new_buyers, returning_buyers  first order this month / before
--   repeat_buyers                 buyers with two or more orders this month
--   repeat_rate                   repeat_buyers / buyers
--   orders, orders_per_buyer
--   currency, net_gmv, new_buyer_gmv, returning_buyer_gmv   Σ sub_total, split by buyer type
with orders as (
    select
        shop_id,
        buyer_id,
        currency,
        sub_total,
        cast(date_trunc('month', order_date) as date) as month
    from staging.stg_orders
    where not is_cancelled and buyer_id is not null
),

firsts as (
    select shop_id, buyer_id, min(month) as first_month
    from orders
    group by shop_id, buyer_id
),

per_buyer as (
    select
        o.shop_id,
        o.month,
        o.buyer_id,
        max(o.currency) as currency,
        count(*) as orders,
        sum(o.sub_total) as gmv,
        max(f.first_month) = o.month as is_new
    from orders o
    join firsts f on f.shop_id = o.shop_id and f.buyer_id = o.buyer_id
    group by o.shop_id, o.month, o.buyer_id
)

select
    shop_id,
    month,
    count(*) as buyers,
    sum(case when is_new then 1 else 0 end) as new_buyers,
    sum(case when is_new then 0 else 1 end) as returning_buyers,
    sum(case when orders >= 2 then 1 else 0 end) as repeat_buyers,
    cast(sum(case when orders >= 2 then 1 else 0 end) as double) / count(*) as repeat_rate,
    sum(orders) as orders,
    cast(sum(orders) as double) / count(*) as orders_per_buyer,
    max(currency) as currency,
    cast(sum(gmv) as decimal(38, 6)) as net_gmv,
    cast(coalesce(sum(case when is_new then gmv end), 0) as decimal(38, 6)) as new_buyer_gmv,
    cast(coalesce(sum(case when is_new then null else gmv end), 0) as decimal(38, 6)) as returning_buyer_gmv
from per_buyer
group by shop_id, month
