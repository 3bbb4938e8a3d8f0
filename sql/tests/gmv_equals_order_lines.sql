-- gmv_daily agrees with the order lines it summarises: per shop and local day, units =
-- line items and net GMV = Σ sale_price of lines of not-cancelled orders.
-- Returns the days that disagree.
with lines as (
    select
        shop_id,
        order_date,
        count(*) as units,
        coalesce(sum(case when is_cancelled then null else sale_price end), 0) as net_gmv
    from staging.stg_order_lines
    group by shop_id, order_date
)

select g.shop_id, g.order_date, g.units, l.units as line_units, g.net_gmv, l.net_gmv as line_gmv
from marts.gmv_daily g
left join lines l on l.shop_id = g.shop_id and l.order_date = g.order_date
where g.units <> coalesce(l.units, 0) or g.net_gmv <> coalesce(l.net_gmv, 0)
