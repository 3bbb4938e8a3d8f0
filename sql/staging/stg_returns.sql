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
--   currency, refund_total, refund_subtotal   decimal, in the shop's currency
with source as (
    select * from raw.returns
)

select
    _shop_id as shop_id,
    return_id,
    order_id,
    return_type,
    return_status,
    return_status = 'RETURN_OR_REFUND_REQUEST_COMPLETE' as is_complete,
    return_reason_text as reason,
    create_time as requested_at,
    update_time as updated_at,
    create_date as return_date,
    currency,
    refund_total,
    refund_subtotal
from source
