-- marts.sku_performance: each SKU's day as the analytics API reports it, with its share of
-- its product and its rank in the shop that day.
-- grain: one row per (shop_id, date, sku_id)
-- materialized: table
-- unique_key: shop_id, date, sku_id
-- tests: not_null(product_id), expression(share_of_product_units between 0 and 1), expression(gmv_rank >= 1)
--
-- The API has no views per SKU: view → order conversion is per product
-- (marts.product_performance); here orders and units per SKU.
-- columns:
--   shop_id, sku_id, product_id, currency   key; gmv in this currency
--   date                       shop-local day
--   seller_sku, sku_name       from the SKU's latest order line (null if never sold)
--   sku_orders, units_sold, gmv
--   share_of_product_units     units_sold / the product's units that day over its SKUs
--   gmv_rank                   1 = the shop's best SKU by GMV that day
with perf as (
    select * from raw.sku_performance
),

names as (
    select shop_id, sku_id, max(seller_sku) as seller_sku, max(sku_name) as sku_name
    from staging.stg_order_lines
    group by shop_id, sku_id
)

select
    p._shop_id as shop_id,
    p.date,
    p.sku_id,
    p.product_id,
    n.seller_sku,
    n.sku_name,
    p.currency,
    p.sku_orders,
    p.units_sold,
    cast(p.gmv as decimal(38, 6)) as gmv,
    cast(p.units_sold as double)
        / nullif(sum(p.units_sold) over (partition by p._shop_id, p.date, p.product_id), 0) as share_of_product_units,
    rank() over (partition by p._shop_id, p.date order by p.gmv desc) as gmv_rank
from perf p
left join names n
    on n.shop_id = p._shop_id and n.sku_id = p.sku_id
