{{ config(materialized='table') }}
-- One row per account seen in group, identify, track or billing data, with its signup time and
-- the contact a messaging tool should address.
with group_calls as (
    select
        account_id,
        min(account_created_at) as traits_created_at,
        min(grouped_at) as first_grouped_at,
        (array_agg(account_name order by grouped_at desc) filter (where account_name is not null))[1] as account_name,
        (array_agg(plan order by grouped_at desc) filter (where plan is not null))[1] as plan,
        (array_agg(email order by grouped_at desc) filter (where email is not null))[1] as group_email
    from {{ ref('stg_segment__groups') }}
    where account_id is not null
    group by 1
),

first_identify as (
    select distinct on (account_id) account_id, user_id as contact_user_id, identified_at as first_identified_at
    from {{ ref('stg_segment__identifies') }}
    where account_id is not null and user_id is not null
    order by account_id, identified_at, message_id
),

first_activity as (
    select account_id, min(first_activity_date) as first_activity_date
    from {{ ref('int_product__usage_monthly') }}
    group by 1
),

billing as (
    select account_id, min(valid_from) as first_paid_on
    from {{ ref('int_billing_account_spells') }}
    where is_paying
    group by 1
),

all_accounts as (
    select account_id from group_calls
    union
    select account_id from first_identify
    union
    select account_id from first_activity
    union
    select account_id from billing
),

joined as (
    select
        a.account_id,
        -- The first group or identify call keeps its time; a track day earlier than both
        -- (only a date) counts from its midnight UTC, as does the first paid day.
        coalesce(
            g.traits_created_at,
            case
                when f.first_activity_date < (least(g.first_grouped_at, i.first_identified_at) at time zone 'UTC')::date
                    or least(g.first_grouped_at, i.first_identified_at) is null
                    then f.first_activity_date::timestamp at time zone 'UTC'
                else least(g.first_grouped_at, i.first_identified_at)
            end,
            b.first_paid_on::timestamp at time zone 'UTC'
        ) as signed_up_at,
        g.account_name,
        g.plan,
        i.contact_user_id,
        coalesce(g.group_email, u.email) as contact_email,
        u.user_name as contact_name,
        f.first_activity_date
    from all_accounts as a
    left join group_calls as g using (account_id)
    left join first_identify as i using (account_id)
    left join first_activity as f using (account_id)
    left join billing as b using (account_id)
    left join {{ ref('int_product__users') }} as u on u.user_id = i.contact_user_id
)

select
    account_id,
    signed_up_at,
    (signed_up_at at time zone 'UTC')::date as signup_date,
    account_name,
    plan,
    contact_user_id,
    contact_email,
    contact_name,
    first_activity_date
from joined
