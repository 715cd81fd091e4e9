{#- Several single-table checks in one test node and one scan of the table: fails with one
    row per check that fails, `failed_check` naming it ("not_null: weight") and
    `failing_rows` counting the rows (for unique: the surplus rows, duplicates beyond the
    first). Same semantics as the one-check tests it replaces, so a failure is the same
    failure:
      not_null: [col, ...]            col is null fails
      unique: [col, ...]              each column unique on its own, nulls ignored (dbt's unique)
      unique_combination: [[a, b]]    each list unique as a combination (nulls equal)
      accepted_values: {col: [v, ...]} quoted literals Postgres reads as the column's type (as
                                      dbt's accepted_values: booleans, numbers); null passes
      expressions: ["sql", ...]       a row where the expression is not true fails (null too:
                                      expression_is_true)
    Why one node: a dbt test costs a node (dbt's per-node work and a query) however small its
    table, and dbt runs every test of a model before the model's children start, at the
    same graph depth as the seeds and views it waits on, so on the daily run the many tests
    of the seeds and small marts delayed the models downstream (docs/dbt.md, "What the daily
    run tests"). -#}
{% test column_checks(model, not_null=[], unique=[], unique_combination=[], accepted_values={}, expressions=[], column_name=None) %}
{#- dbt's "Got N results" and any warn_if / error_if count failing rows, as with the one-check tests -#}
{{ config(fail_calc='coalesce(sum(failing_rows), 0)') }}
{%- set checks = [] -%}
{%- for c in not_null -%}
    {%- do checks.append(('not_null: ' ~ c, 'count(*) filter (where ' ~ c ~ ' is null)')) -%}
{%- endfor -%}
{%- for c in unique -%}
    {%- do checks.append(('unique: ' ~ c, 'count(' ~ c ~ ') - count(distinct ' ~ c ~ ')')) -%}
{%- endfor -%}
{%- for cols in unique_combination -%}
    {%- do checks.append(('unique: ' ~ cols | join(', '), 'count(*) - count(distinct (' ~ cols | join(', ') ~ '))')) -%}
{%- endfor -%}
{%- for c, values in accepted_values.items() -%}
    {%- set listed = [] -%}
    {%- for v in values -%}{%- do listed.append("'" ~ (v | string | replace("'", "''")) ~ "'") -%}{%- endfor -%}
    {%- do checks.append(('accepted_values: ' ~ c, 'count(*) filter (where ' ~ c ~ ' not in (' ~ listed | join(', ') ~ '))')) -%}
{%- endfor -%}
{%- for e in expressions -%}
    {%- do checks.append(('expression: ' ~ e, 'count(*) filter (where not coalesce((' ~ e ~ '), false))')) -%}
{%- endfor -%}
{%- if not checks -%}{{ exceptions.raise_compiler_error('column_checks on ' ~ model ~ ': no check given') }}{%- endif %}
with counted as (
    select
        {%- for name, sql in checks %}
        {{ sql }} as check_{{ loop.index }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ model }}
)

select x.failed_check, x.failing_rows
from counted
cross join lateral (values
    {%- for name, sql in checks %}
    ('{{ name | replace("'", "''") }}', check_{{ loop.index }}){{ ',' if not loop.last }}
    {%- endfor %}
) as x (failed_check, failing_rows)
where x.failing_rows > 0
{% endtest %}
