{#-
  Usage per account and calendar month, rolled up from int_product__usage_daily: key
  events, the first day with any event and the last day with a key event, so the usage
  cohorts, the signup fallback (first activity) and the accounts' last key event do not
  re-read every daily row on every run.
  Incremental: each run replaces the months from the month of (its newest month's first
  day - product_usage_lookback_days) on. int_product__usage_daily only ever rewrites days from
  its newest day - product_usage_lookback_days on, and its newest day was in (or after)
  this table's newest month when this table was last built, so every month it changed
  since is replaced, even after runs of this model were skipped.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['month'],
        on_schema_change='fail',
        indexes=[{'columns': ['account_id', 'month'], 'unique': true}, {'columns': ['month']}],
    )
}}

{%- set since = none -%}
{%- if is_incremental() and execute -%}
    {%- set since_sql -%}
        select to_char(date_trunc('month', max(month) - {{ var('product_usage_lookback_days') | int }}), 'YYYY-MM-DD')
        from {{ this }}
    {%- endset -%}
    {%- set since = run_query(since_sql).columns[0].values()[0] -%}
{%- endif %}

select
    account_id,
    date_trunc('month', activity_date)::date as month,
    sum(key_events)::bigint as key_events,
    min(activity_date)::date as first_activity_date,
    max(activity_date) filter (where key_events > 0)::date as last_key_event_date
from {{ ref('int_product__usage_daily') }}
{%- if since is not none %}
where activity_date >= date '{{ since }}'
{%- endif %}
group by 1, 2
