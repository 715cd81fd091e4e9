{{ config(materialized='table') }}
-- The one place product models read billing: MRR and movement per account-month from
-- mrr_monthly, plus paid seats (quantity of the per-seat plan items at the month-end snapshot).
with seats as (
    select account_id, month, sum(quantity)::integer as paid_seats
    from {{ ref('int_subscription_items_snapshotted') }}
    group by 1, 2
),

first_paid as (
    select account_id, min(month) filter (where is_paying) as first_paid_month
    from {{ ref('mrr_monthly') }}
    group by 1
)

select
    m.account_id,
    m.month,
    m.mrr,
    m.previous_mrr,
    m.is_paying,
    m.movement,
    s.paid_seats,
    f.first_paid_month
from {{ ref('mrr_monthly') }} as m
left join seats as s using (account_id, month)
left join first_paid as f using (account_id)
