{#-
  Stickiness per account and calendar month, from the users with a key event each day
  (account_usage_daily.active_user_ids):
    dau = average daily active users over the month's days (up to the as-of date),
    wau = average weekly active users over the weeks (Monday to Sunday) starting in the month,
    mau = distinct active users in the month;
  dau_wau = dau / wau, dau_mau = dau / mau. Days and weeks without activity count as 0.
  Rows: account-months with at least one active user.
  Incremental: each run replaces the months from the one holding (D - 6), D the first usage
  day int_product__usage_daily rebuilt since its last run (macros/rebuilt_window.sql) and
  at most the as-of day of its last run - product_usage_lookback_days: a week belongs to
  the month it starts in, up to 6 days before its days. So a daily run replaces the running
  month alone after the 9th, two months before. The as-of day of each run is recorded by a
  post-hook (intermediate.dbt_computed_through, in the model's transaction); without a
  record, the months from the one before the newest this table holds (and any earlier day
  the usage rebuilt).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['month'],
        on_schema_change='fail',
        indexes=[{'columns': ['account_id', 'month'], 'unique': true}],
        pre_hook="{{ consume_changed_days() }}",
        post_hook="{{ record_computed_through(ref('int_product__as_of'), 'as_of_date') }}",
    )
}}
{%- set first_month = none -%}
{%- if is_incremental() and execute -%}
    {#- the last run's as-of day (the table exists: on-run-start creates it); without a
        record, one that makes the run start a month before the newest month -#}
    {%- set lookback = var('product_usage_lookback_days') | int -%}
    {%- set last_through -%}
        coalesce((select through from {{ computed_through_relation() }} where model = '{{ this.identifier }}'),
                 (select (max(month) - interval '1 month')::date + {{ lookback + 6 }} from {{ this }}))
    {%- endset -%}
    {%- set from_day = rebuilt_from('month', lookback_days=lookback, last_day_sql='(' ~ last_through ~ ')') -%}
    {%- set first_month_sql -%}
        select to_char(least(date_trunc('month', date '{{ from_day }}' - 6), (select max(month) from {{ this }})),
                       'YYYY-MM-DD')
    {%- endset -%}
    {%- set first_month = run_query(first_month_sql).columns[0].values()[0] if from_day else none -%}
{%- endif %}

with as_of as (
    select as_of_date from {{ ref('int_product__as_of') }}
),

usage as (
    select u.account_id, u.activity_date, u.active_users, u.active_user_ids
    from {{ ref('int_product__usage_daily') }} as u
    cross join as_of as o
    where u.activity_date <= o.as_of_date
      and u.active_users > 0
    {%- if first_month %}
      and u.activity_date >= date '{{ first_month }}'
    {%- endif %}
),

user_days as (
    select u.account_id, u.activity_date, x.user_id
    from usage as u
    cross join lateral jsonb_array_elements_text(u.active_user_ids) as x (user_id)
    where x.user_id is not null  -- not counted as a user (count(distinct) skipped it)
),

calendar as (
    -- days and Mondays of each month, up to the as-of date
    select
        date_trunc('month', d)::date as month,
        count(*) as days,
        count(*) filter (where extract(isodow from d) = 1) as weeks
    from (select min(activity_date) as first_day from usage) as f
    cross join as_of as o
    cross join lateral generate_series(date_trunc('month', f.first_day), o.as_of_date, interval '1 day') as d
    group by 1
),

daily as (
    select account_id, date_trunc('month', activity_date)::date as month, sum(active_users) as user_days
    from usage
    group by 1, 2
),

-- distinct users counted as the rows of a group by (hashed), not count(distinct), which
-- sorted every user-day by account and user, twice (large, a daily run: 0.65 s -> 0.45 s)
weekly as (
    select account_id, date_trunc('month', week)::date as month, count(*) as user_weeks
    from (
        select account_id, date_trunc('week', activity_date)::date as week, user_id
        from user_days
        group by 1, 2, 3
    ) as w
    group by 1, 2
),

monthly as (
    select account_id, month, count(*) as mau
    from (
        select account_id, date_trunc('month', activity_date)::date as month, user_id
        from user_days
        group by 1, 2, 3
    ) as m
    group by 1, 2
),

measures as (
    select
        m.account_id,
        m.month,
        d.user_days::numeric / c.days as dau,
        coalesce(w.user_weeks, 0)::numeric / nullif(c.weeks, 0) as wau,
        m.mau
    from monthly as m
    inner join daily as d using (account_id, month)
    inner join calendar as c using (month)
    left join weekly as w using (account_id, month)
)

select
    account_id::text as account_id,
    month::date as month,
    round(dau, 4)::numeric(12, 4) as dau,
    round(wau, 4)::numeric(12, 4) as wau,
    mau::integer as mau,
    round(dau / nullif(wau, 0), 4)::numeric(8, 4) as dau_wau,
    round(dau / mau, 4)::numeric(8, 4) as dau_mau
from measures
