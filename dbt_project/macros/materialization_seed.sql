{#- Seeds whose file and config have not changed are kept, not reloaded.

    The project's seeds are reloaded whole (+full_refresh: true in dbt_project.yml, so a
    release that adds or renames a seed column upgrades an existing warehouse): dbt drops
    the table, which drops the views that read it (cascade), creates and fills it again,
    and those views are then created again (macros/materialization_view.sql cannot keep a
    view that is gone). On a daily run, where seeds change only with a release, that was
    nine reloads and the views on top of them rebuilt for nothing, at the start of the run,
    where int_product__usage_daily (the head of the longest chain) waits for the event
    catalogue and its tests (docs/dbt.md, "Seeds and views that have not changed").

    This override keeps a seed's table when all of these hold, and otherwise runs dbt's own
    materialization (materialization_seed_default) unchanged:
      * no --full-refresh on the command line (the +full_refresh config is always true, so
        should_full_refresh() cannot tell), and the seed has no pre- or post-hooks;
      * the table that exists now (pg_class) is the one dbt loaded last time: its oid is
        recorded in intermediate.dbt_view_fingerprints;
      * the fingerprint recorded with it is the one of this run: the file's checksum (its
        content), the column types, quoting and delimiter, the description and every
        column's name, description and type, and the persist_docs and grants config.
    A table edited by hand keeps the edit until the file changes or a --full-refresh: the
    file is the source of truth (docs/product_marts.md: the configuration lives in the seeds). -#}
{% materialization seed, adapter='postgres' %}
    {%- set fingerprint = seed_fingerprint() -%}
    {%- if not flags.FULL_REFRESH and not pre_hooks and not post_hooks -%}
        {%- set found = kept_relation_check(this, fingerprint, 'r') -%}
        {%- if found.columns[0].values()[0] > 0 -%}
            {%- do store_result('agate_table', response='OK', agate_table=found) -%}
            {%- call noop_statement('main', 'KEPT 0', 'KEPT', 0) -%}{%- endcall -%}
            {{ log("seed " ~ this ~ " unchanged: kept") }}
            {{ return({'relations': [this.incorporate(type='table')]}) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(materialize_and_record(materialization_seed_default, fingerprint)) }}
{% endmaterialization %}

{% macro seed_fingerprint() -%}
    {{- return(kept_fingerprint([model.checksum.name ~ ':' ~ model.checksum.checksum,
                                 config.get('column_types') | string, config.get('quote_columns') | string,
                                 config.get('delimiter') | string])) -}}
{%- endmacro %}
