-- marts.best_sellers: each shop's top 20 products by net GMV over the last 7, 30 and 90
-- local days.
-- grain: one row per (shop_id, period_days, rank_by_gmv); ties share a rank, so a rank
--        may repeat and the list may run past 20 rows
-- materialized: table
-- unique_key: shop_id, period_days, product_id
-- tests: accepted_values(period_days, ['7', '30', '90']), expression(rank_by_gmv between 1 and 20)
-- tests: expression(share_of_shop_gmv between 0 and 1), relationships(product_id, staging.stg_order_lines.product_id)
--
-- Sales are order lines of not-cancelled orders placed in the period (the as_of day
-- included); as_of is the shop's latest order date.
-- columns:
--   shop_id, period_days, product_id, currency
--   title, brand
--   units, orders, net_gmv          units and orders of the product, Σ sale_price
--   share_of_shop_gmv               net_gmv / the shop's net GMV in the period
--   rank_by_gmv, rank_by_units      1 = best
--   as_of
with as_of as (
    select shop_id, max(order_date) as as_of from staging.stg_orders group by shop_id
),

periods as (
    select * from (values (7), (30), (90)) as p(period_days)
),

sales as (
    select
        l.shop_id,
        p.period_days,
        l.product_id,
        l.currency,
        count(*) as units,
        count(distinct l.order_id) as orders,
        sum(l.sale_price) as net_gmv,
        a.as_of
    from staging.stg_order_lines l
    join as_of a on a.shop_id = l.shop_id
    cross join periods p
    where not l.is_cancelled
      and cast(l.order_date as int) > cast(a.as_of as int) - p.period_days
    group by l.shop_id, p.period_days, l.product_id, l.currency, a.as_of
),

ranked as (
    select
        s.*,
        rank() over (partition by shop_id, period_days order by net_gmv desc) as rank_by_gmv,
        rank() over (partition by shop_id, period_days order by units desc) as rank_by_units,
        net_gmv / sum(net_gmv) over (partition by shop_id, period_days) as share
    from sales s
)

select
    r.shop_id,
    r.period_days,
    r.product_id,
    r.currency,
    p.title,
    coalesce(p.brand, 'Unbranded') as brand,
    r.units,
    r.orders,
    cast(r.net_gmv as decimal(38, 6)) as net_gmv,
    cast(r.share as double) as share_of_shop_gmv,
    r.rank_by_gmv,
    r.rank_by_units,
    r.as_of
from ranked r
left join staging.stg_products p on p.shop_id = r.shop_id and p.product_id = r.product_id
where r.rank_by_gmv <= 20
