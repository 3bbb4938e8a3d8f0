-- marts.video_performance: every video's results so far: views, engagement, the sales it
-- drove, its view-to-order conversion, and its rank among the shop's videos.
-- grain: one row per (shop_id, video_id)
-- materialized: table
-- unique_key: shop_id, video_id
-- tests: not_null(post_date), expression(views >= 0), expression(days_with_views >= 1)
-- tests: expression(conversion_rate between 0 and 1 or conversion_rate is null), expression(rank_by_gmv >= 1)
--
-- Sums of the daily rows of raw.video_performance (one per day with views).
-- columns:
--   shop_id, video_id, title, username, duration_seconds
--   product_id, product_title   the product it features
--   post_time (UTC); post_date: the shop-local day of its first views (its post date
--                          for videos posted inside the extracted history)
--   days_with_views, first_day, last_day
--   views, likes, comments, shares
--   engagement_rate        (likes + comments + shares) / views
--   currency, gmv, orders, units   sales the video drove
--   conversion_rate        orders / views (video-to-sale)
--   gmv_per_1k_views       gmv / views × 1000
--   rank_by_gmv, rank_by_views     1 = the shop's best video (top videos)
with daily as (
    select * from raw.video_performance
),

videos as (
    select
        _shop_id as shop_id,
        id as video_id,
        max(title) as title,
        max(username) as username,
        max(duration) as duration_seconds,
        max(product_id) as product_id,
        max(video_post_time) as post_time,
        count(*) as days_with_views,
        min(date) as first_day,
        max(date) as last_day,
        sum(views) as views,
        sum(likes) as likes,
        sum(comments) as comments,
        sum(shares) as shares,
        max(currency) as currency,
        sum(gmv) as gmv,
        sum(sku_orders) as orders,
        sum(units_sold) as units
    from daily
    group by _shop_id, id
)

select
    v.shop_id,
    v.video_id,
    v.title,
    v.username,
    v.duration_seconds,
    v.product_id,
    p.title as product_title,
    v.post_time,
    v.first_day as post_date,
    v.days_with_views,
    v.first_day,
    v.last_day,
    v.views,
    v.likes,
    v.comments,
    v.shares,
    cast(v.likes + v.comments + v.shares as double) / nullif(v.views, 0) as engagement_rate,
    v.currency,
    cast(v.gmv as decimal(38, 6)) as gmv,
    v.orders,
    v.units,
    cast(v.orders as double) / nullif(v.views, 0) as conversion_rate,
    cast(v.gmv * 1000 / nullif(v.views, 0) as decimal(38, 6)) as gmv_per_1k_views,
    rank() over (partition by v.shop_id order by v.gmv desc) as rank_by_gmv,
    rank() over (partition by v.shop_id order by v.views desc) as rank_by_views
from videos v
left join staging.stg_products p on p.shop_id = v.shop_id and p.product_id = v.product_id
