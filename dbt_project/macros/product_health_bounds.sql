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
    a unique index on the grain. `{{ config(**product_health_daily_config()) }}`, and in
    the model's SQL `{{ replace_where(product_health_rebuilt_days()) }}`. -#}
{% macro product_health_daily_config() -%}
    {%- do return({
        'materialized': 'incremental',
        'incremental_strategy': 'replace_where',
        'on_schema_change': 'fail',
        'pre_hook': "{{ record_rebuilt_from('date', var('product_health_lookback_days')) }}",
        'indexes': [{'columns': ['account_id', 'date'], 'unique': true}, {'columns': ['date']}],
    }) -%}
{%- endmacro %}

{#- The rows an incremental health model replaces, for replace_where
    (macros/incremental_replace_where.sql): `date >= <first rebuilt day>`, a literal read
    at compile time from the model's own table (the same max(date) -
    product_health_lookback_days product_health_bounds() computes when the model runs), so
    the delete reads those days through the date index. delete+insert deleted by
    `date in (select distinct date from <batch>)`, which Postgres answered with a scan of
    every row (1.4-1.6 M on `large`): 0.15-0.2 s a model on an idle machine, more than a
    second on a busy one, on the daily run's longest chain (usage -> health signals ->
    inputs -> scores). 'true' (every row) when the table is empty, and in a unit test
    (`this` is a CTE there, and nothing is deleted). -#}
{% macro product_health_rebuilt_days(column='date', lookback_var='product_health_lookback_days') -%}
    {%- if execute and is_incremental() and '__dbt__cte__' not in (this | string) -%}
        {%- set first_day = run_query("select to_char(max(" ~ column ~ ") - " ~ (var(lookback_var) | int)
            ~ ", 'YYYY-MM-DD') from " ~ this).columns[0].values()[0] -%}
        {{- return(column ~ " >= date '" ~ first_day ~ "'" if first_day else 'true') -}}
    {%- endif -%}
    {{- return('true') -}}
{%- endmacro %}

{#- The month-end scores of paying accounts: the rows health_backtest reads (one day in 30),
    and the predicate of the index below, so the planner can answer that read from it. -#}
{% macro health_month_end_rows() -%}
    is_month_end and is_paying and health_score is not null
{%- endmacro %}

{#- int_product__health_daily's post-hook: a partial, covering index of health_month_end_rows().
    With it health_backtest's read is an index-only scan of a few hundred pages; without it,
    39 k rows spread over 28 k pages of the table (large: 2.1 s cold, 0.18 s warm -> 0.14 s).
    Named after the table's oid, so each table gets its own once: a full refresh builds a new
    table (the backup being dropped keeps its old index), an incremental run finds the index
    there and does nothing. -#}
{% macro health_month_end_index() -%}
do $month_end$
begin
    execute format(
        'create index if not exists %I on %s (date) include (account_id, health_score, tier) where %s',
        '{{ this.identifier }}_month_end_' || '{{ this }}'::regclass::oid,
        '{{ this }}',
        '{{ health_month_end_rows() }}');
end
$month_end$
{%- endmacro %}
