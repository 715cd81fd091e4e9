{#- Fails with every row whose [lower_bound, upper_bound) range overlaps the next range in
    the same partition (ordered by lower_bound). Half-open ranges: touching is allowed. -#}
{% test mutually_exclusive_ranges(model, lower_bound_column, upper_bound_column, partition_by=None) %}
with ordered as (
    select
        {{ partition_by ~ ',' if partition_by }}
        {{ lower_bound_column }} as lower_bound,
        {{ upper_bound_column }} as upper_bound,
        lead({{ lower_bound_column }}) over (
            {{ 'partition by ' ~ partition_by if partition_by }}
            order by {{ lower_bound_column }}, {{ upper_bound_column }}
        ) as next_lower_bound
    from {{ model }}
)
select *
from ordered
where lower_bound >= upper_bound
   or next_lower_bound < upper_bound
{% endtest %}
