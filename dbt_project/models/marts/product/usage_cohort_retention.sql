{#-
  Usage cohorts (METRICS.md, Cohorts): signup month x months since signup.
  Active month = at least product_active_min_key_events key events in that calendar month.
  Basis: relative to the cohort start. The base is the cohort's accounts active in month 0,
  so retention_rate is 100% in month 0; active_rate divides by all signups instead.
-#}
-- account_id compared bytewise (collation "C"; equality is the same in every deterministic
-- collation): the joins below sort every active account-month by it, and the database's
-- collation made those sorts most of this model's time
with accounts as (
    select account_id collate "C" as account_id, date_trunc('month', signup_date)::date as signup_month
    from {{ ref('int_product__accounts') }}
),

as_of as (
    select date_trunc('month', as_of_date)::date as as_of_month, as_of_date from {{ ref('int_product__as_of') }}
),

active_months as (
    select account_id collate "C" as account_id, month as activity_month
    from {{ ref('int_product__usage_monthly') }}
    where key_events >= {{ var('product_active_min_key_events') | int }}
),

base as (
    select a.account_id, a.signup_month
    from accounts as a
    inner join active_months as m on m.account_id = a.account_id and m.activity_month = a.signup_month
),

cohorts as (
    select a.signup_month, count(*) as cohort_accounts, count(b.account_id) as base_accounts
    from accounts as a
    left join base as b using (account_id)
    group by 1
),

grid as (
    select c.signup_month, s.month as activity_month, c.cohort_accounts, c.base_accounts
    from cohorts as c
    cross join as_of as o
    cross join lateral ({{ month_spine('c.signup_month', 'o.as_of_month') }}) as s
),

activity as (
    select
        a.signup_month,
        m.activity_month,
        count(*) as active_accounts,
        count(b.account_id) as retained_accounts
    from active_months as m
    inner join accounts as a using (account_id)
    left join base as b using (account_id)
    where m.activity_month >= a.signup_month
    group by 1, 2
)

select
    g.signup_month::date as signup_month,
    ((extract(year from g.activity_month) - extract(year from g.signup_month)) * 12
        + extract(month from g.activity_month) - extract(month from g.signup_month))::integer as months_since,
    g.activity_month::date as activity_month,
    g.cohort_accounts::integer as cohort_accounts,
    g.base_accounts::integer as base_accounts,
    coalesce(x.active_accounts, 0)::integer as active_accounts,
    coalesce(x.retained_accounts, 0)::integer as retained_accounts,
    round(coalesce(x.retained_accounts, 0)::numeric / nullif(g.base_accounts, 0), 4)::numeric(5, 4) as retention_rate,
    round(coalesce(x.active_accounts, 0)::numeric / g.cohort_accounts, 4)::numeric(5, 4) as active_rate,
    (g.activity_month < o.as_of_month
        or o.as_of_date = (o.as_of_month + interval '1 month' - interval '1 day')::date)::boolean as is_complete_month,
    'relative_to_cohort_start'::text as basis
from grid as g
cross join as_of as o
left join activity as x using (signup_month, activity_month)
