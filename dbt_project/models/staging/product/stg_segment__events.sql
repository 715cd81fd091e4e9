-- Track calls only, renamed and typed. A view: the partitioned raw.events table is read
-- through it, so a literal filter on occurred_at still prunes month partitions.
select
    message_id,
    event as event_name,
    user_id,
    anonymous_id,
    account_id,
    "timestamp" as occurred_at,
    received_at,
    case
        when jsonb_typeof(properties -> 'recipients') = 'number' then (properties ->> 'recipients')::numeric
        when (properties ->> 'recipients') ~ '^\s*[0-9]+(\.[0-9]+)?\s*$' then trim(properties ->> 'recipients')::numeric
    end as recipients,
    properties ->> 'from_plan' as from_plan,
    properties ->> 'to_plan' as to_plan,
    properties ->> 'integration' as integration,
    properties
from {{ segment_source('events') }}
where type = 'track'
