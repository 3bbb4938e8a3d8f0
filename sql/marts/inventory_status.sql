-- marts.inventory_status: every SKU's stock now, how many days it lasts at the last 28
-- days' sales pace, and how soon it may run out.
-- grain: one row per (shop_id, sku_id)
-- materialized: table
-- unique_key: shop_id, sku_id
-- tests: not_null(stock), accepted_values(stock_out_risk, ['out_of_stock', 'high', 'medium', 'low', 'no_recent_sales'])
-- tests: expression(units_sold_28d >= 0), expression(days_of_cover >= 0 or days_of_cover is null)
--
-- as_of is the shop's latest order date (its last local day with orders), so a backfill
-- of old data is judged as of its own end, not today.
-- columns:
--   shop_id, sku_id, product_id   keys
--   title, brand, seller_sku      what it is
--   currency, sale_price          current price
--   stock                         units available now (from the product's SKU list)
--   units_sold_28d                units of not-cancelled orders placed in the 28 local days up to as_of
--   avg_daily_units               units_sold_28d / 28
--   days_of_cover                 stock / avg_daily_units (null without recent sales)
--   stock_out_risk                out_of_stock: stock = 0; high: cover < 7 days;
--                                 medium: < 14 days; low: ≥ 14 days; no_recent_sales: nothing sold in 28 days
--   as_of                         the day the window ends
with skus as (
    select
        _shop_id as shop_id,
        id as sku_id,
        product_id,
        seller_sku,
        currency,
        sale_price,
        stock
    from raw.product_skus
),

as_of as (
    select shop_id, max(order_date) as as_of from staging.stg_orders group by shop_id
),

sold as (
    select l.shop_id, l.sku_id, count(*) as units
    from staging.stg_order_lines l
    join as_of a on a.shop_id = l.shop_id
    where not l.is_cancelled
      and l.order_date > a.as_of - interval '28' day
    group by l.shop_id, l.sku_id
),

joined as (
    select
        s.shop_id,
        s.sku_id,
        s.product_id,
        p.title,
        coalesce(p.brand, 'Unbranded') as brand,
        s.seller_sku,
        s.currency,
        s.sale_price,
        coalesce(s.stock, 0) as stock,
        coalesce(d.units, 0) as units_sold_28d,
        a.as_of
    from skus s
    left join staging.stg_products p on p.shop_id = s.shop_id and p.product_id = s.product_id
    left join sold d on d.shop_id = s.shop_id and d.sku_id = s.sku_id
    left join as_of a on a.shop_id = s.shop_id
)

select
    shop_id,
    sku_id,
    product_id,
    title,
    brand,
    seller_sku,
    currency,
    sale_price,
    stock,
    units_sold_28d,
    cast(units_sold_28d as double) / 28 as avg_daily_units,
    stock / nullif(cast(units_sold_28d as double) / 28, 0) as days_of_cover,
    case
        when stock = 0 then 'out_of_stock'
        when units_sold_28d = 0 then 'no_recent_sales'
        when stock / (cast(units_sold_28d as double) / 28) < 7 then 'high'
        when stock / (cast(units_sold_28d as double) / 28) < 14 then 'medium'
        else 'low'
    end as stock_out_risk,
    as_of
from joined
