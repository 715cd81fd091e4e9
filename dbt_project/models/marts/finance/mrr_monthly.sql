{#- MRR per account and month, with the month's movement (METRICS.md, MRR movements).
    Rows: every month an account pays, plus the month it churns (mrr 0).

    Incremental: a run recomputes the months from finance_restate_from() (why older months
    cannot change: macros/finance_incremental.sql, docs/dbt.md) and replaces them; the
    state before that month (paying, previous MRR, paid before, last paying month) comes
    from the table's own rows. --full-refresh recomputes every month. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        on_schema_change='fail',
    )
}}
-- depends_on: {{ ref('stg_stripe__invoices') }}, {{ ref('stg_stripe__invoice_line_items') }}
-- depends_on: {{ ref('stg_stripe__customers') }}, {{ ref('int_invoice_lines_normalized') }}
{%- set restate = finance_restate_from() %}
{%- set restate_from = restate.restate_from if restate else none %}
{%- set window_start = "date '" ~ restate_from ~ "'" if restate_from else 'null::date' %}
{%- if is_incremental() %}
{{ replace_where('month >= ' ~ window_start if restate_from else 'true') }}
{%- endif %}

with months as (
    select * from {{ ref('int_finance_months_spined') }}
    {%- if restate_from %}
    where month >= {{ window_start }}
    {%- endif %}
),

{%- if restate_from %}

-- An incremental run: the subscription items in force at the recomputed months' snapshots,
-- by the rules of int_subscription_items_snapshotted (macros/lines_in_force.sql) applied to
-- these months only. A filter on the view's month does not reach its unpaid state, which it
-- computes for every month (0.4 s of this model's 0.45 s on large).
lines as (
    select * from {{ ref('int_invoice_lines_normalized') }}
    where excluded_reason is null  -- no exchange rate: listed in finance_excluded_lines
      -- every recomputed snapshot is at or after the window's start: a line ending before it
      -- covers none, one paid before it is unpaid at none
      and (period_end_at >= {{ window_start }} or paid_at is null or paid_at > {{ window_start }})
),

{{ lines_in_force('months', 'lines', ['month']) }},

items as (
    select account_id, month, contract_mrr, mrr from in_force
),
{%- else %}

items as (
    select * from {{ ref('int_subscription_items_snapshotted') }}
),
{%- endif %}

account_months as (
    select
        account_id,
        month,
        round(sum(contract_mrr), 2) as contract_mrr,
        round(sum(mrr), 2) as mrr
    from items
    group by 1, 2
),

-- each account's state before the first recomputed month, from the rows already built
-- (none on a full build)
history as (
    {%- if restate_from %}
    select
        account_id,
        bool_or(mrr > 0) as paid_before,
        bool_or(is_paying) as paid_earlier,
        max(month) filter (where is_paying) as last_paying_month,
        bool_or(is_paying and month = {{ window_start }} - interval '1 month') as was_paying,
        coalesce(max(mrr) filter (where month = {{ window_start }} - interval '1 month'), 0) as previous_mrr
    from {{ this }}
    where month < {{ window_start }}
    group by 1
    {%- else %}
    select
        null::text as account_id, null::boolean as paid_before, null::boolean as paid_earlier,
        null::date as last_paying_month, null::boolean as was_paying, null::numeric as previous_mrr
    where false
    {%- endif %}
),

accounts as (
    select account_id, min(month) as first_month
    from account_months
    group by 1
    union all
    -- paying when the window starts: a row in its first month even without items (churn)
    select account_id, {{ window_start }} from history where was_paying
),

filled as (
    select
        accounts.account_id,
        months.month,
        months.snapshot_at,
        months.billing_extracted_at,
        account_months.account_id is not null as has_subscription,
        coalesce(account_months.contract_mrr, 0) as contract_mrr,
        coalesce(account_months.mrr, 0) as mrr
    from (select account_id, min(first_month) as first_month from accounts group by 1) as accounts
    inner join months on months.month >= accounts.first_month
    left join account_months
        on account_months.account_id = accounts.account_id
        and account_months.month = months.month
),

with_history as (
    select
        filled.*,
        coalesce(bool_or(filled.mrr > 0) over (
            partition by filled.account_id order by filled.month
            rows between unbounded preceding and 1 preceding
        ), false) or coalesce(history.paid_before, false) as paid_before,
        history.paid_earlier as history_paid_earlier,
        history.last_paying_month as history_last_paying_month,
        case when filled.month = {{ window_start }} then history.was_paying end as history_was_paying,
        case when filled.month = {{ window_start }} then history.previous_mrr end as history_previous_mrr
    from filled
    left join history on history.account_id = filled.account_id
),

paying as (
    select
        *,
        -- A customer pays above 0. A former payer at $0 stays a customer only when the
        -- matching switch says $0 is not churn (100%-off coupon vs $0 price).
        {{ finance_is_paying('mrr', 'contract_mrr', 'has_subscription', 'paid_before') }} as is_paying
    from with_history
),

with_previous as (
    select
        *,
        coalesce(lag(is_paying) over by_month, history_was_paying, false) as was_paying,
        coalesce(lag(mrr) over by_month, history_previous_mrr, 0) as previous_mrr,
        coalesce(bool_or(is_paying) over earlier, false) or coalesce(history_paid_earlier, false) as paid_earlier,
        coalesce(max(case when is_paying then month end) over earlier, history_last_paying_month)
            as last_paying_month
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
    (mrr - previous_mrr)::numeric(14, 2) as movement_amount,
    {%- if restate %}
    timestamptz '{{ restate.through }}' as billing_extracted_at
    {%- else %}
    billing_extracted_at::timestamptz as billing_extracted_at
    {%- endif %}
from classified
