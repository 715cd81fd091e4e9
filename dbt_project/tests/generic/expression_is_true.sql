{#- Fails with every row where the SQL expression is not true (null counts as not true).
    The expression is always complete, also when the test sits under a column:
    `expression: "amount >= 0"` (unlike dbt_utils, the column name is not prefixed). -#}
{% test expression_is_true(model, expression, column_name=None) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
