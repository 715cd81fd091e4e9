{#- Each account's billing as it stood at the end of each day, as spells: one row per
    (account, valid_from) with the state in force until valid_to (null: still in force).

    Point in time: a day's state is the snapshot at the end of that day (the next
    midnight UTC, at most the finance as-of time), by the same rules as the month-end
    snapshot (macros/lines_in_force.sql), so the last day of a month equals mrr_monthly.
    The state can only change on a day some line threshold falls on (period start or
    end, due date, payment, due date + dunning window), so only those days (and the day
    before each, for thresholds at midnight) are evaluated.

    Paying, as mrr_monthly: MRR above 0, or a former payer whose subscription is in force
    at $0 when the switch for that case says it is no churn (finance_full_discount_is_churn
    for a 100%-off coupon, finance_zero_mrr_is_churn for a $0 price).
    Paid seats (METRICS.md): quantities of the per-seat items in force that day (seed
    billing_products), only on items that are paid (mrr > 0; every per-seat item of an
    account that pays at $0 by a switch): a free plan, a 100%-off coupon (switch on) or a
    trial has none. A product missing from billing_products is not per-seat and has no
    plan (the warning test billing_products_cover_billed_products names it). list_mrr: the
    items in force at list price x quantity, per month (what a trial at $0 will cost once it
    converts; contract_mrr is what is billed before discounts, 0 in a trial). The plan is
    the plan of the per-seat item with the highest list price (null without one).

    Incremental (replace_where on account_id): an account's spells change only when its
    lines change or the as-of time passes one of its thresholds. A run recomputes, whole,
    the accounts whose lines differ from those the rows were built with (line count and
    newest invoice extraction, kept per row), the accounts gone from the lines, and the
    accounts with a threshold between the previous as-of day - 1 and the new as-of time;
    every other account's days are unchanged. The first day whose billing a run changed
    (in any account, however far back) is left for the incremental models reading this one
    (int_product__health_inputs): macros/rebuilt_window.sql, notify_rebuilt and
    first_changed_spell_day. An as-of time earlier than the previous one
    (var finance_as_of) recomputes every account; changing a finance_* var or the
    billing_products seed needs a --full-refresh of this model. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        on_schema_change='fail',
        indexes=[{'columns': ['account_id', 'valid_from'], 'unique': true}],
        keep_replaced_rows=true,
    )
}}
{%- set spell_state = ['is_paying', 'mrr', 'contract_mrr', 'list_mrr', 'paid_seats', 'plan', 'is_past_due'] %}
{{ config(post_hook="{{ notify_rebuilt('valid_from', first_changed_spell_day('account_id', " ~ spell_state ~ ")) }}") }}
{%- set accounts = none -%}
{%- if is_incremental() and execute -%}
    {%- set changed_sql -%}
        with lines as (
            select account_id, count(*) as line_count, max(invoice_extracted_at) as lines_extracted_at
            from {{ ref('int_invoice_lines_normalized') }}
            where excluded_reason is null
            group by 1
        ),
        built as (
            select account_id, max(line_count) as line_count, max(lines_extracted_at) as lines_extracted_at
            from {{ this }} group by 1
        ),
        as_of as (
            select
                (select max(snapshot_at) from {{ ref('int_finance_months_spined') }}) as as_of_at,
                (select max(as_of_at) from {{ this }}) as previous_as_of_at
        )
        select account_id from lines full join built using (account_id)
        where (lines.line_count, lines.lines_extracted_at) is distinct from (built.line_count, built.lines_extracted_at)
           or (select as_of_at < previous_as_of_at from as_of)
        union
        -- one test per threshold column, not a row per threshold and line
        select l.account_id
        from {{ ref('int_invoice_lines_normalized') }} as l
        cross join (
            select ((previous_as_of_at at time zone 'UTC')::date - 1)::timestamp at time zone 'UTC' as since, as_of_at
            from as_of
        ) as o
        where l.period_start_at between o.since and o.as_of_at
           or l.period_end_at between o.since and o.as_of_at
           or l.due_at between o.since and o.as_of_at
           or l.paid_at between o.since and o.as_of_at
           or l.due_at + make_interval(days => {{ var('finance_dunning_window_days') }}) between o.since and o.as_of_at
    {%- endset -%}
    {%- set accounts = run_query(changed_sql).columns[0].values() | list -%}
{%- endif %}
{%- if accounts is not none %}
{%- set account_list -%}
    {%- if accounts -%}
        {%- for a in accounts %}'{{ a | replace("'", "''") }}'{{ ', ' if not loop.last }}{% endfor -%}
    {%- else -%}null{%- endif -%}
{%- endset %}
{{ replace_where('account_id in (' ~ account_list ~ ')') }}
{%- endif %}

with lines as (
    select
        l.*,
        coalesce(p.is_per_seat, false) as is_per_seat,
        p.plan,
        {{ to_monthly('l.unit_amount * l.quantity', 'l.recurring_interval', 'l.recurring_interval_count') }} / 100.0
            as list_mrr
    from {{ ref('int_invoice_lines_normalized') }} as l
    left join {{ ref('stg_stripe__prices') }} as pr on pr.price_id = l.price_id
    left join {{ ref('billing_products') }} as p on p.product_id = pr.product_id
    where l.excluded_reason is null  -- no exchange rate (finance_excluded_lines)
    {%- if accounts is not none %}
      and l.account_id in ({{ account_list }})
    {%- endif %}
),

lineage as (
    select account_id, count(*) as line_count, max(invoice_extracted_at) as lines_extracted_at
    from lines
    group by 1
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
        coalesce(round(sum(f.list_mrr), 2), 0) as list_mrr,
        count(f.line_item_id) > 0 as has_subscription,
        sum(f.quantity) filter (where f.is_per_seat and f.mrr > 0)::integer as paid_seats,
        sum(f.quantity) filter (where f.is_per_seat)::integer as seats_in_force,
        (array_agg(f.plan order by f.unit_amount desc nulls last, f.subscription_item_id)
            filter (where f.is_per_seat and f.plan is not null))[1] as plan,
        coalesce(bool_or(f.is_past_due and f.mrr > 0), false) as is_past_due
    from snapshots as s
    left join in_force as f on f.account_id = s.account_id and f.day = s.day
    group by 1, 2
),

paying as (
    select
        *,
        {{ finance_is_paying('mrr', 'contract_mrr', 'has_subscription', 'paid_before') }} as is_paying
    from (
        select
            *,
            coalesce(bool_or(mrr > 0) over (
                partition by account_id order by day rows between unbounded preceding and 1 preceding), false)
                as paid_before
        from states
    ) as s
),

changes as (
    select
        *,
        (is_paying, mrr, contract_mrr, list_mrr, paid_seats, seats_in_force, plan, is_past_due)
            is distinct from (lag((is_paying, mrr, contract_mrr, list_mrr, paid_seats, seats_in_force, plan, is_past_due)) over w)
            as is_change
    from paying
    window w as (partition by account_id order by day)
)

select
    c.account_id::text as account_id,
    c.day::date as valid_from,
    (lead(c.day) over (partition by c.account_id order by c.day) - 1)::date as valid_to,
    c.is_paying::boolean as is_paying,
    c.mrr::numeric(14, 2) as mrr,
    c.contract_mrr::numeric(14, 2) as contract_mrr,
    c.list_mrr::numeric(14, 2) as list_mrr,
    (case when c.mrr > 0 then c.paid_seats when c.is_paying then c.seats_in_force end)::integer as paid_seats,
    c.plan::text as plan,
    (c.is_paying and c.is_past_due)::boolean as is_past_due,
    g.line_count::integer as line_count,
    g.lines_extracted_at::timestamptz as lines_extracted_at,
    o.as_of_at::timestamptz as as_of_at
from changes as c
inner join lineage as g using (account_id)
cross join as_of as o
where c.is_change
