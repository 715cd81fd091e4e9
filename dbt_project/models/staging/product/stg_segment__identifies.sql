select
    message_id,
    user_id,
    account_id,
    "timestamp" as identified_at,
    nullif(trim(traits ->> 'email'), '') as email,
    nullif(trim(coalesce(traits ->> 'name',
        nullif(concat_ws(' ', traits ->> 'first_name', traits ->> 'last_name'), ''))), '') as user_name,
    traits
from {{ segment_source('identifies') }}
