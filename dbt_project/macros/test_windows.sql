{#- Tests on the daily run look at what landed since the last build; a full build
    (--full-refresh) or var tests_full_scan: true tests every row.

    A test opts in with a placeholder in its `where` config, replaced at run time (dbt
    renders `where` with the YAML context only, so custom logic goes through this
    documented override of get_where_subquery):

    * __new_stripe_invoices__(col): col (an invoice's extraction time) is newer than the
      newest invoice extraction int_invoice_lines_normalized was built from, i.e. the rows
      its next incremental run consumes;
    * __rebuilt__(col): col is on or after the first value the last incremental run of
      the tested model rewrote (macros/rebuilt_window.sql: the day its run claimed), so the
      tests after a daily run read the days it rebuilt;
    * __full_build_only__(): false, for a test that guards a model's SQL rather than new
      data (a uniqueness the SQL guarantees by construction).

    Each becomes `true` on a full build or before the anchoring model exists. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if not where -%}{{ return(relation) }}{%- endif -%}
    {%- set ns = namespace(where=where) -%}
    {%- for kind, column in modules.re.findall('__(new_stripe_invoices|rebuilt|full_build_only)__\\(([^)]*)\\)', where) -%}
        {%- set ns.where = ns.where.replace('__' ~ kind ~ '__(' ~ column ~ ')', _test_window_condition(kind, column | trim, relation)) -%}
    {%- endfor -%}
    {%- do return('(select * from ' ~ relation ~ ' where ' ~ ns.where ~ ') dbt_subquery') -%}
{%- endmacro %}

{% macro _test_window_condition(kind, column, relation) -%}
    {%- if not execute or flags.FULL_REFRESH or (var('tests_full_scan', false) | string | lower) == 'true' -%}{{ return('true') }}{%- endif -%}
    {%- if kind == 'full_build_only' -%}
        {{- return('false') -}}
    {%- elif kind == 'rebuilt' -%}
        {#- the table exists: on-run-start creates it (create_bookkeeping_tables) -#}
        {%- set query = "select rebuilt_from::text from " ~ rebuilt_windows_relation() ~ " where model = '" ~ relation.identifier ~ "'" -%}
        {%- set rows = run_query(query).rows -%}
        {%- set since = rows[0][0] if rows | length > 0 else none -%}
        {{- return(column ~ " >= date '" ~ since ~ "'" if since else 'true') -}}
    {%- else -%}  {#- new_stripe_invoices -#}
        {%- set anchor = adapter.get_relation(database=target.database, schema='intermediate', identifier='int_invoice_lines_normalized') -%}
        {%- set since = run_query('select max(invoice_extracted_at)::text from ' ~ anchor).columns[0].values()[0] if anchor else none -%}
        {{- return(column ~ " > timestamptz '" ~ since ~ "'" if since else 'true') -}}
    {%- endif -%}
{%- endmacro %}
