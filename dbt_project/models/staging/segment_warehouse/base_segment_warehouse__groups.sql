{#- Segment/RudderStack warehouse `groups` (one row per group call, traits as columns) in
    the shape of raw.groups. Warehouse mode only (var events_source: warehouse). -#}
{{ config(materialized='ephemeral', enabled=var('events_source') == 'warehouse') }}
select
    g.id::text as message_id,
    g.user_id::text as user_id,
    g.group_id::text as account_id,
    g."timestamp"::timestamptz as "timestamp",
    {{ segment_warehouse_payload('g') }} as traits
from {{ segment_warehouse_relation('groups') }} as g
