{#- account_id, first match wins: the seed stripe_customer_accounts (an optional mapping
    table), the customer's metadata key `finance_account_id_metadata_key` (default
    account_id), else the Stripe customer id, so no customer is dropped; account_id_source
    says which (a warn test reports the fallbacks). -#}
{%- set key = var('finance_account_id_metadata_key') %}
with customers as (
    select *, nullif(data -> 'metadata' ->> '{{ key }}', '') as metadata_account_id
    from {{ source('stripe', 'stripe_customers') }}
),

mapping as (
    select customer_id, nullif(trim(account_id), '') as account_id
    from {{ ref('stripe_customer_accounts') }}
)

select
    customers.id as customer_id,
    coalesce(mapping.account_id, customers.metadata_account_id, customers.id) as account_id,
    case
        when mapping.account_id is not null then 'mapping'
        when customers.metadata_account_id is not null then 'metadata'
        else 'customer_id'
    end as account_id_source,
    nullif(trim(customers.data -> 'metadata' ->> 'owner'), '') as owner,
    customers.created as created_at,
    coalesce((customers.data ->> 'deleted')::boolean, false) as is_deleted,
    customers._extracted_at as extracted_at
from customers
left join mapping on mapping.customer_id = customers.id
