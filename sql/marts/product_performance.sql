-- marts.product_performance: each product's day as the analytics API reports it (views,
-- visitors, orders, units, GMV), with its conversion and its rank in the shop that day.
-- grain: one row per (shop_id, date, product_id); products without activity that day have no row
-- materialized: table
-- unique_key: shop_id, date, product_id
-- tests: not_null(currency), not_null(brand), expression(gmv_rank >= 1)
-- tests: relationships(product_id, staging.stg_order_lines.product_id)
--   (the analytics report counts paid orders, which the order lines hold; the product
--   catalog is extracted hourly and may lag a new product, so it is not the reference)
--
-- columns:
--   shop_id, product_id, currency   key; gmv in this currency
--   date                    shop-local day
--   title, brand, category  from staging.stg_products
--   page_views, visitors    product page views and unique visitors
--   orders, units_sold, gmv
--   conversion_rate         orders / visitors (views → orders; null without visitors)
--   click_through_rate      as the API states it
--   gmv_rank                1 = the shop's best product by GMV that day (ties share a rank)
--   units_rank              the same by units sold
with perf as (
    select * from raw.product_performance
),

products as (
    select shop_id, product_id, title, brand, category from staging.stg_products
)

select
    p._shop_id as shop_id,
    p.date,
    p.product_id,
    pr.title,
    coalesce(pr.brand, 'Unbranded') as brand,
    pr.category,
    p.currency,
    p.page_views,
    p.visitors,
    p.orders,
    p.units_sold,
    cast(p.gmv as decimal(38, 6)) as gmv,
    cast(p.orders as double) / nullif(p.visitors, 0) as conversion_rate,
    p.click_through_rate,
    rank() over (partition by p._shop_id, p.date order by p.gmv desc) as gmv_rank,
    rank() over (partition by p._shop_id, p.date order by p.units_sold desc) as units_rank
from perf p
left join products pr
    on pr.shop_id = p._shop_id and pr.product_id = p.product_id
