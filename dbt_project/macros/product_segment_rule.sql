{#- The parameters of one enabled segment rule (seed product_segment_rules) joined with
    the as-of date: `from {{ product_segment_rule('inactive') }}` gives one row with
    segment_key, stages (text[], default the current customers), days, months, threshold,
    min_mrr, share and as_of_date, or none when disabled. -#}
{% macro product_segment_rule(segment_key) -%}
(
    select
        r.segment_key,
        coalesce(string_to_array(nullif(trim(r.stages), ''), ' '), array['trialing', 'active', 'past_due']) as stages,
        r.days, r.months, r.threshold, r.min_mrr, r.share, o.as_of_date
    from {{ ref('product_segment_rules') }} as r
    cross join {{ ref('int_product__as_of') }} as o
    where r.segment_key = '{{ segment_key }}' and r.enabled
) as rule
{%- endmacro %}

{#- The audience of a rule: joins the account's state on the as-of date
    (int_account_states_as_of, alias `st`) and keeps the rule's lifecycle stages.
    Use after `cross join {{ product_segment_rule(...) }}`. -#}
{% macro segment_audience(account_id_expr) -%}
inner join {{ ref('int_account_states_as_of') }} as st
    on st.account_id = {{ account_id_expr }} and st.lifecycle_stage = any(rule.stages)
{%- endmacro %}

{#- Money for reasons: 1234.5 -> '$1234.50'. -#}
{% macro product_money(expr) -%}
('$' || to_char(({{ expr }})::numeric, 'FM999999990.00'))
{%- endmacro %}
