{#- Analysts get one NOLOGIN group role that can read the marts schema and nothing else.
    Runs as an on-run-end hook (dbt_project.yml), so tables rebuilt by dbt get their grant
    back on every run. Idempotent, and safe when several dbt processes grant at once (a
    transform_dbt task rebuilding its model on a retry while another does): a transaction
    advisory lock serialises them (concurrent GRANTs on one table otherwise fail with
    "tuple concurrently updated"), and a concurrent run may create the role first.
    Grant it to people with: grant analyst_readonly to alice; -#}
{% macro grant_marts_readonly(role='analyst_readonly', schema='marts', run=false) -%}
    {#- run=true: execute it here, for `dbt run-operation grant_marts_readonly --args '{run: true}'`
        (a hook runs the SQL it returns). -#}
    {% if execute %}
    {% set sql %}
    do $grant$
    begin
        perform pg_advisory_xact_lock(hashtext('retention.grant_marts_readonly'));
        begin
            create role {{ role }} nologin;
        exception when duplicate_object or unique_violation then
            null;  -- already there (possibly created by a concurrent run)
        end;
        if exists (select 1 from pg_namespace where nspname = '{{ schema }}') then
            execute 'grant usage on schema {{ schema }} to {{ role }}';
            execute 'grant select on all tables in schema {{ schema }} to {{ role }}';
        end if;
    end
    $grant$;
    {% endset %}
    {% if run %}{% do run_query(sql) %}{% else %}{{ sql }}{% endif %}
    {% endif %}
{%- endmacro %}
