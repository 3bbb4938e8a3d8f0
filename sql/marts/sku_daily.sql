-- marts.sku_daily: sales per SKU per shop-local day, ranked.
-- grain: one row per (shop_id, order_date, sku_id)
-- materialized: incremental
-- unique_key: shop_id, order_date, sku_id
-- incremental_by: shop_id, order_date
-- tests: not_null(product_id), expression(rank >= 1)
--
-- columns:
--   shop_id, order_date, sku_id   keys (order_date shop-local)
--   product_id, product_name, sku_name, seller_sku, brand
--   currency                      the shop's currency
--   units                         units sold (all orders)
--   cancelled_units               of those, in cancelled orders
--   net_units                     units − cancelled_units
--   net_gmv                       Σ sale_price of non-cancelled units
--   rank                          1 = highest net_gmv in the shop that day (ties share a rank)
--   units_rank                    the same by net_units
with lines as (
    select * from staging.stg_order_lines
),

by_sku as (
    select
        shop_id,
        order_date,
        sku_id,
        max(product_id) as product_id,
        max(product_name) as product_name,
        max(sku_name) as sku_name,
        max(seller_sku) as seller_sku,
        max(brand) as brand,
        max(currency) as currency,
        count(*) as units,
        sum(case when is_cancelled then 1 else 0 end) as cancelled_units,
        coalesce(sum(case when is_cancelled then null else sale_price end), cast(0 as decimal(38, 6))) as net_gmv
    from lines
    group by shop_id, order_date, sku_id
),

final as (
    select
        shop_id,
        order_date,
        sku_id,
        product_id,
        product_name,
        sku_name,
        seller_sku,
        brand,
        currency,
        units,
        cancelled_units,
        units - cancelled_units as net_units,
        cast(net_gmv as decimal(38, 6)) as net_gmv,
        rank() over (partition by shop_id, order_date order by net_gmv desc) as rank,
        rank() over (partition by shop_id, order_date order by units - cancelled_units desc) as units_rank
    from by_sku
)

select * from final
