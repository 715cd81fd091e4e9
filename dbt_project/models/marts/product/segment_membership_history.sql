{#-
  When each member entered and left each segment: one row per (member_key, entered_on),
  exited_on null while still a member. Built from each run's segment_members (an
  incremental model): a member present now and not open is a new entry on the as-of date;
  an open entry whose member is gone exits on the as-of date (the first as-of date it was
  no longer selected). The reason at entry is kept beside the latest one.
  History cannot be recomputed from raw data, so a --full-refresh does not rebuild it
  (full_refresh = false); to start over, drop the table.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['member_key', 'entered_on'],
        on_schema_change='fail',
        full_refresh=false,
    )
}}

with current_members as (
    select member_key, segment_key, account_id, user_id, reason, as_of_date from {{ ref('segment_members') }}
),

as_of as (
    select as_of_date from {{ ref('int_product__as_of') }}
)

{%- if is_incremental() %},

open_entries as (
    select * from {{ this }} where exited_on is null
)

-- still members: refresh the latest reason
select
    o.member_key, o.segment_key, o.account_id, o.user_id, o.entered_on,
    null::date as exited_on, o.reason_at_entry, c.reason as latest_reason, c.as_of_date as last_seen_on
from open_entries as o
inner join current_members as c using (member_key)

union all

-- gone: exit on the as-of date
select
    o.member_key, o.segment_key, o.account_id, o.user_id, o.entered_on,
    greatest(a.as_of_date, o.entered_on) as exited_on, o.reason_at_entry, o.latest_reason, o.last_seen_on
from open_entries as o
cross join as_of as a
where not exists (select 1 from current_members as c where c.member_key = o.member_key)

union all

-- new entries
select
    c.member_key, c.segment_key, c.account_id, c.user_id, c.as_of_date as entered_on,
    null::date as exited_on, c.reason as reason_at_entry, c.reason as latest_reason, c.as_of_date as last_seen_on
from current_members as c
where not exists (select 1 from open_entries as o where o.member_key = c.member_key)
{%- else %}

select
    c.member_key::text as member_key,
    c.segment_key::text as segment_key,
    c.account_id::text as account_id,
    c.user_id::text as user_id,
    c.as_of_date::date as entered_on,
    null::date as exited_on,
    c.reason::text as reason_at_entry,
    c.reason::text as latest_reason,
    c.as_of_date::date as last_seen_on
from current_members as c
{%- endif %}
