{#- Incremental strategy `replace_where` (the semantics of dbt-databricks' strategy of that
    name): delete every target row matching the predicates, then insert the batch. Unlike
    delete+insert it also removes rows that have no successor in the batch (the lines of
    an invoice voided since the last run, an account gone from a restated month).

    The predicates are `incremental_predicates` from config plus every predicate the model
    wrote into its compiled SQL with replace_where(): config() is evaluated at parse time
    only, and a predicate computed at compile time (from the target or raw) has to be the
    one the batch was built with, not a second evaluation that may see newer raw data. -#}
{% macro get_incremental_replace_where_sql(arg_dict) %}
    {%- set predicates = arg_dict['incremental_predicates'] or [] -%}
    {%- if predicates is string -%}{%- set predicates = [predicates] -%}{%- endif -%}
    {%- set predicates = predicates + modules.re.findall('/\\* replace_where: (.*?) \\*/', model.compiled_code, modules.re.DOTALL) -%}
    {%- if not predicates -%}
        {{ exceptions.raise_compiler_error("incremental_strategy 'replace_where' needs the rows the batch replaces: incremental_predicates or replace_where() in the model") }}
    {%- endif %}
    {%- set target = arg_dict['target_relation'] %}
    {%- set delete_sql = 'delete from ' ~ target ~ ' where (' ~ predicates | join(') and (') ~ ')' %}
    {%- if config.get('keep_replaced_rows') %}
    create temporary table {{ replaced_rows_relation(target) }} on commit drop as
        select * from {{ target }} with no data;
    with replaced as ({{ delete_sql }} returning *)
    insert into {{ replaced_rows_relation(target) }} select * from replaced;
    create temporary table {{ inserted_rows_relation(target) }} on commit drop as
        select * from {{ arg_dict['temp_relation'] }};
    {%- else %}
    {{ delete_sql }};
    {%- endif %}
    {{ get_insert_into_sql(target, arg_dict['temp_relation'], arg_dict['dest_columns']) }}
{% endmacro %}

{#- With config keep_replaced_rows, an incremental run keeps, until its transaction commits
    (its post-hooks read them), the rows it deleted and the rows it inserted in two temporary
    tables: what the run changed, without reading the rest of the table. -#}
{% macro replaced_rows_relation(relation=this) -%}
    {{- return(relation.identifier ~ '__replaced') -}}
{%- endmacro %}

{% macro inserted_rows_relation(relation=this) -%}
    {{- return(relation.identifier ~ '__inserted') -}}
{%- endmacro %}

{#- In a replace_where model: the rows of the target this run's batch replaces (a SQL
    condition on the target's columns, fixed at compile time). -#}
{% macro replace_where(predicate) -%}
    /* replace_where: {{ predicate }} */
{%- endmacro %}
