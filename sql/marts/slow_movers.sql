-- marts.slow_movers: SKUs tying up stock: in stock, listed for at least 30 days, and
-- selling too slowly.
-- grain: one row per (shop_id, sku_id) that meets the rule below
-- materialized: table
-- unique_key: shop_id, sku_id
-- tests: expression(stock > 0), expression(listed_days >= 30), accepted_values(reason, ['no_sales_30d', 'cover_over_90d'])
-- tests: relationships(sku_id, marts.inventory_status.sku_id)
--
-- Rule: stock > 0, and the product was created at least 30 days before as_of, and either
--   no unit sold in the last 30 local days (reason no_sales_30d), or at the last 28
--   days' pace the stock lasts more than 90 days (reason cover_over_90d).
-- columns:
--   shop_id, sku_id, product_id, title, brand, seller_sku
--   stock, units_sold_30d, days_of_cover   (days_of_cover from marts.inventory_status)
--   listed_days              days from the product's creation (UTC date) to as_of
--   stock_value              stock × sale_price, in currency
--   reason                   which part of the rule matched
--   as_of                    the shop's latest order date
with inv as (
    select * from marts.inventory_status
),

sold30 as (
    select l.shop_id, l.sku_id, count(*) as units
    from staging.stg_order_lines l
    join inv i on i.shop_id = l.shop_id and i.sku_id = l.sku_id
    where not l.is_cancelled
      and l.order_date > i.as_of - interval '30' day
    group by l.shop_id, l.sku_id
),

candidates as (
    select
        i.*,
        coalesce(s.units, 0) as units_sold_30d,
        cast(i.as_of as int) - cast(cast(p.create_time as date) as int) as listed_days
    from inv i
    join staging.stg_products p on p.shop_id = i.shop_id and p.product_id = i.product_id
    left join sold30 s on s.shop_id = i.shop_id and s.sku_id = i.sku_id
)

select
    shop_id,
    sku_id,
    product_id,
    title,
    brand,
    seller_sku,
    currency,
    stock,
    units_sold_30d,
    days_of_cover,
    listed_days,
    cast(stock * sale_price as decimal(38, 6)) as stock_value,
    case when units_sold_30d = 0 then 'no_sales_30d' else 'cover_over_90d' end as reason,
    as_of
from candidates
where stock > 0
  and listed_days >= 30
  and (units_sold_30d = 0 or days_of_cover > 90)
