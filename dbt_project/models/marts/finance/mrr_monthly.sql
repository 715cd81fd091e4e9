{#- MRR per account and month, with the month's movement (METRICS.md, MRR movements).
    Rows: every month an account pays, plus the month it churns (mrr 0). -#}
with items as (
    select * from {{ ref('int_subscription_items_snapshotted') }}
),

months as (
    select * from {{ ref('int_finance_months_spined') }}
),

account_months as (
    select
        account_id,
        month,
        round(sum(contract_mrr), 2) as contract_mrr,
        round(sum(mrr), 2) as mrr
    from items
    group by 1, 2
),

accounts as (
    select account_id, min(month) as first_month
    from account_months
    group by 1
),

filled as (
    select
        accounts.account_id,
        months.month,
        months.snapshot_at,
        account_months.account_id is not null as has_subscription,
        coalesce(account_months.contract_mrr, 0) as contract_mrr,
        coalesce(account_months.mrr, 0) as mrr
    from accounts
    inner join months on months.month >= accounts.first_month
    left join account_months
        on account_months.account_id = accounts.account_id
        and account_months.month = months.month
),

with_history as (
    select
        *,
        coalesce(bool_or(mrr > 0) over (
            partition by account_id order by month
            rows between unbounded preceding and 1 preceding
        ), false) as paid_before
    from filled
),

paying as (
    select
        *,
        -- A customer pays above 0. A former payer at $0 stays a customer only when the
        -- matching switch says $0 is not churn (100%-off coupon vs $0 price).
        mrr > 0
        or (
            has_subscription and paid_before
            and case
                when contract_mrr > 0 then not {{ var('finance_full_discount_is_churn') }}
                else not {{ var('finance_zero_mrr_is_churn') }}
            end
        ) as is_paying
    from with_history
),

with_previous as (
    select
        *,
        coalesce(lag(is_paying) over by_month, false) as was_paying,
        coalesce(lag(mrr) over by_month, 0) as previous_mrr,
        coalesce(bool_or(is_paying) over earlier, false) as paid_earlier,
        max(case when is_paying then month end) over earlier as last_paying_month
    from paying
    window
        by_month as (partition by account_id order by month),
        earlier as (
            partition by account_id order by month
            rows between unbounded preceding and 1 preceding
        )
),

classified as (
    select
        *,
        case
            when is_paying and not was_paying and not paid_earlier then 'new'
            {% if var('finance_reactivation_window_days') is not none %}
            -- days from the first unpaid month to the month it pays again
            when is_paying and not was_paying
                and month - (last_paying_month + interval '1 month')::date
                    > {{ var('finance_reactivation_window_days') }}
                then 'new'
            {% endif %}
            when is_paying and not was_paying then 'reactivation'
            when was_paying and not is_paying then 'churn'
            when mrr > previous_mrr then 'expansion'
            when mrr < previous_mrr then 'contraction'
            else 'retained'
        end as movement
    from with_previous
    where is_paying or was_paying
)

select
    account_id::text as account_id,
    month::date as month,
    snapshot_at::timestamptz as snapshot_at,
    contract_mrr::numeric(14, 2) as contract_mrr,
    mrr::numeric(14, 2) as mrr,
    previous_mrr::numeric(14, 2) as previous_mrr,
    is_paying::boolean as is_paying,
    movement::text as movement,
    (mrr - previous_mrr)::numeric(14, 2) as movement_amount
from classified
