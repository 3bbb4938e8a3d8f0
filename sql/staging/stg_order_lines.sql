-- staging.stg_order_lines: one row per order line item (one unit) with its product's
-- brand and its order's status and shop-local date.
-- grain: one row per (shop_id, order_id, line_item_id)
-- materialized: table
-- unique_key: shop_id, order_id, line_item_id
-- tests: not_null(brand), not_null(order_date)
-- tests: relationships(order_id, staging.stg_orders.order_id)
--
-- columns:
--   shop_id, order_id, line_item_id, sku_id, product_id   keys (strings)
--   order_date            shop-local date the order was placed
--   order_status, is_cancelled   the order's current status
--   product_name, sku_name, seller_sku
--   brand, brand_source   from staging.stg_products (rule documented there); 'Unbranded'
--                         when the product is not in the catalog yet
--   currency              ISO currency
--   original_price        list price of the unit
--   sale_price            what the unit sold for after discounts (its GMV contribution)
--   seller_discount, platform_discount
--   room_id               the LIVE session the unit sold in (null when not from a LIVE)
--   is_paid               the order was paid (analytics count paid orders)
--   _extracted_at         newest fetch of the line, its order and its product (change tracking)
with lines as (
    select * from raw.order_line_items
),

orders as (
    select shop_id, order_id, status, is_cancelled, paid_at, _extracted_at from staging.stg_orders
),

products as (
    select shop_id, product_id, brand, brand_source, _extracted_at from staging.stg_products
),

final as (
    select
        l._shop_id as shop_id,
        l.order_id,
        l.id as line_item_id,
        l.sku_id,
        l.product_id,
        l.order_create_date as order_date,
        o.status as order_status,
        o.is_cancelled,
        l.product_name,
        l.sku_name,
        l.seller_sku,
        coalesce(p.brand, 'Unbranded') as brand,
        coalesce(p.brand_source, 'none') as brand_source,
        l.currency,
        l.original_price,
        l.sale_price,
        l.seller_discount,
        l.platform_discount,
        l.room_id,
        o.paid_at is not null as is_paid,
        -- A status change or a product rename changes the line: newest of the three.
        greatest(l._extracted_at, o._extracted_at, p._extracted_at) as _extracted_at
    from lines l
    join orders o
        on o.shop_id = l._shop_id and o.order_id = l.order_id
    left join products p
        on p.shop_id = l._shop_id and p.product_id = l.product_id
)

select * from final
