{#- MRR of each subscription item at each month-end snapshot (the snapshot rules:
    macros/lines_in_force.sql). -#}
with lines as (
    select * from {{ ref('int_invoice_lines_normalized') }}
    where excluded_reason is null  -- no exchange rate: listed in finance_excluded_lines
),

months as (
    select * from {{ ref('int_finance_months_spined') }}
),

{{ lines_in_force('months', 'lines', ['month']) }}

select
    account_id,
    month,
    subscription_id,
    subscription_item_id,
    line_item_id,
    quantity,
    contract_mrr,
    mrr
from in_force
