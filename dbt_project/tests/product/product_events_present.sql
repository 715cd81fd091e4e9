{#- Says plainly when there are no product events at all (a team with Stripe but no event
    data yet, or a source pointed at the wrong place): the usage, activation, health and
    segment marts are then empty, not wrong. A warning, so the billing marts still build;
    `retention dbt build --selector finance` builds those alone (docs/dbt.md).
    A full build's check (tag full_build_only): on a daily run the raw gate's volume check
    says first that no events landed, and this test would run ahead of
    int_product__usage_daily, the head of the daily run's longest chain. -#}
{{ config(severity='warn', tags=['full_build_only']) }}
select 'no track events in stg_segment__events: the product marts (usage, activation, health, segments) are empty' as problem
where not exists (select 1 from {{ ref('stg_segment__events') }})
