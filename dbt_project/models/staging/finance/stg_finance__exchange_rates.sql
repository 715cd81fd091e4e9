{#- Exchange rates into the reporting currency (var finance_currency), each with the day
    the currency's next rate takes over. From the seed finance_exchange_rates, or from the
    warehouse table named by var finance_exchange_rates_relation (same columns: currency,
    rate_date, rate). -#}
{%- set relation = var('finance_exchange_rates_relation') %}
with rates as (
    select lower(currency)::text as currency, rate_date::date as rate_date, rate::numeric as rate
    from {% if relation %}{{ relation }}{% else %}{{ ref('finance_exchange_rates') }}{% endif %}
)

select
    currency,
    rate_date,
    lead(rate_date) over (partition by currency order by rate_date) as next_rate_date,
    rate
from rates
