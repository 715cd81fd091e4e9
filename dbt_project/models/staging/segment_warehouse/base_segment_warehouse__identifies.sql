{#- Segment/RudderStack warehouse `identifies` (traits as columns) in the shape of
    raw.identifies; the account from the message's var events_warehouse_account_column
    when the table has it, else base_segment_warehouse__user_accounts. Warehouse mode only. -#}
{{ config(materialized='ephemeral', enabled=var('events_source') == 'warehouse') }}
{%- set relation = segment_warehouse_relation('identifies') %}
{%- set account_column = var('events_warehouse_account_column') %}
{%- set has_account = execute and account_column in (adapter.get_columns_in_relation(relation) | map(attribute='name') | list) %}
select
    i.id::text as message_id,
    i.user_id::text as user_id,
    {% if has_account %}coalesce(i.{{ account_column }}::text, users.account_id){% else %}users.account_id{% endif %} as account_id,
    i."timestamp"::timestamptz as "timestamp",
    {{ segment_warehouse_payload('i') }} as traits
from {{ relation }} as i
left join {{ ref('base_segment_warehouse__user_accounts') }} as users on users.user_id = i.user_id::text
