-- marts.kpi_summary: the headline numbers for the last 7, 30 and 90 local days against
-- the period just before, and against the same days a year earlier where data exists.
-- grain: one row per (shop_id, period_days, metric)
-- materialized: table
-- unique_key: shop_id, period_days, metric
-- tests: accepted_values(metric, ['net_gmv', 'orders', 'aov', 'conversion_rate', 'refund_rate'])
-- tests: accepted_values(period_days, ['7', '30', '90']), not_null(currency)
--
-- Periods end at as_of, the shop's latest order date (included): current = (as_of − N, as_of],
-- previous = the N days before, year_ago = current shifted 364 days (same weekdays).
-- Metrics (all from sums over the period, never averages of daily ratios):
--   net_gmv          Σ gmv_daily.net_gmv (not-cancelled orders), in currency
--   orders           Σ orders placed
--   aov              net_gmv / not-cancelled orders
--   conversion_rate  Σ analytics orders / Σ analytics visitors (shop_performance_daily)
--   refund_rate      Σ refunded_orders / not-cancelled orders
-- columns:
--   shop_id, period_days, metric, currency
--   current_value, previous_value, year_ago_value   decimal(38, 6): money in currency for
--                        net_gmv and aov, counts and rates otherwise (null when the shop's history, from its
--                        first order date, does not cover the whole period)
--   change_vs_previous   current / previous − 1;   change_vs_year_ago   current / year_ago − 1
--   current_start, as_of
with as_of as (
    select shop_id, max(order_date) as as_of, min(order_date) as first_day
    from marts.gmv_daily
    group by shop_id
),

periods as (
    select * from (values (7), (30), (90)) as p(period_days)
),

days as (
    select
        g.shop_id,
        g.order_date as d,
        g.currency,
        g.orders,
        g.orders - g.cancelled_orders as kept_orders,
        g.refunded_orders,
        g.net_gmv,
        s.orders as api_orders,
        s.visitors
    from marts.gmv_daily g
    left join marts.shop_performance_daily s
        on s.shop_id = g.shop_id and s.date = g.order_date
),

-- Which period (0 current, 1 previous, 2 a year ago) a day falls in.
-- Day numbers (days since 1970-01-01) make the period arithmetic plain integers.
tagged as (
    select
        d.*,
        p.period_days,
        a.as_of,
        case
            when cast(d.d as int) > cast(a.as_of as int) - p.period_days then 0
            when cast(d.d as int) > cast(a.as_of as int) - 2 * p.period_days then 1
            when cast(d.d as int) > cast(a.as_of as int) - (364 + p.period_days)
             and cast(d.d as int) <= cast(a.as_of as int) - 364 then 2
        end as which,
        -- A comparison period counts only when the shop's history covers all of it.
        case
            when cast(d.d as int) > cast(a.as_of as int) - p.period_days then true
            when cast(d.d as int) > cast(a.as_of as int) - 2 * p.period_days
                then cast(a.first_day as int) <= cast(a.as_of as int) - (2 * p.period_days - 1)
            else cast(a.first_day as int) <= cast(a.as_of as int) - (364 + p.period_days - 1)
        end as covered
    from days d
    join as_of a on a.shop_id = d.shop_id
    cross join periods p
),

sums as (
    select
        shop_id,
        period_days,
        which,
        max(currency) as currency,
        max(as_of) as as_of,
        sum(net_gmv) as net_gmv,
        sum(orders) as orders,
        sum(kept_orders) as kept_orders,
        sum(refunded_orders) as refunded_orders,
        sum(api_orders) as api_orders,
        sum(visitors) as visitors
    from tagged
    where which is not null and covered
    group by shop_id, period_days, which
),

metrics as (
    select shop_id, period_days, which, currency, as_of, 'net_gmv' as metric, cast(net_gmv as decimal(38, 6)) as v from sums
    union all
    select shop_id, period_days, which, currency, as_of, 'orders', cast(orders as decimal(38, 6)) from sums
    union all
    select shop_id, period_days, which, currency, as_of, 'aov', cast(net_gmv / nullif(kept_orders, 0) as decimal(38, 6)) from sums
    union all
    select shop_id, period_days, which, currency, as_of, 'conversion_rate', cast(cast(api_orders as double) / nullif(visitors, 0) as decimal(38, 6)) from sums
    union all
    select shop_id, period_days, which, currency, as_of, 'refund_rate', cast(cast(refunded_orders as double) / nullif(kept_orders, 0) as decimal(38, 6)) from sums
),

pivoted as (
    select
        shop_id,
        period_days,
        metric,
        max(currency) as currency,
        max(as_of) as as_of,
        max(case when which = 0 then v end) as current_value,
        max(case when which = 1 then v end) as previous_value,
        max(case when which = 2 then v end) as year_ago_value
    from metrics
    group by shop_id, period_days, metric
)

select
    shop_id,
    period_days,
    metric,
    currency,
    current_value,
    previous_value,
    year_ago_value,
    cast(current_value as double) / nullif(cast(previous_value as double), 0) - 1 as change_vs_previous,
    cast(current_value as double) / nullif(cast(year_ago_value as double), 0) - 1 as change_vs_year_ago,
    cast(cast(as_of as int) - (period_days - 1) as date) as current_start,
    as_of
from pivoted
