{#- The days an incremental health model (re)builds, as the body of a one-row CTE:
    score_from (the first day this run rebuilds, from rebuilt_from(), or the first day with
    usage) and score_to (the as-of day). -#}
{% macro product_health_bounds(rebuilt_from) -%}
    select
        {%- if rebuilt_from %}
        greatest(date '{{ rebuilt_from }}', (select min(activity_date) from {{ ref('int_product__usage_daily') }}))
            as score_from,
        {%- else %}
        (select min(activity_date) from {{ ref('int_product__usage_daily') }}) as score_from,
        {%- endif %}
        a.as_of_date as score_to
    from {{ ref('int_product__as_of') }} as a
{%- endmacro %}

{#- The config every incremental health model shares: whole days replaced from
    rebuilt_from(), what that covered consumed, a unique index on the grain.
    `{{ config(**product_health_daily_config(sources)) }}`, and in the model's SQL
    `{{ replace_where(rebuilt_days('date', from_day)) }}`. -#}
{% macro product_health_daily_config(sources=[]) -%}
    {%- do return({
        'materialized': 'incremental',
        'incremental_strategy': 'replace_where',
        'on_schema_change': 'fail',
        'pre_hook': "{{ consume_changed_days(" ~ sources ~ ") }}",
        'indexes': [{'columns': ['account_id', 'date'], 'unique': true}, {'columns': ['date']}],
    }) -%}
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
