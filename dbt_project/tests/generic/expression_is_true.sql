{#- Fails with every row where the SQL expression is not true (dbt_utils semantics). -#}
{% test expression_is_true(model, expression, column_name=None) %}
select *
from {{ model }}
where not coalesce(({{ column_name ~ ' ' if column_name }}{{ expression }}), false)
{% endtest %}
