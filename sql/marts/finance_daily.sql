-- marts.finance_daily: money the platform settled to the shop per shop-local day:
-- revenue, fees, adjustments, the settlement, and what was paid out.
-- grain: one row per (shop_id, statement_date)
-- materialized: table
-- unique_key: shop_id, statement_date
-- tests: not_null(currency), expression(settlement_amount = revenue_amount + fee_amount + adjustment_amount)
-- tests: expression(paid_amount <= settlement_amount or settlement_amount < 0), expression(settled_orders >= 0)
--
-- One daily statement per shop (the real API issues one per settlement cycle); amounts as
-- the statement states them, in the shop's currency:
--   revenue_amount      what the settled orders earned (sub_total + platform discount)
--   fee_amount          platform fees (negative)
--   adjustment_amount   corrections outside orders (either sign)
--   settlement_amount   revenue + fees + adjustments: what the shop is owed
-- columns:
--   shop_id, statement_date, currency
--   statements, settled_orders, adjustments   counts (orders and adjustments from the
--                                             statement's transactions)
--   revenue_amount, fee_amount, adjustment_amount, settlement_amount
--   fee_rate            −fee_amount / revenue_amount
--   paid_amount         settlement of statements whose payout is PAID
--   processing_amount   settlement of statements still PROCESSING
with statements as (
    select * from raw.statements
),

transactions as (
    select
        _shop_id as shop_id,
        statement_id,
        sum(case when transaction_type = 'ORDER' then 1 else 0 end) as orders,
        sum(case when transaction_type = 'ADJUSTMENT' then 1 else 0 end) as adjustments
    from raw.statement_transactions
    group by _shop_id, statement_id
)

select
    s._shop_id as shop_id,
    s.statement_date,
    s.currency,
    count(*) as statements,
    coalesce(sum(t.orders), 0) as settled_orders,
    coalesce(sum(t.adjustments), 0) as adjustments,
    cast(sum(s.revenue_amount) as decimal(38, 6)) as revenue_amount,
    cast(sum(s.fee_amount) as decimal(38, 6)) as fee_amount,
    cast(sum(s.adjustment_amount) as decimal(38, 6)) as adjustment_amount,
    cast(sum(s.settlement_amount) as decimal(38, 6)) as settlement_amount,
    -cast(sum(s.fee_amount) as double) / nullif(cast(sum(s.revenue_amount) as double), 0) as fee_rate,
    cast(coalesce(sum(case when s.payment_status = 'PAID' then s.settlement_amount end), 0) as decimal(38, 6)) as paid_amount,
    cast(coalesce(sum(case when s.payment_status = 'PROCESSING' then s.settlement_amount end), 0) as decimal(38, 6)) as processing_amount
from statements s
left join transactions t
    on t.shop_id = s._shop_id and t.statement_id = s.id
group by s._shop_id, s.statement_date, s.currency
