{#- Which rows did the last run of an incremental model rewrite? Its tests only need to
    look at those (placeholder __rebuilt__(col) in a test's `where`: macros/test_windows.sql).

    record_rebuilt_from(column, lookback_days) is the model's pre-hook. It runs in the
    model's transaction, before the model replaces its rows, so it reads the table as the
    last run left it: an incremental run rewrites the rows with column >= (the newest value
    - lookback_days), which is written to intermediate.dbt_rebuilt_windows; a full build
    (or the first) removes the model's entry, and its tests then read every row. A failed
    run rolls the entry back with the model. -#}
{#- The project's bookkeeping tables live in schema intermediate (not for end users). -#}
{% macro bookkeeping_relation(identifier) -%}
    {{- return(api.Relation.create(database=target.database, schema='intermediate', identifier=identifier)) -}}
{%- endmacro %}

{% macro rebuilt_windows_relation() -%}
    {{- return(bookkeeping_relation('dbt_rebuilt_windows')) -}}
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
    {{- return(bookkeeping_relation('dbt_computed_through')) -}}
{%- endmacro %}

{% macro record_computed_through(relation, column) -%}
    insert into {{ computed_through_relation() }} (model, through, invocation_id)
    select '{{ this.identifier }}', max({{ column }}), '{{ invocation_id }}' from {{ relation }}
    on conflict (model) do update
        set through = excluded.through, invocation_id = excluded.invocation_id, recorded_at = now();
{%- endmacro %}

{#- on-run-start (dbt_project.yml): once per dbt process, before any model runs, the
    bookkeeping tables written during the run (the views kept: macros/materialization_view.sql;
    the as-of day of a model's last run: record_computed_through). An advisory lock
    serialises concurrent dbt processes (two `create table if not exists` at once can fail
    on Postgres' catalog). -#}
{% macro create_bookkeeping_tables() -%}
    do $bookkeeping$
    begin
        perform pg_advisory_xact_lock(hashtext('retention.dbt_bookkeeping'));
        create schema if not exists intermediate;
        create table if not exists {{ view_fingerprints_relation() }} (
            relation text primary key,
            view_oid oid not null,
            fingerprint text not null,
            invocation_id text not null,
            recorded_at timestamptz not null default now()
        );
        create table if not exists {{ computed_through_relation() }} (
            model text primary key,
            through date,
            invocation_id text not null,
            recorded_at timestamptz not null default now()
        );
    end
    $bookkeeping$;
{%- endmacro %}
