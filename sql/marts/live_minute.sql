-- marts.live_minute: each minute of each LIVE session: viewers, sales, engagement, and
-- how far the session's GMV had got.
-- grain: one row per (shop_id, live_id, minute)
-- materialized: table
-- unique_key: shop_id, live_id, minute
-- tests: expression(minute >= 0), expression(viewers >= 0), expression(cumulative_gmv <= session_gmv)
-- tests: relationships(live_id, marts.live_sessions.live_id)
--
-- columns:
--   shop_id, live_id
--   minute                 0 = the session's first minute
--   minute_start           UTC
--   viewers                watching in that minute
--   currency, gmv, orders, units   sales placed from the session in that minute
--   likes, comments, new_followers
--   cumulative_gmv         Σ gmv up to and including this minute
--   session_gmv            Σ gmv over the whole session
--   share_of_peak          viewers / the session's most viewers in any minute
with minutes as (
    select * from raw.live_minutes
),

numbered as (
    select
        _shop_id as shop_id,
        live_id,
        row_number() over (partition by _shop_id, live_id order by minute_start) - 1 as minute,
        minute_start,
        viewers,
        currency,
        gmv,
        sku_orders as orders,
        items_sold as units,
        likes,
        comments,
        new_followers
    from minutes
)

select
    shop_id,
    live_id,
    minute,
    minute_start,
    viewers,
    currency,
    cast(gmv as decimal(38, 6)) as gmv,
    orders,
    units,
    likes,
    comments,
    new_followers,
    cast(sum(gmv) over (partition by shop_id, live_id order by minute rows between unbounded preceding and current row) as decimal(38, 6)) as cumulative_gmv,
    cast(sum(gmv) over (partition by shop_id, live_id) as decimal(38, 6)) as session_gmv,
    cast(viewers as double) / nullif(max(viewers) over (partition by shop_id, live_id), 0) as share_of_peak
from numbered
