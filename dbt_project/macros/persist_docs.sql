{#- A model's descriptions as Postgres comments in one statement (persist_docs).

    dbt-postgres 1.11 spends up to four round trips per relation on it: the relation's
    comment, then its columns read twice through information_schema (once in
    default__persist_docs, to warn about documented columns the relation lacks, and again
    in postgres__alter_column_comment, to skip them), then the column comments. Each read
    is a query, an agate table and a macro context built in dbt's single Python process:
    on a daily run (~45 relations rebuilt, incremental models commented again) ~1 s of
    dbt's CPU, the process every node waits on.

    Here the relation's comment and every documented column's comment go in one
    statement. A documented column the relation does not have is an error naming it and
    pointing at the docs (the column comments run in a DO block that rewords Postgres'
    undefined_column), where dbt only warned and skipped it: the marts' contracts already
    make their columns match, and stale docs elsewhere fail the first build that meets
    them, in CI; the failed node's transaction rolls back, the relation is left as it was.
    Quoting as in dbt's macro: a column marked `quote: true` is quoted, any other name
    folds to lower case.
    docs/dbt.md, "Custom macros that touch dbt's internals". -#}
{% macro postgres__persist_docs(relation, model, for_relation=true, for_columns=true) -%}
    {%- set statements = [] -%}
    {%- if for_relation and config.persist_relation_docs() and model.description -%}
        {%- do statements.append(alter_relation_comment(relation, model.description) | trim) -%}
    {%- endif -%}
    {%- if for_columns and config.persist_column_docs() and model.columns -%}
        {%- set tag = '$persist_docs$' -%}
        {%- set columns = [] -%}
        {%- for name, column in model.columns.items() -%}
            {%- if tag in column['description'] -%}
                {%- do exceptions.raise_compiler_error('The string ' ~ tag ~ ' is not allowed in column descriptions (column ' ~ name ~ ').') -%}
            {%- endif -%}
            {%- set quoted = adapter.quote(name) if column['quote'] else name -%}
            {%- do columns.append('    comment on column ' ~ relation ~ '.' ~ quoted ~ ' is '
                ~ postgres_escape_comment(column['description']) ~ ';') -%}
        {%- endfor -%}
        {%- do statements.append('do ' ~ tag ~ '\nbegin\n' ~ columns | join('\n')
            ~ "\nexception when undefined_column then\n    raise exception 'persist_docs: % (documented in the model''s YAML, not in the relation: fix the docs or the model)', sqlerrm;\nend\n"
            ~ tag ~ ';') -%}
    {%- endif -%}
    {%- if statements -%}
        {%- do run_query(statements | join('\n')) -%}
    {%- endif -%}
{%- endmacro %}
