{#- The instant the finance marts are computed as of (the running month's snapshot):
    1. var finance_as_of, when set;
    2. else the end of the data interval the Stripe extraction covered
       (raw.stripe_extract_state.interval_end), the earliest over the objects the marts
       read (customers, prices, invoices): months run to that day, whatever the date of
       the latest invoice, and a month is read at its end once the interval passes it;
    3. else (no extraction state, or an extraction outside a scheduled interval left it
       null) the latest invoice's creation time. -#}
{% macro finance_as_of_at() -%}
    {%- if var('finance_as_of') -%}
        '{{ var("finance_as_of") }}'::timestamptz
    {%- else -%}
        {%- set state = source('stripe', 'stripe_extract_state') -%}
        coalesce(
            {%- if execute and load_relation(state) %}
            (
                select case when count(*) = 3 and count(interval_end) = 3 then min(interval_end) end
                from {{ state }}
                where object in ('customers', 'prices', 'invoices')
            ),
            {%- endif %}
            (select max(created_at) from {{ ref('stg_stripe__invoices') }})
        )
    {%- endif -%}
{%- endmacro %}
