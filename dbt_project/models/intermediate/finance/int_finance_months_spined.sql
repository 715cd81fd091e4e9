{#- The months MRR is reported for: from the month of the first recurring line to the
    month of the as-of time (macros/finance_as_of.sql: var finance_as_of, else the end of
    the Stripe extraction's data interval, else the latest invoice's creation).
    Each month's status is read at its snapshot: the first instant of the next month, or
    the as-of time for the month still running. `billing_extracted_at`: the newest Stripe
    invoice extraction in raw, the watermark incremental mrr_monthly runs start from. -#}
with as_of as (
    select
        {{ finance_as_of_at() }} as as_of_at,
        (select min(period_start_at) from {{ ref('int_invoice_lines_normalized') }}) as first_at,
        (select max(extracted_at) from {{ ref('stg_stripe__invoices') }}) as billing_extracted_at
),

months as (
    {{ month_spine('(select first_at from as_of)', '(select as_of_at from as_of)') }}
)

select
    months.month,
    least((months.month + interval '1 month')::timestamptz, as_of.as_of_at) as snapshot_at,
    as_of.billing_extracted_at
from months
cross join as_of
