-- staging.stg_products: one row per product with its brand.
-- grain: one row per (shop_id, product_id)
-- materialized: table
-- unique_key: shop_id, product_id
-- tests: not_null(product_id), not_null(brand)
-- tests: accepted_values(brand_source, ['seed', 'api', 'none'])
-- tests:
--   - expression(brand_source <> 'seed' or api_brand is null or api_brand = brand)
--
-- Brand rule (maintained in sql/seeds/brands.csv, alias → brand):
--   1. seed: the title, lower-cased with punctuation turned into spaces and with
--      "compatible with X" / "for X" phrases removed (accessories name the phone they fit,
--      not their maker), contains a known alias as whole words; the longest alias wins.
--   2. api: else the brand the seller picked in Seller Center (product detail brand.name).
--   3. none: else 'Unbranded'.
-- The test above checks the rule against the API's brand wherever both exist.
--
-- columns:
--   shop_id, product_id  keys (strings)
--   title                listing title
--   status               listing status
--   brand                parsed brand (see rule); brand_source: seed | api | none
--   api_brand            brand from product detail (null when the seller set none)
--   category             leaf category name from product detail
--   create_time, update_time  UTC
--   _extracted_at        when the newest of product and detail was fetched (change tracking)
with products as (
    select
        p._shop_id as shop_id,
        p.id as product_id,
        p.title,
        p.status,
        p.create_time,
        p.update_time,
        greatest(p._extracted_at, d._extracted_at) as _extracted_at,
        nullif(d.brand_name, '') as api_brand,
        regexp_match(d.category_chains, '"local_name":"([^"]*)"')[1] as category,
        ' ' || regexp_replace(
            regexp_replace(lower(p.title), '(compatible with|for) [^ ]+', ' ', 'g'),
            '[^a-z0-9''éè]+', ' ', 'g'
        ) || ' ' as norm_title
    from raw.products p
    left join raw.product_details d
        on d._shop_id = p._shop_id and d.id = p.id
),

aliases as (
    select
        brand,
        ' ' || regexp_replace(lower(alias), '[^a-z0-9''éè]+', ' ', 'g') || ' ' as norm_alias
    from seeds.brands
),

matched as (
    select
        p.shop_id,
        p.product_id,
        a.brand,
        row_number() over (
            partition by p.shop_id, p.product_id
            order by length(a.norm_alias) desc, a.brand
        ) as rn
    from products p
    join aliases a on strpos(p.norm_title, a.norm_alias) > 0
),

final as (
    select
        p.shop_id,
        p.product_id,
        p.title,
        p.status,
        coalesce(m.brand, p.api_brand, 'Unbranded') as brand,
        case
            when m.brand is not null then 'seed'
            when p.api_brand is not null then 'api'
            else 'none'
        end as brand_source,
        p.api_brand,
        p.category,
        p.create_time,
        p.update_time,
        p._extracted_at
    from products p
    left join matched m
        on m.shop_id = p.shop_id and m.product_id = p.product_id and m.rn = 1
)

select * from final
