-- marts.gmv_forecast: net GMV for each of the next 30 shop-local days, with how well the
-- same method did over the last 30 days.
-- grain: one row per (shop_id, forecast_date)
-- materialized: table
-- unique_key: shop_id, forecast_date
-- tests: expression(horizon_days between 1 and 30), expression(forecast_net_gmv >= 0), not_null(currency)
-- tests: expression(backtest_mape >= 0 or backtest_mape is null)
--
-- Method (seasonal mean, weekday-aware): the forecast for a day is the mean net GMV of
-- the 4 latest days with the same weekday up to as_of (days without orders count as 0).
-- as_of is the shop's latest order date.
-- Backtest: the same method run as of as_of − 30, forecasting as_of − 29 … as_of, against
-- what happened:
--   backtest_mae    mean |forecast − actual| over those 30 days, in currency
--   backtest_mape   mean |forecast − actual| / actual over the days with actual > 0
-- columns:
--   shop_id, forecast_date, horizon_days (1 = the day after as_of), weekday (0 = Sunday)
--   currency, forecast_net_gmv
--   backtest_mae, backtest_mape, as_of
with daily as (
    select shop_id, order_date, currency, net_gmv from marts.gmv_daily
),

bounds as (
    select shop_id, max(currency) as currency, cast(min(order_date) as int) as first_day, cast(max(order_date) as int) as as_of
    from daily
    group by shop_id
),

-- Every day of each shop's history (0 where there were no orders).
days as (
    select shop_id, currency, as_of, unnest(range(first_day, as_of + 1)) as n
    from bounds
),

calendar as (
    select shop_id, currency, as_of, cast(n as int) as day from days
),

filled as (
    select c.shop_id, c.currency, c.as_of, c.day, coalesce(cast(d.net_gmv as double), 0) as gmv
    from calendar c
    left join daily d on d.shop_id = c.shop_id and cast(d.order_date as int) = c.day
),

-- Forecast origins: as_of (the forecast) and as_of − 30 (the backtest).
origins as (
    select shop_id, currency, as_of, as_of as origin, 'forecast' as kind from bounds
    union all
    select shop_id, currency, as_of, as_of - 30, 'backtest' from bounds
),

horizons as (
    select shop_id, currency, as_of, origin, kind, unnest(range(1, 31)) as h
    from origins
),

targets as (
    select shop_id, currency, as_of, origin, kind, cast(h as int) as horizon, origin + cast(h as int) as day
    from horizons
),

predicted as (
    select t.shop_id, t.currency, t.as_of, t.kind, t.horizon, t.day, avg(f.gmv) as forecast
    from targets t
    join filled f
        on f.shop_id = t.shop_id
       and f.day <= t.origin
       and f.day > t.origin - 28
       and (t.day - f.day) % 7 = 0
    group by t.shop_id, t.currency, t.as_of, t.kind, t.horizon, t.day
),

backtest as (
    select
        p.shop_id,
        avg(abs(p.forecast - f.gmv)) as mae,
        avg(case when f.gmv > 0 then abs(p.forecast - f.gmv) / f.gmv end) as mape
    from predicted p
    join filled f on f.shop_id = p.shop_id and f.day = p.day
    where p.kind = 'backtest'
    group by p.shop_id
)

select
    p.shop_id,
    cast(p.day as date) as forecast_date,
    p.horizon as horizon_days,
    cast(extract(dow from cast(p.day as date)) as int) as weekday,
    p.currency,
    cast(p.forecast as decimal(38, 6)) as forecast_net_gmv,
    cast(b.mae as decimal(38, 6)) as backtest_mae,
    b.mape as backtest_mape,
    cast(p.as_of as date) as as_of
from predicted p
left join backtest b on b.shop_id = p.shop_id
where p.kind = 'forecast'
