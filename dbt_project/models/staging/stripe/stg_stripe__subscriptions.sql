{#- One row per Stripe subscription: its trial, cancellation and the reason the customer
    gave (`cancellation_details`). Lifecycle stages read the trial dates; win-back reads
    the reason. The stored object is read once per row (jsonb_to_record): each `data ->>`
    would decompress the whole stored JSON again (4x the time for these fields on `large`,
    and six models read this view every run). -#}
select
    s.id as subscription_id,
    d.customer as customer_id,
    d.status as subscription_status,
    s.created as created_at,
    {{ stripe_ts("d.trial_start") }} as trial_start_at,
    {{ stripe_ts("d.trial_end") }} as trial_end_at,
    {{ stripe_ts("d.canceled_at") }} as canceled_at,
    {{ stripe_ts("d.ended_at") }} as ended_at,
    d.cancellation_details ->> 'reason' as cancellation_reason,
    d.cancellation_details ->> 'feedback' as cancellation_feedback,
    d.cancellation_details ->> 'comment' as cancellation_comment,
    s._extracted_at as extracted_at
from {{ source('stripe', 'stripe_subscriptions') }} as s
cross join lateral jsonb_to_record(s.data) as d (
    customer text, status text, trial_start text, trial_end text, canceled_at text, ended_at text,
    cancellation_details jsonb
)
