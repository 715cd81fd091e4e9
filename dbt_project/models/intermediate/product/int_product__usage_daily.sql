{#-
  account x day usage; the only model that reads the big events table.
  Incremental: each run deletes and re-inserts the days from the earliest day whose events
  changed since its last run (raw.changed_days, written by the loader: events of any age
  are counted) or, with events from a warehouse (no loader), from (last built day -
  product_usage_lookback_days); macros/rebuilt_window.sql. replace_where on those days:
  the delete reads them through the date index, where delete+insert's
  `(account_id, activity_date) in (<batch>)` scanned every row. The cut-off is fetched at
  compile time and inlined as a literal, so Postgres prunes the month partitions of
  raw.events at plan time (a daily run reads one partition). The incremental models reading
  it rebuild what those days change (notify_rebuilt).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        on_schema_change='fail',
        pre_hook="{{ consume_changed_days(['events']) }}",
        post_hook="{{ notify_rebuilt('activity_date') }}",
        indexes=[{'columns': ['account_id', 'activity_date'], 'unique': true}, {'columns': ['activity_date']}],
    )
}}

{%- set cutoff = rebuilt_from('activity_date', ['events'] if var('events_source') == 'files' else [],
                              var('product_usage_lookback_days')) -%}
{{ replace_where("activity_date >= date '" ~ cutoff ~ "'" if cutoff is not none else 'true') }}

-- One scan of the events: pre-aggregate to account x day x event x user, then roll up.
with event_users as (
    select
        e.account_id,
        (e.occurred_at at time zone 'UTC')::date as activity_date,
        e.event_name,
        e.user_id,
        count(*) as n_events,
        sum(e.recipients) as recipients
    from {{ ref('stg_segment__events') }} as e
    where e.account_id is not null
    {%- if cutoff is not none %}
      and e.occurred_at >= timestamptz '{{ cutoff }} 00:00:00+00'
    {%- endif %}
    group by 1, 2, 3, 4
),

-- each event's count of the account-day beside its rows: the day's rows then roll up in one
-- pass (a second aggregate per event, joined back, sorted the rows twice)
classified as (
    select
        eu.*,
        c.feature_key,
        coalesce(c.is_key_feature, false) as is_key,
        sum(eu.n_events) over (partition by eu.account_id, eu.activity_date, eu.event_name) as event_total
    from event_users as eu
    left join {{ ref('product_event_catalogue') }} as c on c.event_name = eu.event_name
),

daily as (
    select
        account_id,
        activity_date,
        sum(n_events)::integer as total_events,
        coalesce(sum(n_events) filter (where is_key), 0)::integer as key_events,
        (count(distinct feature_key) filter (where is_key))::integer as key_features_used,
        coalesce(jsonb_agg(distinct feature_key order by feature_key) filter (where is_key), '[]') as key_features,
        (count(distinct user_id) filter (where is_key))::integer as active_users,
        coalesce(jsonb_agg(distinct user_id order by user_id) filter (where is_key and user_id is not null), '[]')
            as active_user_ids,
        coalesce(sum(recipients), 0)::numeric as reach,
        -- an event's total repeats on each of its rows: a jsonb object keeps one value per key
        jsonb_object_agg(event_name, event_total::integer) as event_counts
    from classified
    group by 1, 2
)

select
    account_id::text as account_id,
    activity_date::date as activity_date,
    total_events,
    key_events,
    key_features_used,
    key_features,
    active_users,
    active_user_ids,
    reach,
    event_counts
from daily
