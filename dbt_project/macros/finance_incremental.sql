{#- Incremental finance models find what changed in raw Stripe since their last build by the
    ingestion's `_extracted_at` (one timestamp per extraction, written only on rows whose
    content changed). Every bound is read once, at compile time, and inlined as a literal;
    the rows the batch replaces are stated with replace_where() from the same literals.
    Assumes a Stripe extraction does not commit while the model runs (transform_dbt runs
    after the ingestion): a later extraction is newer than `through` and is picked up by
    the next run. -#}
{% macro _finance_scalar(query) -%}
    {{- return(run_query(query).columns[0].values()[0]) -}}
{%- endmacro %}

{#- int_invoice_lines_normalized: the extractions since the newest one in the table, or none
    on a full build (or an empty table): {since, customers_since, through, customers_through}. -#}
{% macro finance_invoice_window() -%}
    {%- if not (is_incremental() and execute) -%}{{ return(none) }}{%- endif -%}
    {%- set window = {
        'since': _finance_scalar('select max(invoice_extracted_at)::text from ' ~ this),
        'customers_since': _finance_scalar('select max(customer_extracted_at)::text from ' ~ this),
        'through': _finance_scalar('select max(extracted_at)::text from ' ~ ref('stg_stripe__invoices')),
        'customers_through': _finance_scalar('select max(extracted_at)::text from ' ~ ref('stg_stripe__customers')),
    } -%}
    {{- return(window if window.since and window.customers_since else none) -}}
{%- endmacro %}

{#- "This invoice changed in the window": its extraction is in (since, through], or its
    customer's is (an account id can change). invoice_id / customer_id / extracted_at name
    the columns the row carries (customer_id none: looked up through the target). -#}
{% macro finance_changed_invoices(window, invoice_id, customer_id=none, extracted_at=none) -%}
    {%- set changed_customers -%}
        select customer_id from {{ ref('stg_stripe__customers') }}
        where extracted_at > timestamptz '{{ window.customers_since }}'
          and extracted_at <= timestamptz '{{ window.customers_through }}'
    {%- endset -%}
    (
        {%- if extracted_at %}
        ({{ extracted_at }} > timestamptz '{{ window.since }}' and {{ extracted_at }} <= timestamptz '{{ window.through }}')
        {%- else %}
        {{ invoice_id }} in (
            select invoice_id from {{ ref('stg_stripe__invoices') }}
            where extracted_at > timestamptz '{{ window.since }}' and extracted_at <= timestamptz '{{ window.through }}'
        )
        {%- endif %}
        {%- if customer_id %}
        or {{ customer_id }} in ({{ changed_customers }})
        {%- else %}
        or {{ invoice_id }} in (select invoice_id from {{ this }} where customer_id in ({{ changed_customers }}))
        {%- endif %}
    )
{%- endmacro %}

{#- mrr_monthly: the first month an incremental run recomputes and the extraction it is
    computed through, or none (full build, empty table, a table from before this model was
    incremental, or a fixed var finance_as_of):
    {restate_from: 'YYYY-MM-DD', through}.

    Month M is read at its snapshot S (the start of M + 1). After S it can still change only
    through an invoice that lands later: a new invoice whose line covers S (a proration
    billed on a later invoice starts before the invoice was created), or a changed one
    (paid later, voided, marked uncollectible), which moves the unpaid state for snapshots
    from its creation on (its due date is never earlier). A customer whose account id
    changed moves its lines. So a run recomputes from the earliest month any of them
    reaches: the earliest creation or line start among invoices extracted after the table's
    `billing_extracted_at`, the earliest line start of customers extracted since, and at
    least the month that was running at the last build (its snapshot was the as-of time).
    Every earlier month has unchanged inputs, so an unchanged row. -#}
{% macro finance_restate_from() -%}
    {%- if not (is_incremental() and execute) or var('finance_as_of') -%}{{ return(none) }}{%- endif -%}
    {#- built before it was incremental: on_schema_change='fail' asks for a --full-refresh -#}
    {%- if 'billing_extracted_at' not in adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set through = _finance_scalar('select max(extracted_at)::text from ' ~ ref('stg_stripe__invoices')) -%}
    {%- set query -%}
        with built as (
            select max(billing_extracted_at) as since, max(month) as last_month from {{ this }}
        ),

        changed_invoices as (
            select invoice_id, created_at from {{ ref('stg_stripe__invoices') }}
            where extracted_at > (select since from built) and extracted_at <= timestamptz '{{ through }}'
        ),

        reach as (
            select created_at as reach_at from changed_invoices
            union all
            select lines.period_start_at
            from {{ ref('stg_stripe__invoice_line_items') }} as lines
            where lines.invoice_extracted_at > (select since from built)
              and lines.invoice_extracted_at <= timestamptz '{{ through }}'
            union all
            select lines.period_start_at
            from {{ ref('int_invoice_lines_normalized') }} as lines
            inner join {{ ref('stg_stripe__customers') }} as customers
                on customers.customer_id = lines.customer_id
            where customers.extracted_at > (select since from built)
        )

        select to_char(least(last_month, (select date_trunc('month', min(reach_at))::date from reach)), 'YYYY-MM-DD')
        from built
        where since is not null
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {{- return({'restate_from': rows[0][0], 'through': through} if rows and rows[0][0] else none) -}}
{%- endmacro %}
