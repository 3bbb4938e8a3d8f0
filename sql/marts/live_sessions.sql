-- marts.live_sessions: every LIVE session: how long, how many watched, what it sold.
-- grain: one row per (shop_id, live_id)
-- materialized: table
-- unique_key: shop_id, live_id
-- tests: not_null(start_date), expression(duration_minutes > 0), expression(peak_viewers >= 0)
-- tests: expression(order_lines_gmv = gmv), expression(conversion_rate between 0 and 1 or conversion_rate is null)
--
-- Sales are the API's (paid orders placed from the session); order_lines_gmv recomputes
-- them from the order lines carrying the session's room_id (paid orders), and the test
-- above holds the two equal.
-- columns:
--   shop_id, live_id, title, username
--   start_time, end_time       UTC
--   start_date                 shop-local date it started
--   duration_minutes
--   views                      unique viewers; peak_viewers: most at once (peak concurrent)
--   avg_viewing_minutes        how long a viewer stayed, on average
--   currency, gmv              GMV during the LIVE, in currency
--   orders, units              paid orders and units from the session
--   gmv_per_hour               gmv / (duration_minutes / 60)
--   conversion_rate            orders / views
--   engagement_rate            (likes + comments) / views
--   likes, comments, new_followers
--   order_lines_gmv            Σ sale_price of paid order lines with this room_id
--   rank_by_gmv                1 = the shop's best session by GMV
with sessions as (
    select * from raw.live_sessions
),

lines as (
    select shop_id, room_id, sum(sale_price) as gmv
    from staging.stg_order_lines
    where room_id is not null and is_paid
    group by shop_id, room_id
)

select
    s._shop_id as shop_id,
    s.id as live_id,
    s.title,
    s.username,
    s.start_time,
    s.end_time,
    s.start_date,
    cast(s.duration / 60 as bigint) as duration_minutes,
    s.views,
    s.peak_concurrent_viewers as peak_viewers,
    cast(s.avg_viewing_duration as double) / 60 as avg_viewing_minutes,
    s.currency,
    cast(s.gmv as decimal(38, 6)) as gmv,
    s.sku_orders as orders,
    s.items_sold as units,
    cast(s.gmv / (cast(s.duration as decimal(38, 6)) / 3600) as decimal(38, 6)) as gmv_per_hour,
    cast(s.sku_orders as double) / nullif(s.views, 0) as conversion_rate,
    cast(s.likes + s.comments as double) / nullif(s.views, 0) as engagement_rate,
    s.likes,
    s.comments,
    s.new_followers,
    cast(coalesce(l.gmv, 0) as decimal(38, 6)) as order_lines_gmv,
    rank() over (partition by s._shop_id order by s.gmv desc) as rank_by_gmv
from sessions s
left join lines l on l.shop_id = s._shop_id and l.room_id = s.id
