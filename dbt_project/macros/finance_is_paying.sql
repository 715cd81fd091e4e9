{#- Is the account a paying customer (METRICS.md: trials and $0 are not paying)? MRR above
    0, or a former payer whose subscription is in force at $0 when the matching switch says
    that is no churn: finance_full_discount_is_churn for a 100%-off coupon (contract MRR
    above 0), finance_zero_mrr_is_churn for a $0 price. The one rule behind mrr_monthly
    (per month) and int_billing_account_spells (per day). -#}
{% macro finance_is_paying(mrr, contract_mrr, has_subscription, paid_before) -%}
    (
        {{ mrr }} > 0
        or (
            {{ has_subscription }} and {{ paid_before }}
            and case
                when {{ contract_mrr }} > 0 then not {{ var('finance_full_discount_is_churn') }}
                else not {{ var('finance_zero_mrr_is_churn') }}
            end
        )
    )
{%- endmacro %}
