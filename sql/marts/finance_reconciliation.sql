-- marts.finance_reconciliation: every paid order against the settlements: what is paid,
-- what is pending, and what does not match.
-- grain: one row per (shop_id, order_id) of orders that were paid (paid_at set)
-- materialized: table
-- unique_key: shop_id, order_id
-- tests: accepted_values(state, ['settled', 'mismatch', 'pending', 'not_due', 'cancelled', 'missing'])
-- tests: expression(state <> 'settled' or settled_revenue = expected_revenue)
-- tests: relationships(order_id, staging.stg_orders.order_id)
--
-- Expected revenue of an order = sub_total + platform_discount (the platform pays its own
-- discount to the seller). The order's ORDER transactions in the statements are what was
-- settled; raw.unsettled_transactions lists what the platform expects to settle.
-- States:
--   settled     settled, and the settled revenue equals the expected revenue
--   mismatch    settled, but the amounts differ (difference = settled − expected)
--   pending     not settled yet and listed as unsettled (any status before settlement)
--   missing     completed, not settled and not listed as unsettled: ask the platform
--   not_due     paid, not completed yet (settles after completion)
--   cancelled   cancelled after payment, nothing settled
-- columns:
--   shop_id, order_id, currency, status, order_date, paid_at
--   expected_revenue, settled_revenue, settled_fees, settled_amount, difference
--   statement_id, statement_date, payout_status   of the statement that settled it
--   estimated_settlement   from the unsettled list (pending orders)
--   state
with orders as (
    select * from staging.stg_orders where paid_at is not null
),

settled as (
    select
        t._shop_id as shop_id,
        t.order_id,
        max(t.statement_id) as statement_id,
        sum(t.revenue_amount) as revenue,
        sum(t.fee_amount) as fees,
        sum(t.settlement_amount) as settlement
    from raw.statement_transactions t
    where t.transaction_type = 'ORDER'
    group by t._shop_id, t.order_id
),

unsettled as (
    select _shop_id as shop_id, order_id, sum(estimated_settlement_amount) as estimated
    from raw.unsettled_transactions
    group by _shop_id, order_id
),

joined as (
    select
        o.shop_id,
        o.order_id,
        o.currency,
        o.status,
        o.order_date,
        o.paid_at,
        cast(o.sub_total + o.platform_discount as decimal(38, 6)) as expected_revenue,
        cast(s.revenue as decimal(38, 6)) as settled_revenue,
        cast(s.fees as decimal(38, 6)) as settled_fees,
        cast(s.settlement as decimal(38, 6)) as settled_amount,
        s.statement_id,
        st.statement_date,
        st.payment_status as payout_status,
        cast(u.estimated as decimal(38, 6)) as estimated_settlement,
        u.order_id is not null as is_unsettled
    from orders o
    left join settled s on s.shop_id = o.shop_id and s.order_id = o.order_id
    left join raw.statements st on st._shop_id = s.shop_id and st.id = s.statement_id
    left join unsettled u on u.shop_id = o.shop_id and u.order_id = o.order_id
)

select
    shop_id,
    order_id,
    currency,
    status,
    order_date,
    paid_at,
    expected_revenue,
    settled_revenue,
    settled_fees,
    settled_amount,
    cast(settled_revenue - expected_revenue as decimal(38, 6)) as difference,
    statement_id,
    statement_date,
    payout_status,
    estimated_settlement,
    case
        when settled_revenue is not null and settled_revenue = expected_revenue then 'settled'
        when settled_revenue is not null then 'mismatch'
        when status = 'CANCELLED' then 'cancelled'
        when is_unsettled then 'pending'
        when status = 'COMPLETED' then 'missing'
        else 'not_due'
    end as state
from joined
