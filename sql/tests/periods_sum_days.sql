-- Weekly and monthly GMV are the sums of their days, and the 7-day KPI is the sum of the
-- last 7 days: returns every period whose net GMV differs from its days.
with weeks as (
    select shop_id, cast(date_trunc('week', order_date) as date) as period, sum(net_gmv) as gmv
    from marts.gmv_daily group by 1, 2
),

months as (
    select shop_id, cast(date_trunc('month', order_date) as date) as period, sum(net_gmv) as gmv
    from marts.gmv_daily group by 1, 2
),

last7 as (
    select g.shop_id, k.current_start as period, sum(g.net_gmv) as gmv, max(k.current_value) as kpi
    from marts.gmv_daily g
    join marts.kpi_summary k
        on k.shop_id = g.shop_id and k.period_days = 7 and k.metric = 'net_gmv'
       and g.order_date between k.current_start and k.as_of
    group by 1, 2
)

select 'week' as kind, w.shop_id, w.period, w.gmv, x.net_gmv as mart
from weeks w left join marts.gmv_weekly x on x.shop_id = w.shop_id and x.week_start = w.period
where x.net_gmv is null or x.net_gmv <> w.gmv
union all
select 'month', m.shop_id, m.period, m.gmv, x.net_gmv
from months m left join marts.gmv_monthly x on x.shop_id = m.shop_id and x.month_start = m.period
where x.net_gmv is null or x.net_gmv <> m.gmv
union all
select 'kpi_7d', shop_id, period, gmv, kpi
from last7
where kpi <> gmv
