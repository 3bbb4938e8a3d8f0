-- staging.stg_orders: one row per order (latest version), money as decimals in the
-- order's currency, times in UTC plus the shop-local date.
-- grain: one row per (shop_id, order_id)
-- materialized: table
-- unique_key: shop_id, order_id
-- tests: not_null(order_date), not_null(currency)
-- tests: accepted_values(status, ['UNPAID', 'ON_HOLD', 'AWAITING_SHIPMENT', 'PARTIALLY_SHIPPING', 'AWAITING_COLLECTION', 'IN_TRANSIT', 'DELIVERED', 'COMPLETED', 'CANCELLED'])
-- tests:
--   - expression(total_amount = sub_total + shipping_fee + tax)
--
-- columns:
--   shop_id, order_id, buyer_id      keys (strings)
--   status, is_cancelled             current status; is_cancelled = status CANCELLED
--   created_at, updated_at, paid_at, shipped_at, delivered_at, cancelled_at   UTC
--   order_date                       shop-local date the order was placed
--   order_local_time                 shop-local wall-clock time the order was placed
--   currency                         ISO currency of every amount below
--   sub_total                        items after seller and platform discounts
--   original_product_price           items at list price
--   seller_discount, platform_discount
--   shipping_fee, tax, total_amount  total_amount = sub_total + shipping_fee + tax
--   fulfillment_type, payment_method, shipping_provider, cancel_reason, cancellation_initiator
--   _extracted_at                    when the newest row this row was made from was fetched
--                                    (incremental models find changed windows by it)
with source as (
    select * from raw.orders
),

renamed as (
    select
        -- ids
        _shop_id as shop_id,
        id as order_id,
        user_id as buyer_id,
        -- status
        status,
        status = 'CANCELLED' as is_cancelled,
        -- times
        create_time as created_at,
        update_time as updated_at,
        paid_time as paid_at,
        collection_time as shipped_at,
        delivery_time as delivered_at,
        cancel_time as cancelled_at,
        create_date as order_date,
        create_local_time as order_local_time,
        -- money
        currency,
        sub_total,
        original_total_product_price as original_product_price,
        seller_discount,
        platform_discount,
        shipping_fee,
        tax,
        total_amount,
        -- attributes
        fulfillment_type,
        payment_method_name as payment_method,
        shipping_provider,
        cancel_reason,
        cancellation_initiator,
        _extracted_at
    from source
)

select * from renamed
