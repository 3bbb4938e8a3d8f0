-- marts.creator_performance: what each creator brought the shop per shop-local month:
-- orders, units, GMV and the commission owed and paid.
-- grain: one row per (shop_id, creator_id, month)
-- materialized: table
-- unique_key: shop_id, creator_id, month
-- tests: not_null(creator_username), expression(actual_commission <= estimated_commission)
-- tests: expression(commission_rate between 0 and 1 or commission_rate is null), expression(rank_in_month >= 1)
-- tests: relationships(creator_id, raw.affiliate_creators.user_id)
--
-- From the affiliate order lines (raw.affiliate_order_lines: one per unit). Cancelled
-- orders are left out (their commission is 0). Month = the shop-local month the order
-- was placed.
-- columns:
--   shop_id, creator_id, creator_username, follower_count
--   month                   first day of the shop-local month
--   currency
--   orders, units, gmv      not-cancelled affiliate orders, their units and Σ price
--   estimated_commission    commission expected on them
--   actual_commission       commission settled (orders completed)
--   pending_commission      estimated − actual
--   commission_rate         estimated_commission / gmv
--   rank_in_month           1 = the creator who brought the most GMV that month
with lines as (
    select
        _shop_id as shop_id,
        creator_user_id as creator_id,
        order_id,
        cast(date_trunc('month', order_create_date) as date) as month,
        currency,
        price,
        estimated_commission,
        actual_commission
    from raw.affiliate_order_lines
    where commission_status <> 'CANCELLED'
),

monthly as (
    select
        shop_id,
        creator_id,
        month,
        max(currency) as currency,
        count(distinct order_id) as orders,
        count(*) as units,
        sum(price) as gmv,
        sum(estimated_commission) as estimated_commission,
        sum(actual_commission) as actual_commission
    from lines
    group by shop_id, creator_id, month
)

select
    m.shop_id,
    m.creator_id,
    c.username as creator_username,
    c.follower_count,
    m.month,
    m.currency,
    m.orders,
    m.units,
    cast(m.gmv as decimal(38, 6)) as gmv,
    cast(m.estimated_commission as decimal(38, 6)) as estimated_commission,
    cast(m.actual_commission as decimal(38, 6)) as actual_commission,
    cast(m.estimated_commission - m.actual_commission as decimal(38, 6)) as pending_commission,
    cast(m.estimated_commission as double) / nullif(cast(m.gmv as double), 0) as commission_rate,
    rank() over (partition by m.shop_id, m.month order by m.gmv desc) as rank_in_month
from monthly m
left join raw.affiliate_creators c on c._shop_id = m.shop_id and c.user_id = m.creator_id
