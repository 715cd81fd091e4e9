{#- account_id: the customer's metadata key `finance_account_id_metadata_key` (default
    account_id), else the Stripe customer id, so no customer is dropped; account_id_source
    says which (a warn test reports the fallbacks). -#}
{%- set key = var('finance_account_id_metadata_key') %}
select
    id as customer_id,
    coalesce(nullif(data -> 'metadata' ->> '{{ key }}', ''), id) as account_id,
    case when nullif(data -> 'metadata' ->> '{{ key }}', '') is null then 'customer_id' else 'metadata' end
        as account_id_source,
    nullif(trim(data -> 'metadata' ->> 'owner'), '') as owner,
    created as created_at,
    coalesce((data ->> 'deleted')::boolean, false) as is_deleted,
    _extracted_at as extracted_at
from {{ source('stripe', 'stripe_customers') }}
