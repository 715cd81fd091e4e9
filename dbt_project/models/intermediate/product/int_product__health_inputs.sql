{#-
  Raw health signals per account and day: usage in the 28 days ending that day (W) and the
  28 days before (P), distinct key features and active seats in W, support tickets in W,
  NPS of the last product_health_nps_lookback_days days, billing of that month.
  Scope: accounts signed up by then that pay that month or had a key event in W. Every day
  from the first day with events to int_product__as_of is scored.

  Linear in the data, not in accounts x days x window: every signal becomes change rows
  (+x on the day it enters its window, -x on the day it leaves), a running sum per account
  turns them into states valid until the next change, and each state is expanded into the
  days it covers. Distinct users / features enter on a day with no earlier one in the last
  28 days and leave 28 days after their last day (coverage islands).

  Incremental: each run replaces the days from (last built day - product_health_lookback_days)
  on, reading only the inputs that reach into them (56 days of usage, 180 of NPS).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['date'],
        on_schema_change='fail',
        indexes=[{'columns': ['account_id', 'date'], 'unique': true}, {'columns': ['date']}],
    )
}}
{%- set window = 28 -%}
{%- set nps_days = var('product_health_nps_lookback_days') | int -%}

with bounds as (
    select
        {%- if is_incremental() %}
        coalesce(
            (select max(date) from {{ this }}) - {{ var('product_health_lookback_days') | int }},
            (select min(activity_date) from {{ ref('account_usage_daily') }})
        ) as score_from,
        {%- else %}
        (select min(activity_date) from {{ ref('account_usage_daily') }}) as score_from,
        {%- endif %}
        a.as_of_date as score_to
    from {{ ref('int_product__as_of') }} as a
),

usage as (
    select u.account_id, u.activity_date, u.key_events, u.reach, u.key_features, u.active_user_ids
    from {{ ref('account_usage_daily') }} as u
    where u.activity_date >= (select score_from - {{ 2 * window - 1 }} from bounds)
      and u.activity_date <= (select score_to from bounds)
),

-- one row per account x kind (active user, key feature) x item x day used, in reach of W
used as (
    select u.account_id, 'user' as kind, x.item, u.activity_date
    from usage as u
    cross join lateral jsonb_array_elements_text(u.active_user_ids) as x (item)
    where u.activity_date >= (select score_from - {{ window - 1 }} from bounds)
    union all
    select u.account_id, 'feature', x.item, u.activity_date
    from usage as u
    cross join lateral jsonb_array_elements_text(u.key_features) as x (item)
    where u.activity_date >= (select score_from - {{ window - 1 }} from bounds)
),

used_neighbours as (
    select
        *,
        lag(activity_date) over (partition by account_id, kind, item order by activity_date) as previous_day,
        lead(activity_date) over (partition by account_id, kind, item order by activity_date) as next_day
    from used
),

tickets as (
    select t.account_id, (t.created_at at time zone 'UTC')::date as ticket_date
    from {{ ref('stg_helpdesk__tickets') }} as t
    where (t.created_at at time zone 'UTC')::date >= (select score_from - {{ window - 1 }} from bounds)
),

nps as (
    select r.account_id, (r.responded_at at time zone 'UTC')::date as response_date, r.score
    from {{ ref('stg_nps__responses') }} as r
    where (r.responded_at at time zone 'UTC')::date >= (select score_from - {{ nps_days - 1 }} from bounds)
),

changes as (
    select
        account_id, activity_date as change_date,
        key_events as key_events_28d, 0 as key_events_prev_28d, reach as reach_28d,
        0 as active_seats_28d, 0 as key_features_28d, 0 as tickets_28d, 0 as nps_sum, 0 as nps_responses
    from usage
    where key_events <> 0 or reach <> 0
    union all
    select account_id, activity_date + {{ window }}, -key_events, key_events, -reach, 0, 0, 0, 0, 0
    from usage
    where key_events <> 0 or reach <> 0
    union all
    select account_id, activity_date + {{ 2 * window }}, 0, -key_events, 0, 0, 0, 0, 0, 0
    from usage
    where key_events <> 0
    union all
    select
        account_id, activity_date, 0, 0, 0,
        (kind = 'user')::int, (kind = 'feature')::int, 0, 0, 0
    from used_neighbours
    where previous_day is null or previous_day <= activity_date - {{ window }}
    union all
    select
        account_id, activity_date + {{ window }}, 0, 0, 0,
        -(kind = 'user')::int, -(kind = 'feature')::int, 0, 0, 0
    from used_neighbours
    where next_day is null or next_day >= activity_date + {{ window }}
    union all
    select account_id, ticket_date, 0, 0, 0, 0, 0, 1, 0, 0 from tickets
    union all
    select account_id, ticket_date + {{ window }}, 0, 0, 0, 0, 0, -1, 0, 0 from tickets
    union all
    select account_id, response_date, 0, 0, 0, 0, 0, 0, score, 1 from nps
    union all
    select account_id, response_date + {{ nps_days }}, 0, 0, 0, 0, 0, 0, -score, -1 from nps
),

-- changes before score_from only matter through their sum: they fold into one row on score_from
{%- set signals = ['key_events_28d', 'key_events_prev_28d', 'reach_28d', 'active_seats_28d',
                   'key_features_28d', 'tickets_28d', 'nps_sum', 'nps_responses'] %}
per_day as (
    select
        c.account_id,
        greatest(c.change_date, b.score_from) as valid_from,
        {%- for x in signals %}
        sum(c.{{ x }}) as {{ x }}{{ ',' if not loop.last }}
        {%- endfor %}
    from changes as c
    cross join bounds as b
    group by 1, 2
),

states as (
    select
        account_id,
        valid_from,
        lead(valid_from) over (partition by account_id order by valid_from) - 1 as valid_to,
        {%- for x in signals %}
        sum({{ x }}) over running as {{ x }}{{ ',' if not loop.last }}
        {%- endfor %}
    from per_day
    window running as (partition by account_id order by valid_from)
),

-- each state on every day it covers up to score_to; all-zero states skipped
signal_days as (
    select s.*, d.date_day as date
    from states as s
    cross join bounds as b
    cross join lateral ({{ date_spine('s.valid_from', 'least(coalesce(s.valid_to, b.score_to), b.score_to)') }}) as d
    where s.key_events_28d <> 0 or s.key_events_prev_28d <> 0 or s.reach_28d <> 0 or s.active_seats_28d <> 0
       or s.key_features_28d <> 0 or s.tickets_28d <> 0 or s.nps_responses <> 0
),

billing as (
    select account_id, month, is_paying, mrr, paid_seats from {{ ref('int_product__billing_monthly') }}
),

paying_days as (
    select b.account_id, d.date_day as date
    from billing as b
    cross join bounds as x
    cross join lateral ({{ date_spine(
        'greatest(b.month, x.score_from)',
        "least((b.month + interval '1 month' - interval '1 day')::date, x.score_to)") }}) as d
    where b.is_paying
      and b.month >= date_trunc('month', x.score_from)
      and b.month <= x.score_to
),

scope as (
    select
        coalesce(s.account_id, p.account_id) as account_id,
        coalesce(s.date, p.date) as date,
        s.key_events_28d, s.key_events_prev_28d, s.reach_28d, s.active_seats_28d, s.key_features_28d,
        s.tickets_28d, s.nps_sum, s.nps_responses
    from signal_days as s
    full join paying_days as p on p.account_id = s.account_id and p.date = s.date
    where s.key_events_28d > 0 or p.account_id is not null
),

key_feature_total as (
    select count(distinct feature_key) as key_features_total
    from {{ ref('product_event_catalogue') }}
    where is_key_feature
),

support_source as (
    select min((created_at at time zone 'UTC')::date) as first_ticket_date
    from {{ ref('stg_helpdesk__tickets') }}
)

select
    s.date,
    s.date = (date_trunc('month', s.date) + interval '1 month' - interval '1 day')::date as is_month_end,
    s.account_id,
    a.signup_date,
    coalesce(b.is_paying, false) as is_paying,
    coalesce(b.mrr, 0) as mrr,
    b.paid_seats,
    coalesce(s.key_events_28d, 0)::integer as key_events_28d,
    coalesce(s.key_events_prev_28d, 0)::integer as key_events_prev_28d,
    a.signup_date <= s.date - {{ 2 * window - 1 }} as has_previous_window,
    coalesce(s.key_features_28d, 0)::integer as key_features_28d,
    k.key_features_total::integer as key_features_total,
    coalesce(s.active_seats_28d, 0)::integer as active_seats_28d,
    coalesce(s.reach_28d, 0) as reach_28d,
    coalesce(s.tickets_28d, 0)::integer as tickets_28d,
    coalesce(ss.first_ticket_date <= s.date, false) as support_available,
    s.nps_sum::numeric / nullif(s.nps_responses, 0) as nps_avg,
    coalesce(s.nps_responses, 0)::integer as nps_responses
from scope as s
inner join {{ ref('int_product__accounts') }} as a
    on a.account_id = s.account_id and a.signup_date <= s.date
cross join key_feature_total as k
cross join support_source as ss
left join billing as b on b.account_id = s.account_id and b.month = date_trunc('month', s.date)::date
