{{ config(materialized='table', indexes=[{'columns': ['account_id', 'valid_from'], 'unique': true}]) }}
{#- Each account's billing as it stood at the end of each day, as spells: one row per
    (account, valid_from) with the state in force until valid_to (null: still in force).

    Point in time: a day's state is the snapshot at the end of that day (the next
    midnight UTC, at most the finance as-of time), by the same rules as the month-end
    snapshot (macros/lines_in_force.sql), so the last day of a month equals mrr_monthly.
    The state can only change on a day some line threshold falls on (period start or
    end, due date, payment, due date + dunning window), so only those days (and the day
    before each, for thresholds at midnight) are evaluated.

    Paid seats (METRICS.md): quantities of the per-seat items in force that day (seed
    billing_products; a product not listed there counts as per-seat), only on items that
    are paid (mrr > 0): a free plan, a 100%-off coupon or a trial has none. The plan is
    the plan of the per-seat item with the highest list price (null
    without a per-seat item). -#}
with lines as (
    select
        l.*,
        coalesce(p.is_per_seat, true) as is_per_seat,
        case when p.product_id is null then pr.product_id else p.plan end as plan
    from {{ ref('int_invoice_lines_normalized') }} as l
    left join {{ ref('stg_stripe__prices') }} as pr on pr.price_id = l.price_id
    left join {{ ref('billing_products') }} as p on p.product_id = pr.product_id
    where l.excluded_reason is null  -- no exchange rate (finance_excluded_lines)
),

as_of as (
    select max(snapshot_at) as as_of_at from {{ ref('int_finance_months_spined') }}
),

thresholds as (
    select account_id, period_start_at as at from lines
    union select account_id, period_end_at from lines
    union select account_id, due_at from lines
    union select account_id, paid_at from lines where paid_at is not null
    union select account_id, due_at + make_interval(days => {{ var('finance_dunning_window_days') }}) from lines
),

days as (
    select distinct t.account_id, d.day
    from thresholds as t
    cross join as_of as o
    cross join lateral (values ((t.at at time zone 'UTC')::date), ((t.at at time zone 'UTC')::date - 1)) as d (day)
    where d.day <= (o.as_of_at at time zone 'UTC')::date
),

snapshots as (
    select d.account_id, d.day, least((d.day + 1)::timestamp at time zone 'UTC', o.as_of_at) as snapshot_at
    from days as d
    cross join as_of as o
),

{{ lines_in_force('snapshots', 'lines', ['account_id', 'day'], match=['account_id']) }},

states as (
    select
        s.account_id,
        s.day,
        coalesce(round(sum(f.mrr), 2), 0) as mrr,
        coalesce(round(sum(f.contract_mrr), 2), 0) as contract_mrr,
        sum(f.quantity) filter (where f.is_per_seat and f.mrr > 0)::integer as paid_seats,
        (array_agg(f.plan order by f.unit_amount desc nulls last, f.subscription_item_id)
            filter (where f.is_per_seat and f.plan is not null))[1] as plan,
        coalesce(bool_or(f.is_past_due and f.mrr > 0), false) as is_past_due
    from snapshots as s
    left join in_force as f on f.account_id = s.account_id and f.day = s.day
    group by 1, 2
),

changes as (
    select
        *,
        (mrr, contract_mrr, paid_seats, plan, is_past_due) is distinct from (lag((mrr, contract_mrr, paid_seats, plan, is_past_due)) over w)
            as is_change
    from states
    window w as (partition by account_id order by day)
)

select
    account_id::text as account_id,
    day::date as valid_from,
    (lead(day) over (partition by account_id order by day) - 1)::date as valid_to,
    (mrr > 0)::boolean as is_paying,
    mrr::numeric(14, 2) as mrr,
    contract_mrr::numeric(14, 2) as contract_mrr,
    (case when mrr > 0 then paid_seats end)::integer as paid_seats,
    plan::text as plan,
    (mrr > 0 and is_past_due)::boolean as is_past_due
from changes
where is_change
