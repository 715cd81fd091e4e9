select
    ticket_id,
    account_id,
    user_id,
    nullif(trim(requester_email), '') as requester_email,
    lower(trim(topic)) as topic,
    subject,
    lower(trim(status)) as status,
    created_at,
    resolved_at
from {{ source('helpdesk', 'support_tickets') }}
