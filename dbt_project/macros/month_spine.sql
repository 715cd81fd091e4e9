{#- One row per month (first day, type date) from the month of start_expr to the month of
    end_expr, both inclusive. Arguments are SQL expressions (columns or literals). -#}
{% macro month_spine(start_expr, end_expr, column_name='month') -%}
    select gs::date as {{ column_name }}
    from generate_series(
        date_trunc('month', ({{ start_expr }})::timestamp),
        date_trunc('month', ({{ end_expr }})::timestamp),
        interval '1 month'
    ) as gs
{%- endmacro %}

{#- One row per day (type date) from start_expr to end_expr, both inclusive. -#}
{% macro date_spine(start_expr, end_expr, column_name='date_day') -%}
    select gs::date as {{ column_name }}
    from generate_series(({{ start_expr }})::date, ({{ end_expr }})::date, interval '1 day') as gs
{%- endmacro %}
