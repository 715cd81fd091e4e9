{#-
  Usage per account and calendar month, rolled up from int_product__usage_daily: key
  events, the first day with any event and the last day with a key event, so the usage
  cohorts, the signup fallback (first activity) and the accounts' last key event do not
  re-read every daily row on every run.
  Incremental: each run replaces the months from the month of the first usage day
  int_product__usage_daily rebuilt since its last run (macros/rebuilt_window.sql), and at
  least from the month of (N - product_usage_lookback_days), N the newest day this table
  holds (the latest first-activity or key-event day), so every month the usage changed
  since is replaced, even after runs of this model were skipped. A daily run after the 3rd
  of a month so re-reads that month alone.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['month'],
        on_schema_change='fail',
        indexes=[{'columns': ['account_id', 'month'], 'unique': true}, {'columns': ['month']}],
        pre_hook="{{ consume_changed_days() }}",
    )
}}

{%- set from_day = rebuilt_from('greatest(first_activity_date, last_key_event_date)',
                                lookback_days=var('product_usage_lookback_days')) -%}
{%- set since = from_day[:8] ~ '01' if from_day else none %}

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
