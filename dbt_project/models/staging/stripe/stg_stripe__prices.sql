select
    id as price_id,
    data ->> 'product' as product_id,
    data ->> 'type' as price_type,
    data ->> 'billing_scheme' as billing_scheme,
    lower(data ->> 'currency') as currency,
    (data ->> 'unit_amount')::bigint as unit_amount,
    data -> 'recurring' ->> 'interval' as recurring_interval,
    (data -> 'recurring' ->> 'interval_count')::int as recurring_interval_count,
    data -> 'recurring' ->> 'usage_type' as recurring_usage_type,
    created as created_at
from {{ source('stripe', 'stripe_prices') }}
