select
    message_id,
    user_id,
    account_id,
    "timestamp" as grouped_at,
    nullif(trim(traits ->> 'name'), '') as account_name,
    nullif(trim(traits ->> 'plan'), '') as plan,
    nullif(trim(traits ->> 'email'), '') as email,
    case
        when (traits ->> 'created_at') ~ '^\d{4}-\d{2}-\d{2}' then (traits ->> 'created_at')::timestamptz
    end as account_created_at,
    traits
from {{ segment_source('groups') }}
