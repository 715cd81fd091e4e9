-- The date every "as of" product model is computed for: var product_as_of_date, else the
-- last day with events (simulated or stale data is scored as of its own end, not today),
-- but never past the last day the events landed completely: the day before
-- raw.landed_intervals.interval_end (retention.load.landed; written by ingest_events and
-- `retention load --until`), so a partial day is never scored. No such row (warehouse
-- mode, loads without an end): the last day with events.
-- depends_on: {{ ref('int_product__usage_daily') }}
{%- if var('product_as_of_date') %}
select date '{{ var("product_as_of_date") }}' as as_of_date
{%- else %}
{%- set landed = adapter.get_relation(database=target.database, schema='raw', identifier='landed_intervals') if execute else none %}
select
    {%- if landed and var('events_source') == 'files' %}
    least(
        max(activity_date),
        (select (max(interval_end) at time zone 'UTC')::date - 1 from {{ landed }} where source = 'events')
    )
    {%- else %}
    max(activity_date)
    {%- endif %} as as_of_date
from {{ ref('int_product__usage_daily') }}
{%- endif %}
