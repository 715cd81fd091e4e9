{#- Billing cohorts: cohort = month of the first paid period; column k = k months later
    (METRICS.md, Cohorts). Relative to the cohort start, so month 0 is always 100%. -#}
with monthly as (
    select * from {{ ref('mrr_monthly') }}
),

months as (
    select month from {{ ref('int_finance_months_spined') }}
),

cohorts as (
    select account_id, min(month) as cohort_month
    from monthly
    where is_paying
    group by 1
),

cohort_sizes as (
    select cohorts.cohort_month, count(*) as cohort_size, sum(monthly.mrr) as cohort_start_mrr
    from cohorts
    inner join monthly
        on monthly.account_id = cohorts.account_id and monthly.month = cohorts.cohort_month
    group by 1
),

grid as (
    select
        cohort_sizes.*,
        months.month,
        ((extract(year from months.month) - extract(year from cohort_sizes.cohort_month)) * 12
            + extract(month from months.month) - extract(month from cohort_sizes.cohort_month))::integer
            as months_since
    from cohort_sizes
    inner join months on months.month >= cohort_sizes.cohort_month
),

activity as (
    select cohorts.cohort_month, monthly.month, count(*) as paying_logos, sum(monthly.mrr) as mrr
    from cohorts
    inner join monthly on monthly.account_id = cohorts.account_id
    where monthly.is_paying
    group by 1, 2
)

select
    grid.cohort_month::date as cohort_month,
    grid.months_since::integer as months_since,
    grid.month::date as month,
    'cohort_start'::text as basis,
    grid.cohort_size::integer as cohort_size,
    coalesce(activity.paying_logos, 0)::integer as paying_logos,
    round(coalesce(activity.paying_logos, 0)::numeric / grid.cohort_size, 6)::numeric(10, 6)
        as logo_retention,
    grid.cohort_start_mrr::numeric(14, 2) as cohort_start_mrr,
    coalesce(activity.mrr, 0)::numeric(14, 2) as mrr,
    round(coalesce(activity.mrr, 0) / grid.cohort_start_mrr, 6)::numeric(10, 6) as revenue_retention
from grid
left join activity
    on activity.cohort_month = grid.cohort_month and activity.month = grid.month
