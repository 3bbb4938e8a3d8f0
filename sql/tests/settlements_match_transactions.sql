-- Every statement equals the sum of its transactions, and finance_daily's settlement is
-- the sum of that day's statements. Returns statements or days that do not add up.
with tx as (
    select _shop_id as shop_id, statement_id, sum(settlement_amount) as amount
    from raw.statement_transactions
    group by 1, 2
),

days as (
    select _shop_id as shop_id, statement_date, sum(settlement_amount) as amount
    from raw.statements
    group by 1, 2
)

select 'statement' as kind, s._shop_id as shop_id, s.id as what, s.settlement_amount as stated, t.amount as computed
from raw.statements s
left join tx t on t.shop_id = s._shop_id and t.statement_id = s.id
where t.amount is null or t.amount <> s.settlement_amount
union all
select 'day', f.shop_id, cast(f.statement_date as varchar), f.settlement_amount, d.amount
from marts.finance_daily f
left join days d on d.shop_id = f.shop_id and d.statement_date = f.statement_date
where d.amount is null or d.amount <> f.settlement_amount
