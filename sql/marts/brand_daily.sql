-- marts.brand_daily: sales per brand per shop-local day.
-- grain: one row per (shop_id, order_date, brand)
-- materialized: incremental
-- unique_key: shop_id, order_date, brand
-- incremental_by: shop_id, order_date
-- tests: not_null(brand), expression(net_gmv <= gross_gmv)
--
-- Brand comes from staging.stg_products (seed aliases, then the API brand, then
-- 'Unbranded'; the rule is documented there).
-- columns:
--   shop_id, order_date, brand   keys (order_date shop-local)
--   currency                     the shop's currency
--   orders                       orders with at least one unit of the brand
--   units                        units of the brand (all orders)
--   gross_gmv                    Σ sale_price of those units
--   net_gmv                      the same without cancelled orders
--   gmv_share                    net_gmv / the shop's net GMV that day
--   rank                         1 = the brand with the highest net GMV that day
with lines as (
    select * from staging.stg_order_lines
),

-- One row per order and brand first: counting orders is then a plain count (a
-- count(distinct) per group holds every order id in memory at once).
by_order as (
    select
        shop_id,
        order_date,
        brand,
        currency,
        order_id,
        count(*) as units,
        sum(sale_price) as gross_gmv,
        sum(case when is_cancelled then null else sale_price end) as net_gmv
    from lines
    group by shop_id, order_date, brand, currency, order_id
),

by_brand as (
    select
        shop_id,
        order_date,
        brand,
        currency,
        count(*) as orders,
        sum(units) as units,
        sum(gross_gmv) as gross_gmv,
        coalesce(sum(net_gmv), cast(0 as decimal(38, 6))) as net_gmv
    from by_order
    group by shop_id, order_date, brand, currency
),

final as (
    select
        shop_id,
        order_date,
        brand,
        currency,
        orders,
        units,
        cast(gross_gmv as decimal(38, 6)) as gross_gmv,
        cast(net_gmv as decimal(38, 6)) as net_gmv,
        cast(net_gmv as double) / nullif(cast(sum(net_gmv) over (partition by shop_id, order_date) as double), 0) as gmv_share,
        rank() over (partition by shop_id, order_date order by net_gmv desc) as rank
    from by_brand
)

select * from final
