-- marts.customer_retention: monthly buyer cohorts: of the buyers whose first order fell
-- in a month, how many ordered again 1, 2, … months later.
-- grain: one row per (shop_id, cohort_month, months_since_first)
-- materialized: table
-- unique_key: shop_id, cohort_month, months_since_first
-- tests: expression(active_buyers <= cohort_buyers), expression(retention_rate between 0 and 1)
-- tests: expression(months_since_first >= 0), expression(months_since_first > 0 or retention_rate = 1)
--
-- A buyer is buyer_id within a shop; orders count when not cancelled. Months are the
-- shop's local calendar months (from order_date).
-- columns:
--   shop_id, cohort_month        first day of the month of the buyer's first order
--   months_since_first           0 = the cohort month itself
--   cohort_buyers                buyers whose first order was in cohort_month
--   active_buyers                of those, buyers with an order in that month
--   retention_rate               active_buyers / cohort_buyers
--   orders, net_gmv, currency    their orders and Σ sub_total that month
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
    select shop_id, buyer_id, min(month) as cohort_month
    from orders
    group by shop_id, buyer_id
),

activity as (
    select
        f.shop_id,
        f.cohort_month,
        (extract(year from o.month) - extract(year from f.cohort_month)) * 12
            + extract(month from o.month) - extract(month from f.cohort_month) as months_since_first,
        o.buyer_id,
        o.currency,
        o.sub_total
    from orders o
    join firsts f on f.shop_id = o.shop_id and f.buyer_id = o.buyer_id
),

sizes as (
    select shop_id, cohort_month, count(*) as cohort_buyers
    from firsts
    group by shop_id, cohort_month
),

grid as (
    select
        shop_id,
        cohort_month,
        cast(months_since_first as int) as months_since_first,
        max(currency) as currency,
        count(distinct buyer_id) as active_buyers,
        count(*) as orders,
        sum(sub_total) as net_gmv
    from activity
    group by shop_id, cohort_month, months_since_first
)

select
    g.shop_id,
    g.cohort_month,
    g.months_since_first,
    s.cohort_buyers,
    g.active_buyers,
    cast(g.active_buyers as double) / s.cohort_buyers as retention_rate,
    g.orders,
    g.currency,
    cast(g.net_gmv as decimal(38, 6)) as net_gmv
from grid g
join sizes s on s.shop_id = g.shop_id and s.cohort_month = g.cohort_month
