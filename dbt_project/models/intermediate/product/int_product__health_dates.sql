-- The dates account_health_daily scores: every day of the last product_health_daily_days
-- days up to as_of_date, plus every month-end before that (the backtest needs them).
with bounds as (
    select
        a.as_of_date,
        a.as_of_date - {{ var('product_health_daily_days') | int }} + 1 as daily_from,
        (select min(activity_date) from {{ ref('account_usage_daily') }}) as first_date
    from {{ ref('int_product__as_of') }} as a
),

month_ends as (
    select (m.month + interval '1 month' - interval '1 day')::date as score_date
    from bounds as b
    cross join lateral ({{ month_spine('b.first_date', 'b.as_of_date') }}) as m
),

dailies as (
    select d.date_day as score_date
    from bounds as b
    cross join lateral ({{ date_spine('greatest(b.daily_from, b.first_date)', 'b.as_of_date') }}) as d
)

select
    s.score_date,
    s.score_date = (date_trunc('month', s.score_date) + interval '1 month' - interval '1 day')::date as is_month_end
from (
    select score_date from month_ends
    union
    select score_date from dailies
) as s
cross join bounds as b
where s.score_date <= b.as_of_date
