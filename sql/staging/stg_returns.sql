-- staging.stg_returns: one row per return or refund request (latest version), with the
-- shop-local date it was requested.
-- grain: one row per (shop_id, return_id)
-- materialized: table
-- unique_key: shop_id, return_id
-- tests: not_null(return_date), not_null(currency)
-- tests: relationships(order_id, staging.stg_orders.order_id)
-- tests: accepted_values(return_type, ['RETURN_AND_REFUND', 'REFUND_ONLY', 'REPLACEMENT'])
--
-- columns:
--   shop_id, return_id, order_id   keys (strings)
--   return_type                    RETURN_AND_REFUND, REFUND_ONLY (REPLACEMENT on the real API)
--   return_status, is_complete     current status; is_complete = RETURN_OR_REFUND_REQUEST_COMPLETE
--   reason                         the buyer's reason
--   requested_at, updated_at       UTC
--   return_date                    shop-local date of the request
--   order_date                     shop-local date the returned order was placed
--   currency, refund_total, refund_subtotal   decimal, in the shop's currency
--   _extracted_at                   when the newest input row was fetched (change tracking)
with source as (
    select * from raw.returns
),

orders as (
    select shop_id, order_id, order_date, _extracted_at from staging.stg_orders
)

select
    r._shop_id as shop_id,
    r.return_id,
    r.order_id,
    o.order_date,
    return_type,
    return_status,
    return_status = 'RETURN_OR_REFUND_REQUEST_COMPLETE' as is_complete,
    return_reason_text as reason,
    create_time as requested_at,
    update_time as updated_at,
    create_date as return_date,
    currency,
    refund_total,
    refund_subtotal,
    greatest(r._extracted_at, o._extracted_at) as _extracted_at
from source r
left join orders o
    on o.shop_id = r._shop_id and o.order_id = r.order_id
