-- marts.promotion_performance: every discount activity: what its products sold while it
-- ran, what the discounts cost, and how that compares with the weeks before.
-- grain: one row per (shop_id, activity_id)
-- materialized: table
-- unique_key: shop_id, activity_id
-- tests: accepted_values(status, ['NOT_START', 'ONGOING', 'EXPIRED', 'DEACTIVATED']), expression(days > 0)
-- tests: expression(discount_cost >= 0), expression(products >= 1)
--
-- Sales are order lines of not-cancelled orders placed between begin_time and end_time
-- (UTC instants, so no time zone question) for the activity's products.
-- Formulas (money in currency, decimal):
--   discount_cost   Σ seller_discount on those lines: what the shop gave up
--   baseline_gmv    the same products' GMV per day over the 14 days before begin_time,
--                   times the activity's days: what they would have sold anyway
--   uplift_gmv      gmv − baseline_gmv
--   roi             uplift_gmv / discount_cost (null without a discount cost)
--   discount_rate   discount_cost / (gmv + discount_cost)
-- columns:
--   shop_id, activity_id, title, activity_type, status, begin_time, end_time
--   days            length in days (fractional)
--   products        products in the activity
--   currency, orders, units, gmv, discount_cost, baseline_gmv, uplift_gmv, roi, discount_rate
with activities as (
    select
        _shop_id as shop_id,
        id as activity_id,
        title,
        activity_type,
        status,
        begin_time,
        end_time,
        (date_part('epoch', end_time) - date_part('epoch', begin_time)) / 86400 as days
    from raw.promotion_activities
),

products as (
    select _shop_id as shop_id, activity_id, product_id from raw.promotion_products
),

lines as (
    select l.shop_id, l.order_id, l.product_id, l.currency, l.sale_price, l.seller_discount, o.created_at
    from staging.stg_order_lines l
    join staging.stg_orders o on o.shop_id = l.shop_id and o.order_id = l.order_id
    where not l.is_cancelled
),

matched as (
    select
        a.shop_id,
        a.activity_id,
        l.order_id,
        l.currency,
        l.sale_price,
        l.seller_discount,
        l.created_at >= a.begin_time and l.created_at < a.end_time as during,
        l.created_at >= a.begin_time - interval '14' day and l.created_at < a.begin_time as before
    from activities a
    join products p on p.shop_id = a.shop_id and p.activity_id = a.activity_id
    join lines l
        on l.shop_id = a.shop_id and l.product_id = p.product_id
       and l.created_at >= a.begin_time - interval '14' day and l.created_at < a.end_time
),

sums as (
    select
        shop_id,
        activity_id,
        max(currency) as currency,
        count(distinct case when during then order_id end) as orders,
        sum(case when during then 1 else 0 end) as units,
        coalesce(sum(case when during then sale_price end), 0) as gmv,
        coalesce(sum(case when during then seller_discount end), 0) as discount_cost,
        coalesce(sum(case when before then sale_price end), 0) as before_gmv
    from matched
    group by shop_id, activity_id
),

counts as (
    select shop_id, activity_id, count(*) as products from products group by shop_id, activity_id
)

select
    a.shop_id,
    a.activity_id,
    a.title,
    a.activity_type,
    a.status,
    a.begin_time,
    a.end_time,
    a.days,
    c.products,
    s.currency,
    coalesce(s.orders, 0) as orders,
    coalesce(s.units, 0) as units,
    cast(coalesce(s.gmv, 0) as decimal(38, 6)) as gmv,
    cast(coalesce(s.discount_cost, 0) as decimal(38, 6)) as discount_cost,
    cast(coalesce(s.before_gmv, 0) / 14 * cast(a.days as decimal(38, 6)) as decimal(38, 6)) as baseline_gmv,
    cast(coalesce(s.gmv, 0) - coalesce(s.before_gmv, 0) / 14 * cast(a.days as decimal(38, 6)) as decimal(38, 6)) as uplift_gmv,
    cast(coalesce(s.gmv, 0) - coalesce(s.before_gmv, 0) / 14 * cast(a.days as decimal(38, 6)) as double)
        / nullif(cast(s.discount_cost as double), 0) as roi,
    cast(s.discount_cost as double) / nullif(cast(s.gmv + s.discount_cost as double), 0) as discount_rate
from activities a
join counts c on c.shop_id = a.shop_id and c.activity_id = a.activity_id
left join sums s on s.shop_id = a.shop_id and s.activity_id = a.activity_id
