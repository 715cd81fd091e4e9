{#- Where the product staging models read Segment messages from (var events_source):
    `files` (default): the raw tables the ingestion loads from landed files
    (source('segment', ...)); `warehouse`: the tables a Segment or RudderStack warehouse
    destination already writes in schema var events_warehouse_schema, read in place
    (models/staging/segment_warehouse, shaped like the raw tables); `none` (billing only:
    only the `finance` selector is built, the product models still parse against the raw
    tables). `table`: events, identifies or groups. -#}
{% macro segment_source(table) -%}
    {%- if var('events_source') == 'warehouse' -%}
        {{ ref('base_segment_warehouse__' ~ table) }}
    {%- elif var('events_source') in ('files', 'none') -%}
        {{ source('segment', table) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("var events_source must be 'files', 'warehouse' or 'none', not '" ~ var('events_source') ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- The columns of a Segment/RudderStack warehouse table that are not the message's own
    properties or traits: ids, timestamps, loader columns and the flattened context. -#}
{% macro segment_warehouse_payload(alias) -%}
    coalesce((
        select jsonb_object_agg(kv.key, kv.value)
        from jsonb_each(to_jsonb({{ alias }})) as kv
        where kv.key not like 'context\_%'
          and kv.value <> 'null'::jsonb
          and kv.key not in (
              'id', 'anonymous_id', 'user_id', 'group_id', 'event', 'event_text', 'timestamp',
              'original_timestamp', 'sent_at', 'received_at', 'uuid_ts', 'loaded_at',
              'channel', 'request_ip'
          )
    ), '{}'::jsonb)
{%- endmacro %}

{#- relation of table `name` in the warehouse destination's schema -#}
{% macro segment_warehouse_relation(name) -%}
    {{- return(api.Relation.create(database=target.database, schema=var('events_warehouse_schema'), identifier=name)) -}}
{%- endmacro %}
