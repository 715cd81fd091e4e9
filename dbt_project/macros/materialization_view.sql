{#- Views that have not changed are kept, not replaced.

    dbt's view materialization replaces every view on every run: create view x__dbt_tmp,
    rename x to x__dbt_backup, rename x__dbt_tmp to x, comments, commit, drop the backup
    (cascade: views on top of it go with it). For the 17 views of this project that is a
    node's worth of dbt work and catalog churn per view on every daily run, where the
    views' SQL changes only with a release, and each replacement drops the views on top
    of it and briefly locks what BI tools query.

    This override keeps a view when all of these hold, and otherwise runs dbt's own
    materialization (materialization_view_default) unchanged:
      * no --full-refresh, and the model has no pre- or post-hooks;
      * the view that exists now (pg_class, not dbt's cache: a cascading drop earlier in
        this run counts) is the one dbt created last time: its oid is recorded in
        intermediate.dbt_view_fingerprints;
      * the fingerprint recorded with it is the one of this run: the compiled SQL, the
        description and every column's name, description and type (persisted as comments),
        and the persist_docs, grants and contract config.
    After dbt creates a view, its oid and fingerprint are recorded. A view recreated by
    anyone else has another oid and is replaced on the next run; a missing record means
    "replace". The table is created by the on-run-start hook (create_bookkeeping_tables,
    macros/rebuilt_window.sql).
    docs/dbt.md, "Seeds and views that have not changed". -#}
{% materialization view, adapter='postgres' %}
    {%- set fingerprint = view_fingerprint() -%}
    {%- if not should_full_refresh() and not pre_hooks and not post_hooks and view_is_current(this, fingerprint) -%}
        {%- call statement('main') -%}
            select 'kept: unchanged' as view_status
        {%- endcall -%}
        {{ log("view " ~ this ~ " unchanged: kept") }}
        {{ return({'relations': [this.incorporate(type='view')]}) }}
    {%- endif -%}
    {{ return(materialize_and_record(materialization_view_default, fingerprint)) }}
{% endmaterialization %}

{% macro view_fingerprints_relation() -%}
    {{- return(bookkeeping_relation('dbt_view_fingerprints')) -}}
{%- endmacro %}

{% macro view_fingerprint() -%}
    {{- return(kept_fingerprint([sql, config.get('contract') | string])) -}}
{%- endmacro %}

{#- The fingerprint of a kept relation (a view, a seed's table): `parts` (what the kind
    builds from), the description and every column's name, description and type
    (persisted as comments), and the persist_docs and grants config. -#}
{% macro kept_fingerprint(parts) -%}
    {%- set parts = parts + [model.description, config.get('persist_docs') | string, config.get('grants') | string] -%}
    {%- for name, column in model.columns.items() -%}
        {%- do parts.append(name ~ ':' ~ column.description ~ ':' ~ column.data_type) -%}
    {%- endfor -%}
    {{- return(local_md5(parts | join('\x1f'))) -}}
{%- endmacro %}

{% macro view_is_current(relation, fingerprint) -%}
    {{- return(kept_relation_check(relation, fingerprint, 'v').columns[0].values()[0] > 0) -}}
{%- endmacro %}

{#- One row, the count (0 or 1) of relations that are `relation` as dbt recorded it: the
    relation there now (pg_class, kind `relkind`: 'v' view, 'r' table) has the oid recorded
    in dbt_view_fingerprints, with `fingerprint`. An agate table (the seed materialization
    keeps it as its result). -#}
{% macro kept_relation_check(relation, fingerprint, relkind) -%}
    {{- return(run_query(
        "select count(*) as kept from " ~ view_fingerprints_relation() ~ " as f"
        ~ " inner join pg_class as c on c.oid = f.view_oid and c.relkind = '" ~ relkind ~ "'"
        ~ " inner join pg_namespace as n on n.oid = c.relnamespace"
        ~ " where f.relation = '" ~ relation ~ "' and f.fingerprint = '" ~ fingerprint ~ "'"
        ~ " and n.nspname = '" ~ relation.schema ~ "' and c.relname = '" ~ relation.identifier ~ "'")) -}}
{%- endmacro %}

{#- dbt's own materialization `materialize` (materialization_view_default,
    materialization_seed_default) for `this`, then the oid and fingerprint of what it
    created, committed; its result. -#}
{% macro materialize_and_record(materialize, fingerprint) -%}
    {%- set result = materialize() -%}
    {%- call statement('record_fingerprint') -%}
        insert into {{ view_fingerprints_relation() }} (relation, view_oid, fingerprint, invocation_id)
        values ('{{ this }}', '{{ this }}'::regclass::oid, '{{ fingerprint }}', '{{ invocation_id }}')
        on conflict (relation) do update
            set view_oid = excluded.view_oid, fingerprint = excluded.fingerprint,
                invocation_id = excluded.invocation_id, recorded_at = now()
    {%- endcall -%}
    {%- do adapter.commit() -%}
    {{- return(result) -}}
{%- endmacro %}
