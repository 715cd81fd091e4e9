{#- One row per Stripe subscription: its trial, cancellation and the reason the customer
    gave (`cancellation_details`). Lifecycle stages read the trial dates; win-back reads
    the reason. -#}
select
    id as subscription_id,
    data ->> 'customer' as customer_id,
    data ->> 'status' as subscription_status,
    created as created_at,
    {{ stripe_ts("data ->> 'trial_start'") }} as trial_start_at,
    {{ stripe_ts("data ->> 'trial_end'") }} as trial_end_at,
    {{ stripe_ts("data ->> 'canceled_at'") }} as canceled_at,
    {{ stripe_ts("data ->> 'ended_at'") }} as ended_at,
    data -> 'cancellation_details' ->> 'reason' as cancellation_reason,
    data -> 'cancellation_details' ->> 'feedback' as cancellation_feedback,
    data -> 'cancellation_details' ->> 'comment' as cancellation_comment,
    _extracted_at as extracted_at
from {{ source('stripe', 'stripe_subscriptions') }}
