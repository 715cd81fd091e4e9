{#- An amount billed once per cycle of `interval_count` x `interval`, as a monthly amount
    (METRICS.md, MRR): a year / 12, n months / n, a week x 52/12, a day x 365/12.
    Multiplications come first so whole results stay exact. Unknown intervals give null,
    which the not_null test on int_invoice_lines_normalized.mrr reports. -#}
{% macro to_monthly(amount_expr, interval_col, interval_count_col) -%}
    (case {{ interval_col }}
        when 'month' then ({{ amount_expr }}) / {{ interval_count_col }}
        when 'year' then ({{ amount_expr }}) / (12 * {{ interval_count_col }})
        when 'week' then ({{ amount_expr }}) * 52 / (12 * {{ interval_count_col }})
        when 'day' then ({{ amount_expr }}) * 365 / (12 * {{ interval_count_col }})
    end)
{%- endmacro %}
