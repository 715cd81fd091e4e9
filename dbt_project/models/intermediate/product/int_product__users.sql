-- One row per user: the latest non-blank email and name from identify calls.
select
    user_id,
    (array_agg(account_id order by identified_at desc) filter (where account_id is not null))[1] as account_id,
    (array_agg(email order by identified_at desc) filter (where email is not null))[1] as email,
    (array_agg(user_name order by identified_at desc) filter (where user_name is not null))[1] as user_name,
    min(identified_at) as first_identified_at
from {{ ref('stg_segment__identifies') }}
where user_id is not null
group by 1
