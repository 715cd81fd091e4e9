{#- Stripe amounts are integers in the currency's smallest unit: cents for most currencies,
    the whole unit for zero-decimal ones (JPY, KRW, ...), thousandths for the three-decimal
    ones. The divisor that turns such an amount into major units, for a currency column
    (lower-case ISO code). Lists: https://docs.stripe.com/currencies#zero-decimal and
    #three-decimal. -#}
{% macro stripe_minor_unit_divisor(currency_col) -%}
    (case
        when {{ currency_col }} in (
            'bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd',
            'vuv', 'xaf', 'xof', 'xpf'
        ) then 1
        when {{ currency_col }} in ('bhd', 'jod', 'kwd', 'omr', 'tnd') then 1000
        else 100
    end)
{%- endmacro %}
