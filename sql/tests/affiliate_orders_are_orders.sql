-- Every affiliate order is an order of the shop, and its units and prices are the
-- order's line items: returns the affiliate orders whose units or GMV differ from raw.orders.
with affiliate as (
    select _shop_id as shop_id, order_id, count(*) as units, sum(price) as gmv
    from raw.affiliate_order_lines
    group by 1, 2
),

orders as (
    select shop_id, order_id, count(*) as units, sum(sale_price) as gmv
    from staging.stg_order_lines
    group by 1, 2
)

select a.shop_id, a.order_id, a.units, o.units as order_units, a.gmv, o.gmv as order_gmv
from affiliate a
left join orders o on o.shop_id = a.shop_id and o.order_id = a.order_id
where o.order_id is null or o.units <> a.units or o.gmv <> a.gmv
