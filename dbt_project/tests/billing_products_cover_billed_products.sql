{{ config(severity='warn') }}
-- depends_on: {{ ref('int_invoice_lines_normalized') }}, {{ ref('stg_stripe__prices') }}, {{ ref('billing_products') }}
-- Every product billed as MRR (a recurring licensed line) is configured in the seed
-- billing_products. One that is not counts as no plan and no seats (depth is absent from
-- the health score, never inflated), so this warning names it for someone to add it.
-- A build of the billing models alone selects this test too (dbt selects a test when any
-- of its parents is selected): without the seed loaded there is nothing to compare with.
{%- set seed = load_relation(ref('billing_products')) if execute else none %}
{%- if seed is none %}
select null::text as product_id, 0 as accounts where false
{%- else %}
select pr.product_id, count(distinct l.account_id) as accounts
from {{ ref('int_invoice_lines_normalized') }} as l
inner join {{ ref('stg_stripe__prices') }} as pr on pr.price_id = l.price_id
where not exists (select 1 from {{ ref('billing_products') }} as b where b.product_id = pr.product_id)
group by 1
{%- endif %}
