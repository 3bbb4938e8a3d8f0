-- marts.customer_service: buyer conversations per shop-local day they were opened: how many,
-- how fast the shop first answered, how many got resolved and how long that took.
-- grain: one row per (shop_id, date)
-- materialized: table
-- unique_key: shop_id, date
-- tests: expression(answered <= conversations), expression(resolved <= answered)
-- tests: expression(response_rate between 0 and 1), expression(avg_first_response_minutes >= 0 or avg_first_response_minutes is null)
--
-- From the conversation snapshot (raw.cs_conversations), with the API's own daily figures
-- (raw.cs_performance) beside them. A conversation is resolved when the shop answered and
-- nothing happened for a day; resolution time runs from its opening to that moment.
-- columns:
--   shop_id, date                  the shop-local day the conversations were opened
--   conversations, answered, resolved, open_now
--   response_rate                  answered / conversations
--   avg_first_response_minutes     mean minutes to the shop's first answer (answered ones)
--   p50_first_response_minutes     median of the same
--   slow_first_responses           answered after more than 12 hours
--   avg_resolution_hours           mean hours from opening to resolution (resolved ones)
--   api_response_rate, api_avg_first_response_minutes   as raw.cs_performance states them
with conversations as (
    select
        _shop_id as shop_id,
        create_date as date,
        first_response_seconds,
        status,
        case when status = 'RESOLVED' then date_part('epoch', update_time) - date_part('epoch', create_time) end as resolution_seconds
    from raw.cs_conversations
),

daily as (
    select
        shop_id,
        date,
        count(*) as conversations,
        count(first_response_seconds) as answered,
        sum(case when status = 'RESOLVED' then 1 else 0 end) as resolved,
        sum(case when status = 'OPEN' then 1 else 0 end) as open_now,
        avg(first_response_seconds) / 60 as avg_first_response_minutes,
        median(first_response_seconds) / 60 as p50_first_response_minutes,
        sum(case when first_response_seconds > 12 * 3600 then 1 else 0 end) as slow_first_responses,
        avg(resolution_seconds) / 3600 as avg_resolution_hours
    from conversations
    group by shop_id, date
)

select
    d.shop_id,
    d.date,
    d.conversations,
    d.answered,
    d.resolved,
    d.open_now,
    cast(d.answered as double) / d.conversations as response_rate,
    d.avg_first_response_minutes,
    cast(d.p50_first_response_minutes as double) as p50_first_response_minutes,
    d.slow_first_responses,
    d.avg_resolution_hours,
    cast(p.response_rate as double) as api_response_rate,
    cast(p.avg_first_response_seconds as double) / 60 as api_avg_first_response_minutes
from daily d
left join raw.cs_performance p on p._shop_id = d.shop_id and p.date = d.date
