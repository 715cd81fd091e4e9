{#-
  Usage per account and calendar month, rolled up from int_product__usage_daily: key
  events, the first day with any event and the last day with a key event, so the usage
  cohorts, the signup fallback (first activity) and the accounts' last key event do not
  re-read every daily row on every run.
  Incremental: each run replaces the months from the month of (N - product_usage_lookback_days)
  on, N the newest day this table holds (the latest first-activity or key-event day of its
  newest month). int_product__usage_daily only ever rewrites days from its newest day -
  product_usage_lookback_days on, and its newest day was N or later when this table was
  last built, so every month it changed since is replaced, even after runs of this model
  were skipped. A daily run after the 3rd of a month so re-reads that month alone (N's
  month's first day, used before, always reached back into the month before).
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
        select to_char(date_trunc('month',
            max(greatest(first_activity_date, last_key_event_date)) - {{ var('product_usage_lookback_days') | int }}),
            'YYYY-MM-DD')
        from {{ this }}
        where month = (select max(month) from {{ this }})
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
