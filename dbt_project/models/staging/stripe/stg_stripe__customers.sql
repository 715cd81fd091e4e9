select
    id as customer_id,
    data -> 'metadata' ->> 'account_id' as account_id,
    created as created_at,
    coalesce((data ->> 'deleted')::boolean, false) as is_deleted,
    _extracted_at as extracted_at
from {{ source('stripe', 'stripe_customers') }}
