{#- The parameters of one enabled segment rule (seed product_segment_rules) joined with
    the as-of date: `from {{ product_segment_rule('inactive') }}` gives one row with
    segment_key, stages (text[], default the current customers), days, months, threshold,
    min_mrr, share, stay_days (at least 1) and as_of_date, or none when disabled. -#}
{% macro product_segment_rule(segment_key) -%}
(
    select
        r.segment_key,
        coalesce(string_to_array(nullif(trim(r.stages), ''), ' '), array['trialing', 'active', 'past_due']) as stages,
        r.days, r.months, r.threshold, r.min_mrr, r.share,
        greatest(coalesce(r.stay_days, 1), 1) as stay_days, o.as_of_date
    from {{ ref('product_segment_rules') }} as r
    cross join {{ ref('int_product__as_of') }} as o
    where r.segment_key = '{{ segment_key }}' and r.enabled
) as rule
{%- endmacro %}

{#- The audience of a rule: joins the account's state on the as-of date
    (int_account_states_as_of, alias `st`) and keeps the rule's lifecycle stages.
    Use after `cross join {{ product_segment_rule(...) }}`. -#}
{% macro segment_audience(account_id_expr) -%}
inner join {{ ref('int_account_states_as_of') }} as st
    on st.account_id = {{ account_id_expr }} and st.lifecycle_stage = any(rule.stages)
{%- endmacro %}

{#- Money for reasons: 1234.5 -> '$1234.50'. -#}
{% macro product_money(expr) -%}
('$' || to_char(({{ expr }})::numeric, 'FM999999990.00'))
{%- endmacro %}

{#- Hysteresis (seed column stay_days, N): a rule is evaluated on the as-of date and the
    N - 1 days before it, and segment_latest_hold keeps an account until the rule has
    failed on N consecutive days.
    segment_days(): those days as rows of alias `d` (column `day`), for rules over inputs
    without a row per day (usage). Use after `cross join {{ product_segment_rule(...) }}`.
    segment_window(key, column): `column` (a date) is one of those days, with the bounds as
    scalar subqueries, so Postgres reads them through an index on the date (a bound taken
    from the joined rule row would not be an index condition). -#}
{% macro segment_days() -%}
cross join lateral (
    select g::date as day
    from generate_series(rule.as_of_date - (rule.stay_days - 1), rule.as_of_date, interval '1 day') as g
) as d
{%- endmacro %}

{% macro segment_window(segment_key, column, reach=0) -%}
{{ column }} > (select rule.as_of_date - rule.stay_days - ({{ reach }}) from {{ product_segment_rule(segment_key) }})
    and {{ column }} <= (select rule.as_of_date from {{ product_segment_rule(segment_key) }})
{%- endmacro %}

{#- The members of a rule evaluated per day (relation `held`: the segment columns and
    `day`): one row per member, from the latest day the rule held. When that is not the
    as-of date, the reason still names that day's cause, with the day, and says the member
    is kept. Ordered by `day` descending, then `order_by`. -#}
{% macro segment_latest_hold(segment_key, held, order_by='h.account_id') -%}
select distinct on (h.account_id, h.user_id)
    h.segment_key,
    h.account_id,
    h.user_id,
    h.user_email,
    case when h.day = rule.as_of_date then h.reason
        else format('%s (on %s; kept until the rule has failed %s days in a row)', h.reason, h.day, rule.stay_days)
    end as reason,
    h.priority
from {{ held }} as h
cross join {{ product_segment_rule(segment_key) }}
order by h.account_id, h.user_id, h.day desc, {{ order_by }}
{%- endmacro %}
