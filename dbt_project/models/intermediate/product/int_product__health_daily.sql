{#-
  Health score per account and day (every day from the first day with events; scope and
  signals: int_product__health_inputs).
  Sub-scores 0-100; a component is absent (null) when its signal does not exist for the
  account, and the weights (seed product_health_weights) are renormalised over the
  components present. Value per dollar: reach is divided by MRR and compared with the
  product_health_benchmark_share percentile of all scored accounts that day; depth is
  active seats per paid seat.
  Incremental: each run replaces the days from the first day the inputs rebuilt (rebuilt_from,
  notify_rebuilt) or has not built; the 7 / 28-day changes of those days read the earlier
  scores from this table.
-#}
{{ config(**product_health_daily_config()) }}
{{ config(post_hook="{{ health_month_end_index() }}") }}
{%- set score_from = rebuilt_from('date') %}
{{ replace_where(rebuilt_days('date', score_from)) }}
{%- set red_max = var('product_health_red_max') -%}
{%- set yellow_max = var('product_health_yellow_max') -%}

with inputs as (
    select
        *,
        reach_28d / greatest(mrr, {{ var('product_health_mrr_floor') }}) as reach_per_dollar
    from {{ ref('int_product__health_inputs') }}
    {%- if score_from %}
    where date >= date '{{ score_from }}'
    {%- endif %}
),

weights as (
    select
        coalesce(max(weight) filter (where component = 'breadth'), 0) as w_breadth,
        coalesce(max(weight) filter (where component = 'depth'), 0) as w_depth,
        coalesce(max(weight) filter (where component = 'reach'), 0) as w_reach,
        coalesce(max(weight) filter (where component = 'trend'), 0) as w_trend,
        coalesce(max(weight) filter (where component = 'support'), 0) as w_support,
        coalesce(max(weight) filter (where component = 'nps'), 0) as w_nps
    from {{ ref('product_health_weights') }}
),

benchmarks as (
    select
        date,
        (percentile_cont({{ var('product_health_benchmark_share') }}) within group (order by reach_per_dollar))::numeric
            as reach_benchmark
    from inputs
    group by 1
),

subscores as (
    select
        i.*,
        b.reach_benchmark,
        100.0 * i.key_features_28d / nullif(i.key_features_total, 0) as breadth_score,
        case when i.paid_seats > 0
            then 100.0 * least(1.0, i.active_seats_28d::numeric / i.paid_seats) end as depth_score,
        case when b.reach_benchmark > 0
            then 100.0 * least(1.0, i.reach_per_dollar / b.reach_benchmark) end as reach_score,
        case
            when not i.has_previous_window then null
            when i.key_events_prev_28d = 0 then case when i.key_events_28d > 0 then 100.0 else 0.0 end
            else 100.0 * least(1.0, i.key_events_28d::numeric / i.key_events_prev_28d)
        end as trend_score,
        case when i.support_available
            then 100.0 * greatest(0.0, 1.0 - i.tickets_28d::numeric / {{ var('product_health_support_ticket_cap') }}) end
            as support_score,
        case when i.nps_responses > 0 then 10.0 * i.nps_avg end as nps_score
    from inputs as i
    left join benchmarks as b using (date)
    -- offset 0: the sub-scores are computed once per row and read by name below; inlined,
    -- Postgres repeated each expression wherever it is used (a score 4 times, each sub-score
    -- 3 times in it: large, daily: the query's CPU 0.49 s -> 0.30 s)
    offset 0
),

scored as (
    select
        s.*,
        (s.breadth_score is not null)::int + (s.depth_score is not null)::int + (s.reach_score is not null)::int
            + (s.trend_score is not null)::int + (s.support_score is not null)::int + (s.nps_score is not null)::int
            as components_present,
        round((
            coalesce(w.w_breadth * s.breadth_score, 0) + coalesce(w.w_depth * s.depth_score, 0)
            + coalesce(w.w_reach * s.reach_score, 0) + coalesce(w.w_trend * s.trend_score, 0)
            + coalesce(w.w_support * s.support_score, 0) + coalesce(w.w_nps * s.nps_score, 0)
        ) / nullif(
            case when s.breadth_score is not null then w.w_breadth else 0 end
            + case when s.depth_score is not null then w.w_depth else 0 end
            + case when s.reach_score is not null then w.w_reach else 0 end
            + case when s.trend_score is not null then w.w_trend else 0 end
            + case when s.support_score is not null then w.w_support else 0 end
            + case when s.nps_score is not null then w.w_nps else 0 end
        , 0), 1) as health_score
    from subscores as s
    cross join weights as w
    offset 0  -- the score once per row (the tier reads it three times)
),

tiered as (
    select
        *,
        case
            when health_score is null then 'unscored'
            when health_score <= {{ red_max }} then 'red'
            when health_score <= {{ yellow_max }} then 'yellow'
            else 'green'
        end as tier
    from scored
)

{#- the score 7 and 28 days before: the new days' own, else (incremental) this table's,
    looked up through its (account_id, date) index -#}
{%- set score_7d_ago = 'coalesce(t7.health_score, h7.health_score)' if is_incremental() else 't7.health_score' %}
{%- set score_28d_ago = 'coalesce(t28.health_score, h28.health_score)' if is_incremental() else 't28.health_score' %}

select
    t.account_id::text as account_id,
    t.date::date as date,
    t.is_month_end::boolean as is_month_end,
    t.health_score::numeric(5, 1) as health_score,
    t.tier::text as tier,
    {{ score_7d_ago }}::numeric(5, 1) as health_score_7d_ago,
    (t.health_score - {{ score_7d_ago }})::numeric(5, 1) as change_7d,
    {{ score_28d_ago }}::numeric(5, 1) as health_score_28d_ago,
    (t.health_score - {{ score_28d_ago }})::numeric(5, 1) as change_28d,
    t.components_present::integer as components_present,
    round(t.breadth_score, 1)::numeric(5, 1) as breadth_score,
    round(t.depth_score, 1)::numeric(5, 1) as depth_score,
    round(t.reach_score, 1)::numeric(5, 1) as reach_score,
    round(t.trend_score, 1)::numeric(5, 1) as trend_score,
    round(t.support_score, 1)::numeric(5, 1) as support_score,
    round(t.nps_score, 1)::numeric(5, 1) as nps_score,
    t.is_paying::boolean as is_paying,
    t.mrr::numeric(14, 2) as mrr,
    t.paid_seats::integer as paid_seats,
    t.active_seats_28d::integer as active_seats_28d,
    t.key_features_28d::integer as key_features_28d,
    t.key_events_28d::integer as key_events_28d,
    t.key_events_prev_28d::integer as key_events_prev_28d,
    t.reach_28d::numeric as reach_28d,
    t.reach_per_dollar::numeric as reach_per_dollar,
    t.tickets_28d::integer as tickets_28d,
    round(t.nps_avg, 2)::numeric(4, 2) as nps_avg
from tiered as t
left join tiered as t7 on t7.account_id = t.account_id and t7.date = t.date - 7
left join tiered as t28 on t28.account_id = t.account_id and t28.date = t.date - 28
{%- if is_incremental() %}
{%- for days in [7, 28] %}
left join lateral (
    -- one index lookup per row (`limit 1` keeps Postgres from flattening it into a join,
    -- which it plans for the CTE's default estimate: a sort of the table's 1.4 M older rows,
    -- 3 s on large)
    select h.health_score
    from {{ this }} as h
    where h.account_id = t.account_id and h.date = t.date - {{ days }} and h.date < (select min(date) from inputs)
    limit 1
) as h{{ days }} on true
{%- endfor %}
{%- endif %}
