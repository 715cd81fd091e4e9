{#- Warns with the number of recurring lines left out of MRR for want of an exchange rate
    ("Got N results"); the lines and reasons are in marts.finance_excluded_lines. Add the
    rates (seed finance_exchange_rates or var finance_exchange_rates_relation), then
    `retention dbt build --full-refresh --select int_invoice_lines_normalized+`. -#}
{{ config(severity='warn') }}
select line_item_id, currency, excluded_reason from {{ ref('finance_excluded_lines') }}
