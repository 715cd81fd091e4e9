{#- The days an incremental health model (re)builds, as the body of a one-row CTE:
    score_from (on an incremental run the model's last built day minus
    product_health_lookback_days, else the first day with usage) and score_to (the as-of
    day). int_product__health_signals and int_product__health_inputs both use it, so they
    rebuild the same days. -#}
{% macro product_health_bounds() -%}
    select
        {%- if is_incremental() %}
        coalesce(
            (select max(date) from {{ this }}) - {{ var('product_health_lookback_days') | int }},
            (select min(activity_date) from {{ ref('int_product__usage_daily') }})
        ) as score_from,
        {%- else %}
        (select min(activity_date) from {{ ref('int_product__usage_daily') }}) as score_from,
        {%- endif %}
        a.as_of_date as score_to
    from {{ ref('int_product__as_of') }} as a
{%- endmacro %}

{#- The config every incremental health model shares (int_product__health_inputs,
    int_product__health_daily): whole days replaced from (last built day -
    product_health_lookback_days), the first rebuilt day recorded for the windowed tests,
    a unique index on the grain. `{{ config(**product_health_daily_config()) }}` -#}
{% macro product_health_daily_config() -%}
    {%- do return({
        'materialized': 'incremental',
        'incremental_strategy': 'delete+insert',
        'unique_key': ['date'],
        'on_schema_change': 'fail',
        'pre_hook': "{{ record_rebuilt_from('date', var('product_health_lookback_days')) }}",
        'indexes': [{'columns': ['account_id', 'date'], 'unique': true}, {'columns': ['date']}],
    }) -%}
{%- endmacro %}
