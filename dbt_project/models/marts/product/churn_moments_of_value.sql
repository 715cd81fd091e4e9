{#-
  The "moment of value": for each activation milestone (seed product_milestones) and key
  feature (seed product_event_catalogue), the later retention of the accounts that reached
  it within their first product_moment_of_value_days days (signup day = day 0) against
  those that did not. Retained = paying (lifecycle stage active or past_due)
  product_retention_check_days days after signup. Only accounts signed up at least that
  long before the as-of date count, so every one has a known outcome.
-#}
{%- set within = var('product_moment_of_value_days') | int -%}
{%- set check = var('product_retention_check_days') | int -%}
with population as (
    select a.account_id, a.signup_date, (l.lifecycle_stage in ('active', 'past_due')) as is_retained
    from {{ ref('int_product__accounts') }} as a
    cross join {{ ref('int_product__as_of') }} as o
    left join {{ ref('int_account_lifecycle_spells') }} as l
        on l.account_id = a.account_id
        and a.signup_date + {{ check }} >= l.valid_from
        and (l.valid_to is null or a.signup_date + {{ check }} <= l.valid_to)
    where a.signup_date + {{ check }} <= o.as_of_date
),

drivers as (
    select 'milestone' as driver_type, milestone_key as driver from {{ ref('product_milestones') }}
    union
    select 'key_feature', feature_key from {{ ref('product_event_catalogue') }} where is_key_feature
),

-- each branch made distinct on its own (they differ in driver_type): a union sorted both
-- together, on disk
reached as (
    select distinct p.account_id, 'milestone' as driver_type, m.key as driver
    from population as p
    inner join {{ ref('account_activation') }} as a using (account_id)
    cross join lateral jsonb_each_text(a.milestone_dates) as m (key, value)
    where m.value::date < p.signup_date + {{ within }}
    union all
    select distinct p.account_id, 'key_feature', f.feature
    from population as p
    inner join {{ ref('int_product__usage_daily') }} as u
        on u.account_id = p.account_id
        and u.activity_date >= p.signup_date and u.activity_date < p.signup_date + {{ within }}
    cross join lateral jsonb_array_elements_text(u.key_features) as f (feature)
),

-- counted per driver from the reached rows, the rest by difference from the population
-- (not drivers x population joined to reached: the planner expected millions of rows there
-- and hashed them for a second on every run)
totals as (
    select count(*) as accounts, count(*) filter (where is_retained) as retained
    from population
),

reached_counts as (
    select
        r.driver_type,
        r.driver,
        count(*) as accounts_reached,
        count(*) filter (where p.is_retained) as retained_reached
    from reached as r
    inner join population as p using (account_id)
    group by 1, 2
),

outcomes as (
    select
        d.driver_type,
        d.driver,
        coalesce(c.accounts_reached, 0) as accounts_reached,
        coalesce(c.retained_reached, 0) as retained_reached,
        t.accounts - coalesce(c.accounts_reached, 0) as accounts_not_reached,
        t.retained - coalesce(c.retained_reached, 0) as retained_not_reached
    from drivers as d
    cross join totals as t
    left join reached_counts as c on c.driver_type = d.driver_type and c.driver = d.driver
)

select
    driver_type::text as driver_type,
    driver::text as driver,
    {{ within }}::integer as within_days,
    {{ check }}::integer as retention_check_days,
    accounts_reached::integer as accounts_reached,
    retained_reached::integer as retained_reached,
    round(retained_reached::numeric / nullif(accounts_reached, 0), 4)::numeric(5, 4) as retention_reached,
    accounts_not_reached::integer as accounts_not_reached,
    retained_not_reached::integer as retained_not_reached,
    round(retained_not_reached::numeric / nullif(accounts_not_reached, 0), 4)::numeric(5, 4) as retention_not_reached,
    round((retained_reached::numeric / nullif(accounts_reached, 0))
        / nullif(retained_not_reached::numeric / nullif(accounts_not_reached, 0), 0), 3)::numeric(8, 3) as retention_lift
from outcomes
