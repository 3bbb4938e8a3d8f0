-- marts.fulfillment_sla: how fast packages leave and arrive, per carrier and shop-local
-- day the package was created (the order marked ready to ship).
-- grain: one row per (shop_id, package_date, shipping_provider)
-- materialized: incremental
-- unique_key: shop_id, package_date, shipping_provider
-- incremental_by: shop_id, package_date
-- tests: not_null(shipping_provider), expression(shipped <= packages), expression(delivered <= shipped), expression(late_rts <= packages)
--
-- columns:
--   shop_id, package_date, shipping_provider   keys (package_date shop-local)
--   packages                 packages created that day
--   shipped                  of those, collected by the carrier
--   delivered                of those, delivered
--   late_rts                 marked ready to ship after the order's ready-to-ship deadline
--   late_rts_rate            late_rts / packages
--   avg_hours_to_rts         mean hours from payment to ready-to-ship (the seller's part)
--   avg_hours_to_collect     mean hours from ready-to-ship to carrier collection
--   avg_hours_in_transit     mean hours from collection to delivery (the carrier's part),
--                            over delivered packages
--   p90_hours_in_transit     90th percentile of the same (approx_percentile_cont)
with packages as (
    select * from staging.stg_packages
),

timed as (
    select
        shop_id,
        package_date,
        shipping_provider,
        shipped_at is not null as is_shipped,
        delivered_at is not null as is_delivered,
        rts_at > rts_deadline as is_late,
        to_unixtime(rts_at) - to_unixtime(paid_at) as secs_to_rts,
        to_unixtime(shipped_at) - to_unixtime(rts_at) as secs_to_collect,
        to_unixtime(delivered_at) - to_unixtime(shipped_at) as secs_in_transit,
        cast(to_unixtime(delivered_at) - to_unixtime(shipped_at) as double) / 3600.0 as hours_in_transit
    from packages
)

select
    shop_id,
    package_date,
    shipping_provider,
    count(*) as packages,
    sum(case when is_shipped then 1 else 0 end) as shipped,
    sum(case when is_delivered then 1 else 0 end) as delivered,
    sum(case when is_late then 1 else 0 end) as late_rts,
    cast(sum(case when is_late then 1 else 0 end) as double) / count(*) as late_rts_rate,
    -- Means from exact integer sums of seconds: the same value on every rebuild, whatever
    -- order the rows arrive in (a float avg() is not).
    cast(sum(secs_to_rts) as double) / count(secs_to_rts) / 3600.0 as avg_hours_to_rts,
    cast(sum(secs_to_collect) as double) / count(secs_to_collect) / 3600.0 as avg_hours_to_collect,
    cast(sum(secs_in_transit) as double) / count(secs_in_transit) / 3600.0 as avg_hours_in_transit,
    approx_percentile_cont(hours_in_transit, 0.9) as p90_hours_in_transit
from timed
group by shop_id, package_date, shipping_provider
