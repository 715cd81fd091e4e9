{#- Multiplier that turns one billing cycle's amount into a monthly amount (METRICS.md,
    MRR): a year / 12, n months / n, a week * 52/12, a day * 365/12. Unknown intervals
    give null, which the not_null test on int_invoice_lines_normalized reports. -#}
{% macro monthly_factor(interval_col, interval_count_col) -%}
    (case {{ interval_col }}
        when 'month' then 1.0 / {{ interval_count_col }}
        when 'year' then 1.0 / (12 * {{ interval_count_col }})
        when 'week' then 52.0 / (12 * {{ interval_count_col }})
        when 'day' then 365.0 / (12 * {{ interval_count_col }})
    end)
{%- endmacro %}
