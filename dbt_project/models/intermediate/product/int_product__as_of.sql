-- The date every "as of" product model is computed for: var product_as_of_date, else the
-- last day with events (simulated or stale data is scored as of its own end, not today).
-- depends_on: {{ ref('int_product__usage_daily') }}
{%- if var('product_as_of_date') %}
select date '{{ var("product_as_of_date") }}' as as_of_date
{%- else %}
select max(activity_date) as as_of_date from {{ ref('int_product__usage_daily') }}
{%- endif %}
