{#- Recurring, licensed subscription lines of finalized invoices, with the amount one full
    billing cycle is worth (contract = list, net = after discounts) and the factor that
    turns a cycle into a month. Everything METRICS.md excludes from MRR is filtered here:
    one-off invoice items, metered prices, draft and void invoices. Tax is never added
    (`amount` excludes it) and refunds (credit notes) are not read.

    Currencies: amounts are divided by the currency's minor unit (macros/currency.sql) and
    converted to var finance_currency at the rate in force on the invoice's UTC date
    (stg_finance__exchange_rates). A line without such a rate keeps null MRR and says why
    in `excluded_reason`; the finance models leave it out and marts.finance_excluded_lines
    lists it. A rate added later counts after a `--full-refresh` of this model and its
    children (the rates are not part of the incremental window).

    Incremental (the JSON expansion of every invoice is the expensive part): a run
    replaces the lines of the invoices extracted since the newest extraction already in
    the table, and of the invoices of customers extracted since then (an account id can
    change). `replace_where` deletes by invoice, so an invoice that became void or draft
    loses its lines. Prices are immutable in Stripe; a line whose price is missing stops
    the build in staging (relationships), before this model. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        on_schema_change='fail',
        indexes=[{'columns': ['line_item_id'], 'unique': true}, {'columns': ['invoice_id']}],
    )
}}
{%- set window = finance_invoice_window() %}
{%- if is_incremental() %}
{{ replace_where(finance_changed_invoices(window, 'invoice_id', 'customer_id') if window else 'true') }}
{%- endif %}

with lines as (
    select * from {{ ref('stg_stripe__invoice_line_items') }}
    {%- if window %}
    where {{ finance_changed_invoices(window, 'invoice_id', none, 'invoice_extracted_at') }}
    {%- endif %}
),

-- materialized on an incremental run: else Postgres tests every invoice's status (a field of
-- its JSON, decompressed per row: 0.4 s on large) before the window's cheap bound. Only the
-- columns used: each is a field of the JSON, read again per field
invoices as {% if window %}materialized {% endif %}(
    select invoice_id, customer_id, invoice_status, due_date, finalized_at, created_at, paid_at, extracted_at
    from {{ ref('stg_stripe__invoices') }}
    {%- if window %}
    where {{ finance_changed_invoices(window, 'invoice_id', none, 'extracted_at') }}
    {%- endif %}
),

customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

prices as (
    select * from {{ ref('stg_stripe__prices') }}
),

rates as (
    select * from {{ ref('stg_finance__exchange_rates') }}
),

recurring_lines as (
    select
        lines.line_item_id,
        lines.invoice_id,
        invoices.customer_id,
        customers.account_id,
        lines.subscription_id,
        lines.subscription_item_id,
        lines.price_id,
        lines.currency,
        lines.is_proration,
        lines.quantity,
        lines.amount,
        lines.discount_amount,
        lines.period_start_at,
        lines.period_end_at,
        invoices.invoice_status,
        -- when payment was due: at finalization when charged automatically
        coalesce(invoices.due_date, invoices.finalized_at, invoices.created_at) as due_at,
        invoices.paid_at,
        case
            when lines.currency = lower('{{ var("finance_currency") }}') then 1
            else rates.rate
        end as exchange_rate,
        case
            when lines.currency is null then 'line without a currency'
            when lines.currency <> lower('{{ var("finance_currency") }}') and rates.rate is null
                then 'no exchange rate from ' || lines.currency || ' to {{ var("finance_currency") | lower }} on or before '
                    || (invoices.created_at at time zone 'UTC')::date
        end as excluded_reason,
        prices.unit_amount,
        prices.recurring_interval,
        prices.recurring_interval_count,
        invoices.extracted_at as invoice_extracted_at,
        customers.extracted_at as customer_extracted_at
    from lines
    inner join invoices on lines.invoice_id = invoices.invoice_id
    -- left joins: a missing customer or price fails the relationships tests in staging
    left join customers on invoices.customer_id = customers.customer_id
    left join prices on lines.price_id = prices.price_id
    left join rates
        on rates.currency = lines.currency
        and rates.rate_date <= (invoices.created_at at time zone 'UTC')::date
        and (rates.next_rate_date is null or rates.next_rate_date > (invoices.created_at at time zone 'UTC')::date)
    where lines.parent_type = 'subscription_item_details'
      and invoices.invoice_status not in ('draft', 'void')
      and prices.price_type = 'recurring'
      and prices.recurring_usage_type = 'licensed'
),

cycle_amounts as (
    select
        *,
        -- What one full cycle of this line is worth, in cents. A regular line bills a
        -- full cycle. A positive proration line bills the rest of a cycle at a new
        -- quantity or price, so the full cycle is list price x quantity, discounted at
        -- the line's own rate. A credit (negative) proration line marks the old quantity
        -- or price as ended.
        case
            when not is_proration then amount
            when amount > 0 then unit_amount * quantity  -- null for tiered prices: fails not_null(mrr)
            else 0
        end::numeric as contract_cycle_amount,
        case
            when not is_proration then amount - discount_amount
            when amount > 0 then unit_amount * quantity
                * (amount - discount_amount)::numeric / amount
            else 0
        end::numeric as net_cycle_amount
    from recurring_lines
)

-- monthly amounts in the reporting currency's units, to a millionth (rounded to cents per
-- account later); null without an exchange rate
select
    *,
    ({{ to_monthly('contract_cycle_amount', 'recurring_interval', 'recurring_interval_count') }}
        / {{ stripe_minor_unit_divisor('currency') }} * exchange_rate)::numeric(18, 6) as contract_mrr,
    ({{ to_monthly('net_cycle_amount', 'recurring_interval', 'recurring_interval_count') }}
        / {{ stripe_minor_unit_divisor('currency') }} * exchange_rate)::numeric(18, 6) as mrr
from cycle_amounts
