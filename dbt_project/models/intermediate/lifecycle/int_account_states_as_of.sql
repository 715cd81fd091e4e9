{{ config(materialized='table') }}
{#- Every account as it stands on the product as-of date (int_product__as_of): lifecycle
    stage and since when, billing in force that day (point in time), first paid day and,
    for a former payer, the last day it paid. What segment rules and marts.accounts read. -#}
with as_of as (
    select as_of_date from {{ ref('int_product__as_of') }}
),

stages as (
    select l.account_id, l.lifecycle_stage, l.valid_from as stage_since
    from {{ ref('int_account_lifecycle_spells') }} as l
    cross join as_of as o
    where o.as_of_date >= l.valid_from and (l.valid_to is null or o.as_of_date <= l.valid_to)
),

billing as (
    select b.account_id, b.is_paying, b.mrr, b.contract_mrr, b.list_mrr, b.paid_seats, b.plan, b.is_past_due
    from {{ ref('int_billing_account_spells') }} as b
    cross join as_of as o
    where o.as_of_date >= b.valid_from and (b.valid_to is null or o.as_of_date <= b.valid_to)
),

paid as (
    select
        b.account_id,
        min(b.valid_from) as first_paid_on,
        max(coalesce(b.valid_to, o.as_of_date)) filter (where b.valid_from <= o.as_of_date) as last_paid_on
    from {{ ref('int_billing_account_spells') }} as b
    cross join as_of as o
    where b.is_paying
    group by 1
)

select
    s.account_id,
    o.as_of_date,
    s.lifecycle_stage,
    s.stage_since,
    s.lifecycle_stage in ('trialing', 'active', 'past_due') as is_current_customer,
    coalesce(b.is_paying, false) as is_paying,
    coalesce(b.mrr, 0)::numeric(14, 2) as mrr,
    coalesce(b.contract_mrr, 0)::numeric(14, 2) as contract_mrr,
    coalesce(b.list_mrr, 0)::numeric(14, 2) as list_mrr,
    b.paid_seats,
    coalesce(b.plan, a.plan) as plan,
    p.first_paid_on,
    p.last_paid_on
from stages as s
cross join as_of as o
left join billing as b using (account_id)
left join paid as p using (account_id)
left join {{ ref('int_product__accounts') }} as a using (account_id)
