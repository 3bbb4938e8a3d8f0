-- Brand and SKU marts split the day's GMV without losing or inventing any: per shop and
-- local day, Σ brand_daily.net_gmv = Σ sku_daily.net_gmv = gmv_daily.net_gmv.
-- Returns the days that disagree.
with brands as (
    select shop_id, order_date, sum(net_gmv) as gmv from marts.brand_daily group by shop_id, order_date
),

skus as (
    select shop_id, order_date, sum(net_gmv) as gmv from marts.sku_daily group by shop_id, order_date
)

select g.shop_id, g.order_date, g.net_gmv, b.gmv as brand_gmv, s.gmv as sku_gmv
from marts.gmv_daily g
left join brands b on b.shop_id = g.shop_id and b.order_date = g.order_date
left join skus s on s.shop_id = g.shop_id and s.order_date = g.order_date
where g.net_gmv <> coalesce(b.gmv, 0) or g.net_gmv <> coalesce(s.gmv, 0)
