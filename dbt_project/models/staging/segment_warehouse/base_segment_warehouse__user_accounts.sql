{#- The account each user belongs to, for messages that carry no account: the optional
    mapping table var events_warehouse_user_accounts (user_id, account_id) first, else the
    user's latest group call. Warehouse mode only. -#}
{{ config(materialized='ephemeral', enabled=var('events_source') == 'warehouse') }}
{%- set mapping = var('events_warehouse_user_accounts') %}
with latest_group as (
    select distinct on (user_id) user_id, account_id
    from {{ ref('base_segment_warehouse__groups') }}
    where user_id is not null
    order by user_id, "timestamp" desc, message_id desc
)
{%- if mapping %},

mapped as (
    select distinct on (user_id) user_id::text as user_id, account_id::text as account_id
    from {{ mapping }}
    where user_id is not null and account_id is not null
    order by user_id, account_id
)

select coalesce(mapped.user_id, latest_group.user_id) as user_id,
       coalesce(mapped.account_id, latest_group.account_id) as account_id
from mapped
full outer join latest_group on latest_group.user_id = mapped.user_id
{%- else %}

select user_id, account_id from latest_group
{%- endif %}
