{{ config(materialized='table', indexes=[{'columns': ['account_id', 'valid_from'], 'unique': true}]) }}
{#- Each account's lifecycle stage per day, as spells (valid_from .. valid_to, null = still
    in force). Rules (docs/product_marts.md, "Lifecycle stages"), first match wins, each
    read at the end of the day like billing (int_billing_account_spells):
      past_due       paying, with an invoice overdue but inside the dunning window
      active         paying (MRR > 0)
      trialing       a Stripe trial in force (started, not ended, subscription not ended)
      churned        not paying, paid before
      trial_expired  not paying, never paid, had a trial that ended or was cancelled
      never_paid     anything else since signup (free plan, no billing at all)
    A stage can only change on a day a billing spell starts or a trial starts or ends. -#}
-- account_id compared bytewise (collation "C") inside the model: equality and grouping
-- are the same in every deterministic collation, and the joins and windows below sort
-- every candidate day by it (the database's collation made those sorts a third of the
-- time); the output column has the default collation again.
with billing as (
    select account_id collate "C" as account_id, valid_from, valid_to, is_paying, is_past_due
    from {{ ref('int_billing_account_spells') }}
),

-- each account's first day: its signup, or its first billing spell when earlier
account_start as (
    select account_id, min(day) as first_day
    from (
        select account_id collate "C" as account_id, signup_date as day from {{ ref('int_product__accounts') }}
        union all
        select account_id, valid_from from billing
    ) as a
    group by 1
),

first_paid as (
    select account_id, min(valid_from) as first_paid_on from billing where is_paying group by 1
),

trials as (
    select c.account_id collate "C" as account_id, s.trial_start_at, s.trial_end_at, s.ended_at
    from {{ ref('stg_stripe__subscriptions') }} as s
    inner join {{ ref('stg_stripe__customers') }} as c using (customer_id)
    where s.trial_end_at is not null
),

candidates as (
    select account_id, first_day as day from account_start
    union
    select account_id, valid_from from billing
    union
    select t.account_id, d.day
    from trials as t
    cross join lateral (values
        ((t.trial_start_at at time zone 'UTC')::date), ((t.trial_start_at at time zone 'UTC')::date - 1),
        ((t.trial_end_at at time zone 'UTC')::date), ((t.trial_end_at at time zone 'UTC')::date - 1),
        ((t.ended_at at time zone 'UTC')::date), ((t.ended_at at time zone 'UTC')::date - 1)
    ) as d (day)
    where d.day is not null
),

-- linear joins, not a scan of every trial / account per candidate day (that was quadratic:
-- minutes on 10,000 accounts)
trial_state as (
    select
        c.account_id,
        c.day,
        coalesce(bool_or(
            t.trial_start_at < (c.day + 1)::timestamp at time zone 'UTC'
            and t.trial_end_at >= (c.day + 1)::timestamp at time zone 'UTC'
            and (t.ended_at is null or t.ended_at >= (c.day + 1)::timestamp at time zone 'UTC')
        ), false) as in_trial,
        coalesce(bool_or(t.trial_start_at < (c.day + 1)::timestamp at time zone 'UTC'), false) as had_trial
    from candidates as c
    left join trials as t on t.account_id = c.account_id
    group by 1, 2
),

-- trial_state has one row per candidate day: it drives, rather than the candidates joined
-- to it again (a sort of every candidate day saved)
evaluated as (
    select
        c.account_id,
        c.day,
        case
            when b.is_paying and b.is_past_due then 'past_due'
            when b.is_paying then 'active'
            when c.in_trial then 'trialing'
            when f.first_paid_on <= c.day then 'churned'
            when c.had_trial then 'trial_expired'
            else 'never_paid'
        end as lifecycle_stage
    from trial_state as c
    inner join account_start as s on s.account_id = c.account_id and c.day >= s.first_day
    left join billing as b
        on b.account_id = c.account_id and c.day >= b.valid_from and (b.valid_to is null or c.day <= b.valid_to)
    left join first_paid as f on f.account_id = c.account_id
),

changes as (
    select
        *,
        lifecycle_stage is distinct from lag(lifecycle_stage) over (partition by account_id order by day) as is_change
    from evaluated
)

select
    (account_id collate "default")::text as account_id,
    day::date as valid_from,
    (lead(day) over (partition by account_id order by day) - 1)::date as valid_to,
    lifecycle_stage::text as lifecycle_stage
from changes
where is_change
