{#- Which days does an incremental product model rebuild, and which rows did its last run
    rewrite? One answer to both, claimed once per run (per dbt invocation) in
    intermediate.dbt_rebuilt_windows: the model's body reads it at compile time (a literal,
    so Postgres prunes partitions and reads the days through the date index), its hooks and
    its tests (placeholder __rebuilt__(col): macros/test_windows.sql) read the same row.

    The first rebuilt day is the earliest of:
    * the day after the model's newest day (days it has not built yet);
    * the earliest day in raw.changed_days of the model's raw sources: the loader records,
      in each file's transaction, the earliest day of the rows it added or removed
      (retention.load.landed), so events, NPS responses or tickets of any age are picked
      up, not only those inside a fixed look-back;
    * the earliest day an upstream incremental model changed since this model's last run
      (intermediate.dbt_pending_days: the upstream model's post-hook notify_rebuilt; for
      the billing spells, the first day whose billing their run changed);
    * a fixed look-back (newest day - N) where no ledger covers the model's raw sources:
      events from a warehouse (events_source: warehouse: the model names no source) and a
      raw schema from before the ledger.
    An empty table is rebuilt whole (none).

    notify_rebuilt(column) is the post-hook of a model other incremental models read: it
    leaves its first rebuilt (or changed) day for each of them (the models that depend on
    it in dbt's graph and consume in a pre-hook), so no consumer list is kept by hand.

    consume_changed_days(sources) is the model's pre-hook: in the model's transaction, it
    deletes the ledger rows and the pending day the claim covered (rows on or after the
    claimed day: a file committed after the claim, with an earlier day, stays for the next
    run), so a failed run leaves them for the next. A full build removes the model's claim
    (its tests then read every row) and consumes every ledger row of its sources. -#}
{#- The project's bookkeeping tables live in schema intermediate (not for end users). -#}
{% macro bookkeeping_relation(identifier) -%}
    {{- return(api.Relation.create(database=target.database, schema='intermediate', identifier=identifier)) -}}
{%- endmacro %}

{% macro rebuilt_windows_relation() -%}
    {{- return(bookkeeping_relation('dbt_rebuilt_windows')) -}}
{%- endmacro %}

{% macro pending_days_relation() -%}
    {{- return(bookkeeping_relation('dbt_pending_days')) -}}
{%- endmacro %}

{#- raw.changed_days if the loader made it (retention.load.landed), else none. -#}
{% macro changed_days_relation() -%}
    {{- return(adapter.get_relation(database=target.database, schema='raw', identifier='changed_days')) -}}
{%- endmacro %}

{#- The first day this run of the model rebuilds ('YYYY-MM-DD'), claimed once per dbt
    invocation (the first call computes and records it, later calls read it back); none when
    the table is empty (every row). Incremental runs only. In a unit test (`this` is a CTE,
    nothing to claim from) the day is var unit_test_rebuilt_from, else none.
    changed_sources: its sources in raw.changed_days;
    lookback_days: the fixed look-back, used unless raw.changed_days covers changed_sources
    (so always when there are none);
    last_day_sql: a scalar subquery for the model's newest day, if not max(column) of its table. -#}
{% macro rebuilt_from(column, changed_sources=[], lookback_days=none, last_day_sql=none) -%}
    {%- if not execute or not is_incremental() -%}
        {{- return(none) -}}
    {%- elif '__dbt__cte__' in (this | string) -%}
        {{- return(var('unit_test_rebuilt_from', none)) -}}
    {%- endif -%}
    {%- set ledger = changed_days_relation() if changed_sources else none -%}
    {%- set lookback_days = none if ledger else lookback_days -%}
    {%- set windows = rebuilt_windows_relation() -%}
    {%- set claim_sql -%}
        with claimed as (
            select rebuilt_from from {{ windows }}
            where model = '{{ this.identifier }}' and invocation_id = '{{ invocation_id }}'
        ),
        computed as (
            select case when m.last_day is not null then least(
                m.last_day + 1
                {%- if lookback_days is not none %}, m.last_day - {{ lookback_days | int }}{% endif %}
                {%- if ledger %},
                (select min(day) from {{ ledger }} where source in ('{{ changed_sources | join("', '") }}'))
                {%- endif %},
                (select day from {{ pending_days_relation() }} where consumer = '{{ this.identifier }}')
            ) end as rebuilt_from
            from (select {{ last_day_sql or '(select max(' ~ column ~ ') from ' ~ this ~ ')' }} as last_day) as m
            where not exists (select 1 from claimed)
        ),
        stored as (
            insert into {{ windows }} (model, rebuilt_from, invocation_id)
            select '{{ this.identifier }}', rebuilt_from, '{{ invocation_id }}' from computed
            on conflict (model) do update
                set rebuilt_from = excluded.rebuilt_from, invocation_id = excluded.invocation_id, recorded_at = now()
            returning rebuilt_from
        )
        select to_char(rebuilt_from, 'YYYY-MM-DD') from claimed
        union all
        select to_char(rebuilt_from, 'YYYY-MM-DD') from stored
    {%- endset -%}
    {{- return(run_query(claim_sql).columns[0].values()[0]) -}}
{%- endmacro %}

{#- The day this run of the model claimed (rebuilt_from), as a scalar subquery, for its hooks. -#}
{% macro claimed_rebuilt_from() -%}
    (select rebuilt_from from {{ rebuilt_windows_relation() }}
     where model = '{{ this.identifier }}' and invocation_id = '{{ invocation_id }}')
{%- endmacro %}

{#- The rows a replace_where model replaces from its first rebuilt day (a literal; 'true',
    every row, without one). -#}
{% macro rebuilt_days(column, from_day) -%}
    {{- return(column ~ " >= date '" ~ from_day ~ "'" if from_day else 'true') -}}
{%- endmacro %}

{#- The pre-hook of a model using rebuilt_from(): consumes what its claim covered (see above). -#}
{% macro consume_changed_days(changed_sources=[]) -%}
    {%- set ledger = changed_days_relation() if changed_sources else none -%}
    {%- set sources = "'" ~ changed_sources | join("', '") ~ "'" -%}
    {%- if is_incremental() %}
    {%- if ledger %}
    delete from {{ ledger }}
    where source in ({{ sources }}) and day >= coalesce({{ claimed_rebuilt_from() }}, date '-infinity');
    {%- endif %}
    delete from {{ pending_days_relation() }}
    where consumer = '{{ this.identifier }}' and day >= coalesce({{ claimed_rebuilt_from() }}, date '-infinity');
    {%- else %}
    {%- if ledger %}
    delete from {{ ledger }} where source in ({{ sources }});
    {%- endif %}
    delete from {{ pending_days_relation() }} where consumer = '{{ this.identifier }}';
    delete from {{ rebuilt_windows_relation() }} where model = '{{ this.identifier }}';
    {%- endif %}
{%- endmacro %}

{#- The post-hook of a model whose rebuilt days its consumers must rebuild too (see above):
    each consumer's pending day becomes the earlier of its own and the first day this run
    changed: changed_from_sql (a scalar subquery; null when nothing changed) or, without
    it, the day the run claimed (rebuilt_from); every day (min(column)) on a full build. -#}
{% macro notify_rebuilt(column, changed_from_sql=none) -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}  {#- dbt renders hooks while parsing too, without a graph -#}
    {%- set consumers = [] -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and model.unique_id in node.depends_on.nodes
              and node.config.materialized == 'incremental'
              and 'consume_changed_days' in (node.config['pre-hook'] | map(attribute='sql') | join(' ')) -%}
            {%- do consumers.append(node.alias) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not consumers -%}
        {{- exceptions.raise_compiler_error(model.name ~ ": notify_rebuilt found no incremental model consuming it") -}}
    {%- endif %}
    insert into {{ pending_days_relation() }} (consumer, day)
    select c.consumer, f.day
    from unnest(array['{{ consumers | sort | join("', '") }}']) as c (consumer)
    cross join (
        {%- if is_incremental() and changed_from_sql %}
        select {{ changed_from_sql }} as day
        {%- else %}
        select coalesce(
            {%- if is_incremental() %}
            {{ claimed_rebuilt_from() }},
            {%- endif %}
            (select min({{ column }}) from {{ this }})) as day
        {%- endif %}
    ) as f
    where f.day is not null
    on conflict (consumer) do update set day = least({{ pending_days_relation() }}.day, excluded.day);
{%- endmacro %}

{#- For a model whose runs rewrite rows anywhere in time (int_billing_account_spells: an
    account recomputed whole), the first day a run changed is found by comparing the rows it
    replaced with the rows it inserted (config keep_replaced_rows: macros/
    incremental_replace_where.sql). first_changed_spell_day(key, state_columns) is the
    changed_from_sql of its notify_rebuilt: the first day a spell table (key, valid_from,
    valid_to: the state in force from valid_from through valid_to, null: still in force)
    holds another state than before, or null when no row changed. Rows are paired on (key,
    valid_from): a spell whose state is unchanged but ends on another day changes the day
    after the earlier end; any other difference (a new, gone or restated spell) changes
    from its valid_from. -#}
{% macro first_changed_spell_day(key, state_columns) -%}
    {%- set columns = [key, 'valid_from', 'valid_to'] + state_columns -%}
    (select min(case
        when g.{{ key }} is not null and n.{{ key }} is not null
             and ({% for c in state_columns %}g.{{ c }}{{ ', ' if not loop.last }}{% endfor %})
                 is not distinct from ({% for c in state_columns %}n.{{ c }}{{ ', ' if not loop.last }}{% endfor %})
            then least(coalesce(g.valid_to, date 'infinity'), coalesce(n.valid_to, date 'infinity')) + 1
        else coalesce(g.valid_from, n.valid_from)
     end)
     from (select {{ columns | join(', ') }} from {{ replaced_rows_relation() }}
           except all select {{ columns | join(', ') }} from {{ inserted_rows_relation() }}) as g
     full join (select {{ columns | join(', ') }} from {{ inserted_rows_relation() }}
           except all select {{ columns | join(', ') }} from {{ replaced_rows_relation() }}) as n
         on n.{{ key }} = g.{{ key }} and n.valid_from = g.valid_from)
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
        create table if not exists {{ rebuilt_windows_relation() }} (
            model text primary key,
            rebuilt_from date,
            invocation_id text not null,
            recorded_at timestamptz not null default now()
        );
        create table if not exists {{ pending_days_relation() }} (
            consumer text primary key,
            day date not null
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
