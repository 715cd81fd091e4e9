{#- The parameters of one enabled segment rule (seed product_segment_rules) joined with
    the as-of date: `from {{ product_segment_rule('inactive') }}` gives one row with
    segment_key, days, months, threshold, share and as_of_date, or none when disabled. -#}
{% macro product_segment_rule(segment_key) -%}
(
    select r.segment_key, r.days, r.months, r.threshold, r.share, o.as_of_date
    from {{ ref('product_segment_rules') }} as r
    cross join {{ ref('int_product__as_of') }} as o
    where r.segment_key = '{{ segment_key }}' and r.enabled
) as rule
{%- endmacro %}

{#- Money for reasons: 1234.5 -> '$1234.50'. -#}
{% macro product_money(expr) -%}
('$' || to_char(({{ expr }})::numeric, 'FM999999990.00'))
{%- endmacro %}
