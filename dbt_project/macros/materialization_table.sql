{#- dbt's table materialization with the swap written as SQL, not as adapter calls.

    dbt's `table` materialization (dbt-adapters 1.x, global project) builds the table as
    `<name>__dbt_tmp`, then calls adapter.rename_relation twice (the old table to
    `<name>__dbt_backup`, the new one to `<name>`), commits, and calls adapter.drop_relation
    on the backup. Each of those adapter calls runs a macro through execute_macro, which
    builds a whole macro context (every macro of the project, dbt and dbt-postgres) in dbt's
    single Python process, the process every node of a run waits on. On a daily run on
    `large` (about 30 tables rebuilt whole) the renames and drops were ~1 s of that
    process' CPU, sampled with py-spy (docs/dbt.md, "Custom macros that touch dbt's
    internals").

    Here both renames (dbt's get_rename_sql, the statement for each relation's kind) go in
    one statement and the drop (get_drop_sql) in another, and dbt's relation cache is told
    directly (adapter.cache_renamed / cache_dropped, which are what
    rename_relation and drop_relation do besides the SQL). Everything else is dbt's
    materialization line for line: hooks, indexes, grants, docs, the commit before the
    backup's drop (cascade: views on the old table go with it, as with dbt's). -#}
{% materialization table, adapter='postgres' %}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='table') %}
  {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
  {%- set preexisting_intermediate_relation = load_cached_relation(intermediate_relation) -%}
  {%- set backup_relation_type = 'table' if existing_relation is none else existing_relation.type -%}
  {%- set backup_relation = make_backup_relation(target_relation, backup_relation_type) -%}
  {%- set preexisting_backup_relation = load_cached_relation(backup_relation) -%}
  {%- set grant_config = config.get('grants') %}

  {{ drop_relation_if_exists(preexisting_intermediate_relation) }}
  {{ drop_relation_if_exists(preexisting_backup_relation) }}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% call statement('main') -%}
    {{ get_create_table_as_sql(False, intermediate_relation, sql) }}
  {%- endcall %}

  {% do create_indexes(intermediate_relation) %}

  {#- the existing relation may have been dropped since (a cascade earlier in the run) -#}
  {%- set existing_relation = load_cached_relation(existing_relation) if existing_relation is not none else none -%}
  {#- dbt's get_rename_sql: the statement for the relation's kind (table, view, materialized view) -#}
  {% call statement('swap') -%}
    {%- if existing_relation is not none %}
    {{ get_rename_sql(existing_relation, adapter.quote_as_configured(backup_relation.identifier, 'identifier')) }};
    {%- endif %}
    {{ get_rename_sql(intermediate_relation, adapter.quote_as_configured(target_relation.identifier, 'identifier')) }}
  {%- endcall %}
  {%- if existing_relation is not none -%}
    {%- do adapter.cache_renamed(existing_relation, backup_relation) -%}
  {%- endif -%}
  {%- do adapter.cache_renamed(intermediate_relation, target_relation) -%}

  {{ run_hooks(post_hooks, inside_transaction=True) }}

  {% set should_revoke = should_revoke(existing_relation, full_refresh_mode=True) %}
  {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}

  {% do persist_docs(target_relation, model) %}

  {{ adapter.commit() }}

  {% if existing_relation is not none -%}
    {% call statement('drop_backup', auto_begin=False) -%}
      {{ get_drop_sql(backup_relation) }}
    {%- endcall %}
    {%- do adapter.cache_dropped(backup_relation) -%}
  {%- endif %}

  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
