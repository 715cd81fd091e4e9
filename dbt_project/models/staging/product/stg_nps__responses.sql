select
    response_id,
    account_id,
    user_id,
    nullif(trim(email), '') as email,
    score,
    comment,
    responded_at
from {{ source('nps', 'nps_responses') }}
