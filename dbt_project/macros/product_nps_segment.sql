{#- Respondents in the bottom (direction='bottom') or top ('top') `share` of NPS scores
    among the respondents of the rule's audience (lifecycle stages) who answered in the
    last `days` days (latest answer per respondent).
    Exactly floor(share x respondents) members; ties go to the most recent answer. -#}
{% macro product_nps_segment(segment_key, direction) -%}
{%- set order = 'asc' if direction == 'bottom' else 'desc' -%}
with latest as (
    select distinct on (coalesce(r.user_id, r.email, r.response_id))
        r.response_id, r.account_id, r.user_id, r.email, r.score, r.responded_at
    from {{ ref('stg_nps__responses') }} as r
    cross join {{ product_segment_rule(segment_key) }}
    {{ segment_audience('r.account_id') }}
    where (r.responded_at at time zone 'UTC')::date > rule.as_of_date - rule.days
      and (r.responded_at at time zone 'UTC')::date <= rule.as_of_date
      and r.account_id is not null
    order by coalesce(r.user_id, r.email, r.response_id), r.responded_at desc, r.response_id
),

ranked as (
    select
        *,
        row_number() over (order by score {{ order }}, responded_at desc, response_id) as position,
        count(*) over () as respondents
    from latest
)

select
    rule.segment_key,
    ranked.account_id,
    ranked.user_id,
    ranked.email as user_email,
    format(
        'NPS %s on %s: %s %s of %s respondents in the last %s days (%s %s%%)',
        ranked.score, (ranked.responded_at at time zone 'UTC')::date,
        case when '{{ direction }}' = 'bottom' then 'rank from the bottom' else 'rank from the top' end,
        ranked.position, ranked.respondents, rule.days, '{{ direction }}', round(100 * rule.share)
    ) as reason,
    null::integer as priority
from ranked
cross join {{ product_segment_rule(segment_key) }}
where ranked.position <= floor(rule.share * ranked.respondents)
{%- endmacro %}
