{#-
  Stickiness company-wide (signup_cohort = 'all') and by signup month, per calendar month:
  the accounts' daily, weekly and monthly active users summed (users belong to one
  account), then DAU/WAU and DAU/MAU of the sums. Definitions: account_stickiness_monthly.
-#}
with per_account as (
    select s.*, to_char(a.signup_date, 'YYYY-MM') as signup_cohort
    from {{ ref('account_stickiness_monthly') }} as s
    left join {{ ref('int_product__accounts') }} as a using (account_id)
),

grouped as (
    select month, signup_cohort, count(*) as accounts, sum(dau) as dau, sum(wau) as wau, sum(mau) as mau
    from per_account
    group by 1, 2
    union all
    select month, 'all', count(*), sum(dau), sum(wau), sum(mau)
    from per_account
    group by 1
)

select
    month::date as month,
    coalesce(signup_cohort, 'unknown')::text as signup_cohort,
    accounts::integer as active_accounts,
    round(dau, 4)::numeric(14, 4) as dau,
    round(wau, 4)::numeric(14, 4) as wau,
    mau::integer as mau,
    round(dau / nullif(wau, 0), 4)::numeric(8, 4) as dau_wau,
    round(dau / nullif(mau, 0), 4)::numeric(8, 4) as dau_mau
from grouped
