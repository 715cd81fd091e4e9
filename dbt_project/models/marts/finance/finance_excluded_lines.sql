{#- Recurring invoice lines left out of MRR, each with the reason (today: no exchange rate
    into var finance_currency for the line's currency on or before its invoice date). The
    warning test finance_lines_without_exchange_rate counts them on every run. -#}
select
    line_item_id::text as line_item_id,
    invoice_id::text as invoice_id,
    customer_id::text as customer_id,
    account_id::text as account_id,
    currency::text as currency,
    amount::bigint as amount,
    period_start_at::timestamptz as period_start_at,
    period_end_at::timestamptz as period_end_at,
    excluded_reason::text as excluded_reason
from {{ ref('int_invoice_lines_normalized') }}
where excluded_reason is not null
