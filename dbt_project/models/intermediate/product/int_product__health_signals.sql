{#-
  Health signals per account and day, from usage, support tickets and NPS only (no
  billing, so it runs while the finance models build): key events and reach in the 28
  days ending that day (W) and the 28 days before (P), distinct key features and active
  seats in W, support tickets in W, NPS sum and count of the last
  product_health_nps_lookback_days days. One row per account and day with any signal;
  int_product__health_inputs adds scope and billing.

  Linear in the data, not in accounts x days x window: every signal becomes change rows
  (+x on the day it enters its window, -x on the day it leaves), a running sum per account
  turns them into states valid until the next change, and each state is expanded into the
  days it covers. Distinct users / features enter on a day with no earlier one in the last
  28 days and leave 28 days after their last day (coverage islands).

  Incremental: each run replaces the days from the first day it has not built, the first day
  the usage rebuilt, or the earliest day of NPS responses or tickets loaded since
  (rebuilt_from: any late data, not a fixed look-back; without raw.changed_days, the last
  product_health_lookback_days days). A daily run (fewer rescored days than a window) computes just those days: key events
  and reach from the state the last run left on the day before (usage before the first
  rescored day is final: the usage rebuilt nothing earlier) plus the usage
  entering and leaving the windows since (three ranges of days read through the date index,
  not every day of 2 W); seats and features from the items used within reach of the days
  (one read of those days; the items in every rescored day's window counted once per
  account, not once per day); tickets and NPS counted directly. A full build, or
  a run after a gap of a window or more, replays every change as above. Either way a day's
  row is the same (tests/dbt/test_product_incremental.py).
-#}
{{ config(**product_health_daily_config(['nps', 'support'])) }}
{{ config(post_hook="{{ notify_rebuilt('date') }}") }}
{%- set score_from = rebuilt_from('date', ['nps', 'support'], var('product_health_lookback_days')) %}
{{ replace_where(rebuilt_days('date', score_from)) }}
{%- set window = var('product_health_window_days') | int -%}
{%- set nps_days = var('product_health_nps_lookback_days') | int -%}
{#- a daily run: the days rescored (as-of day - first rescored day) fit in one window -#}
{%- set few_days = false -%}
{%- if score_from and '__dbt__cte__' not in (this | string) -%}
    {%- set span_sql -%}
        select (select as_of_date from {{ ref('int_product__as_of') }}) - date '{{ score_from }}'
    {%- endset -%}
    {%- set span = run_query(span_sql).columns[0].values()[0] -%}
    {%- set few_days = span is not none and span < window -%}
{%- endif %}

with bounds as (
    {{ product_health_bounds(score_from) }}
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

{%- if few_days %}

-- one row per account x kind (active user, key feature) x item x day used, in reach of W
-- (one read of the days [score_from - W + 1, score_to], both arrays from each row)
used as (
    select u.account_id, x.kind, x.item, u.activity_date
    from {{ ref('int_product__usage_daily') }} as u
    cross join lateral (
        select 'user' as kind, item from jsonb_array_elements_text(u.active_user_ids) as item
        union all
        select 'feature', item from jsonb_array_elements_text(u.key_features) as item
    ) as x
    where u.activity_date >= (select score_from - {{ window - 1 }} from bounds)
      and u.activity_date <= (select score_to from bounds)
),

days as (
    select d.date_day as date
    from bounds as b
    cross join lateral ({{ date_spine('b.score_from', 'b.score_to') }}) as d
),

-- key events in W and P and reach in W on the day before the first rescored day
carried as (
    select s.account_id, s.key_events_28d, s.key_events_prev_28d, s.reach_28d
    from {{ this }} as s
    where s.date = (select score_from - 1 from bounds)
),

-- usage entering W, moving from W to P, leaving P, on a rescored day: three ranges of days
-- read through the date index (key events and reach only)
moved as (
    select u.account_id, u.activity_date as change_date, u.key_events as w, 0 as p, u.reach
    from {{ ref('int_product__usage_daily') }} as u
    where u.activity_date >= (select score_from from bounds)
      and u.activity_date <= (select score_to from bounds)
    union all
    select u.account_id, u.activity_date + {{ window }}, -u.key_events, u.key_events, -u.reach
    from {{ ref('int_product__usage_daily') }} as u
    where u.activity_date >= (select score_from - {{ window }} from bounds)
      and u.activity_date <= (select score_to - {{ window }} from bounds)
    union all
    select u.account_id, u.activity_date + {{ 2 * window }}, 0, -u.key_events, 0
    from {{ ref('int_product__usage_daily') }} as u
    where u.activity_date >= (select score_from - {{ 2 * window }} from bounds)
      and u.activity_date <= (select score_to - {{ 2 * window }} from bounds)
),

-- an item (user, key feature) counts on day d if used in [d - W + 1, d]. The rescored days
-- span less than W, so a use in [score_to - W + 1, score_from] is in every day's window,
-- one before it in the windows of the days up to W - 1 after it, one after score_from in
-- those from its day on.
items as (
    select
        u.account_id,
        u.kind,
        u.item,
        bool_or(u.activity_date between b.score_to - {{ window - 1 }} and b.score_from) as in_every_window,
        max(u.activity_date) filter (where u.activity_date < b.score_to - {{ window - 1 }}) as last_before,
        min(u.activity_date) filter (where u.activity_date > b.score_from) as first_after
    from used as u
    cross join bounds as b
    group by u.account_id, u.kind, u.item
),

-- the items in every rescored day's window, counted once per account
items_every_day as (
    select
        account_id,
        count(*) filter (where kind = 'user')::int as users,
        count(*) filter (where kind = 'feature')::int as features
    from items
    where in_every_window
    group by account_id
),

-- summed as int (numeric sums spilled the hash to disk); cast back to numeric below
contributions as (
    select c.account_id, d.date, c.key_events_28d::int as w, c.key_events_prev_28d::int as p, c.reach_28d as reach,
           0 as users, 0 as features, 0 as tickets, 0 as nps_sum, 0 as nps_responses
    from carried as c
    cross join days as d
    union all
    select m.account_id, d.date, m.w, m.p, m.reach, 0, 0, 0, 0, 0
    from moved as m
    inner join days as d on m.change_date <= d.date
    union all
    select i.account_id, d.date, 0, 0, 0, i.users, i.features, 0, 0, 0
    from items_every_day as i
    cross join days as d
    union all
    select i.account_id, d.date, 0, 0, 0, (i.kind = 'user')::int, (i.kind = 'feature')::int, 0, 0, 0
    from items as i
    inner join days as d
        on not i.in_every_window and (i.last_before >= d.date - {{ window - 1 }} or i.first_after <= d.date)
    union all
    select t.account_id, d.date, 0, 0, 0, 0, 0, 1, 0, 0
    from tickets as t
    inner join days as d on t.ticket_date between d.date - {{ window - 1 }} and d.date
    union all
    select n.account_id, d.date, 0, 0, 0, 0, 0, 0, n.score, 1
    from nps as n
    inner join days as d on n.response_date between d.date - {{ nps_days - 1 }} and d.date
),

signal_days as (
    select
        account_id,
        date,
        sum(w)::numeric as key_events_28d,
        sum(p)::numeric as key_events_prev_28d,
        sum(reach)::numeric as reach_28d,
        sum(users)::numeric as active_seats_28d,
        sum(features)::numeric as key_features_28d,
        sum(tickets)::numeric as tickets_28d,
        sum(nps_sum)::numeric as nps_sum,
        sum(nps_responses)::numeric as nps_responses
    from contributions
    group by account_id, date
    having sum(w) <> 0 or sum(p) <> 0 or sum(reach) <> 0 or sum(users) <> 0 or sum(features) <> 0
        or sum(tickets) <> 0 or sum(nps_responses) <> 0
)
{%- else %}

usage as (
    select u.account_id, u.activity_date, u.key_events, u.reach, u.key_features, u.active_user_ids
    from {{ ref('int_product__usage_daily') }} as u
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
    where c.change_date <= b.score_to  -- later changes (a window's end after the as-of day) change no scored day
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
)
{%- endif %}

select
    account_id,
    date,
    key_events_28d,
    key_events_prev_28d,
    reach_28d,
    active_seats_28d,
    key_features_28d,
    tickets_28d,
    nps_sum,
    nps_responses
from signal_days
