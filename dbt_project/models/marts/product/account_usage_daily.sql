{{ config(materialized='view') }}
-- Account x day usage: the incremental int_product__usage_daily, published as a view (no
-- second copy of a million rows; the view runs with its owner's rights, so analysts
-- need no access to the intermediate schema).
select * from {{ ref('int_product__usage_daily') }}
