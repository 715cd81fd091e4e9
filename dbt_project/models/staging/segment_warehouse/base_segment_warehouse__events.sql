{#- Segment/RudderStack warehouse track calls in the shape of raw.events: `tracks` (one row
    per track call) with the properties from the event's own table (one table per event
    name, properties as columns, the same `id`), found in the schema at compile time: every
    table but the destination's standard ones (var events_warehouse_event_tables lists them
    instead, when set). The account: var events_warehouse_account_column of the message
    (Segment's `context_group_id`), else base_segment_warehouse__user_accounts. Warehouse
    mode only (var events_source: warehouse). -#}
{{ config(materialized='ephemeral', enabled=var('events_source') == 'warehouse') }}
{%- set schema = var('events_warehouse_schema') %}
{%- set tracks = segment_warehouse_relation('tracks') %}
{%- set account_column = var('events_warehouse_account_column') %}
{%- set event_tables = var('events_warehouse_event_tables') %}
{%- set has_account = false %}
{%- if execute %}
    {%- set has_account = account_column in (adapter.get_columns_in_relation(tracks) | map(attribute='name') | list) %}
    {%- if event_tables is none %}
        {%- set found -%}
            select table_name from information_schema.tables
            where table_schema = '{{ schema }}'
              and table_name not in ('tracks', 'identifies', 'groups', 'pages', 'screens', 'users',
                                     'accounts', 'aliases', 'sources', 'tracks_view', 'identifies_view')
              and table_name not like 'rudder\_%'
              and table_name not like '\_%'
            order by table_name
        {%- endset %}
        {%- set event_tables = run_query(found).columns[0].values() | list %}
    {%- endif %}
{%- endif %}
with properties as (
    {%- for name in event_tables or [] %}
    select e.id::text as message_id, {{ segment_warehouse_payload('e') }} as properties
    from {{ segment_warehouse_relation(name) }} as e
    {{ 'union all' if not loop.last }}
    {%- else %}
    select null::text as message_id, null::jsonb as properties where false
    {%- endfor %}
)

select
    t.id::text as message_id,
    'track'::text as type,
    t.event::text as event,
    t.user_id::text as user_id,
    t.anonymous_id::text as anonymous_id,
    {% if has_account %}coalesce(t.{{ account_column }}::text, users.account_id){% else %}users.account_id{% endif %} as account_id,
    t."timestamp"::timestamptz as "timestamp",
    t.received_at::timestamptz as received_at,
    coalesce(properties.properties, '{}'::jsonb) as properties
from {{ tracks }} as t
left join properties on properties.message_id = t.id::text
left join {{ ref('base_segment_warehouse__user_accounts') }} as users on users.user_id = t.user_id::text
