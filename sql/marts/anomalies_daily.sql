-- marts.anomalies_daily: days whose GMV, orders or refund rate stray from what that
-- weekday usually brings, by a robust score.
-- grain: one row per (shop_id, order_date, metric)
-- materialized: table
-- unique_key: shop_id, order_date, metric
-- tests: accepted_values(metric, ['net_gmv', 'orders', 'refund_rate']), accepted_values(direction, ['high', 'low'])
-- tests: expression(history_days between 0 and 8), expression(not is_anomaly or history_days >= 4)
--
-- Method (weekday-aware, robust to the outliers it looks for):
--   history     the same weekday in the 8 weeks before (d − 7, d − 14, … d − 56), days
--               with data only
--   expected    median of the history
--   mad         median absolute deviation of the history from expected
--   scale       max(1.4826 × mad, 5% of |expected|): 1.4826 × MAD estimates a standard
--               deviation; the floor keeps a flat history from flagging tiny moves
--   score       (value − expected) / scale
--   is_anomaly  |score| > 3.5 and at least 4 history days; refund_rate is flagged only
--               when high (recent days' refunds are still to come, so low is normal)
-- Values from marts.gmv_daily: net_gmv (not-cancelled GMV), orders (placed),
-- refund_rate (refunded / not-cancelled orders).
-- columns:
--   shop_id, order_date, metric, currency
--   value, expected, mad, score, history_days   (doubles: statistics, not amounts to sum)
--   direction      high (value above expected) or low
--   is_anomaly
with daily as (
    select * from marts.gmv_daily
),

metrics as (
    select shop_id, order_date, currency, 'net_gmv' as metric, cast(net_gmv as double) as value from daily
    union all
    select shop_id, order_date, currency, 'orders', cast(orders as double) from daily
    union all
    select shop_id, order_date, currency, 'refund_rate', refund_rate from daily where refund_rate is not null
),

history as (
    select m.shop_id, m.order_date, m.metric, h.value as past
    from metrics m
    join metrics h
        on h.shop_id = m.shop_id
       and h.metric = m.metric
       and cast(h.order_date as int) between cast(m.order_date as int) - 56 and cast(m.order_date as int) - 7
       and (cast(m.order_date as int) - cast(h.order_date as int)) % 7 = 0
),

expected as (
    select shop_id, order_date, metric, median(past) as expected, count(*) as history_days
    from history
    group by shop_id, order_date, metric
),

spread as (
    select h.shop_id, h.order_date, h.metric, median(abs(h.past - e.expected)) as mad
    from history h
    join expected e
        on e.shop_id = h.shop_id and e.order_date = h.order_date and e.metric = h.metric
    group by h.shop_id, h.order_date, h.metric
),

scored as (
    select
        m.shop_id,
        m.order_date,
        m.metric,
        m.currency,
        m.value,
        e.expected,
        s.mad,
        coalesce(e.history_days, 0) as history_days,
        (m.value - e.expected)
            / nullif(greatest(1.4826 * s.mad, 0.05 * abs(e.expected)), 0) as score
    from metrics m
    left join expected e
        on e.shop_id = m.shop_id and e.order_date = m.order_date and e.metric = m.metric
    left join spread s
        on s.shop_id = m.shop_id and s.order_date = m.order_date and s.metric = m.metric
)

select
    shop_id,
    order_date,
    metric,
    currency,
    value,
    expected,
    mad,
    score,
    history_days,
    case when value >= coalesce(expected, value) then 'high' else 'low' end as direction,
    coalesce(
        history_days >= 4
        and abs(score) > 3.5
        and (metric <> 'refund_rate' or score > 0),
        false
    ) as is_anomaly
from scored
