{#-
  Stickiness company-wide (signup_cohort = 'all') and by signup month, per calendar month:
  the accounts' daily, weekly and monthly active users summed (users belong to one
  account), then DAU/WAU and DAU/MAU of the sums. Definitions: account_stickiness_monthly.
-#}
-- one pass over the account-months: the per-cohort and the company-wide sums as grouping
-- sets (a CTE read twice was written out and scanned again)
with grouped as (
    select
        s.month,
        case when grouping(to_char(a.signup_date, 'YYYY-MM')) = 1 then 'all'
            else coalesce(to_char(a.signup_date, 'YYYY-MM'), 'unknown') end as signup_cohort,
        count(*) as accounts, sum(s.dau) as dau, sum(s.wau) as wau, sum(s.mau) as mau
    from {{ ref('account_stickiness_monthly') }} as s
    left join {{ ref('int_product__accounts') }} as a using (account_id)
    group by grouping sets ((s.month, to_char(a.signup_date, 'YYYY-MM')), (s.month))
)

select
    month::date as month,
    signup_cohort::text as signup_cohort,
    accounts::integer as active_accounts,
    round(dau, 4)::numeric(14, 4) as dau,
    round(wau, 4)::numeric(14, 4) as wau,
    mau::integer as mau,
    round(dau / nullif(wau, 0), 4)::numeric(8, 4) as dau_wau,
    round(dau / nullif(mau, 0), 4)::numeric(8, 4) as dau_mau
from grouped
