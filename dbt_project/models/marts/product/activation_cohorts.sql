-- Activation by signup month: accounts, activated, activation rate and time to value.
-- Accounts still inside their activation window count in accounts_in_progress and in the
-- denominator (the rate of a young cohort still rises).
select
    date_trunc('month', signup_date)::date as signup_month,
    count(*)::integer as accounts,
    (count(*) filter (where is_activated))::integer as activated_accounts,
    (count(*) filter (where activation_status = 'in_progress'))::integer as accounts_in_progress,
    round((count(*) filter (where is_activated))::numeric / count(*), 4)::numeric(5, 4) as activation_rate,
    (percentile_cont(0.5) within group (order by days_to_value))::numeric(6, 1) as median_days_to_value,
    round(avg(days_to_value), 1)::numeric(6, 1) as avg_days_to_value
from {{ ref('account_activation') }}
group by 1
