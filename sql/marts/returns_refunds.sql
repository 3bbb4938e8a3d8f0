-- marts.returns_refunds: return and refund requests per product, reason and shop-local
-- day of the request, with the refunds and the product's return rate.
-- grain: one row per (shop_id, return_date, product_id, reason)
-- materialized: table
-- unique_key: shop_id, return_date, product_id, reason
-- tests: not_null(currency), expression(units_returned >= returns), expression(refund_total >= 0)
--
-- columns:
--   shop_id, return_date, product_id, reason   keys (return_date shop-local)
--   product_name                 the product's title
--   currency                     the shop's currency (never summed across shops)
--   returns                      requests that include the product
--   units_returned               units of the product in those requests
--   completed_returns            of those requests, completed (refund issued)
--   refund_only                  of those requests, refund without return shipping
--   refund_total                 Σ refund for the product's units (decimal)
--   product_units_sold           units of the product sold in non-cancelled orders, all time
--   product_return_rate          Σ units_returned of the product, all time / product_units_sold
-- Formulas: a unit is one line item (the API has one per unit); the return rate is over
-- the product's whole history so a single day's row does not divide by that day's sales.
with returns as (
    select * from staging.stg_returns
),

lines as (
    select
        _shop_id as shop_id,
        return_id,
        product_id,
        product_name,
        refund_total
    from raw.return_line_items
),

per_return_product as (
    select
        r.shop_id,
        r.return_date,
        l.product_id,
        r.reason,
        r.currency,
        r.return_id,
        r.is_complete,
        r.return_type,
        max(l.product_name) as product_name,
        count(*) as units,
        sum(l.refund_total) as refund_total
    from returns r
    join lines l
        on l.shop_id = r.shop_id and l.return_id = r.return_id
    group by r.shop_id, r.return_date, l.product_id, r.reason, r.currency, r.return_id,
             r.is_complete, r.return_type
),

daily as (
    select
        shop_id,
        return_date,
        product_id,
        reason,
        currency,
        max(product_name) as product_name,
        count(*) as returns,
        sum(units) as units_returned,
        sum(case when is_complete then 1 else 0 end) as completed_returns,
        sum(case when return_type = 'REFUND_ONLY' then 1 else 0 end) as refund_only,
        cast(sum(refund_total) as decimal(38, 6)) as refund_total
    from per_return_product
    group by shop_id, return_date, product_id, reason, currency
),

sold as (
    select shop_id, product_id, count(*) as units_sold
    from staging.stg_order_lines
    where not is_cancelled
    group by shop_id, product_id
),

returned as (
    select shop_id, product_id, sum(units_returned) as units_returned_all
    from daily
    group by shop_id, product_id
)

select
    d.shop_id,
    d.return_date,
    d.product_id,
    d.reason,
    d.product_name,
    d.currency,
    d.returns,
    d.units_returned,
    d.completed_returns,
    d.refund_only,
    d.refund_total,
    coalesce(s.units_sold, 0) as product_units_sold,
    cast(t.units_returned_all as double) / nullif(s.units_sold, 0) as product_return_rate
from daily d
join returned t on t.shop_id = d.shop_id and t.product_id = d.product_id
left join sold s on s.shop_id = d.shop_id and s.product_id = d.product_id
