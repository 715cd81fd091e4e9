select
    id as invoice_id,
    data ->> 'customer' as customer_id,
    data -> 'parent' -> 'subscription_details' ->> 'subscription' as subscription_id,
    data ->> 'status' as invoice_status,
    data ->> 'billing_reason' as billing_reason,
    data ->> 'collection_method' as collection_method,
    lower(data ->> 'currency') as currency,
    (data ->> 'total')::bigint as total,
    (data ->> 'amount_due')::bigint as amount_due,
    (data ->> 'amount_paid')::bigint as amount_paid,
    created as created_at,
    {{ stripe_ts("data -> 'status_transitions' ->> 'finalized_at'") }} as finalized_at,
    {{ stripe_ts("data -> 'status_transitions' ->> 'paid_at'") }} as paid_at,
    {{ stripe_ts("data -> 'status_transitions' ->> 'voided_at'") }} as voided_at,
    {{ stripe_ts("data ->> 'due_date'") }} as due_date,
    coalesce((data -> 'lines' ->> 'has_more')::boolean, false) as lines_has_more,
    _extracted_at as extracted_at
from {{ source('stripe', 'stripe_invoices') }}
