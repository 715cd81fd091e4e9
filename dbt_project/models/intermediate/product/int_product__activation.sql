{#-
  One row per account: which activation milestones (seeds product_milestones and
  product_milestone_events) it reached and when, and time to value. A milestone event is
  met on the day its running count reaches min_count; a milestone is reached on the day
  its last event is met, if that day is inside the window: the first within_days days,
  signup day counting as day 0 (so days 0 .. within_days - 1). Day granularity: counts
  come from int_product__usage_daily.event_counts. Nothing here depends on the as-of date
  (marts.account_activation adds the status), so a row changes only when the account's
  signup or the usage days inside its window change.

  Incremental (delete+insert on account_id): usage_through records the newest usage day
  the row was computed with. A run starts from the first usage day int_product__usage_daily
  rebuilt since (macros/rebuilt_window.sql; at most max(usage_through) -
  product_usage_lookback_days), and recomputes the accounts whose longest milestone window
  reaches that day, new accounts and accounts whose signup time changed; every other
  account's inputs are unchanged. Changing the milestone seeds needs a --full-refresh of
  this model.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['account_id'],
        on_schema_change='fail',
        indexes=[{'columns': ['account_id'], 'unique': true}],
        pre_hook="{{ consume_changed_days() }}",
    )
}}

{%- set since = rebuilt_from('usage_through', lookback_days=var('product_usage_lookback_days')) -%}
{%- if since is not none -%}
    {%- set longest = run_query('select coalesce(max(within_days), 0) from ' ~ ref('product_milestones')).columns[0].values()[0] -%}
{%- endif %}

with accounts as (
    select a.account_id, a.signed_up_at, a.signup_date
    from {{ ref('int_product__accounts') }} as a
    {%- if since is not none %}
    where a.signup_date > date '{{ since }}' - {{ longest | int }}
       or not exists (
           select 1 from {{ this }} as t where t.account_id = a.account_id and t.signed_up_at = a.signed_up_at)
    {%- endif %}
),

milestones as (
    select m.milestone_key, m.within_days, m.is_required, e.event_name, e.min_count
    from {{ ref('product_milestones') }} as m
    inner join {{ ref('product_milestone_events') }} as e using (milestone_key)
),

-- only the days inside the longest milestone window count (the running counts start at signup)
daily_counts as (
    select u.account_id, u.activity_date, c.key as event_name, c.value::integer as n_events
    from {{ ref('int_product__usage_daily') }} as u
    inner join accounts as a using (account_id)
    cross join lateral jsonb_each_text(u.event_counts) as c
    where u.activity_date >= a.signup_date
    {%- if since is not none %}
      and u.activity_date >= (select min(signup_date) from accounts)  -- an index range, not every row
    {%- endif %}
      and u.activity_date < a.signup_date + (select max(within_days) from milestones)
      and c.key in (select event_name from milestones)
),

running as (
    select
        dc.account_id,
        dc.activity_date,
        dc.event_name,
        sum(dc.n_events) over (
            partition by dc.account_id, dc.event_name order by dc.activity_date
        ) as running_count
    from daily_counts as dc
),

event_met as (
    select
        r.account_id,
        m.milestone_key,
        m.event_name,
        min(r.activity_date) as met_on
    from running as r
    inner join milestones as m on m.event_name = r.event_name and r.running_count >= m.min_count
    inner join accounts as a on a.account_id = r.account_id
    where r.activity_date < a.signup_date + m.within_days
    group by 1, 2, 3
),

milestone_reached as (
    select e.account_id, e.milestone_key, max(e.met_on) as reached_on
    from event_met as e
    group by 1, 2
    having count(*) = (select count(*) from milestones as m where m.milestone_key = e.milestone_key)
),

required_keys as (
    select distinct milestone_key from milestones where is_required
),

required as (
    select
        count(distinct milestone_key) filter (where is_required) as milestones_required,
        max(within_days) filter (where is_required) as required_window_days
    from milestones
),

per_account as (
    select
        a.account_id,
        a.signed_up_at,
        a.signup_date,
        count(mr.milestone_key) as milestones_reached_count,
        count(mr.milestone_key) filter (where m.is_required) as required_reached,
        coalesce(jsonb_agg(mr.milestone_key order by mr.reached_on, mr.milestone_key)
            filter (where mr.milestone_key is not null), '[]') as milestones_reached,
        coalesce(jsonb_object_agg(mr.milestone_key, mr.reached_on) filter (where mr.milestone_key is not null), '{}')
            as milestone_dates,
        max(mr.reached_on) filter (where m.is_required) as last_required_on
    from accounts as a
    left join milestone_reached as mr using (account_id)
    left join (select distinct milestone_key, is_required from milestones) as m using (milestone_key)
    group by 1, 2, 3
)

select
    p.account_id::text as account_id,
    p.signed_up_at::timestamptz as signed_up_at,
    p.signup_date::date as signup_date,
    r.milestones_required::integer as milestones_required,
    p.required_reached::integer as required_reached,
    p.milestones_reached_count::integer as milestones_reached_count,
    p.milestones_reached::jsonb as milestones_reached,
    p.milestone_dates::jsonb as milestone_dates,
    (select coalesce(jsonb_agg(k.milestone_key order by k.milestone_key), '[]'::jsonb)
        from required_keys as k where not p.milestones_reached ? k.milestone_key)::jsonb as milestones_missing,
    activated.activated_on::date as activated_on,
    (activated.activated_on - p.signup_date)::integer as days_to_value,
    (activated.activated_on is not null)::boolean as is_activated,
    (p.signup_date + r.required_window_days - 1)::date as activation_deadline,
    (select max(activity_date) from {{ ref('int_product__usage_daily') }})::date as usage_through
from per_account as p
cross join required as r
cross join lateral (
    select case
        when r.milestones_required > 0 and p.required_reached = r.milestones_required then p.last_required_on
    end as activated_on
) as activated
