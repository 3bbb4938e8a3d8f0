-- staging.stg_packages: one row per package (latest version) with its order's payment
-- time and ready-to-ship deadline, and the shop-local date it was created.
-- grain: one row per (shop_id, package_id)
-- materialized: table
-- unique_key: shop_id, package_id
-- tests: not_null(package_date), not_null(paid_at)
-- tests: relationships(order_id, staging.stg_orders.order_id)
-- tests: accepted_values(package_status, ['TO_FULFILL', 'IN_TRANSIT', 'DELIVERED', 'CANCELLED'])
--
-- columns:
--   shop_id, package_id, order_id   keys (strings)
--   package_status                  TO_FULFILL, IN_TRANSIT, DELIVERED, CANCELLED
--   shipping_provider               carrier name
--   paid_at                         the order's payment time (UTC)
--   rts_at                          marked ready to ship = package created (UTC)
--   rts_deadline                    the order's ready-to-ship deadline (UTC)
--   shipped_at, delivered_at        collected by / delivered by the carrier (UTC)
--   package_date                    shop-local date the package was created
--   _extracted_at                   when the newest input row was fetched (change tracking)
with packages as (
    select * from raw.packages
),

orders as (
    select _shop_id as shop_id, id as order_id, paid_time, rts_sla_time, _extracted_at from raw.orders
)

select
    p._shop_id as shop_id,
    p.id as package_id,
    p.order_id,
    p.package_status,
    p.shipping_provider_name as shipping_provider,
    o.paid_time as paid_at,
    p.create_time as rts_at,
    o.rts_sla_time as rts_deadline,
    p.collection_time as shipped_at,
    p.delivery_time as delivered_at,
    p.create_date as package_date,
    greatest(p._extracted_at, o._extracted_at) as _extracted_at
from packages p
join orders o
    on o.shop_id = p._shop_id and o.order_id = p.order_id
