{#- Which rows did the last run of an incremental model rewrite? Its tests only need to
    look at those (placeholder __rebuilt__(col) in a test's `where`: macros/test_windows.sql).

    record_rebuilt_from(column, lookback_days) is the model's pre-hook. It runs in the
    model's transaction, before the model replaces its rows, so it reads the table as the
    last run left it: an incremental run rewrites the rows with column >= (the newest value
    - lookback_days), which is written to intermediate.dbt_rebuilt_windows; a full build
    (or the first) removes the model's entry, and its tests then read every row. A failed
    run rolls the entry back with the model. -#}
{% macro rebuilt_windows_relation() -%}
    {{- return(api.Relation.create(database=target.database, schema='intermediate', identifier='dbt_rebuilt_windows')) -}}
{%- endmacro %}

{% macro record_rebuilt_from(column, lookback_days) -%}
    {%- set log = rebuilt_windows_relation() -%}
    create schema if not exists {{ log.schema }};
    create table if not exists {{ log }} (
        model text primary key,
        rebuilt_from date,
        invocation_id text not null,
        recorded_at timestamptz not null default now()
    );
    {%- if is_incremental() %}
    insert into {{ log }} (model, rebuilt_from, invocation_id)
    select '{{ this.identifier }}', max({{ column }}) - {{ lookback_days | int }}, '{{ invocation_id }}' from {{ this }}
    on conflict (model) do update
        set rebuilt_from = excluded.rebuilt_from, invocation_id = excluded.invocation_id, recorded_at = now();
    {%- else %}
    delete from {{ log }} where model = '{{ this.identifier }}';
    {%- endif %}
{%- endmacro %}

{#- The day an incremental model was last computed for (its as-of day), for models whose
    next run must know how far back new data can reach (account_stickiness_monthly).
    record_computed_through(relation, column) is a post-hook: it runs in the model's
    transaction, so a failed run leaves the previous record. -#}
{% macro computed_through_relation() -%}
    {{- return(api.Relation.create(database=target.database, schema='intermediate', identifier='dbt_computed_through')) -}}
{%- endmacro %}

{% macro record_computed_through(relation, column) -%}
    {%- set log = computed_through_relation() -%}
    create table if not exists {{ log }} (
        model text primary key,
        through date,
        invocation_id text not null,
        recorded_at timestamptz not null default now()
    );
    insert into {{ log }} (model, through, invocation_id)
    select '{{ this.identifier }}', max({{ column }}), '{{ invocation_id }}' from {{ relation }}
    on conflict (model) do update
        set through = excluded.through, invocation_id = excluded.invocation_id, recorded_at = now();
{%- endmacro %}
