{{ config(materialized='view') }}
-- Health score per account and day: the incremental int_product__health_daily, published
-- as a view (no second copy; it runs with its owner's rights).
select * from {{ ref('int_product__health_daily') }}
